"""Reading a paramiko channel in the calling thread, woken by paramiko's own buffers.

Output is read by the thread that runs the command rather than by a thread per stream (as
Fabric's runner does), and without ``select`` on ``Channel.fileno()`` pipes, which stay readable
after EOF (docs/benchmarks.md, "What changed in the transport", 3).
"""
from __future__ import annotations

import threading
import time

import paramiko

from ..errors import CommandTimeout

# How long one wait for output may block before the loop looks again (a safety net only: the
# buffers wake the reader as soon as data, EOF or the exit status arrives).
WAKE_CHECK_SECONDS = 1.0


class _BufferWake:
    """What paramiko's buffers signal: ``set`` wakes the reader, ``clear`` is ignored.

    ``Channel.fileno`` would make an OS pipe per command for ``select``, and after EOF that pipe
    stays readable, so a select loop spins until the exit status arrives. Here the reader clears
    the one shared event itself, before draining both buffers, so no wake-up is lost.
    """

    def __init__(self, event: threading.Event):
        self.set = event.set

    def clear(self) -> None:
        """A buffer that was just drained must not clear the other buffer's wake-up."""


def output_event(chan: paramiko.Channel) -> threading.Event:
    """One event that ``chan``'s stdout and stderr buffers both set when data or EOF arrives;
    the reader clears it before draining both."""
    event = threading.Event()
    chan.in_buffer.set_event(_BufferWake(event))
    chan.in_stderr_buffer.set_event(_BufferWake(event))
    return event


def read_until_exit(chan: paramiko.Channel, deadline: float) -> tuple[bytes, bytes]:
    """Drain stdout and stderr until the channel's EOF, then wait for the exit status."""
    wake = output_event(chan)
    out, err = bytearray(), bytearray()
    while True:
        wake.clear()
        done = chan.eof_received or chan.closed  # before draining: EOF follows the last data
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if done:
            break
        wait(wake, chan, deadline)
    while not chan.exit_status_ready():  # the exit status comes right after EOF (or a close)
        wait(chan.status_event, chan, deadline)
    return bytes(out), bytes(err)


def wait(event: threading.Event, chan: paramiko.Channel, deadline: float) -> None:
    """Wait for ``event`` until ``deadline``; past it, close ``chan`` and raise ``CommandTimeout``."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        chan.close()
        raise CommandTimeout()
    event.wait(min(remaining, WAKE_CHECK_SECONDS))
