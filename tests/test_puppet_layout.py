"""The Puppet knowledge behind the stand-up plans, without hosts: both package layouts (the
AIO paths are only exercised here — the lab runs Debian's), the config-file edits, the
certificate rules (what may be signed), and the load balancer configs."""
from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess

import pytest

from puppetops import Inventory, Run
from puppetops.errors import UsageError
from puppetops.result import summary
from puppetops.puppet import LAYOUTS, conf, csr, names, node
from puppetops.result import CHANGED, FAILED, UNCHANGED, Result, ResultSet
from puppetops.step import StepContext
from puppetops.steps import puppetserver_control
from puppetops.steps.ca import ca_api, certs
from puppetops.steps.ca.enrolment import RequestsSigned
from puppetops.steps.code.r10k import AuthorizedDeployKeys, KnownHost, SshIdentity, r10k_yaml
from puppetops.steps.lb import backends, haproxy, nginx
from puppetops.steps.lb.pool import Member
from puppetops.steps.puppet_agent import run_succeeded
from puppetops.target import Target
from puppetops.transport.base import CommandOutput
from puppetops.testing.plans import PlanTester

DEBIAN, AIO = LAYOUTS["debian"], LAYOUTS["aio"]
A = "agent1.example.com"


# -- layouts --------------------------------------------------------------------------------

def test_aio_paths_are_the_puppetlabs_ones():
    assert AIO.puppet == "/opt/puppetlabs/bin/puppet"
    assert AIO.puppetserver == "/opt/puppetlabs/bin/puppetserver"
    assert AIO.puppet_conf == "/etc/puppetlabs/puppet/puppet.conf"
    assert AIO.ssldir == "/etc/puppetlabs/puppet/ssl"
    assert AIO.cadir == "/etc/puppetlabs/puppetserver/ca"
    assert AIO.ca_cfg == "/etc/puppetlabs/puppetserver/services.d/ca.cfg"
    assert AIO.ca_conf == "/etc/puppetlabs/puppetserver/conf.d/ca.conf"
    assert AIO.auth_conf == "/etc/puppetlabs/puppetserver/conf.d/auth.conf"
    assert AIO.environmentpath == "/etc/puppetlabs/code/environments"
    assert AIO.r10k == "/opt/puppetlabs/puppet/bin/r10k" and AIO.r10k_gem
    assert AIO.last_run_summary == "/opt/puppetlabs/puppet/cache/public/last_run_summary.yaml"
    assert AIO.server_restart_file == "/var/run/puppetlabs/puppetserver/restart"


def test_debian_paths_are_the_packages_ones():
    assert DEBIAN.puppet_conf == "/etc/puppet/puppet.conf"
    assert DEBIAN.ssldir == "/var/lib/puppet/ssl"
    assert DEBIAN.ca_cfg == "/etc/puppet/puppetserver/services.d/ca.cfg"
    assert DEBIAN.environmentpath == "/etc/puppet/code/environments"
    assert DEBIAN.r10k_config == "/etc/puppetlabs/r10k/r10k.yaml"  # lab P8: r10k reads this one
    assert DEBIAN.r10k_gem is None
    assert DEBIAN.last_run_summary == "/var/cache/puppet/public/last_run_summary.yaml"


@pytest.mark.parametrize("layout", [DEBIAN, AIO], ids=["debian", "aio"])
def test_server_daemon_runs_the_units_jvm_as_puppet_with_a_restart_file(layout):
    daemon = puppetserver_control.daemon(layout)
    script = shlex.split(daemon.command)[-1]
    assert f". {layout.server_defaults};" in script  # JAVA_ARGS/TK_ARGS like EnvironmentFile=
    assert "umask 027" in script and "setpriv --reuid=puppet --regid=puppet" in script
    assert f"--config {layout.server_confd}" in script
    assert f"--bootstrap-config {layout.server_bootstrap_config}" in script
    assert f"--restart-file {layout.server_restart_file}" in script
    assert layout.server_jar in script
    assert daemon.pidfile == f"{layout.server_rundir}/puppetserver.pid"
    start = daemon.start_script()
    assert "; setsid " in start and "nohup" not in start  # lab P3
    assert "</dev/null" in start and daemon.log.startswith(layout.server_logdir)


