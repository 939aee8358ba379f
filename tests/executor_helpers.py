"""Waiting on an executor's ranks, shared by the executor and isolation tests."""

from __future__ import annotations

import time

from suan.exec import Executor, JobStatus


def until_exited(executor: Executor, job_id: str, timeout: float = 20.0) -> JobStatus:
    """Poll until every rank of `job_id` has exited; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = executor.poll()[job_id]
        if status.all_exited:
            return status
        time.sleep(0.05)
    raise AssertionError(f"{job_id}: ranks did not exit in {timeout:g}s")
