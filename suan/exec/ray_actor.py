"""The Ray actor that holds one rank: it starts `suan/exec/_rank.py` as a subprocess and waits.

The Ray adapter (`suan.exec.ray_adapter`) creates one detached actor per rank, named
`<launch name>-r<rank>`, in the rank's placement-group bundle, and calls `start` once. The
actor then:

- builds the rank's environment from its own, less every `RAY_*` variable (a rank never learns
  the GCS address or how to reach Ray), plus the node-name and local-index variables from which
  `_rank.py` finds its rank; when the bundle holds Ray `GPU`s, the visible-devices variable is
  set to the ids Ray gave the actor, which are written to the rank's devices file;
- starts `python -I -S _rank.py LAUNCH_JSON` in a new session (so the shim that `_rank.py`
  becomes leads the rank's process group) with the parent-death signal set to SIGKILL, from a
  thread that lives as long as the child (Linux sends that signal when the creating thread
  ends), so a killed actor takes the shim down with it;
- gives the child default signal dispositions and an empty signal mask (a Ray worker ignores
  SIGCHLD, SIGPIPE and SIGQUIT and blocks SIGINT, which exec would pass on), and sets SIGCHLD
  back to default in the actor itself so that it learns the child's real exit status;
- writes the pid file (`pid start_ticks node devices`, as `suan.exec.files` says);
- after the child ends, SIGKILLs what is left in its process group (as the local executor
  does); `reap` does the same for the group of a rank whose actor died;
- answers `state` (pid, start ticks, return code once the child ended) and `signal` (to the
  rank's process group).

Only the standard library is imported at module level: the adapter ships this class to the
workers by value, so nodes need Ray but not Suan installed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import threading
from typing import Any

PR_SET_PDEATHSIG = 1
SIG_SETMASK = 2
SIGKILL, SIGSTOP, SIGCHLD = 9, 19, 17


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.signal.restype = ctypes.c_void_p
    libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
    return libc


def default_sigchld() -> None:
    """SIGCHLD back to its default in this process: Ray workers ignore it, and a process that
    ignores SIGCHLD cannot learn how its children ended (wait fails with ECHILD, which
    Python's subprocess reports as exit code 0)."""
    _libc().signal(SIGCHLD, None)


def _prepare_child() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Undo what the Ray worker set (ignored signals and a blocked SIGINT survive exec), and
    ask for SIGKILL when the actor's thread that started the child ends."""
    with contextlib.suppress(Exception):
        libc = _libc()
        for number in range(1, 32):
            if number not in (SIGKILL, SIGSTOP):
                libc.signal(number, None)
        empty = ctypes.create_string_buffer(128)
        libc.sigprocmask(SIG_SETMASK, empty, None)
        libc.prctl(PR_SET_PDEATHSIG, SIGKILL)


def start_ticks(pid: int) -> int:
    """The start time of `pid` in clock ticks after boot (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def rank_env(base: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """`base` less every RAY_* variable, with `extra` on top."""
    env = {key: value for key, value in base.items() if not key.startswith("RAY_")}
    env.update(extra)
    return env


class RankActor:
    """One rank's holder; see the module docstring. Created with max_concurrency > 1."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._child: subprocess.Popen | None = None
        self._returncode: int | None = None
        self._ticks = 0
        self._error = ""
        self._devices_given: list[int] | None = None

    def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Start the rank once. `spec`: argv, node, local, pid_file, devices_file, visible_var,
        gpu (bool: report Ray's GPU ids). Returns pid, ticks and the devices given."""
        with self._lock:
            if self._child is None and not self._error:
                devices = self._devices(spec)
                extra = {spec["node_var"]: spec["node"], spec["local_var"]: str(spec["local"])}
                if devices is not None and spec.get("visible_var"):
                    extra[spec["visible_var"]] = ",".join(str(d) for d in devices)
                    _write(spec["devices_file"], ",".join(str(d) for d in devices) + "\n")
                env = rank_env(dict(os.environ), extra)
                default_sigchld()
                threading.Thread(target=self._run, args=(spec["argv"], env), daemon=True).start()
                self._started.wait(30)
                if self._child is not None:
                    shown = devices if devices is not None else spec.get("placed", [])
                    text = ",".join(str(d) for d in shown)
                    _write(
                        spec["pid_file"], f"{self._child.pid} {self._ticks} {spec['node']} {text}\n"
                    )
                self._devices_given = devices
            if self._error:
                raise RuntimeError(self._error)
            assert self._child is not None
            return {
                "pid": self._child.pid,
                "ticks": self._ticks,
                "devices": self._devices_given,
            }

    @staticmethod
    def _devices(spec: dict[str, Any]) -> list[int] | None:
        if not spec.get("gpu"):
            return None
        import ray  # the worker has Ray; imported here so the module stays stdlib-only

        return [int(d) for d in ray.get_gpu_ids()]

    def _run(self, argv: list[str], env: dict[str, str]) -> None:
        try:
            child = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_prepare_child,
            )
        except OSError as exc:
            self._error = f"cannot start {argv[0]!r}: {exc}"
            self._started.set()
            return
        self._child = child
        self._ticks = start_ticks(child.pid)
        self._started.set()
        code = child.wait()
        reap(child.pid)  # whatever the rank left in its process group
        self._returncode = code

    def state(self) -> dict[str, Any]:
        """pid, ticks and the child's return code (None while it runs; -N for signal N)."""
        child = self._child
        return {
            "pid": child.pid if child else 0,
            "ticks": self._ticks,
            "returncode": self._returncode if child else -1,
        }

    def signal(self, number: int) -> bool:
        """Send signal `number` to the rank's process group; False when it has ended."""
        child = self._child
        if child is None or self._returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, number)
        return True


def reap(pgid: int) -> bool:
    """SIGKILL to process group `pgid` (a rank's, led by its shim); False when it is empty.

    The adapter runs this as a task in the bundle of a rank whose actor died: the actor's
    death kills the shim (parent-death signal) but not the program under it."""
    try:
        os.killpg(pgid, SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _write(path: str, text: str) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)