def test_aio_server_starts_trapperkeeper_from_the_release_jar():
    script = shlex.split(puppetserver_control.daemon(AIO).command)[-1]
    assert ("-cp /opt/puppetlabs/server/apps/puppetserver/puppet-server-release.jar clojure.main "
            "-m puppetlabs.trapperkeeper.main") in script
    assert "/opt/puppetlabs/server/apps/puppetserver/config/services.d/" in script


def test_layout_comes_from_facts_or_the_var():
    assert node.layout(Target("x", facts={"puppet_layout": "aio"})) is AIO
    assert node.layout(Target("x", facts={})) is DEBIAN
    fresh = Target("x", vars={"puppet_layout": "aio"}, facts={"puppet_layout": None})
    assert node.layout(fresh) is AIO
    with pytest.raises(UsageError, match="puppet_layout"):
        node.layout(Target("x", vars={"puppet_layout": "rpm"}))


def test_r10k_yaml_deploys_into_each_layouts_environmentpath():
    text = r10k_yaml("root@main.example.com:/srv/puppet/control.git", AIO.environmentpath)
    assert 'basedir: "/etc/puppetlabs/code/environments"' in text
    assert 'remote: "root@main.example.com:/srv/puppet/control.git"' in text
    assert "provider: shellgit" in text


# -- names ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["--all", "*", "a b", "Agent1.example.com", "a;rm -rf /",
                                 "a,b", "-x", "a..b", "", "a_b.example.com", "x" * 254])
def test_certnames_are_strict(bad):
    with pytest.raises(UsageError):
        names.certname(bad)


def test_certnames_and_environments_that_pass():
    assert names.certname("compiler-1.puppetops.test") == "compiler-1.puppetops.test"
    assert names.environment("feature_x1") == "feature_x1"
    for bad in ("feature-x", "a/b", "", "prod;ls"):
        with pytest.raises(UsageError):
            names.environment(bad)


# -- config edits ---------------------------------------------------------------------------

PUPPET_CONF = ("# site comment\n[main]\nserver = old\nfoo = 1\nserver = dup\n\n"
               "[agent]\nserver_list = a:8140\n")


def test_puppet_conf_sets_removes_and_keeps_the_rest():
    out = conf.puppet_conf(PUPPET_CONF, {"main": {"server": "main.example.com", "ca_server": "m"},
                                         "agent": {"server_list": None},
                                         "server": {"autosign": "false"}})
    assert out == ("# site comment\n[main]\nserver = main.example.com\nfoo = 1\nca_server = m\n\n"
                   "[agent]\n\n[server]\nautosign = false\n")
    assert conf.puppet_conf(out, {"main": {"server": "main.example.com"}}) == out


CA_CFG = ("# To enable the CA service, leave the following line uncommented\n"
          f"{conf.CA_SERVICE}\n"
          f"#{conf.CA_DISABLED}\n"
          "puppetlabs.trapperkeeper.services.watcher.filesystem-watch-service/"
          "filesystem-watch-service\n")


def test_ca_cfg_disables_the_ca_and_keeps_the_watcher():
    off = conf.ca_cfg(CA_CFG, enabled=False)
    assert f"#{conf.CA_SERVICE}" in off.splitlines() and conf.CA_DISABLED in off.splitlines()
    assert "filesystem-watch-service/filesystem-watch-service" in off
    assert conf.ca_cfg(off, enabled=False) == off
    assert conf.ca_cfg(off, enabled=True) == CA_CFG


def test_ca_conf_allows_alt_names_inside_the_block():
    text = "certificate-authority: {\n    # allow-subject-alt-names: false\n}\n"
    out = conf.hocon_settings(text, "certificate-authority", {"allow-subject-alt-names": "true"})
    assert out == ("certificate-authority: {\n    allow-subject-alt-names: true\n"
                   "    # allow-subject-alt-names: false\n}\n")
    assert conf.hocon_settings(out, "certificate-authority",
                               {"allow-subject-alt-names": "true"}) == out


