"""A simulated fleet for unit-testing the operate plans with PlanTester: deploy records,
r10k/g10k, the admin API and HAProxy's runtime API, answered from state the tests set."""
from __future__ import annotations

import json
import re

from puppetops.output.base import Outputter
from puppetops.testing.plans import PlanTester
from puppetops.transport.base import CommandOutput

OLD, NEW, OTHER = "a" * 40, "b" * 40, "c" * 40
MAIN, C1, C2, LB = ("main.example.com", "compiler1.example.com", "compiler2.example.com",
                    "lb.example.com")
SERVERS = (MAIN, C1, C2)
INVENTORY = {
    "vars": {"lb_name": LB},
    "groups": [
        {"name": "main", "targets": [MAIN]},
        {"name": "compilers", "targets": [{"name": C1, "alias": "compiler1"},
                                          {"name": C2, "alias": "compiler2"}]},
        {"name": "loadbalancers", "targets": [LB]},
    ],
}
FACTS = "os_id=debian\ninit=sysv\nlayout=debian\n"
SOCKET = re.compile(r"^echo '?(.*?)'? \| socat")


class Fleet:
    """What the servers and the LB answer; tests change its state between runs."""

    def __init__(self, heads=None):
        self.heads = heads or {"production": NEW}
        self.records = {s: {"production": OLD} for s in SERVERS}  # server → env → commit
        self.broken: dict[str, str] = {}  # server → deploy error
        self.deploys_to: dict[str, str] = {}  # server → commit its deploy reaches (else head)
        self.files: dict[tuple[str, str], str] = {}  # (host, path) → content
        self.admin = {C1: 0, C2: 0}  # HAProxy srv_admin_state flags
        self.failing_check: set[str] = set()  # members whose HAProxy health check fails
        self.sessions: dict[str, int] = {}  # member → current sessions (HAProxy scur)
        self.flushes: list[str] = []
        self.lb_commands: list[str] = []
        self.deploy_commands: list[tuple[str, str]] = []
        self.runs = 0  # deployer runs so far: each one finishes at a new time
        self.timeouts = {s: "unlimited" for s in SERVERS}  # environment_timeout served
        self.generated: list[tuple[str, str]] = []  # (server, env) of `puppet generate types`
        self.types_broken: dict[str, str] = {}  # server → generate types error
        self.stale: dict[str, set[str]] = {s: set() for s in SERVERS}  # env dirs, no branch
        self.purged: list[tuple[str, str]] = []  # (server, env) removed
        self.down: set[str] = set()  # servers whose Puppet Server does not answer
        self.finished: dict[tuple[str, str], str] = {}
        self.prefix = ""  # r10k's source prefix in r10k.yaml: environment = PREFIX_branch

    def record(self, server: str, env: str) -> str | None:
        commit = self.records[server].get(env)
        if not commit:
            return None
        return json.dumps({"name": env, "signature": commit, "deploy_success": True,
                           "finished_at": self.finished.get((server, env), "t0")})

    def respond(self, target: str, command: str, stdin: bytes | None) -> CommandOutput:
        out = self._answer(target, command, stdin)
        if isinstance(out, tuple):
            return CommandOutput(command, out[0], out[1], "" if out[0] == 0 else out[1], 0.0)
        return CommandOutput(command, 0, out or "", "", 0.0)

    def _answer(self, target, command, stdin):
        if "puppetops-facts-script" in command:
            return FACTS
        if command.startswith("git ls-remote --heads") or " for-each-ref " in command:
            return "".join(f"{c}\trefs/heads/{b}\n" for b, c in self.heads.items())
        if command.startswith("[ -x "):
            return ""
        if "---puppetops-file---" in command:  # steps.code.deploy.read_files
            paths = re.search(r"^for f in (.*?); do", command).group(1).split()
            return "".join(("-" if text is None else "+" + text) + "\n---puppetops-file---\n"
                           for text in (self._file(target, p.strip("'")) for p in paths))
        m = re.search(r"environments/(\w+)/\.(r10k|g10k)-deploy\.json", command)
        if m and command.startswith("if [ -e"):
            text = self.record(target, m.group(1))
            return text if text else (3, "")
        if " generate types " in command:
            return self._generate(target, command)
        if command.startswith("flock "):
            return self._deploy(target, command)
        if command.startswith("curl -sk") and "/status/v1/simple" in command:
            return "" if target in self.down else "running"
        if "/puppet/v3/environments" in command:
            return json.dumps({"search_paths": [], "environments": {
                env: {"settings": {"environment_timeout": self.timeouts[target]}}
                for env in self.records[target]}})
        if command.startswith("cd /etc/puppet/code/environments"):  # steps.code.purge: the listing
            dirs = [e for e, c in self.records[target].items() if c] + sorted(self.stale[target])
            return "".join(f"d {e}\n" for e in dirs)
        m = re.match(r"mkdir -p \S+ && for e in (.*?); do", command)
        if m:  # steps.code.purge: the removal
            for env in m.group(1).split():
                self.stale[target].discard(env)
                self.purged.append((target, env))
            return ""
        if "environment-cache" in command and "curl " in command:
            self.flushes.append(target)
            marker = re.search(r"&& mv -f \S+ (\S+)$", command)
            stamp = re.search(r"printf '%s\\n' ('[^']*'|\S+) >", command)
            if marker and stamp:
                self.files[(target, marker.group(1))] = stamp.group(1).strip("'") + "\n"
            return "204"
        if command.startswith("mkdir -p"):
            return ""
        if command.startswith("rm -f "):
            self.files.pop((target, command[len("rm -f "):]), None)
            return ""
        if command.startswith("umask 077 && cat >"):
            path = command.rsplit(" ", 1)[-1]
            self.files[(target, path)] = stdin.decode()
            return ""
        if command.startswith("if [ -e"):
            path = re.search(r"cat (\S+);", command).group(1)
            return self.files.get((target, path), (3, ""))
        if command.startswith("cd /var/lib/puppetops/lb-out"):
            return "".join(f"{p.rsplit('/', 1)[1]}:{text}" for (host, p), text in self.files.items()
                           if host == target and "/lb-out/" in p)
        m = SOCKET.match(command)
        if m:
            return self._haproxy(m.group(1))
        raise AssertionError(f"{target}: unexpected command {command!r}")

    def _file(self, target, path):
        m = re.search(r"environments/(\w+)/\.(r10k|g10k)-deploy\.json$", path)
        return self.record(target, m.group(1)) if m else self.files.get((target, path))

    def _deploy(self, target, command):
        self.deploy_commands.append((target, command))
        if target in self.broken:
            return 1, self.broken[target]
        how, name = re.search(r"(environment|-branch) (\w+)", command).groups()
        if how == "-branch":  # g10k takes the branch and prefixes it itself
            env, branch = (f"{self.prefix}_{name}" if self.prefix else name), name
        else:  # r10k takes the environment
            env, branch = name, (name[len(self.prefix) + 1:] if self.prefix else name)
        self.runs += 1
        self.records[target][env] = self.deploys_to.get(target, self.heads[branch])
        self.finished[(target, env)] = f"t{self.runs}"
        return ""

    def _generate(self, target, command):
        env = re.search(r"--environment (\w+)", command).group(1)
        self.generated.append((target, env))
        if target in self.types_broken:
            return 1, self.types_broken[target]
        stamp = re.search(r"printf '%s\\n' ('[^']*'|\S+) >", command).group(1).strip("'")
        self.files[(target, f"/var/lib/puppetops/resource-types/{env}")] = stamp + "\n"
        return ""

    def _haproxy(self, cmd):
        self.lb_commands.append(cmd)
        if cmd.startswith("show servers state"):
            running = {n: 0 if f & 1 or n in self.failing_check else 2 for n, f in self.admin.items()}
            rows = [f"3 puppet_compilers {i} {n} 10.0.0.{i} {running[n]} {f} 1 1 9 15 3 4 6 "
                    f"0 0 0 {n} 8140 - 0 0 - - 0" for i, (n, f) in enumerate(self.admin.items(), 1)]
            return ("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state "
                    "srv_uweight srv_iweight srv_time_since_last_change srv_check_status "
                    "srv_check_result srv_check_health srv_check_state srv_agent_state "
                    "bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
                    "srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
                    + "\n".join(rows) + "\n")
        if cmd == "show stat":
            return "# pxname,svname,scur,status,check_status\n" + "".join(
                f"puppet_compilers,{n},{self.sessions.get(n, 0)},"
                f"{'MAINT' if f & 1 else 'DRAIN' if f & 8 else 'DOWN' if n in self.failing_check else 'UP'},"
                f"{'L7STS' if n in self.failing_check else 'L7OK'}\n"
                for n, f in self.admin.items())
        m = re.match(r"set server puppet_compilers/(\S+) state (\w+)", cmd)
        self.admin[m.group(1)] = {"drain": 8, "maint": 1, "ready": 0}[m.group(2)]
        return ""


def planner(fleet: Fleet, *, noop: bool = False, inventory=INVENTORY, output=None) -> PlanTester:
    t = PlanTester(inventory, noop=noop, output=output)
    t.on(re.compile(".*"), respond=fleet.respond)
    return t


class Messages(Outputter):
    """The run's messages (warnings, what a plan left out), for assertions."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def message(self, text: str) -> None:
        self.texts.append(text)
