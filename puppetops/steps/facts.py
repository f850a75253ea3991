"""Facts: what a target runs — OS, Puppet packages, layout, init system, services.

The lifecycle plans build on them: which package layout's paths to use, whether systemd is
there to manage services, what is already installed and running. ``gather`` is the library
function every plan calls on its hosts; the ``facts`` plan only runs it and reports.
"""
from __future__ import annotations

from ..step import StepContext

PACKAGES = ("puppetserver", "puppet-agent", "puppet", "puppetdb", "r10k", "g10k", "haproxy",
            "nginx", "openvox-agent", "openvox-server", "openvoxdb", "git")
SERVICES = {  # fact name -> a pattern of its process's command line
    "puppetserver": "puppetserver",
    "puppet_agent": "puppet agent",
    "puppetdb": "puppetdb",
    "haproxy": "haproxy",
    "nginx": "nginx: master",
}

# One round trip: every fact is printed as KEY=VALUE by a single shell script. The packages
# are one dpkg-query call (a call per package cost 12 × ~6 ms of CPU on every host, most of
# the script); rpm is asked only on hosts that have it, for what dpkg did not report.
_MARKER = "puppetops-facts-script"
_SCRIPT = r"""# puppetops-facts-script
. /etc/os-release 2>/dev/null
echo "os_id=$ID"; echo "os_version=$VERSION_ID"; echo "os_name=$PRETTY_NAME"
echo "hostname=$(hostname)"; echo "fqdn=$(hostname -f 2>/dev/null || hostname)"
if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=sysv; fi
if [ -x /opt/puppetlabs/bin/puppet ]; then echo layout=aio;
elif [ -x /usr/bin/puppet ] || [ -d /etc/puppet ]; then echo layout=debian; else echo layout=; fi
found=$(dpkg-query -W -f='${Package} ${Status} ${Version}\n' __PACKAGES__ 2>/dev/null |
  sed -n 's/^\([^ ]*\) install ok installed /pkg:\1=/p')
[ -n "$found" ] && echo "$found"
if command -v rpm >/dev/null; then
  for p in __PACKAGES__; do
    case "$found" in *"pkg:$p="*) continue;; esac
    v=$(rpm -q --qf '%{VERSION}' "$p" 2>/dev/null | grep -v 'not installed')
    [ -n "$v" ] && echo "pkg:$p=$v"
  done
fi
ps -eo args= 2>/dev/null | sed 's/^/proc:/'
"""


def parse_facts(text: str) -> dict:
    """Turn the script's ``KEY=VALUE`` lines into a facts dict."""
    facts: dict = {"packages": {}, "services": {}}
    procs = []
    for line in text.splitlines():
        if line.startswith("proc:"):
            if _MARKER not in line:  # the shell running this very script
                procs.append(line[5:])
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key.startswith("pkg:"):
            if value:
                facts["packages"][key[4:]] = value
        else:
            facts[key] = value
    facts["packages"] = {p: facts["packages"][p] for p in PACKAGES if p in facts["packages"]}
    for service, pattern in SERVICES.items():
        facts["services"][service] = any(pattern in p for p in procs)
    facts["puppet_layout"] = facts.pop("layout") or None
    return facts


def gather(ctx: StepContext) -> dict:
    """The target's facts, read in one round trip, and merged into its inventory facts for the
    rest of the run (``run.each("facts", gather, targets)``)."""
    script = _SCRIPT.replace("__PACKAGES__", " ".join(PACKAGES))
    facts = parse_facts(ctx.run(script).stdout)
    ctx.target.facts.update(facts)
    return facts