def test_auth_rule_is_inserted_once_and_replaced_by_name():
    text = ('authorization: {\n    version: 1\n    rules: [\n        {\n'
            '            name: "x"\n        }\n    ]\n}\n')
    rule = conf.auth_rule("puppetops env", "/puppet-admin-api/v1/environment-cache", ["delete"],
                          ["a.example.com", "main.example.com"])
    once = conf.auth_conf(text, "env", rule)
    assert conf.auth_conf(once, "env", rule) == once
    assert 'allow: ["a.example.com", "main.example.com"]' in once and "*" not in once
    assert once.index("puppetops env") < once.index('name: "x"')  # first in the list
    smaller = conf.auth_conf(once, "env", conf.auth_rule(
        "puppetops env", "/puppet-admin-api/v1/environment-cache", ["delete"], ["a.example.com"]))
    assert smaller.count("BEGIN puppetops env") == 1 and '"main.example.com"' not in smaller


def test_java_args_replace_the_heap_and_keep_other_flags():
    text = 'X=1\nJAVA_ARGS="-Xms1g -Xmx1g -Djruby.logger.class=Foo"\n'
    out = conf.server_defaults(text, "-Xms512m -Xmx512m")
    assert out == 'X=1\nJAVA_ARGS="-Xms512m -Xmx512m -Djruby.logger.class=Foo"\n'
    assert conf.server_defaults(out, "-Xms512m -Xmx512m") == out
    assert conf.merge_java_args("-XX:+UseG1GC -Dk=a", "-XX:-UseG1GC -Dk=b -Xss2m") == \
        "-XX:-UseG1GC -Dk=b -Xss2m"


# -- certificates ---------------------------------------------------------------------------

FP = "9D:DA:AF:6B:25:14"
OTHER = "C3:D6:5D:31:B1:A6"


def status(name: str, fingerprint: str, state: str = "requested") -> dict:
    """A certificate_status object as the CA's API returns it."""
    return {"name": name, "state": state, "dns_alt_names": [], "subject_alt_names": [],
            "fingerprint": fingerprint, "fingerprints": {"SHA256": fingerprint}}


def answers(*replies: tuple[int, object]) -> str:
    """What one curl run prints for several requests (body, then the status line)."""
    return "".join(f"{body if isinstance(body, str) else json.dumps(body)}\n"
                   f"@@puppetops-http {code}\n" for code, body in replies)


def test_fingerprints_are_compared_in_one_notation():
    assert certs.normalize("(SHA256) 9d:da:af") == "9D:DA:AF"
    assert certs.normalize("sha256 Fingerprint=9D:DA:AF") == "9D:DA:AF"
    assert certs.normalize("9ddaaf6b") == "9D:DA:AF:6B"  # openssl dgst -r, first word


def test_ca_status_and_node_state_parsing():
    assert certs.CaEntry.from_status(status(A, FP)) == certs.CaEntry(A, "requested", FP,
                                                                     frozenset())
    assert ca_api.parse_responses(answers((200, "{}"), (404, "Not found."))) == [
        (200, "{}"), (404, "Not found.")]
    state = certs.parse_node_state("sha256 Fingerprint=04:8F\nX509v3 Subject Alternative Name: \n"
                                   "    DNS:c1.example.com, DNS:lb.example.com\ncsr=yes\n")
    assert state == certs.NodeCert("04:8F", frozenset({"DNS:c1.example.com", "DNS:lb.example.com"}),
                                   True)
    assert certs.parse_node_state("") == certs.NodeCert(None, frozenset(), False)


