"""Programs a hostile or careless job runs, shared by the isolation and attack tests."""

FORK_BOMB = """
import os, time
made = refused = 0
for _ in range(300):
    try:
        if os.fork() == 0:
            time.sleep(20); os._exit(0)
        made += 1
    except OSError:
        refused += 1
print('MADE', made, 'REFUSED', refused, flush=True)
"""
"""Forks 300 times (children sleep); prints how many forks were made and refused."""

MEMORY_HOG = """
import time
blocks = []
for _ in range(64):
    blocks.append(bytearray(8 << 20))
    time.sleep(0.005)
print('SURVIVED', flush=True)
"""
"""Takes 512 MiB in 8 MiB steps; prints SURVIVED if nothing stopped it."""

LOG_FLOOD = "import sys\nfor _ in range(3000): sys.stdout.write('x' * 1000 + '\\n')\nprint('END')"
"""Writes 3 MB of output, then END."""


def forks_made(log: str) -> tuple[int, int]:
    """(made, refused) from FORK_BOMB's report in a log."""
    line = next(x for x in log.splitlines() if x.startswith("MADE"))
    _, made, _, refused = line.split()
    return int(made), int(refused)
