"""The rank shim keeps copying a rank's output after the rank exits while output is still
unread in the pipe, so a loaded machine loses no line the rank printed before it exited."""

import os
import threading
import time

from suan.exec import _shim


def late_copier(read_end: int, delay_s: float, into: list[bytes]) -> threading.Thread:
    """A copier that gets no CPU for `delay_s` (as on a loaded machine), then reads to EOF."""

    def copy() -> None:
        time.sleep(delay_s)
        while chunk := os.read(read_end, 1 << 16):
            into.append(chunk)

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def test_output_still_in_the_pipe_is_waited_for_past_the_first_half_second():
    read_end, write_end = os.pipe()
    copied: list[bytes] = []
    copier = _shim._Copier(late_copier(read_end, 1.5, copied), read_end)
    os.write(write_end, b"rank 1 step 3/3\n")
    os.close(write_end)  # the rank exited
    _shim._drain(copier)
    assert b"".join(copied) == b"rank 1 step 3/3\n"


def test_a_pipe_held_open_with_nothing_unread_is_left_after_the_first_half_second():
    read_end, write_end = os.pipe()  # write_end stays open: a background process holds it
    copier = _shim._Copier(late_copier(read_end, 0.0, []), read_end)
    started = time.monotonic()
    _shim._drain(copier)
    assert time.monotonic() - started < _shim.DRAIN_AFTER_EXIT_S + 1.0
    os.close(write_end)