def test_only_the_nodes_own_request_with_the_exact_alt_names_is_signed():
    agent = certs.Identity(A)
    requested = certs.CaEntry(A, "requested", FP, frozenset())
    assert certs.review(agent, FP.lower(), requested).sign
    refused = certs.review(agent, OTHER, requested)
    assert not refused.sign and FP in refused.refusal and OTHER in refused.refusal
    compiler = certs.Identity("c1.example.com", ("c1.example.com", "lb.example.com"))
    extra = certs.CaEntry("c1.example.com", "requested", FP,
                          frozenset({"DNS:c1.example.com", "DNS:lb.example.com", "DNS:puppet"}))
    assert "DNS:puppet" in certs.review(compiler, FP, extra).refusal
    missing = certs.CaEntry("c1.example.com", "requested", FP, frozenset({"DNS:c1.example.com"}))
    assert not certs.review(compiler, FP, missing).sign
    assert certs.review(agent, None, requested).refusal
    assert certs.review(agent, FP, None).refusal
    assert not certs.review(agent, FP, certs.CaEntry(A, "signed", FP, frozenset())).refusal


def test_a_correct_certificate_is_kept_and_a_wrong_one_reissued():
    compiler = certs.Identity("c1.example.com", ("c1.example.com", "lb.example.com"))
    good = certs.NodeCert("AA", compiler.cert_alt_names, False)
    signed = certs.CaEntry("c1.example.com", "signed", "AA", compiler.cert_alt_names)
    assert certs.decide(good, signed, compiler).kind == certs.KEEP
    wrong = certs.NodeCert("AA", frozenset({"DNS:c1.example.com"}), False)
    action = certs.decide(wrong, signed, compiler)
    assert action.kind == certs.REISSUE and action.clean_ca and "lb.example.com" in action.reason
    assert certs.decide(good, None, compiler).kind == certs.REISSUE
    lost = certs.NodeCert(None, frozenset(), False)
    assert certs.decide(lost, signed, compiler) == certs.CertAction(
        certs.REQUEST, certs.decide(lost, signed, compiler).reason, True)
    pending = certs.NodeCert(None, frozenset(), True)
    assert certs.decide(pending, signed, compiler).kind == certs.FETCH
    stranger = certs.CaEntry("c1.example.com", "requested", "BB", frozenset())
    assert "BB" in certs.decide(lost, stranger, compiler).reason


def _ca_run(tester: PlanTester, wanted):
    return tester.run.each("sign", lambda ctx: certs.sign(ctx, DEBIAN, wanted), "main.example.com")


def test_ca_calls_name_each_certname_and_never_all():
    tester = PlanTester({"targets": ["main.example.com"]})
    tester.on(re.compile(r"curl .* -X GET"), stdout=answers((404, "Not found")))
    _ca_run(tester, {A: (certs.Identity(A), FP)})
    call, = tester.commands("main.example.com")
    assert f"https://main.example.com:8140/puppet-ca/v1/certificate_status/{A}" in call
    assert "--resolve main.example.com:8140:127.0.0.1" in call
    assert "--cert /var/lib/puppet/ssl/certs/main.example.com.pem" in call
    for bad in (["--all"], ["a.example.com/../x"], ["*"]):
        with pytest.raises(UsageError):
            ca_api.statuses(None, DEBIAN, "main.example.com", bad)


def test_signing_happens_in_one_call_and_skips_a_foreign_request():
    a2 = "agent2.example.com"
    tester = PlanTester({"targets": ["main.example.com"]})
    tester.on(re.compile(r"curl .* -X GET"),
              stdout=answers((200, status(a2, OTHER)), (200, status(A, FP))))
    tester.on(re.compile(r"curl .* -X PUT"), stdout=answers((204, "")))
    wanted = {A: (certs.Identity(A), FP), a2: (certs.Identity(a2), FP)}  # a2's CSR is not a2's
    verdicts = _ca_run(tester, wanted)[0].value
    assert verdicts[A].sign and not verdicts[a2].sign and OTHER in verdicts[a2].refusal
    puts = [c for c in tester.commands("main.example.com") if " -X PUT " in c]
    assert len(puts) == 1 and f"certificate_status/{A}" in puts[0] and a2 not in puts[0]
    assert '"desired_state": "signed"' in puts[0]


