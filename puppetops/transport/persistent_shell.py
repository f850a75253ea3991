"""The persistent shell: one long-lived shell per SSH connection that runs framed commands.

Commands without stdin data run here (inventory option ``persistent-shell``, default true): the
target then forks a subshell per command instead of opening an SSH session (sshd fork, session
setup, ``$SHELL -c``, exec). ``SshConnection`` decides when to use it and falls back to exec
channels; this module only knows how to start the shell and frame one command at a time.
"""
from __future__ import annotations

import secrets
import shlex
import time

import paramiko

from .channel import output_event, wait


class ShellNotStarted(Exception):
    """The persistent shell ended before it began the command (the command did not run)."""


class PersistentShell:
    """One long-lived shell on the target that runs framed commands read from its stdin.

    **Which shell.** An exec channel runs ``$SHELL -c CMD``: sshd starts the login shell. The
    persistent shell is that same shell, started the same way, so commands see what they saw
    on an exec channel: the same shell (bash syntax and builtins for a bash login shell), the
    same environment (sshd's, ``SHLVL`` included), umask, home directory and start-up files
    (bash reads ``~/.bashrc`` for ssh commands in both cases, here once per connection). No
    terminal: non-interactive, no prompt, no profile, no output of its own. Its ``-c`` string
    (``_launch``) is the first command's frame, then:

    - **bash** (``$BASH_VERSION`` set): a loop in that very process, ``while IFS= read -r -d ''
      f; do eval "unset f;$f"; done``, over NUL-terminated frames. No second exec, so a
      connection's first command costs the target little more than an exec channel did (one
      subshell fork), and ``$0``, ``$-`` and ``$SHLVL`` are what ``bash -c`` shows. ``f`` is
      unset before each frame runs and ``BASH_EXECUTION_STRING`` once, so neither shows.
    - **any other shell**: it prints a tag and replaces itself with ``exec "$SHELL"``, a new
      instance of the login shell that reads newline-terminated frames as its script; the
      client sends the first frame when it sees the tag. (``$0`` is then the shell's path.)

    A login shell that cannot parse the ``-c`` string (fish, csh) or exec itself ends before
    the first command starts; the connection then falls back to exec channels
    (``SshConnection._exec_in_shell``).

    **Framing.** Each command is one frame (``_frame``), a single line here cut in two::

        printf pops%s Ts;printf pops%s Ts >&2;(eval 'CMD')</dev/null;
        printf pops%s%d\\\\n Te $?;printf pops%s Te >&2

    with a random token ``T`` (64 bits) per command: start marker ``popsTs`` and end marker
    ``popsTe`` on both streams, the exit status after the end marker on stdout. A marker never
    appears whole in the script text (``pops`` and ``T`` are separate arguments), so nothing
    that shows the script (a ``-c`` string, a trace) can fake it. The command runs in a
    subshell, so ``exit``, ``cd``, ``export``, ``set -e``, traps and even syntax errors (caught
    by ``eval``) end with it and never reach the next command; its stdin is /dev/null, so a
    command that reads stdin gets EOF at once instead of eating the following frames. What the
    command writes is exactly what lies between the markers on each stream (no newline added);
    anything before the start markers is stale output (start-up files, or a background job of
    an earlier command), anything after the end markers belongs to no command. The frame is
    short because the shell reads a piped script one byte per read(2).

    **Differences from an exec channel**, all inside the command's own view: ``$$`` is the
    persistent shell's PID (the same for every command of the connection; ``kill $$`` ends the
    shell, reported as exit status -1 with a note on stderr, and the next command gets a new
    one); the shell's own error messages count lines across the connection's commands
    (``bash: line 3: ...`` for ``bash: line 1: ...``; a syntax error is reported by ``eval``);
    ``BASH_EXECUTION_STRING`` is unset; a background job that keeps stdout open no longer holds
    the command's result back (an exec channel waits for it) and may write into a later
    command's output; and a command killed by a signal exits 128+N where an exec channel may
    report -1.
    """

    def __init__(self, transport: paramiko.Transport, open_timeout: float):
        self.chan = transport.open_session(timeout=open_timeout)
        self.launched = False
        self.terminator: bytes | None = None  # after each frame: b"\0" (bash loop) or b"\n"
        self.commands = 0  # commands started in this shell
        self.wake = output_event(self.chan)

    @staticmethod
    def _frame(command: str, token: str) -> str:
        """The one-line script that runs ``command`` framed by ``token``'s markers."""
        return (f"printf pops%s {token}s;printf pops%s {token}s >&2;"
                f"(eval {shlex.quote(command)})</dev/null;"
                f"printf pops%s%d\\\\n {token}e $?;printf pops%s {token}e >&2")

    @staticmethod
    def _launch(frame: str, token: str) -> str:
        """The channel's ``-c`` string: bash runs ``frame`` and then its loop; other shells
        print the ``popsTp`` tag and exec a new login shell that waits for ``frame``."""
        return ('if [ -n "${BASH_VERSION-}" ];then unset BASH_EXECUTION_STRING;'
                f"{frame}\n"
                "while IFS= read -r -d '' f;do eval \"unset f;$f\";done;"
                f'else printf pops%s {token}p;exec "${{SHELL:-/bin/sh}}";fi')

    def usable(self, transport: paramiko.Transport) -> bool:
        chan = self.chan
        return (self.terminator is not None and chan.get_transport() is transport
                and not (chan.closed or chan.eof_received or chan.exit_status_ready()))

    def close(self) -> None:
        self.chan.close()

    def run(self, command: str, deadline: float) -> tuple[bytes, bytes, int]:
        """Run one command; its stdout, stderr and exit status.

        Raises ``ShellNotStarted`` when the shell ended before starting the command,
        ``CommandTimeout`` (channel closed) at the deadline, ``EOFError`` when the connection
        is gone.
        """
        chan = self.chan
        token = secrets.token_hex(8)
        frame = self._frame(command, token)
        while chan.recv_ready():  # stale output: a background job of an earlier command
            chan.recv(65536)
        while chan.recv_stderr_ready():
            chan.recv_stderr(65536)
        if self.launched:
            self._send(frame.encode() + self.terminator)
        else:
            self._send(None, launch=self._launch(frame, token))
            self.launched = True
        start, end = f"pops{token}s".encode(), f"pops{token}e".encode()
        out, err = FramedStream(start, end), FramedStream(start, end)
        tag = f"pops{token}p".encode()
        counted = False
        while True:
            self.wake.clear()
            ended = chan.eof_received or chan.closed  # before draining: EOF follows the last data
            while chan.recv_ready():
                out.add(chan.recv(65536))
            while chan.recv_stderr_ready():
                err.add(chan.recv_stderr(65536))
            if self.terminator is None:  # a new shell: which kind is it?
                if tag in out.buf:
                    self.terminator = b"\n"  # an exec'd shell, reading its script: send the frame
                    self._send(frame.encode() + self.terminator)
                elif out.started:
                    self.terminator = b"\0"  # bash ran the frame itself, and loops
            if out.started and not counted:
                self.commands += 1
                counted = True
            status = out.status()
            if status is not None and err.ended():
                return out.body(), err.body(), status
            if ended:
                return self._ended(out, err, status, deadline)
            wait(self.wake, chan, deadline)

    def _send(self, data: bytes | None, launch: str | None = None) -> None:
        """Send a frame (or launch the shell with one). A channel that closed meanwhile means
        the shell ended before the command started (e.g. a login shell that execs $SHELL and
        that is not a shell): ``ShellNotStarted``, unless the whole connection is gone."""
        try:
            if launch is not None:
                self.chan.exec_command(launch)
            else:
                self.chan.sendall(data)
        except OSError:  # paramiko: "Socket is closed"
            if self.chan.get_transport().is_active():
                raise ShellNotStarted() from None
            raise

    def _ended(self, out: "FramedStream", err: "FramedStream", status: int | None,
               deadline: float) -> tuple[bytes, bytes, int]:
        """The shell's channel closed while a command was in it."""
        chan = self.chan
        if not chan.get_transport().is_active():
            raise EOFError("connection closed")
        if not out.started:
            raise ShellNotStarted()
        if status is not None:  # the command finished; only the shell's last printf is missing
            return out.body(), err.body(), status
        while not chan.exit_status_ready() and not chan.closed and time.monotonic() < deadline:
            chan.status_event.wait(min(deadline - time.monotonic(), 0.2))
        why = (f"exit status {chan.exit_status}" if chan.exit_status_ready() and chan.exit_status >= 0
               else "killed")
        note = (f"puppetops: the remote shell running this command ended ({why}) before the "
                "command did; the next command starts a new one\n").encode()
        chan.close()
        return out.body(), err.body() + note, -1


