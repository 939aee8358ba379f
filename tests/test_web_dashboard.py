"""The dashboard in a real browser (headless Chromium through Selenium): a server with running,
pending and failed jobs of two users; every page opened, the numbers shown checked against the
REST API, a job followed to its live log, another user's jobs invisible, the session cookie's
rules, and the forms that change things (cancel, cordon) with their CSRF token."""

from __future__ import annotations

import json
import textwrap

import httpx
import pytest
from browser import screenshot
from control_helpers import Server, job_yaml, wait_for
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.ui import WebDriverWait
from typer.testing import CliRunner

from suan.cli.main import cli

LONG = {"steps": 100_000, "step_s": 0.2}


def failing_yaml(name: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: suan.ai/v1
        kind: Job
        metadata: {{name: {name}}}
        spec:
          replicas: 1
          accelerators: {{count: 1, type: H100}}
          command: [python, -c, "import sys; print('bad input'); sys.exit(3)"]
          maxRestarts: 0
        """)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A server (8 simulated H100) with alice's running, pending, failed and to-be-cancelled
    jobs and bob's running job; the ids by role, and each user's client and token."""
    server = Server(tmp_path_factory.mktemp("dashboard") / "home")
    server.home.mkdir()
    server.start()
    admin = server.client()
    tokens = {name: admin.create_user(name) for name in ("alice", "bob")}
    alice, bob = server.client(tokens["alice"]), server.client(tokens["bob"])
    ids = {
        "running": alice.submit(job_yaml("train", ranks=2, **LONG))[0],
        "victim": alice.submit(job_yaml("victim", ranks=1, **LONG))[0],
        "secret": bob.submit(job_yaml("secret", ranks=1, **LONG))[0],
        "failed": alice.submit(failing_yaml("broken"))[0],
    }
    wait_for(lambda: all(alice.describe(ids[k])["state"] == "running"
                         for k in ("running", "victim")), what="alice's jobs running")
    wait_for(lambda: alice.describe(ids["failed"])["state"] == "failed", what="a failed job")
    ids["pending"] = alice.submit(job_yaml("wide", ranks=1, devices=8))[0]
    wait_for(lambda: alice.describe(ids["pending"])["reason_code"], what="a pending reason")
    yield {"server": server, "ids": ids, "tokens": tokens, "alice": alice, "bob": bob,
           "admin": admin}
    server.stop()


def log_in(browser, server: Server, token: str, start: str = "/ui/jobs") -> None:
    browser.delete_all_cookies()
    browser.get(server.url + start)
    WebDriverWait(browser, 10).until(shown.presence_of_element_located((By.ID, "token")))
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "login").click()
    WebDriverWait(browser, 10).until(shown.presence_of_element_located((By.ID, "who")))


def main_page(browser, name: str):  # type: ignore[no-untyped-def]
    return WebDriverWait(browser, 10).until(
        shown.presence_of_element_located((By.CSS_SELECTOR, f'main[data-page="{name}"]')))


def click_through(browser, button, name: str):  # type: ignore[no-untyped-def]
    """Click `button` and return the next page's main element once the old page is gone (the
    old page's main element would otherwise satisfy the wait before the form is answered)."""
    old = browser.find_element(By.TAG_NAME, "main")
    button.click()
    WebDriverWait(browser, 15).until(shown.staleness_of(old))
    return main_page(browser, name)


def test_a_bad_token_is_refused_and_pages_need_a_login(browser, cluster):
    server = cluster["server"]
    browser.delete_all_cookies()
    browser.get(server.url + "/ui/queues")
    main_page(browser, "login")
    assert "/ui/login" in browser.current_url
    browser.find_element(By.ID, "token").send_keys("suan_not-a-token")
    answer = click_through(browser, browser.find_element(By.ID, "login"), "login")
    assert "unknown token" in answer.find_element(By.ID, "error").text
    screenshot(browser, "dashboard-login-refused")