def test_many_names_are_reviewed_from_one_listing():
    many = [f"agent{i}.example.com" for i in range(ca_api.BULK + 1)]
    tester = PlanTester({"targets": ["main.example.com"]})
    tester.on(re.compile(r"curl .* -X GET"), stdout=answers(
        (200, [status(n, FP) for n in many] + [status("other.example.com", OTHER)])))
    tester.on(re.compile(r"curl .* -X PUT"), stdout=answers(*[(204, "")] * len(many)))
    verdicts = _ca_run(tester, {n: (certs.Identity(n), FP) for n in many})[0].value
    assert all(v.sign for v in verdicts.values()) and "other.example.com" not in verdicts
    listing, signing = tester.commands("main.example.com")
    assert listing.endswith("/puppet-ca/v1/certificate_statuses/any_key")
    assert signing.count("certificate_status/agent") == len(many)


def test_a_refused_signature_is_reported_with_the_cas_answer():
    tester = PlanTester({"targets": ["main.example.com"]})
    tester.on(re.compile(r"curl .* -X GET"), stdout=answers((200, status(A, FP))))
    tester.on(re.compile(r"curl .* -X PUT"), stdout=answers((409, "CSR has been revoked")))
    verdicts = _ca_run(tester, {A: (certs.Identity(A), FP)})[0].value
    assert not verdicts[A].sign and "409 CSR has been revoked" in verdicts[A].refusal


def _request(tmp_path, name: str) -> str:
    """A real certificate request for ``name``, PEM."""
    key, req = tmp_path / f"{name}.key", tmp_path / f"{name}.csr"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-out", str(key)], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", str(key), "-subj", f"/CN={name}",
                    "-out", str(req)], check=True, capture_output=True)
    return req.read_text()


def test_noop_says_what_the_ca_would_sign_and_signs_nothing(tmp_path):
    """The signing step never looks at noop: its check says what it would sign (a request
    pending with the node's own fingerprint, one the CA lacks, one a node would make first),
    and noop stops there — nothing submitted, nothing signed."""
    pending, new = _request(tmp_path, A), _request(tmp_path, "agent2.example.com")
    identities = {t: certs.Identity(f"{t}.example.com") for t in ("agent1", "agent2", "agent3")}
    step = RequestsSigned(DEBIAN, identities, {"agent1": pending, "agent2": new, "agent3": None},
                          set())

    def ca(target: str, command: str, stdin: bytes | None) -> CommandOutput:
        """The CA holds agent1's request; it accepts submissions and signatures."""
        paths = re.findall(r"/puppet-ca/v1/(certificate\w*)/([\w.-]+)", command)
        replies = [(200, status(A, csr.request_fingerprint(pending))) if kind ==
                   "certificate_status" and name == A and " -X GET " in command
                   else (404, "Not found") if kind == "certificate_status" and " -X GET " in
                   command else (204, "") if kind == "certificate_status" else (200, "PEM")
                   for kind, name in paths]
        return CommandOutput(command, 0, answers(*replies), "", 0.0)

    for noop in (True, False):
        tester = PlanTester({"targets": ["main.example.com"]}, noop=noop)
        tester.on(re.compile("curl"), respond=ca)
        result = tester.run.step(step, "main.example.com")[0]
        assert result.status == CHANGED and result.noop == noop
        assert result.message == ("would " if noop else "") + (
            f"sign {A}, agent2.example.com; sign 1 new request(s) after checking their "
            "fingerprints")
        puts = [c for c in tester.commands("main.example.com") if " -X PUT " in c]
        if noop:
            assert puts == []
        else:  # submitted (agent2's), then signed (agent1's; agent2's is not on this CA)
            assert ["certificate_request/agent2" in c for c in puts] == [True, False]
            verdicts, issued = result.value
            assert verdicts[A].sign and issued == {A: "PEM\n"}


# -- code access ----------------------------------------------------------------------------

def _ctx() -> StepContext:
    return StepContext(Target("main.example.com"), conn=None)  # type: ignore[arg-type]


