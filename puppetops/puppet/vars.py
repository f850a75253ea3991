"""The inventory vars puppetops' plans read, declared once: what each means, the values it
may take and its default.

The readers (``node.choice``...) take their choices and defaults from here; the command line
has every inventory checked against this table (``puppetops.inventory.vars``: a misspelt var
or a value it cannot take is a warning naming file and line, not silently ignored); the
README's var table is rendered from it (``markdown``). Any other var is the user's own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .layout import LAYOUTS


@dataclass(frozen=True)
class Var:
    """One var: ``choices`` (strings; YAML numbers count as their text, ``cert_key_size:
    4096``), or a ``list`` of strings (a YAML list or ``a,b``), or else a string.
    ``default_text``: the default in words, when it is not a value."""

    meaning: str
    default: Any = None
    choices: tuple[str, ...] = ()
    list: bool = False
    default_text: str = ""
    flag: bool = False  # true/false also accepted

    @property
    def expected(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.list:
            return "a list of strings (or one comma-separated string)"
        return "true, false or a string" if self.flag else "a string"

    def accepts(self, value: Any) -> bool:
        if self.choices:
            return isinstance(value, (str, int)) and not isinstance(value, bool) \
                and str(value) in self.choices
        if self.list and isinstance(value, list):
            return all(isinstance(item, str) for item in value)
        if self.flag and isinstance(value, bool):
            return True
        return isinstance(value, str)


def _choice(meaning: str, choices: tuple[str, ...], default: str | None = None,
            default_text: str = "") -> Var:
    return Var(meaning, default, choices, default_text=default_text)


VARS: dict[str, Var] = {
    "lb_name": Var("the name agents use for the compilers; goes into every compiler certificate",
                   default_text="required"),
    "lb_backend": _choice("the load balancer software, per LB host", ("haproxy", "nginx"),
                          "haproxy"),
    "lb_member_address": Var("where the load balancers reach this compiler (a DNS name or IPv4 "
                             "address)", default_text="its certname"),
    "certname": Var("a target's certname", default_text="its inventory name (an FQDN)"),
    "puppet_layout": _choice("package layout (Debian's or Puppet's all-in-one)", tuple(LAYOUTS),
                             default_text="from the `facts` plan"),
    "puppetserver_java_args": Var("JVM flags for Puppet Server (e.g. `-Xms512m -Xmx512m`)",
                                  default_text="the package's"),
    "puppetdb_java_args": Var("JVM flags for PuppetDB (e.g. `-Xms256m -Xmx256m`), on its host",
                              default_text="the package's"),
    "agent_service": _choice("the state the agent service is left in", ("running", "stopped"),
                             "stopped"),
    "cert_key_type": _choice("key of the certificates puppetops requests (the lab's agents use "
                             "`ec`)", ("rsa", "ec"), "rsa"),
    "cert_key_size": _choice("RSA bits", ("2048", "3072", "4096"), "4096"),
    "cert_key_curve": _choice("EC curve", ("prime256v1", "secp384r1", "secp521r1"), "prime256v1"),
    "control_repo": Var("an external git URL for the control repo", default_text="a repo on main"),
    "control_repo_path": Var("path of the repo on main", "/srv/puppet/control.git"),
    "code_deployer": _choice("the code deployer", ("r10k", "g10k"), "r10k"),
    "r10k_prefix": Var("r10k's source prefix, set for main: environment = PREFIX_branch (`true`: "
                       "the source's name, `puppet`), in r10k.yaml on every server, for "
                       "deploy_code and the webhook", flag=True, default_text="none"),
    "agent_environments": Var("environments agents compile in: deploy_code drains a compiler "
                              "only when one of these failed there", ["production"], list=True),
}


def markdown() -> str:
    """The README's var table (kept in sync by a test)."""
    rows = []
    for name, var in VARS.items():
        values = ", ".join(f"`{c}`" for c in var.choices) if var.choices else \
            "a list, or `a,b`" if var.list else "`true`, `false` or a string" if var.flag \
            else "a string"
        default = var.default_text or (f"`{var.default}`" if not isinstance(var.default, list)
                                       else f"`[{', '.join(var.default)}]`")
        rows.append(f"| `{name}` | {values} | {default} | {var.meaning} |")
    return "\n".join(["| var | values | default | meaning |", "|---|---|---|---|", *rows])
