"""How the local engine keeps one job's ranks apart from everything else on the machine.

    isolation = Isolation.detect(home)               # what this machine allows, "auto"
    isolation.shim_options(job, rank)                 # the shim's --cgroup/--sandbox/... flags
    isolation.members(job_id, attempt)                # rank -> pids of every process it started
    isolation.sweep(job_id, attempt, rank)            # kill what a rank left behind
    isolation.release(job_id, attempt)                # remove the attempt's groups

Three layers, each used where the machine allows it (`detect` says which are off, and why):

- a control group per rank (`suan.exec.cgroups`) with the rank's memory and pids limits: a job
  that forks without end or uses more memory than it asked for stops itself, not its
  neighbours; every process the rank starts stays in it, so recovery and cancel find them all;
- a sandbox per rank (the shim's `--sandbox`: its own pid and mount namespaces): the job sees
  only its own processes, and everything left in it ends with the rank;
- a tag in every rank's environment, `SUAN_LAUNCH=<scope>/<launch>` and `SUAN_PROCESS=<rank>`,
  which needs nothing from the machine: it finds a launch's processes after a crash where there
  are no groups (a process can shed its environment only by exec'ing itself anew).

`scope` is a digest of the server's home, so two servers on one machine never touch each
other's groups or processes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from suan.exec import JobLaunch, launch_name
from suan.exec.cgroups import CgroupTree, RankGroup, unavailable_reason
from suan.exec.files import SHIM

Mode = Literal["auto", "on", "off"]
TAG = "SUAN_LAUNCH"
PROCESS = "SUAN_PROCESS"


class IsolationError(RuntimeError):
    """A layer the settings require (`on`) cannot be had on this machine."""


@dataclass(frozen=True)
class Isolation:
    """The layers in use for one server's home; `off` holds why each missing one is off."""

    scope: str
    sandbox: bool = False
    tree: CgroupTree | None = None
    off: tuple[str, ...] = ()

    @classmethod
    def detect(
        cls, home: Path, sandbox: Mode = "auto", cgroups: Mode = "auto", parent: str = "suan"
    ) -> Isolation:
        """The layers `home`'s server can use: `auto` takes each where it works, `on` raises
        IsolationError where it does not, `off` leaves it out."""
        scope = scope_of(home)
        off: list[str] = []
        tree = None
        if cgroups != "off":
            reason = unavailable_reason(parent)
            if reason and cgroups == "on":
                raise IsolationError(f"control groups: {reason}")
            tree = None if reason else CgroupTree.detect(f"{parent}/{scope}")
            off += [f"control groups: {reason}"] if reason else []
        use_sandbox = False
        if sandbox != "off":
            reason = sandbox_unavailable()
            if reason and sandbox == "on":
                raise IsolationError(f"sandbox: {reason}")
            use_sandbox = not reason
            off += [f"sandbox: {reason}"] if reason else []
        return cls(scope, use_sandbox, tree, tuple(off))

    def describe(self) -> str:
        """One line for the server's log: what is on, and why the rest is off."""
        on = [name for name, used in (("control groups", self.tree), ("sandbox", self.sandbox))
              if used]
        text = "isolation: " + (", ".join(on) if on else "environment tags only")
        return text + "".join(f"; {reason}" for reason in self.off)

    def tag(self, job_id: str, attempt: int) -> str:
        return f"{self.scope}/{launch_name(job_id, attempt)}"

    def rank_group(self, job_id: str, attempt: int, rank: int) -> RankGroup | None:
        if self.tree is None:
            return None
        return self.tree.rank_group(launch_name(job_id, attempt), rank)

    def environment(self, job: JobLaunch, rank: int) -> dict[str, str]:
        """The tag variables of one rank."""
        return {TAG: self.tag(job.job_id, job.attempt), PROCESS: str(rank)}

    def shim_options(self, job: JobLaunch, rank: int, log_bytes: int) -> list[str]:
        """The shim's flags for one rank; makes the rank's group with its limits first."""
        options: list[str] = []
        group = self.rank_group(job.job_id, job.attempt, rank)
        if group is not None and self.tree is not None:
            self.tree.prepare_launch(launch_name(job.job_id, job.attempt))
            group.create(job.rank_memory_mib(rank) << 20, job.rank_pids(rank))
            for procs in group.join_files():
                options += ["--cgroup", procs]
        if self.sandbox:
            options.append("--sandbox")
        if job.run_as is not None:
            account = job.run_as
            options += ["--user", f"{account.name}:{account.uid}:{account.gid}"]
        if log_bytes > 0:
            options += ["--log-bytes", str(log_bytes)]
        return options

    def members(self, job_id: str, attempt: int, thorough: bool = True) -> dict[int, list[int]]:
        """rank -> the pids of every process of that rank of the attempt: those in its group,
        and (`thorough`, or where there are no groups) those carrying its tag, which includes a
        rank that a crash caught between its start and its joining the group."""
        found: dict[int, set[int]] = {}
        if self.tree is not None:
            for rank, group in self.tree.rank_groups(launch_name(job_id, attempt)).items():
                found.setdefault(rank, set()).update(group.pids())
        if thorough or self.tree is None:
            for rank, pids in tagged_processes(self.tag(job_id, attempt)).items():
                found.setdefault(rank, set()).update(pids)
        return {rank: sorted(pids) for rank, pids in sorted(found.items()) if pids}

    def sweep(
        self, job_id: str, attempt: int, rank: int | None = None, thorough: bool = False
    ) -> int:
        """SIGKILL every process left of one rank (all ranks: None); how many were signalled.
        Groups are emptied; the tags are searched too when `thorough` or without groups."""
        killed = 0
        if self.tree is not None:
            groups = self.tree.rank_groups(launch_name(job_id, attempt))
            chosen = groups.values() if rank is None else [groups[rank]] if rank in groups else []
            killed += sum(group.kill() for group in chosen)
            if not thorough:
                return killed
        for found_rank, pids in tagged_processes(self.tag(job_id, attempt)).items():
            if rank is None or found_rank == rank:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                        killed += 1
        return killed

    def oom_kills(self, job_id: str, attempt: int, rank: int) -> int:
        """How many of a rank's processes the kernel killed for memory."""
        group = self.rank_group(job_id, attempt, rank)
        return group.oom_kills() if group is not None else 0

    def release(self, job_id: str, attempt: int) -> None:
        """Remove the attempt's groups (those still holding a process stay)."""
        if self.tree is not None:
            self.tree.remove_launch(launch_name(job_id, attempt))