def test_deploy_keys_are_restricted_to_fetching_the_control_repo():
    step = AuthorizedDeployKeys({"c1.example.com": "ssh-ed25519 AAAAnew"},
                                "/srv/puppet/control.git")
    current = ("ssh-ed25519 AAAAadmin admin\n"
               'restrict,command="git-upload-pack /srv/puppet/control.git" ssh-ed25519 AAAAold '
               "puppetops-r10k@c1.example.com\nssh-ed25519 AAAAother other\n")
    out = step.edit(_ctx(), current).splitlines()
    assert out[0] == "ssh-ed25519 AAAAadmin admin" and out[2] == "ssh-ed25519 AAAAother other"
    assert out[1] == ('restrict,command="git-upload-pack /srv/puppet/control.git" '
                      "ssh-ed25519 AAAAnew puppetops-r10k@c1.example.com")
    assert step.edit(_ctx(), "\n".join(out) + "\n") == "\n".join(out) + "\n"
    with pytest.raises(UsageError):
        AuthorizedDeployKeys({}, "/srv/x; rm -rf /")


def test_main_host_key_is_pinned_and_checked():
    known = KnownHost("main.example.com", ["ssh-ed25519 AAAAkey"]).edit(
        _ctx(), "main.example.com ssh-rsa STALE\nother.example.com ssh-ed25519 X\n")
    assert known == "other.example.com ssh-ed25519 X\nmain.example.com ssh-ed25519 AAAAkey\n"
    config = SshIdentity("main.example.com").edit(_ctx(), "Host *\n    User git\n")
    assert config.index("Host main.example.com") < config.index("Host *")
    assert "StrictHostKeyChecking yes" in config and "StrictHostKeyChecking no" not in config


# -- load balancers -------------------------------------------------------------------------

MEMBERS = [Member("compiler2.example.com", "compiler2.example.com"),
           Member("compiler1.example.com", "10.0.0.12")]


def test_haproxy_config_is_tcp_with_health_checks_admin_socket_and_state_file():
    text = haproxy.render(MEMBERS)
    for line in ("mode tcp", "bind :8140", "balance leastconn",
                 "option httpchk GET /status/v1/simple",
                 "http-check expect string running", "check check-ssl verify none",
                 "stats socket /run/haproxy/admin.sock mode 660 level admin",
                 "server-state-file /var/lib/haproxy/server-state",
                 "load-server-state-from-file global"):
        assert line in text
    assert haproxy.parse_members(text) == sorted(MEMBERS)


def test_nginx_stream_config_round_trips_its_members():
    text = nginx.render(MEMBERS)
    assert text.startswith("#") and "stream {" in text and "least_conn;" in text
    assert "listen 8140;" in text and "proxy_pass puppet_compilers;" in text
    assert nginx.parse_members(text) == sorted(MEMBERS)


def test_lb_backend_is_chosen_per_host():
    assert isinstance(backends.of(Target("lb", vars={})), haproxy.HAProxy)
    assert isinstance(backends.of(Target("lb", vars={"lb_backend": "nginx"})), nginx.Nginx)
    with pytest.raises(UsageError, match="lb_backend must be one of haproxy, nginx"):
        backends.of(Target("lb", vars={"lb_backend": "f5"}))
    with pytest.raises(UsageError):
        Member("bad name", "x")


# -- agent runs and plan summaries ------------------------------------------------------------

def test_a_run_succeeded_only_with_a_catalog_and_no_failures():
    ok = ("version:\n  config: 1700000000\n  puppet: 7.23.0\nresources:\n  failed: 0\n"
          "events:\n  failure: 0\n")
    assert run_succeeded(ok)
    assert not run_succeeded(ok.replace("failed: 0", "failed: 2"))
    assert not run_succeeded("version:\n  config: \n  puppet: 7.23.0\n")
    assert not run_succeeded(None) and not run_succeeded(": [")


