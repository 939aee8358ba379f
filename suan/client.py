"""The Python SDK: `suan.Client`, the same operations as the CLI, over the REST API (httpx).

    from suan import Client
    client = Client()                      # SUAN_SERVER / SUAN_TOKEN, or the local `suan up`
    [job_id] = client.submit("examples/gpt/job.yaml")
    client.wait(job_id)                    # until succeeded, failed or cancelled
    print(client.logs(job_id, rank=0)["data"])

Without SUAN_SERVER the client talks to the server `suan up` started under SUAN_HOME (its
`server.json`), else http://127.0.0.1:8765; without SUAN_TOKEN it uses that home's
`admin-token` when it can read it. Errors from the server raise `ApiError`.

Submitting is safe to retry: each `submit`/`submit_raw` call sends one `Idempotency-Key` (a
new random one unless given) and, when the connection fails or times out before an answer
arrives, sends the same request with the same key again (`submit_retries` times, waiting
0.5 s, 1 s, 2 s, ...): the server answers a repeated key with the first submission's job ids
instead of submitting again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from suan.errors import SuanError

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "timeout"})
DEFAULT_URL = "http://127.0.0.1:8765"


class ApiError(SuanError):
    """The server refused a request: `status` (401, 403, 404, 409, 422, ...) and `detail`."""

    def __init__(self, status: int, detail: Any):
        self.status = status
        self.detail = detail
        super().__init__(f"HTTP {status}: {_detail_text(detail)}")


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        lines = []
        for item in detail:
            where = item.get("path") or ".".join(str(p) for p in item.get("loc", []))
            allowed = f" (allowed: {item['allowed']})" if item.get("allowed") else ""
            lines.append(f"\n  - {where}: {item.get('msg')}{allowed}")
        return "invalid input" + "".join(lines)
    return str(detail)


def _lifetime(expires: float | str | None) -> dict[str, Any]:
    """The `expires_in_s` of a token request: left out for None, null for "never"."""
    from suan.jobs.units import DURATION_ALLOWED, UnitError, parse_duration

    if expires is None:
        return {}
    if isinstance(expires, str) and expires.strip().lower() == "never":
        return {"expires_in_s": None}
    try:
        seconds = parse_duration(expires)
    except UnitError as exc:
        raise SuanError(f"expires: {exc} (allowed: {exc.allowed}, or never)") from None
    if seconds < 1:
        raise SuanError(f"expires: {expires!r} is under a second ({DURATION_ALLOWED}, or never)")
    return {"expires_in_s": int(seconds)}


def _grace(grace: float | str | None) -> dict[str, Any]:
    """The `grace_s` of a drain request: left out for None; a duration string is read here
    ("10m"), a number is sent as it is (the server checks its range)."""
    from suan.jobs.units import UnitError, parse_duration

    if grace is None:
        return {}
    if isinstance(grace, str):
        try:
            return {"grace_s": parse_duration(grace)}
        except UnitError as exc:
            raise SuanError(f"grace: {exc} (allowed: {exc.allowed})") from None
    return {"grace_s": grace}


def is_spec_path(spec: str | Path) -> bool:
    """Whether `submit` reads `spec` as a file name rather than as YAML text."""
    if isinstance(spec, Path):
        return True
    if "\n" in spec or not spec.strip():
        return False
    return spec.strip().endswith((".yaml", ".yml")) or Path(spec).is_file()


def read_spec_file(path: Path) -> str:
    """The text of a spec file; SuanError naming the file when it cannot be read as text."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuanError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SuanError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise SuanError(f"{path}: is not UTF-8 text") from None
    except OSError as exc:
        raise SuanError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def suan_home() -> Path:
    return Path(os.environ.get("SUAN_HOME") or Path.home() / ".suan").expanduser()


def default_server() -> str:
    """SUAN_SERVER, else the URL in SUAN_HOME/server.json, else http://127.0.0.1:8765."""
    if os.environ.get("SUAN_SERVER"):
        return os.environ["SUAN_SERVER"].rstrip("/")
    try:
        return json.loads((suan_home() / "server.json").read_text())["url"]
    except (OSError, ValueError, KeyError):
        return DEFAULT_URL


def default_token() -> str | None:
    """SUAN_TOKEN, else the local admin token written by `suan up` (when readable)."""
    if os.environ.get("SUAN_TOKEN"):
        return os.environ["SUAN_TOKEN"]
    try:
        return (suan_home() / "admin-token").read_text().strip() or None
    except OSError:
        return None