def scope_of(home: Path) -> str:
    """The scope of a server home's groups and tags: a digest of its resolved path."""
    return hashlib.sha256(str(Path(home).resolve()).encode()).hexdigest()[:12]


def tagged_processes(tag: str) -> dict[int, list[int]]:
    """rank -> pids of the processes whose environment carries `SUAN_LAUNCH=tag` (those this
    account may read)."""
    wanted = f"{TAG}={tag}".encode()
    found: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                variables = handle.read().split(b"\0")
        except OSError:
            continue
        if wanted not in variables:
            continue
        rank = next((v[len(PROCESS) + 1 :] for v in variables if v.startswith(b"SUAN_PROCESS=")),
                    b"")
        if rank.isdigit():
            found.setdefault(int(rank), []).append(int(entry.name))
    return {rank: sorted(pids) for rank, pids in found.items()}


@functools.cache
def sandbox_unavailable() -> str:
    """Why ranks cannot get their own pid and mount namespaces here, or "" when they can (tried
    once per process, by running the shim sandboxed)."""
    if os.geteuid() != 0:
        return "making namespaces for another account needs the server to run as root"
    with tempfile.TemporaryDirectory() as scratch:
        exit_file = Path(scratch) / "exit"
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-S", str(SHIM), "--sandbox", str(exit_file), "--",
                 "/bin/sh", "-c", "exit 0"],
                capture_output=True, text=True, timeout=30, check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot run the probe: {exc}"
    if done.returncode != 0:
        return f"this machine refuses new namespaces ({done.stderr.strip() or done.returncode})"
    return ""
