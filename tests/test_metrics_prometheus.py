"""A real Prometheus scrapes a real `suan server` with the scrape token: every query of the
shipped Grafana dashboard returns series, the numbers match the server's own answers, and the
shipped alerting rules load, evaluate and fire where they should. promtool checks the rules
and the example scrape configuration."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import time

import pytest
from control_helpers import Server, job_yaml, wait_for
from prometheus_helpers import DEPLOY, ROOT, promtool
from prometheus_helpers import prometheus as prometheus

DASHBOARD = ROOT / "deploy" / "grafana" / "suan.json"
TEAM = textwrap.dedent("""\
    apiVersion: suan.ai/v1
    kind: Queue
    metadata: {name: team}
    spec:
      guaranteed: {H100: 8, accelerators: 8}
    """)
FLAKY = job_yaml("flaky", ranks=1).replace(
    "command: [python", "command: [sh, -c, 'test \"$SUAN_RESTART_COUNT\" != 0 || exit 3', python")
TOO_BIG = job_yaml("too-big", ranks=2, devices=8)  # the cluster has 8


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, query) for every target of every panel of the shipped dashboard."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(panel["title"], target["expr"]) for panel in panels for target in panel["targets"]]


def value(series: list[dict]) -> float:
    [one] = series
    return float(one["value"][1])


@pytest.fixture(scope="module")
def scraped(prometheus, tmp_path_factory):
    """A server Prometheus scrapes, which has run a flaky job (one failure restart) and a
    short one, and now runs a blocker that holds all 8 devices for queue `team`, with one
    job of `team` waiting for capacity and one that can never fit."""
    workdir = tmp_path_factory.mktemp("scraped")
    config = workdir / "server.yaml"
    config.write_text(f"local: {{devices: 8xH100}}\n"
                      f"metrics: {{tokenFile: {prometheus.token_file}}}\n")
    server = Server(workdir / "home", config=config)
    server.home.mkdir()
    server.start()
    prometheus.scrape(f"127.0.0.1:{server.port}")
    wait_for(lambda: prometheus.query('count_over_time(up{job="suan"}[1m]) >= 3'),
             timeout=60, what="three scrapes")
    client = server.client()
    try:
        finished = client.submit(FLAKY + "---\n" + job_yaml("short", ranks=2, steps=2))
        for job_id in finished:
            assert client.wait(job_id, timeout=60)["state"] == "succeeded"
        blocker, waiting, _ = client.submit("---\n".join([
            TEAM, job_yaml("blocker", ranks=8, steps=3000, queue="team"),
            job_yaml("waiting", ranks=1, queue="team"), TOO_BIG]))
        wait_for(lambda: client.describe(blocker)["state"] == "running", what="the blocker")
        wait_for(lambda: client.describe(waiting)["reason_code"] == "capacity", what="a wait")
        wait_for(lambda: prometheus.query('suan_devices{state="allocated"} == 8'),
                 timeout=30, what="the blocker's devices scraped")
        wait_for(lambda: prometheus.query('suan_jobs_waiting{reason="unschedulable"}'),
                 timeout=30, what="the waits scraped")
        yield server
    finally:
        prometheus.scrape(None)
        server.stop()


def test_every_dashboard_query_returns_a_series(prometheus, scraped):
    queries = dashboard_queries()
    assert len(queries) >= 18
    deadline = time.monotonic() + 30  # a rate() needs two scrapes of a series that just appeared
    while True:
        empty = [(title, expr) for title, expr in queries if not prometheus.query(expr)]
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not empty, f"queries without a series: {empty}"


def test_the_scraped_numbers_are_the_servers(prometheus, scraped):
    assert value(prometheus.query('sum(suan_devices{job="suan"})')) == 8
    assert value(prometheus.query('sum(suan_devices{state="allocated"}) / sum(suan_devices)')) == 1
    running = prometheus.query('suan_jobs{state="running"}')
    assert [(s["metric"]["queue"], s["value"][1]) for s in running] == [("team", "1")]
    waits = {s["metric"]["reason"]: s["value"][1]
             for s in prometheus.query("sum by (reason) (suan_jobs_waiting)")}
    assert waits == {"capacity": "1", "unschedulable": "1"}
    assert value(prometheus.query('suan_job_restarts_total{cause="failure"}')) == 1
    assert value(prometheus.query(
        'suan_queue_devices_used{queue="team",accelerator="accelerators"}')) == 8
    assert value(prometheus.query('sum(suan_job_submit_to_running_seconds_count)')) == 3, (
        "first runs only: flaky, short, blocker")
    placed = value(prometheus.query("sum(suan_scheduling_pass_placements_sum)"))
    assert placed >= 4, "the flaky job twice, the short one and the blocker were placed"


def test_the_shipped_rules_load_evaluate_and_fire_where_they_should(prometheus, scraped):
    [group] = prometheus.api("rules")["groups"]
    shipped = (DEPLOY / "suan-rules.yml").read_text().count("- alert:")
    assert len(group["rules"]) == shipped
    wait_for(lambda: all(rule.get("lastEvaluation", "").startswith("2") and
                         rule["health"] == "ok" for rule in prometheus.api("rules")["groups"][0]
                         ["rules"]), timeout=20, what="every rule evaluated without error")

    def alerting() -> set[str]:
        return {a["labels"]["alertname"] for a in prometheus.api("alerts")["alerts"]}

    wait_for(lambda: "SuanJobsUnschedulable" in alerting(), timeout=20, what="the alert")
    assert alerting() == {"SuanJobsUnschedulable"}, "nothing else is wrong with this server"


def test_promtool_passes_the_rules_and_the_example_config(tmp_path):
    tool = promtool()
    rules = subprocess.run([tool, "check", "rules", str(DEPLOY / "suan-rules.yml")],
                           capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 8 rules found" in rules.stdout
    copy = tmp_path / "prometheus"
    shutil.copytree(DEPLOY, copy)
    (copy / "suan-metrics-token").write_text("an-example-scrape-token\n")
    config = subprocess.run([tool, "check", "config", str(copy / "prometheus.yml")],
                            capture_output=True, text=True)
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS: 1 rule files found" in config.stdout