class FramedStream:
    """One stream of a framed command: the bytes between its start and end markers.

    Markers are looked for only in the bytes not searched yet (plus a marker's length of
    overlap), so megabytes of output cost one pass.
    """

    def __init__(self, start: bytes, end: bytes):
        self.start_marker, self.end_marker = start, end
        self.buf = bytearray()
        self.begin: int | None = None  # first byte of the command's output
        self.finish: int | None = None  # the end marker's position
        self._status: int | None = None
        self._searched = 0

    def add(self, data: bytes) -> None:
        self.buf += data
        if self.begin is None:
            at = self.buf.find(self.start_marker, max(0, self._searched - len(self.start_marker)))
            if at < 0:
                self._searched = len(self.buf)
                return
            self.begin = self._searched = at + len(self.start_marker)
        if self.finish is None:
            at = self.buf.find(self.end_marker, max(self.begin, self._searched - len(self.end_marker)))
            if at < 0:
                self._searched = len(self.buf)
                return
            self.finish = at

    @property
    def started(self) -> bool:
        return self.begin is not None

    def ended(self) -> bool:
        return self.finish is not None

    def status(self) -> int | None:
        """The exit status after the end marker (stdout), once its line is complete."""
        if self.finish is None or self._status is not None:
            return self._status
        after = self.finish + len(self.end_marker)
        newline = self.buf.find(b"\n", after, after + 4)  # 0-255
        if newline >= 0 and self.buf[after:newline].isdigit():
            self._status = int(self.buf[after:newline])
        return self._status

    def body(self) -> bytes:
        if self.begin is None:
            return b""
        return bytes(self.buf[self.begin:self.finish])
