"""The parent of one rank: runs the command, waits, and writes its exit code to a file.

    python -I -S suan/exec/_shim.py [OPTIONS] EXIT_FILE -- COMMAND ARGS...

    --cgroup FILE      join a control group first (its cgroup.procs file; repeatable)
    --sandbox          run the command in its own pid and mount namespaces (needs root)
    --user NAME:UID:GID  become that account before anything of the job's runs
    --log-bytes N      pass at most N bytes of the command's output to the log, then drop it

It uses only the standard library and is run as a script, so it starts in milliseconds.
The shim leads the rank's process group, so a signal to the group reaches the command too. It
survives the server that launched it, and writes the exit code (128+N for signal N, as shells
do; 127 when the command cannot be started) so that a later server can read how the rank ended.
It ignores SIGTERM and SIGINT itself (with a handler, which exec resets) and waits for the
command, which gets them through the group.

Started as root with `--cgroup`, `--sandbox` and `--user`, it joins the rank's groups (so every
process the rank starts is found and limited there), then forks the rank's first process into a
new pid namespace: that process mounts its own /proc (so the job sees only its own processes),
becomes the account and starts the command; when it ends, the kernel ends everything left in
the namespace. The shim itself becomes the account before it writes anything.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
DRAIN_AFTER_EXIT_S = 0.5
DRAIN_MAX_S = 30.0
"""After the command exits the log copier gets DRAIN_AFTER_EXIT_S to reach the end of its
pipe (a background process may hold the pipe open for ever); while output the command wrote
is still unread in the pipe (a loaded machine had no time to copy it) it gets more, up to
DRAIN_MAX_S in all, so no line the command printed before exiting is lost."""


@dataclass
class Options:
    """What the command line asked for (see the module docstring)."""

    exit_file: str
    command: list[str]
    cgroups: list[str] = field(default_factory=list)
    sandbox: bool = False
    account: tuple[str, int, int] | None = None
    log_bytes: int = 0


def parse(argv: list[str]) -> Options | None:
    """The options of `argv`, or None when it does not follow the usage line."""
    cgroups: list[str] = []
    sandbox, account, log_bytes = False, None, 0
    at = 0
    while at < len(argv) and argv[at].startswith("--") and argv[at] != "--":
        flag = argv[at]
        if flag == "--sandbox":
            sandbox, at = True, at + 1
            continue
        if at + 1 >= len(argv):
            return None
        value = argv[at + 1]
        if flag == "--cgroup":
            cgroups.append(value)
        elif flag == "--user":
            name, uid, gid = value.rsplit(":", 2)
            account = (name, int(uid), int(gid))
        elif flag == "--log-bytes":
            log_bytes = int(value)
        else:
            return None
        at += 2
    rest = argv[at:]
    if len(rest) < 3 or rest[1] != "--":
        return None
    return Options(rest[0], rest[2:], cgroups, sandbox, account, log_bytes)


def _write_exit(path: str, code: int) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        handle.write(f"{code}\n")
    os.replace(temporary, path)


def become(account: tuple[str, int, int] | None) -> None:
    """Switch to `account` (no-op when None or already it)."""
    if account is None or os.getuid() == account[1]:
        return
    os.setgroups([])
    os.setgid(account[2])
    os.setuid(account[1])
    os.environ.update(USER=account[0], LOGNAME=account[0])


def _libc_call(name: str, *args: object) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{name}: {os.strerror(number)}")


def _own_proc() -> None:
    """In a new mount namespace: keep mounts private and show only this namespace's processes."""
    _libc_call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
    _libc_call("mount", b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)


def _ignore_stop_signals() -> None:
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: None)