class Client:
    """A connection to one Suan server as one identity (see the module docstring)."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        submit_retries: int = 3,
    ):
        self.server = (server or default_server()).rstrip("/")
        self.submit_retries = max(0, submit_retries)
        token = token if token is not None else default_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.server, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, retries: int = 0, **kwargs: Any) -> Any:
        """Send one request; on a connection failure or timeout send it again up to `retries`
        times (only for requests that are safe to repeat), then raise SuanError."""
        for attempt in range(retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
                break
            except httpx.TransportError as exc:
                if attempt == retries:
                    raise SuanError(
                        f"cannot reach the Suan server at {self.server}: {exc} "
                        "(start one with `suan up`, or set SUAN_SERVER)"
                    ) from None
                time.sleep(min(0.5 * 2**attempt, 8.0))
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, detail)
        return response.json()

    # -- jobs ----------------------------------------------------------------------------------
    def submit(
        self,
        spec: str | Path,
        workdir: str | None = None,
        idempotency_key: str | None = None,
        dependency: str | None = None,
    ) -> list[str]:
        """Submit a spec file (a path, or YAML text); return the new job ids in file order.

        `spec` is read as a file when it is a Path, or a str of one line that names an
        existing file or ends in .yaml or .yml (a missing one is a SuanError naming it);
        any other str is the YAML itself. `workdir` is where the ranks start (default: the
        current directory when `spec` is a path, as sbatch does). `idempotency_key`
        (default: a new random one) makes the call safe to repeat: see the module docstring.
        `dependency` (sbatch's notation, `afterok:ID[:ID][,afterany:ID]`) replaces
        `spec.dependencies` of every Job (ValueError for a notation that is not one). An
        array's members are listed each.
        """
        text, cwd = str(spec), workdir
        if is_spec_path(spec):
            text = read_spec_file(Path(spec))
            cwd = workdir or os.getcwd()
        if dependency is not None:
            from suan.jobs.batch_syntax import with_dependency

            text = with_dependency(text, dependency)
        result = self.submit_raw(text, cwd, idempotency_key)
        return [job["id"] for job in result["jobs"]]

    def submit_raw(
        self, text: str, workdir: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Submit YAML text; the server's whole answer (jobs and queues). Retried with one
        idempotency key (`idempotency_key`, or a new random one) as `submit` is."""
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        body = {"yaml": text, "workdir": workdir}
        return self._request(
            "POST", "/v1/jobs", retries=self.submit_retries, json=body, headers=headers
        )

    def jobs(self, all: bool = False) -> list[dict[str, Any]]:
        """Live jobs you may see, or every one with `all=True`, newest first: every page
        (see `iter_jobs` to go through a long list without holding it all)."""
        return list(self.iter_jobs(all))

    def jobs_page(
        self,
        all: bool = False,
        limit: int = 1000,
        after: str | None = None,
        *,
        user: Sequence[str] = (),
        queue: Sequence[str] = (),
        state: Sequence[str] = (),
        array: str | None = None,
    ) -> dict[str, Any]:
        """One page of `jobs`: `jobs` (at most `limit`), `next` (the `after` of the
        following page, None on the last) and `remaining` (how many jobs follow). `user`,
        `queue` and `state` keep the jobs with one of the values given (a `state` filter
        lists finished jobs without `all`); `array` keeps the members of that array."""
        params: dict[str, Any] = {"all": all, "limit": limit}
        if after:
            params["after"] = after
        if array:
            params["array"] = array
        for name, values in (("user", user), ("queue", queue), ("state", state)):
            if values:
                params[name] = list(values)
        return self._request("GET", "/v1/jobs", params=params)

    def iter_jobs(
        self, all: bool = False, page_size: int = 1000, **filters: Sequence[str]
    ) -> Iterator[dict[str, Any]]:
        """Every job of `jobs`, fetched `page_size` at a time (`filters`: as jobs_page's).
        Jobs submitted meanwhile are newer than the pages still to come and do not show;
        none is listed twice."""
        after = None
        while True:
            page = self.jobs_page(all, page_size, after, **filters)
            yield from page["jobs"]
            after = page.get("next")
            if not after:
                return

    def describe(self, job_id: str) -> dict[str, Any]:
        """Spec, state, placement, ranks, events and pending reason of one job; for an array
        id, the array (`count`, `limit`, `states` counted, `members`)."""
        return self._request("GET", f"/v1/jobs/{job_id}")

    def goodput(self, job_id: str) -> dict[str, Any]:
        """Where one job's wall time went, its goodput factors and its checkpoint advice."""
        return self._request("GET", f"/v1/jobs/{job_id}/goodput")

    def goodput_all(
        self, queue: str | None = None, since: float | None = None, limit: int = 1000
    ) -> dict[str, Any]:
        """Goodput rows of the jobs live at or after `since` (of `queue`), and their total."""
        params: dict[str, Any] = {"limit": limit}
        if queue is not None:
            params["queue"] = queue
        if since is not None:
            params["since"] = since
        return self._request("GET", "/v1/goodput", params=params)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Ask a job to stop; an array id asks every member that has not ended."""
        return self._request("POST", f"/v1/jobs/{job_id}/cancel")

    def hold(self, job_id: str) -> dict[str, Any]:
        """Keep a waiting job from the scheduler until `release`."""
        return self._request("POST", f"/v1/jobs/{job_id}/hold")

    def release(self, job_id: str) -> dict[str, Any]:
        """Let a held job be scheduled again."""
        return self._request("POST", f"/v1/jobs/{job_id}/release")

    def requeue(self, job_id: str) -> dict[str, Any]:
        """Stop a running job and put it back in the queue (from its checkpoint, no restart
        counted)."""
        return self._request("POST", f"/v1/jobs/{job_id}/requeue")

    def logs(self, job_id: str, rank: int = 0, offset: int = 0) -> dict[str, Any]:
        """One chunk of a rank's log: `data`, `next_offset`, and whether the job is `final`."""
        return self._request(
            "GET", f"/v1/jobs/{job_id}/logs", params={"rank": rank, "offset": offset}
        )

    def follow_logs(self, job_id: str, rank: int = 0, poll_s: float = 0.5) -> Iterator[str]:
        """Yield a rank's log as it grows, until the job ends and the log is read out."""
        offset = 0
        while True:
            chunk = self.logs(job_id, rank, offset)
            if chunk["data"]:
                yield chunk["data"]
            offset = chunk["next_offset"]
            if chunk["final"] and not chunk["data"]:
                return
            if not chunk["data"]:
                time.sleep(poll_s)

    def wait(
        self,
        job_id: str,
        states: frozenset[str] | set[str] = FINAL_STATES,
        timeout: float = 3600.0,
        poll_s: float = 0.2,
    ) -> dict[str, Any]:
        """Poll until the job is in one of `states`; its summary. TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.describe(job_id)
            if job["state"] in states:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout:g}s")
            time.sleep(poll_s)

    # -- cluster -------------------------------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/nodes")["nodes"]

    def cordon(self, node: str, reason: str) -> dict[str, Any]:
        """No new work on `node` (cluster admins); running gangs go on."""
        return self._request("POST", f"/v1/nodes/{quote(node, safe='')}/cordon",
                             json={"reason": reason})

    def uncordon(self, node: str) -> dict[str, Any]:
        """Lift the operator's cordon or drain of `node` (cluster admins)."""
        return self._request("POST", f"/v1/nodes/{quote(node, safe='')}/uncordon")

    def drain(self, node: str, reason: str, grace: float | str | None = None) -> dict[str, Any]:
        """Cordon `node`, then after `grace` (seconds or "10m"; the server's default, ten
        minutes, when None) stop and requeue every gang on it (cluster admins)."""
        body = {"reason": reason, **_grace(grace)}
        return self._request("POST", f"/v1/nodes/{quote(node, safe='')}/drain", json=body)

    def queues(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/queues")["queues"]

    def snapshot(self) -> dict[str, Any]:
        """The inputs of the reconciler's next scheduling cycle and its decisions, as a
        scheduler state document (cluster admins only; docs/schedule-state.md)."""
        return self._request("GET", "/v1/snapshot", retries=2)

    def whoami(self) -> dict[str, Any]:
        return self._request("GET", "/v1/whoami")

    def leader(self) -> dict[str, Any]:
        """Which server leads (lease holder and epoch) and whether this one does."""
        return self._request("GET", "/v1/leader")

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest mutating API calls, newest first (cluster admins only)."""
        return self._request("GET", "/v1/audit", params={"limit": limit})["calls"]

    def create_user(self, name: str, admin: bool = False, rotate: bool = False) -> str:
        """Create a user (cluster admins only); the new token, shown only this once. An
        existing user is a 409 unless `rotate`, which revokes its old tokens."""
        body = {"name": name, "admin": admin, "rotate": rotate}
        return self._request("POST", "/v1/users", json=body)["token"]

    # -- tokens --------------------------------------------------------------------------------
    def create_token(self, name: str = "", expires: float | str | None = None) -> dict[str, Any]:
        """A new token for yourself: `id`, `name`, `created_at`, `expires_at` and the secret
        `token`, shown only this once. `expires`: seconds or a duration ("30d", "12h"),
        "never", or None for the server's default (90 days)."""
        body = {"name": name, **_lifetime(expires)}
        return self._request("POST", "/v1/tokens", json=body)

    def tokens(self, user: str | None = None, all: bool = False) -> list[dict[str, Any]]:
        """Your tokens (id, name, created_at, expires_at, last_used_at, expired, current), never
        their secrets; a cluster admin may ask for another `user`'s or `all`."""
        params: dict[str, Any] = {"all": all}
        if user is not None:
            params["user"] = user
        return self._request("GET", "/v1/tokens", params=params)["tokens"]

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Revoke a token by its id; it stops working at once (404 for another user's)."""
        return self._request("DELETE", f"/v1/tokens/{token_id}")

    def rotate_token(self, token_id: str, expires: float | str | None = None) -> dict[str, Any]:
        """A new token in place of `token_id`, which is revoked in the same step; as
        create_token's answer. `expires` None keeps the old token's lifetime."""
        return self._request("POST", f"/v1/tokens/{token_id}/rotate", json=_lifetime(expires))

    def healthy(self) -> bool:
        return self.health() is not None

    def health(self) -> dict[str, Any] | None:
        """The server's /healthz answer (version, and the nonce of its process), or None when
        no Suan server answers."""
        try:
            response = self._http.get("/healthz", timeout=2)
            answer = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return answer if isinstance(answer, dict) else None
