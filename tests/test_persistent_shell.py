"""The SSH transport's persistent shell (``config.ssh.persistent-shell``, default on), against a
real sshd on loopback: commands without stdin data run in one long-lived shell per connection,
each in its own subshell, with the same results an exec channel gives."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from contextlib import contextmanager

import pytest

from puppetops.errors import CommandTimeout, TransportError
from puppetops.steps import Daemon
from puppetops.testing.fixtures import require_root
from puppetops.transport import SshConnection

from helpers import fleet_run


@contextmanager
def connection(fleet, **extra):
    """The SshConnection of the fleet's first host, inside a Run (closed with it). Unlocked:
    a test may compare two connections to the same host, in two Runs at once."""
    with fleet_run(fleet, extra_config=extra or None, lock=False) as run:
        conn = run.pool.get(run.targets("fleet")[0])
        assert isinstance(conn, SshConnection)
        yield conn


@pytest.fixture
def fleet(sshd_fleet):
    return sshd_fleet(count=1)


@pytest.fixture
def conn(fleet):
    with connection(fleet) as conn:
        yield conn


def test_one_shell_serves_every_command_of_a_connection(conn):
    pids = {conn.run("echo $$").stdout for _ in range(3)}
    assert len(pids) == 1 and pids.pop().strip().isdigit()
    assert conn.shells_started == 1 and conn.handshakes == 1


def test_with_the_option_off_every_command_gets_its_own_session(fleet):
    with connection(fleet, **{"persistent-shell": False}) as conn:
        pids = {conn.run("echo $$").stdout for _ in range(3)}
        assert len(pids) == 3 and conn.shells_started == 0


def test_output_is_exact_on_both_streams(conn):
    out = conn.run("printf 'a\\nb'; printf 'e1\\ne2' >&2")
    assert (out.stdout, out.stderr, out.exit_code) == ("a\nb", "e1\ne2", 0)
    assert (conn.run("true").stdout, conn.run("true").stderr) == ("", "")
    assert conn.run("echo hi").stdout == "hi\n"
    assert conn.run("printf '\\n\\n'").stdout == "\n\n"
    binary = conn.run("printf '\\000\\377ok\\342\\202\\254'")  # NUL, a stray byte, then UTF-8 "€"
    assert binary.stdout == "\x00\ufffdok\u20ac"
    quoting = conn.run("""echo "it's" '"quoted"' \\$HOME; echo $((6*7))""")
    assert quoting.stdout == "it's \"quoted\" $HOME\n42\n"


def test_exit_statuses(conn):
    assert conn.run("exit 7").exit_code == 7
    assert conn.run("false").exit_code == 1
    assert conn.run("true; (exit 3)").exit_code == 3
    assert conn.run("exit 255").exit_code == 255
    missing = conn.run("no-such-command-here")
    assert missing.exit_code == 127 and "not found" in missing.stderr
    syntax = conn.run("if then fi (")
    assert syntax.exit_code != 0 and "syntax error" in syntax.stderr
    assert conn.run("echo still here").stdout == "still here\n"
    assert conn.shells_started == 1


def test_nothing_a_command_does_to_its_shell_reaches_the_next_command(conn):
    home = conn.run("pwd").stdout
    for command in ("cd /tmp", "export X=1", "Y=2", "set -e", "umask 077", "alias ls=false",
                    "f() { echo f; }", "trap 'echo trapped' EXIT", "exec 1>&-", "shopt -s nullglob",
                    "set -e; false; echo never"):
        conn.run(command)
    after = conn.run('pwd; echo "${X-unset} ${Y-unset}"; umask; type -t f ls; shopt nullglob')
    assert after.stdout == f"{home}unset unset\n0022\nfile\nnullglob       \toff\n"
    assert after.stderr == "" and after.exit_code == 1  # `type -t f` prints nothing, shopt: off
    assert conn.shells_started == 1


def test_a_command_reading_stdin_gets_eof_at_once(conn):
    start = time.monotonic()
    assert conn.run("cat").stdout == ""
    read = conn.run('read line; echo "[$line] $?"')
    assert read.stdout == "[] 1\n"
    assert conn.run("wc -c").stdout.strip() == "0"
    assert time.monotonic() - start < 5
    assert conn.run("echo next").stdout == "next\n"


def test_a_nul_byte_in_a_command_takes_an_exec_channel_as_before(conn):
    # it would split a frame (and hang until the timeout); sshd refuses such an exec request
    assert conn.run("echo $$").ok
    start = time.monotonic()
    with pytest.raises(TransportError):
        conn.run("echo a\0b", timeout=30)
    assert time.monotonic() - start < 5 and conn.run("echo fine").stdout == "fine\n"


def test_commands_with_stdin_data_still_get_it(conn, tmp_path):
    assert conn.run("cat", stdin=b"hello\x00world").stdout == "hello\x00world"
    path = tmp_path / "put.txt"
    conn.put("content\n", str(path), mode=0o640)
    assert path.read_text() == "content\n" and oct(path.stat().st_mode & 0o777) == "0o640"
    conn.put("", str(path))  # empty content: runs in the shell, `cat` reads /dev/null
    assert path.read_text() == ""
    assert conn.shells_started == 1


def test_megabytes_on_both_streams_interleaved(conn):
    size = 5 * 1024 * 1024
    out = conn.run(f"head -c {size} /dev/zero | tr '\\0' o & "
                   f"head -c {size} /dev/zero | tr '\\0' e >&2; wait; printf end")
    assert out.exit_code == 0
    assert len(out.stdout) == size + 3 and set(out.stdout[:-3]) == {"o"} and out.stdout[-3:] == "end"
    assert len(out.stderr) == size and set(out.stderr) == {"e"}
    assert conn.run("echo small").stdout == "small\n"


def test_many_commands_in_a_row(conn):
    for i in range(300):
        out = conn.run(f"echo {i}; echo {i} >&2; exit {i % 5}")
        assert (out.stdout, out.stderr, out.exit_code) == (f"{i}\n", f"{i}\n", i % 5)
    assert conn.shells_started == 1


@pytest.mark.slow
def test_a_timeout_discards_the_shell_and_the_next_command_gets_a_fresh_one(conn):
    first = conn.run("echo $$").stdout
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match="timed out after 1s"):
        conn.run("echo partial; sleep 30", timeout=1)
    assert time.monotonic() - start < 5
    after = conn.run("echo $$")
    assert after.ok and after.stdout != first and conn.shells_started == 2
    assert conn.run("echo fine").stdout == "fine\n"  # the old command's output never shows up
    assert conn.handshakes == 1


@pytest.mark.slow
def test_a_background_job_does_not_hold_the_result_or_leak_into_later_output(conn):
    start = time.monotonic()
    out = conn.run("(sleep 2; echo late; echo late >&2) & echo now")
    assert out.stdout == "now\n" and time.monotonic() - start < 1.5  # an exec channel: 2 s
    time.sleep(2.5)
    later = conn.run("echo next")
    assert (later.stdout, later.stderr) == ("next\n", "")


def test_a_shell_killed_while_idle_is_replaced(conn):
    pid = conn.run("echo $$").stdout.strip()
    assert conn.run(f"kill -9 {pid}", stdin=b"x").ok  # on an exec channel, not in the shell
    time.sleep(0.2)
    again = conn.run("echo $$")
    assert again.ok and again.stdout.strip() not in ("", pid)
    assert conn.shells_started == 2


def test_a_shell_killed_by_its_command_reports_it_and_the_next_command_works(conn):
    out = conn.run("kill -9 $$; echo after")
    assert out.exit_code == -1 and out.stdout == "after\n"
    assert "the remote shell running this command ended" in out.stderr
    assert conn.run("echo next").stdout == "next\n" and conn.shells_started == 2


def _sh_user(fleet, name="popsdash"):
    """A login user whose shell is /bin/sh (dash on Debian), not bash."""
    require_root("creates a local user with /bin/sh as login shell")
    fleet.add_user(name)
    subprocess.run(["usermod", "--shell", "/bin/sh", name], check=True, capture_output=True)
    return name


@pytest.mark.serial("the local user popsdash")
def test_a_non_bash_login_shell_keeps_one_shell_too(sshd_fleet):
    fleet = sshd_fleet(count=1)
    user = _sh_user(fleet)
    with connection(fleet, user=user) as conn:
        first = conn.run('echo $$ $0; [ -z "${BASH_VERSION-}" ] && echo not bash; printf x; exit 3')
        lines = first.stdout.split("\n")
        assert first.exit_code == 3 and lines[1:] == ["not bash", "x"]
        assert lines[0].split()[1] == "/bin/sh"  # exec'd by path; sshd's own exec says "sh"
        assert conn.run("echo $$").stdout.split()[0] == lines[0].split()[0]
        conn.run("cd /tmp; export X=1")
        assert conn.run('pwd; echo "${X-unset}"').stdout == f"/home/{user}\nunset\n"
        multi = conn.run("echo one\necho two >&2\nexit 5")
        assert (multi.stdout, multi.stderr, multi.exit_code) == ("one\n", "two\n", 5)
        assert conn.run("cat").stdout == "" and conn.run("if then").exit_code == 2
        assert conn.shells_started == 1


@pytest.mark.serial("the local user popsdash")
def test_a_login_shell_that_cannot_start_a_shell_falls_back_to_exec_channels(sshd_fleet):
    # A non-bash login shell execs $SHELL to read its frames; sshd's SetEnv overrides $SHELL
    # (not the shell sshd itself runs), and /bin/false ends before any command starts.
    fleet = sshd_fleet(count=1, set_env={"SHLVL": "1", "SHELL": "/bin/false"})
    user = _sh_user(fleet)
    with connection(fleet, user=user) as conn:
        outs = [conn.run("echo $$; exit 4") for _ in range(3)]
        assert all(o.exit_code == 4 for o in outs) and len({o.stdout for o in outs}) == 3
        assert conn.persistent_shell is False and conn.shells_started == 1


def test_commands_see_what_an_exec_channel_shows_them(fleet):
    probe = ('env | grep -v "^_=" | sort; echo "$0 $SHLVL $-"; umask; pwd; '
             '[[ -n x ]] && echo bash syntax; cd /nonexistent')
    with connection(fleet) as shell_conn, connection(fleet, **{"persistent-shell": False}) as exec_conn:
        in_shell, in_exec = shell_conn.run(probe), exec_conn.run(probe)
    assert shell_conn.shells_started == 1 and exec_conn.shells_started == 0

    def same(text):  # the client port differs between the two connections
        return [line for line in text.splitlines() if not line.startswith("SSH_C")]
    assert same(in_shell.stdout) == same(in_exec.stdout)
    assert in_shell.stdout.count("\n") == in_exec.stdout.count("\n")
    assert "\nbash 2 hBc\n" in in_shell.stdout and in_shell.stdout.endswith("bash syntax\n")
    assert in_shell.exit_code == in_exec.exit_code == 1
    assert in_shell.stderr.startswith("bash: line ") and in_exec.stderr.startswith("bash: line 1: cd:")


def test_two_threads_on_one_connection_both_get_their_own_output(conn):
    results: dict[int, str] = {}

    def work(i):
        results[i] = conn.run(f"sleep 0.3; echo {i}").stdout

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: f"{i}\n" for i in range(4)}
    assert conn.shells_started == 1


def test_run_as_through_passwordless_sudo_runs_in_the_shell(conn):
    if not shutil.which("sudo"):
        pytest.skip("sudo not installed")
    out = conn.run("id -un; pwd", run_as="nobody")
    assert out.ok and out.stdout.splitlines()[0] == "nobody"
    assert conn.shells_started == 1


@pytest.mark.slow
def test_a_daemon_is_seen_running_by_the_very_next_command(conn, tmp_path):
    """A supervised daemon's start returns only once its pid file is written: the check
    that follows within a millisecond on this shell must never see it missing (a compiler's
    Puppet Server was once reported "exited" that way)."""
    pidfile = tmp_path / "sleeper.pid"
    daemon = Daemon(command="sleep 600", pidfile=str(pidfile), log="/dev/null")
    try:
        for _ in range(20):
            assert conn.run(daemon.start_script()).exit_code == 0
            assert conn.run(daemon.running_test()).exit_code == 0
            assert conn.run(daemon.stop_script(grace=5)).exit_code == 0
    finally:
        conn.run(daemon.stop_script(grace=1))
