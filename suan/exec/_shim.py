"""The parent of one rank: runs the command, waits, and writes its exit code to a file.

    python -I -S suan/exec/_shim.py EXIT_FILE -- COMMAND ARGS...

It uses only the standard library and is run as a script, so it starts in milliseconds.
The shim leads the rank's process group, so a signal to the group reaches the command too. It
survives the server that launched it, and writes the exit code (128+N for signal N, as shells
do; 127 when the command cannot be started) so that a later server can read how the rank ended.
It ignores SIGTERM and SIGINT itself (with a handler, which exec resets) and waits for the
command, which gets them through the group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def _write_exit(path: str, code: int) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        handle.write(f"{code}\n")
    os.replace(temporary, path)


def main(argv: list[str]) -> int:
    """Run `argv[2:]` (after `EXIT_FILE --`) and record its exit code."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: _shim.py EXIT_FILE -- COMMAND...", file=sys.stderr)
        return 2
    exit_file, command = argv[0], argv[2:]
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: None)
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"suan: cannot start {command[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        _write_exit(exit_file, 127)
        return 127
    while True:
        try:
            code = child.wait()
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            continue
    code = 128 - code if code < 0 else code
    _write_exit(exit_file, code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
