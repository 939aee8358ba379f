"""The Python SDK: `suan.Client`, the same operations as the CLI, over the REST API (httpx).

    from suan import Client
    client = Client()                      # SUAN_SERVER / SUAN_TOKEN, or the local `suan up`
    [job_id] = client.submit("examples/gpt/job.yaml")
    client.wait(job_id)                    # until succeeded, failed or cancelled
    print(client.logs(job_id, rank=0)["data"])

Without SUAN_SERVER the client talks to the server `suan up` started under SUAN_HOME (its
`server.json`), else http://127.0.0.1:8765; without SUAN_TOKEN it uses that home's
`admin-token` when it can read it. Errors from the server raise `ApiError`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from suan.errors import SuanError

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
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
    ):
        self.server = (server or default_server()).rstrip("/")
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

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise SuanError(
                f"cannot reach the Suan server at {self.server}: {exc} "
                "(start one with `suan up`, or set SUAN_SERVER)"
            ) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, detail)
        return response.json()

    # -- jobs ----------------------------------------------------------------------------------
    def submit(self, spec: str | Path, workdir: str | None = None) -> list[str]:
        """Submit a spec file (a path, or YAML text); return the new job ids in file order.

        `workdir` is where the ranks start (default: the current directory when `spec` is a
        path, as sbatch does).
        """
        text, cwd = spec, workdir
        if isinstance(spec, Path) or (
            isinstance(spec, str) and "\n" not in spec and Path(spec).is_file()
        ):
            text = Path(spec).read_text()
            cwd = workdir or os.getcwd()
        result = self._request("POST", "/v1/jobs", json={"yaml": str(text), "workdir": cwd})
        return [job["id"] for job in result["jobs"]]

    def submit_raw(self, text: str, workdir: str | None = None) -> dict[str, Any]:
        """Submit YAML text; the server's whole answer (jobs and queues)."""
        return self._request("POST", "/v1/jobs", json={"yaml": text, "workdir": workdir})

    def jobs(self, all: bool = False) -> list[dict[str, Any]]:
        """Live jobs you may see, or every one with `all=True`, newest first: every page
        (see `iter_jobs` to go through a long list without holding it all)."""
        return list(self.iter_jobs(all))

    def jobs_page(
        self, all: bool = False, limit: int = 1000, after: str | None = None
    ) -> dict[str, Any]:
        """One page of `jobs`: `jobs` (at most `limit`), `next` (the `after` of the
        following page, None on the last) and `remaining` (how many jobs follow)."""
        params: dict[str, Any] = {"all": all, "limit": limit}
        if after:
            params["after"] = after
        return self._request("GET", "/v1/jobs", params=params)

    def iter_jobs(self, all: bool = False, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every job of `jobs`, fetched `page_size` at a time. Jobs submitted meanwhile are
        newer than the pages still to come and do not show; none is listed twice."""
        after = None
        while True:
            page = self.jobs_page(all, page_size, after)
            yield from page["jobs"]
            after = page.get("next")
            if not after:
                return

    def describe(self, job_id: str) -> dict[str, Any]:
        """Spec, state, placement, ranks, events and pending reason of one job."""
        return self._request("GET", f"/v1/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._request("POST", f"/v1/jobs/{job_id}/cancel")

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

    def queues(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/queues")["queues"]

    def whoami(self) -> dict[str, Any]:
        return self._request("GET", "/v1/whoami")

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest mutating API calls, newest first (cluster admins only)."""
        return self._request("GET", "/v1/audit", params={"limit": limit})["calls"]

    def create_user(self, name: str, admin: bool = False, rotate: bool = False) -> str:
        """Create a user (cluster admins only); the new token, shown only this once. An
        existing user is a 409 unless `rotate`, which revokes its old tokens."""
        body = {"name": name, "admin": admin, "rotate": rotate}
        return self._request("POST", "/v1/users", json=body)["token"]

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