def test_the_session_cookie_is_httponly_strict_and_expires(browser, cluster):
    log_in(browser, cluster["server"], cluster["tokens"]["alice"])
    cookie = browser.get_cookie("suan_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie.get("expiry"), "a session cookie that never expires"
    assert browser.execute_script("return document.cookie") == ""


def test_jobs_page_lists_exactly_the_callers_jobs(browser, cluster):
    server, ids, alice = cluster["server"], cluster["ids"], cluster["alice"]
    log_in(browser, server, cluster["tokens"]["alice"])
    browser.get(server.url + "/ui/jobs")
    main_page(browser, "jobs")
    rows = {row.get_attribute("data-job"): row.get_attribute("data-state")
            for row in browser.find_elements(By.CSS_SELECTOR, "tr.job")}
    api = {job["id"]: job["state"] for job in alice.jobs(all=True)}
    assert rows == api
    assert ids["secret"] not in rows
    assert {rows[ids["running"]], rows[ids["pending"]], rows[ids["failed"]]} == {
        "running", "pending", "failed"}
    screenshot(browser, "dashboard-jobs")
    browser.get(server.url + "/ui/jobs?state=failed")
    main_page(browser, "jobs")
    assert [r.get_attribute("data-job") for r in browser.find_elements(By.CSS_SELECTOR,
                                                                       "tr.job")] == [ids["failed"]]


def test_another_users_job_page_is_not_found(browser, cluster):
    server, ids = cluster["server"], cluster["ids"]
    log_in(browser, server, cluster["tokens"]["alice"])
    browser.get(server.url + f"/ui/jobs/{ids['secret']}")
    assert "no job" in main_page(browser, "error").find_element(By.ID, "error").text
    answer = httpx.get(server.url + f"/ui/jobs/{ids['secret']}/log?rank=0",
                       cookies={"suan_session": browser.get_cookie("suan_session")["value"]})
    assert answer.status_code == 404


def test_cluster_page_counts_match_the_api(browser, cluster):
    server, alice, ids = cluster["server"], cluster["alice"], cluster["ids"]
    log_in(browser, server, cluster["tokens"]["alice"])
    browser.get(server.url + "/ui/cluster")
    main_page(browser, "cluster")
    nodes = alice.nodes()
    assert int(browser.find_element(By.ID, "node-count").text) == len(nodes)
    devices = browser.find_elements(By.CSS_SELECTOR, "span.dev[data-state]")
    assert len(devices) == sum(node["devices"] for node in nodes)
    allocated = [d for d in devices if d.get_attribute("data-state") == "allocated"]
    assert len(allocated) == sum(len(node["used"]) for node in nodes)
    linked = {a.get_attribute("href").rsplit("/", 1)[-1]
              for a in browser.find_elements(By.CSS_SELECTOR, "span.dev a")}
    assert ids["running"] in linked and ids["secret"] not in linked
    screenshot(browser, "dashboard-cluster")


def test_queues_page_numbers_match_the_api(browser, cluster):
    server, alice = cluster["server"], cluster["alice"]
    log_in(browser, server, cluster["tokens"]["alice"])
    browser.get(server.url + "/ui/queues")
    main_page(browser, "queues")
    for queue in alice.queues():
        row = browser.find_element(By.CSS_SELECTOR, f'tr.queue[data-queue="{queue["name"]}"]')
        assert int(row.find_element(By.CLASS_NAME, "running").text) == queue["running"]
        assert int(row.find_element(By.CLASS_NAME, "waiting").text) == queue["waiting"]
    default = browser.find_element(By.CSS_SELECTOR, 'tr.queue[data-queue="default"]')
    assert default.find_element(By.CSS_SELECTOR, 'a.reason[data-reason="capacity"]')
    assert browser.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    screenshot(browser, "dashboard-queues")


def test_pending_and_failed_jobs_say_why(browser, cluster):
    server, alice, ids = cluster["server"], cluster["alice"], cluster["ids"]
    log_in(browser, server, cluster["tokens"]["alice"])
    browser.get(server.url + f"/ui/jobs/{ids['pending']}")
    main_page(browser, "job")
    api = alice.describe(ids["pending"])
    assert browser.find_element(By.ID, "reason-code").text == api["reason_code"] == "capacity"
    assert "free now" in browser.find_element(By.ID, "reason-words").text
    screenshot(browser, "dashboard-job-pending")
    browser.get(server.url + f"/ui/jobs/{ids['failed']}")
    main_page(browser, "job")
    api = alice.describe(ids["failed"])
    assert browser.find_element(By.ID, "state").text == "failed"
    assert browser.find_element(By.ID, "exit-code").text == str(api["exit_code"]) == "3"
    assert browser.find_element(By.ID, "restarts").text == str(api["restarts"])
    screenshot(browser, "dashboard-job-failed")


def test_click_through_a_running_job_to_its_live_log(browser, cluster):
    server, alice, ids = cluster["server"], cluster["alice"], cluster["ids"]
    log_in(browser, server, cluster["tokens"]["alice"])
    browser.get(server.url + "/ui/jobs")
    main_page(browser, "jobs")
    click_through(browser, browser.find_element(By.LINK_TEXT, ids["running"]), "job")
    api = alice.describe(ids["running"])
    assert browser.find_element(By.ID, "ranks").text == str(api["ranks"])
    assert float(browser.find_element(By.ID, "devices").text) == api["devices"]
    nodes = [r.find_elements(By.TAG_NAME, "td")[1].text
             for r in browser.find_elements(By.CSS_SELECTOR, "tr.rank")]
    assert nodes == [rank["node"] for rank in api["ranks_detail"]]
    assert browser.find_elements(By.CSS_SELECTOR, "tr.event")
    screenshot(browser, "dashboard-job-running")
    click_through(browser, browser.find_elements(By.CSS_SELECTOR, "a.log-link")[1], "log")
    log = browser.find_element(By.ID, "log")
    WebDriverWait(browser, 15).until(lambda _: "rank 1 step 3/" in log.text)
    first = int(log.get_attribute("data-offset"))
    WebDriverWait(browser, 15).until(lambda _: int(log.get_attribute("data-offset")) > first)
    assert log.text.startswith(alice.logs(ids["running"], rank=1)["data"][:200].strip()[:40])
    screenshot(browser, "dashboard-log")


def test_cancel_from_the_job_page(browser, cluster):
    server, alice, ids = cluster["server"], cluster["alice"], cluster["ids"]
    log_in(browser, server, cluster["tokens"]["alice"])
    browser.get(server.url + f"/ui/jobs/{ids['victim']}")
    main_page(browser, "job")
    click_through(browser, browser.find_element(By.ID, "cancel"), "job")
    assert alice.describe(ids["victim"])["cancel_requested"] is True
    wait_for(lambda: alice.describe(ids["victim"])["state"] == "cancelled", what="cancelled")
    # The audit log names the dashboard user who cancelled, not `-`.
    wait_for(lambda: any(call["path"] == f"/ui/jobs/{ids['victim']}/cancel"
                         for call in cluster["admin"].audit()), what="the cancel audited")
    (call,) = [c for c in cluster["admin"].audit() if c["path"].endswith(f"{ids['victim']}/cancel")]
    assert call["user"] == "alice"


def test_a_form_without_the_csrf_token_is_refused(browser, cluster):
    server, ids, alice = cluster["server"], cluster["ids"], cluster["alice"]
    log_in(browser, server, cluster["tokens"]["alice"])
    session = {"suan_session": browser.get_cookie("suan_session")["value"]}
    url = server.url + f"/ui/jobs/{ids['running']}/cancel"
    assert httpx.post(url, cookies=session, data={"csrf": "forged"}).status_code == 403
    assert httpx.post(url, cookies=session).status_code == 403
    assert alice.describe(ids["running"])["cancel_requested"] is False


def test_only_an_admin_cordons_a_node(browser, cluster):
    server, admin = cluster["server"], cluster["admin"]
    log_in(browser, server, cluster["tokens"]["alice"])
    browser.get(server.url + "/ui/cluster")
    main_page(browser, "cluster")
    assert not browser.find_elements(By.CSS_SELECTOR, "button.cordon")
    log_in(browser, server, server.token, "/ui/cluster")
    node = admin.nodes()[0]["name"]
    row = browser.find_element(By.CSS_SELECTOR, f'tr.node[data-node="{node}"]')
    row.find_element(By.NAME, "reason").send_keys("fan noise")
    click_through(browser, row.find_element(By.CSS_SELECTOR, "button.cordon"), "cluster")
    operator = next(n for n in admin.nodes() if n["name"] == node)["operator"]
    assert operator["action"] == "cordon" and operator["reason"] == "fan noise"
    screenshot(browser, "dashboard-cluster-cordoned")
    row = browser.find_element(By.CSS_SELECTOR, f'tr.node[data-node="{node}"]')
    click_through(browser, row.find_element(By.CSS_SELECTOR, "button.uncordon"), "cluster")
    assert next(n for n in admin.nodes() if n["name"] == node)["operator"] is None


def test_the_session_dies_with_its_token(browser, cluster):
    server, alice = cluster["server"], cluster["alice"]
    made = alice.create_token("browser", expires="1h")
    log_in(browser, server, made["token"])
    browser.get(server.url + "/ui/jobs")
    main_page(browser, "jobs")
    alice.revoke_token(made["id"])
    browser.get(server.url + "/ui/jobs")
    main_page(browser, "login")


def test_logout_ends_the_session(browser, cluster):
    server = cluster["server"]
    log_in(browser, server, cluster["tokens"]["alice"])
    cookie = browser.get_cookie("suan_session")["value"]
    click_through(browser, browser.find_element(By.ID, "logout"), "login")
    answer = httpx.get(server.url + "/ui/jobs", cookies={"suan_session": cookie})
    assert answer.status_code == 303


def test_simulator_upload_shows_the_replay(browser, cluster, tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("job_id,submit_time,duration,num_gpus,queue\n"
                     "a,0,100,8,research\nb,1,50,8,prod\nc,2,10,8,prod\n")
    out = tmp_path / "replay.json"
    done = CliRunner().invoke(cli, ["sim", "replay", "--trace", str(trace), "--cluster",
                                    "1x8xV100", "--policy", "fifo,sjf", "--json", str(out)])
    assert done.exit_code == 0, done.output
    figures = json.loads(out.read_text())["policies"]
    server = cluster["server"]
    log_in(browser, server, cluster["tokens"]["alice"], "/ui/sim")
    browser.find_element(By.ID, "document").send_keys(str(out))
    answer = click_through(browser, browser.find_element(By.ID, "upload"), "sim")
    report = answer.find_element(By.ID, "report")
    assert report.get_attribute("data-kind") == "replay"
    for policy in ("fifo", "sjf"):
        cell = report.find_element(
            By.CSS_SELECTOR, f'tr[data-name="{policy}"] td[data-column="avg_jct_s"]')
        assert float(cell.text.replace(",", "")) == pytest.approx(
            figures[policy]["avg_jct_s"], rel=0.01)
    assert report.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    screenshot(browser, "dashboard-sim")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    browser.find_element(By.ID, "document").send_keys(str(bad))
    answer = click_through(browser, browser.find_element(By.ID, "upload"), "sim")
    assert "not an object" in answer.find_element(By.ID, "error").text


def test_a_login_posted_from_another_site_is_refused(cluster):
    server = cluster["server"]
    answer = httpx.post(server.url + "/ui/login", data={"token": cluster["tokens"]["alice"]},
                        headers={"Origin": "http://elsewhere.example"})
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_an_oversized_simulator_upload_is_refused_unread(cluster):
    server = cluster["server"]
    with httpx.Client(base_url=server.url) as client:
        client.post("/ui/login", data={"token": cluster["tokens"]["alice"]})
        big = b"[" + b"0," * (9 << 20) + b"0]"
        answer = client.post("/ui/sim", files={"document": ("big.json", big)},
                             data={"csrf": "unread"})
    assert answer.status_code == 413
    assert "larger than 16 MiB" in answer.text


def test_hold_and_release_from_the_job_page(browser, cluster):
    server, alice, ids = cluster["server"], cluster["alice"], cluster["ids"]
    log_in(browser, server, cluster["tokens"]["bob"], f"/ui/jobs/{ids['pending']}")
    assert not browser.find_elements(By.ID, "hold"), "bob may not see alice's job"
    session = {"suan_session": browser.get_cookie("suan_session")["value"]}
    forged = httpx.post(server.url + f"/ui/jobs/{ids['pending']}/hold", cookies=session)
    assert forged.status_code == 403 and alice.describe(ids["pending"])["held_by"] is None
    log_in(browser, server, cluster["tokens"]["alice"], f"/ui/jobs/{ids['running']}")
    assert not main_page(browser, "job").find_elements(By.ID, "hold"), "only a waiting job"
    browser.get(server.url + f"/ui/jobs/{ids['pending']}")
    page = click_through(browser, main_page(browser, "job").find_element(By.ID, "hold"), "job")
    assert page.find_element(By.ID, "reason-code").text == "held"
    assert "held by alice" in page.find_element(By.ID, "reason").text
    assert alice.describe(ids["pending"])["held_by"] == "alice"
    click_through(browser, page.find_element(By.ID, "release"), "job").find_element(By.ID, "hold")
    assert alice.describe(ids["pending"])["held_by"] is None
    kinds = [e["kind"] for e in alice.describe(ids["pending"])["events"]]
    assert kinds[-2:] == ["held", "released"]