def test_plan_summary_is_one_result_per_target():
    sets = [ResultSet([Result("a", "s1", UNCHANGED), Result("b", "s1", CHANGED, "edit x")]),
            ResultSet([Result("a", "s2", FAILED, "boom"), Result("b", "s2", UNCHANGED)])]
    rows = {r.target: r for r in summary("plan", sets)}
    assert rows["a"].status == FAILED and rows["a"].message == "s2: boom"
    assert rows["b"].status == CHANGED and rows["b"].message == "s1: edit x"


def test_jvm_flags_from_the_inventory_cannot_carry_shell():
    assert node.java_args(Target("s", vars={"puppetserver_java_args": " -Xms512m  -Xmx512m"})) == \
        "-Xms512m -Xmx512m"
    assert node.java_args(Target("s")) is None
    for bad in ('-Xmx1g"; rm -rf /', "-Dx=$(id)", "Xmx1g"):
        with pytest.raises(UsageError):
            node.java_args(Target("s", vars={"puppetserver_java_args": bad}))


def test_agent_service_and_lb_name_vars_are_checked():
    assert node.agent_service(Target("a")) == "stopped"
    with pytest.raises(UsageError):
        node.agent_service(Target("a", vars={"agent_service": "enabled"}))
    with pytest.raises(UsageError, match="lb_name"):
        node.lb_name(Target("c"))


def test_the_standup_plans_are_registered_and_importable():
    from puppetops.plan_registry import discover
    from puppetops.plans.add_compiler import add_compiler
    from puppetops.plans.bootstrap_ca import bootstrap_ca
    from puppetops.plans.configure_lb import configure_lb
    from puppetops.plans.enroll_agent import enroll_agent
    plans = discover()
    for fn in (bootstrap_ca, add_compiler, configure_lb, enroll_agent):
        assert plans[fn.plan_name].fn is fn


def test_bootstrap_ca_refuses_a_main_group_of_two():
    run = Run(Inventory.from_dict({"groups": [{"name": "main", "targets": ["a", "b"]}]}),
              lock=False)  # hosts a and b do not exist: nothing to lock
    from puppetops.plans.bootstrap_ca import bootstrap_ca
    with pytest.raises(UsageError, match="exactly one"):
        bootstrap_ca(run)


def test_request_fingerprint_is_the_sha256_the_ca_shows(tmp_path):
    """Same digest as `openssl req -outform DER | sha256sum` over a real request."""
    key, req = tmp_path / "key.pem", tmp_path / "req.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-out", str(key)], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", str(key), "-subj", "/CN=a.example.com",
                    "-out", str(req)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "req", "-in", str(req), "-outform", "DER"], check=True,
                         capture_output=True).stdout
    expected = certs.normalize(hashlib.sha256(der).hexdigest())
    assert csr.request_fingerprint(req.read_text()) == expected
    with pytest.raises(ValueError):
        csr.request_fingerprint("not a request")


def test_requests_are_submitted_in_one_call_with_a_body_each():
    tester = PlanTester({"targets": ["main.example.com"]})
    tester.on(re.compile(r"curl .* -X PUT"), stdout=answers(
        (200, ""), (400, "b.example.com already has a requested certificate; ignoring")))
    pems = {"b.example.com": "-----BEGIN CERTIFICATE REQUEST-----\nBBB\n-----END "
                             "CERTIFICATE REQUEST-----\n",
            "a.example.com": "-----BEGIN CERTIFICATE REQUEST-----\nAAA\n-----END "
                             "CERTIFICATE REQUEST-----\n"}
    result = tester.run.each("submit", lambda ctx: ca_api.submit(ctx, DEBIAN, "main.example.com",
                                                                 pems), "main.example.com")
    assert result[0].value["a.example.com"][0] == 200
    assert result[0].value["b.example.com"][0] == 400
    call, = tester.commands("main.example.com")
    first, second = call.split(" --next ")
    assert "AAA" in first and "certificate_request/a.example.com" in first and "BBB" not in first
    assert "BBB" in second and "certificate_request/b.example.com" in second
    assert second.count("--cert /var/lib/puppet/ssl/certs/main.example.com.pem") == 1
