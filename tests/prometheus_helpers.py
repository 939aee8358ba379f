"""A real Prometheus (Debian's `prometheus` package) for the tests: started once per session on
127.0.0.1 with a temporary data directory, the shipped scrape job of
deploy/prometheus/prometheus.yml (the scrape token from a file, a 1 s interval, targets from a
file the tests write) and the shipped alerting rules, evaluated every second.

Installed with apt-get when missing and running as root; a test that needs it is skipped,
saying why, otherwise."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from control_helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "prometheus"
PACKAGE = "prometheus"


def promtool() -> str:
    """The path of `promtool` (Debian's prometheus package), installing the package as root
    when it is missing; skips the asking test where it cannot be had."""
    if shutil.which("promtool") is None:
        if os.geteuid() != 0:
            pytest.skip("prometheus is not installed and installing it (apt-get) needs root")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        command = ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE]
        if subprocess.run(command, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
            subprocess.run(command, env=env, capture_output=True, check=True)
    return shutil.which("promtool") or pytest.fail("the prometheus package has no promtool")


def scrape_config(workdir: Path, token_file: Path, targets: Path) -> dict[str, Any]:
    """The shipped example configuration, changed only where a test must: every second, the
    token file and targets of this session, the rules file by its absolute path."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s",
                            scrape_timeout="1s")
    config["rule_files"] = [str(DEPLOY / name) for name in config["rule_files"]]
    [job] = config["scrape_configs"]
    job["authorization"]["credentials_file"] = str(token_file)
    del job["static_configs"]
    job["file_sd_configs"] = [{"files": [str(targets)], "refresh_interval": "1s"}]
    return config


class Prometheus:
    """One running Prometheus: `scrape(host_port)` sets its only target, `query(expr)` asks its
    HTTP API, `token_file` holds the scrape token the target must accept."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.token_file = workdir / "scrape-token"
        self.token_file.write_text(secrets.token_urlsafe(24) + "\n")
        self.targets = workdir / "targets.json"
        self.scrape(None)
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(workdir, self.token_file, self.targets)))
        self.log = open(workdir / "prometheus.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.workdir / "prometheus.log").read_text()[-3000:])
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready")

    def scrape(self, host_port: str | None) -> None:
        """Scrape `host_port` (None: nothing) from now on."""
        groups = [{"targets": [host_port], "labels": {}}] if host_port else []
        temporary = self.targets.with_suffix(".tmp")
        temporary.write_text(json.dumps(groups))
        temporary.replace(self.targets)

    def api(self, path: str, **params: str) -> Any:
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The series an instant query returns now."""
        return self.api("query", query=expr)["result"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory):
    """The session's Prometheus (see the module doc)."""
    promtool()
    running = Prometheus(tmp_path_factory.mktemp("prometheus"))
    yield running
    running.stop()