def _start(command: list[str], stdout: int | None) -> subprocess.Popen | None:
    try:
        return subprocess.Popen(command, stdout=stdout, stderr=stdout)
    except OSError as exc:
        print(f"suan: cannot start {command[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        return None


def _wait(child: subprocess.Popen) -> int:
    code = child.wait()
    return 128 - code if code < 0 else code


def _init(options: Options, stdout: int | None) -> int:
    """The first process of a sandbox (pid 1 there): own /proc, the account, the command; it
    reaps orphans until the command ends, and its end ends the namespace."""
    try:
        _own_proc()
    except OSError as exc:
        print(f"suan: cannot make the sandbox: {exc}", file=sys.stderr, flush=True)
        return 127
    become(options.account)
    child = _start(options.command, stdout)
    if child is None:
        return 127
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 127
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            code = child.returncode
            return 128 - code if code < 0 else code


def _copy_capped(source: int, limit: int) -> None:
    """Copy `source` to stdout until EOF; after `limit` bytes say so once and drop the rest."""
    written = 0
    while chunk := os.read(source, 1 << 16):
        if written < limit:
            part = chunk[: limit - written]
            os.write(1, part)
            written += len(part)
            if written >= limit:
                note = f"\nsuan: log cap of {limit} bytes reached; further output is dropped\n"
                os.write(1, note.encode())


def _run_sandboxed(options: Options, write_end: int | None) -> int:
    """Fork the sandbox's first process and wait for it (the shim stays outside)."""
    _libc_call("unshare", CLONE_NEWNS | CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:  # pid 1 of the new namespace
        code = 127
        try:
            code = _init(options, write_end)
        finally:
            os._exit(code)
    become(options.account)
    if write_end is not None:
        os.close(write_end)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


@dataclass(frozen=True)
class _Copier:
    """The thread copying a rank's output to its log, and the pipe end it reads."""

    thread: threading.Thread
    read_end: int


def _log_pipe(limit: int) -> tuple[int | None, _Copier | None]:
    """A pipe whose reading end a thread copies to the log with a cap: (write end, thread);
    (None, None) without a cap (the command writes to the log itself)."""
    if limit <= 0:
        return None, None
    read_end, write_end = os.pipe()
    copier = threading.Thread(target=_copy_capped, args=(read_end, limit), daemon=True)
    copier.start()
    return write_end, _Copier(copier, read_end)


def _unread(fd: int) -> int:
    """Bytes waiting in the pipe `fd` (0 when it cannot be told)."""
    import fcntl
    import termios

    buffer = bytearray(4)
    try:
        fcntl.ioctl(fd, termios.FIONREAD, buffer)
    except OSError:
        return 0
    return int.from_bytes(buffer, sys.byteorder)


def _drain(copier: _Copier) -> None:
    """Let the copier finish (see DRAIN_MAX_S)."""
    copier.thread.join(DRAIN_AFTER_EXIT_S)
    waited = DRAIN_AFTER_EXIT_S
    while copier.thread.is_alive() and waited < DRAIN_MAX_S and _unread(copier.read_end) > 0:
        copier.thread.join(0.1)
        waited += 0.1


def run(options: Options) -> int:
    """Join the groups, start the command (sandboxed or not), copy its output, and return its
    exit code."""
    for procs in options.cgroups:
        with open(procs, "w") as handle:
            handle.write(f"{os.getpid()}\n")
    _ignore_stop_signals()
    write_end, copier = _log_pipe(options.log_bytes)
    if options.sandbox:
        code = _run_sandboxed(options, write_end)
    else:
        become(options.account)
        child = _start(options.command, write_end)
        if write_end is not None:
            os.close(write_end)
        code = 127 if child is None else _wait(child)
    if copier is not None:
        _drain(copier)
    return code


def main(argv: list[str]) -> int:
    """Parse `argv`, run the rank and record its exit code."""
    options = parse(argv)
    if options is None:
        print("usage: _shim.py [OPTIONS] EXIT_FILE -- COMMAND...", file=sys.stderr)
        return 2
    try:
        code = run(options)
    except OSError as exc:
        print(f"suan: cannot start the rank: {exc}", file=sys.stderr, flush=True)
        become(options.account)
        code = 127
    _write_exit(options.exit_file, code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
