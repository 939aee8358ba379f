"""Control groups for the ranks of one attempt: every process a rank starts stays in its rank's
group, so the group is the tag that finds them all (after a crash, for a cancel) and the place
where the rank's memory and process-count limits hold.

    tree = CgroupTree.detect()                  # None where this machine gives us no cgroups
    group = tree.rank_group("suan-j1-2", 0)     # /sys/fs/cgroup/.../suan/suan-j1-2/rank-0
    group.create(memory_bytes=8 << 30, pids=4096)
    group.join_files()                          # cgroup.procs files a process joins through
    group.pids(); group.kill(); group.oom_kills(); tree.remove_launch("suan-j1-2")

Both layouts are handled: the unified hierarchy (cgroup v2: one tree, `memory.max`,
`pids.max`, `memory.events`, `cgroup.kill`) and the legacy one (v1: a `memory` and a `pids`
tree, `memory.limit_in_bytes`, `pids.max`, `memory.oom_control`). Making groups needs write
access to the hierarchy (root, or a delegated subtree); `detect()` says why it cannot.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids")


@dataclass(frozen=True)
class RankGroup:
    """One rank's group: a directory per hierarchy (one on v2, memory and pids on v1)."""

    directories: tuple[Path, ...]
    unified: bool

    def create(self, memory_bytes: int = 0, pids: int = 0) -> None:
        """Make the group (and its parents) and set its limits; 0 leaves a limit unset."""
        for directory in self.directories:
            directory.mkdir(parents=True, exist_ok=True)
        if self.unified:
            directory = self.directories[0]
            if memory_bytes:
                _write(directory / "memory.max", memory_bytes)
                _write(directory / "memory.swap.max", 0, optional=True)
            if pids:
                _write(directory / "pids.max", pids)
            return
        memory, pids_dir = self.directories
        if memory_bytes:
            _write(memory / "memory.limit_in_bytes", memory_bytes)
            _write(memory / "memory.memsw.limit_in_bytes", memory_bytes, optional=True)
        if pids:
            _write(pids_dir / "pids.max", pids)

    def join_files(self) -> tuple[str, ...]:
        """The `cgroup.procs` files a process writes its pid into to join the group."""
        return tuple(str(directory / "cgroup.procs") for directory in self.directories)

    def exists(self) -> bool:
        return self.directories[0].is_dir()

    def pids(self) -> list[int]:
        """Every process in the group now (none when the group is gone)."""
        found: set[int] = set()
        for directory in self.directories:
            with contextlib.suppress(OSError):
                text = (directory / "cgroup.procs").read_text()
                found.update(int(item) for item in text.split())
        return sorted(found)

    def kill(self, rounds: int = 50) -> int:
        """SIGKILL every process of the group until it is empty (a process that forks while
        it is being killed is caught by a later round); returns how many were signalled."""
        if self.unified and _write(self.directories[0] / "cgroup.kill", 1, optional=True):
            deadline = time.monotonic() + 2.0
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.01)
            return 0
        signalled = 0
        for _ in range(rounds):
            members = self.pids()
            if not members:
                break
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    signalled += 1
            time.sleep(0.01)
        return signalled

    def oom_kills(self) -> int:
        """How many processes of the group the kernel killed for memory (0 when unknown)."""
        directory = self.directories[0]
        name = "memory.events" if self.unified else "memory.oom_control"
        try:
            text = (directory / name).read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> bool:
        """Remove the group's directories; False while processes are still in it."""
        removed = True
        for directory in self.directories:
            try:
                directory.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                removed = False
        return removed


@dataclass(frozen=True)
class CgroupTree:
    """Where Suan's groups live: `<hierarchy>/<parent>/<launch>/rank-<r>` in each hierarchy."""

    bases: tuple[Path, ...]
    unified: bool

    @classmethod
    def detect(cls, parent: str = "suan", root: Path = ROOT) -> CgroupTree | None:
        """The tree under `parent`, made ready; None where groups cannot be made here (see
        `unavailable_reason`)."""
        return None if unavailable_reason(parent, root) else cls._open(parent, root)

    @classmethod
    def _open(cls, parent: str, root: Path) -> CgroupTree:
        if (root / "cgroup.controllers").exists():
            directory = root
            _enable_controllers(directory)
            for part in Path(parent).parts:
                directory = directory / part
                directory.mkdir(exist_ok=True)
                _enable_controllers(directory)
            return cls((directory,), True)
        bases = tuple(root / controller / parent for controller in V1_CONTROLLERS)
        for base in bases:
            base.mkdir(parents=True, exist_ok=True)
        return cls(bases, False)

    def launch_dirs(self, launch: str) -> tuple[Path, ...]:
        return tuple(base / launch for base in self.bases)

    def rank_group(self, launch: str, rank: int) -> RankGroup:
        return RankGroup(tuple(d / f"rank-{rank}" for d in self.launch_dirs(launch)), self.unified)

    def rank_groups(self, launch: str) -> dict[int, RankGroup]:
        """The rank groups of a launch that exist now, by rank."""
        found: dict[int, RankGroup] = {}
        for child in sorted(self.launch_dirs(launch)[0].glob("rank-*")):
            with contextlib.suppress(ValueError):
                rank = int(child.name.removeprefix("rank-"))
                found[rank] = self.rank_group(launch, rank)
        return found

    def prepare_launch(self, launch: str) -> None:
        """Make the launch's directory; on v2 let its rank groups use memory and pids."""
        for base, directory in zip(self.bases, self.launch_dirs(launch), strict=True):
            base.mkdir(exist_ok=True)
            directory.mkdir(exist_ok=True)
        if self.unified:
            _enable_controllers(self.bases[0])
            _enable_controllers(self.launch_dirs(launch)[0])

    def remove_launch(self, launch: str) -> bool:
        """Remove a launch's groups once empty; False while a process is still in one."""
        removed = all(group.remove() for group in self.rank_groups(launch).values())
        for directory in self.launch_dirs(launch):
            with contextlib.suppress(FileNotFoundError):
                try:
                    directory.rmdir()
                except OSError:
                    removed = False
        for base in self.bases:  # the server's own directory goes when its last launch does
            with contextlib.suppress(OSError):
                base.rmdir()
        return removed


def unavailable_reason(parent: str = "suan", root: Path = ROOT) -> str:
    """Why per-rank groups cannot be made here, or "" when they can."""
    if (root / "cgroup.controllers").exists():
        controllers = (root / "cgroup.controllers").read_text().split()
        missing = [name for name in V1_CONTROLLERS if name not in controllers]
        if missing:
            return f"the cgroup v2 hierarchy lacks the {', '.join(missing)} controller"
        targets = [root]
    else:
        targets = [root / controller for controller in V1_CONTROLLERS]
        absent = [str(t) for t in targets if not (t / "cgroup.procs").exists()]
        if absent:
            return f"no cgroup hierarchy at {', '.join(absent)}"
    for target in targets:
        probe = target / parent
        if not (probe.is_dir() and os.access(probe, os.W_OK)) and not os.access(target, os.W_OK):
            return f"{target} is not writable by this account (run as root or delegate it)"
    return ""


def _enable_controllers(directory: Path) -> None:
    """Let the children of a v2 group use the memory and pids controllers."""
    control = directory / "cgroup.subtree_control"
    enabled = control.read_text().split() if control.exists() else []
    for name in V1_CONTROLLERS:
        if name not in enabled:
            _write(control, f"+{name}", optional=True)


def _write(path: Path, value: object, optional: bool = False) -> bool:
    """Write one value to a cgroup file; an optional file may be missing or refuse it."""
    try:
        path.write_text(f"{value}\n")
        return True
    except OSError:
        if optional:
            return False
        raise
