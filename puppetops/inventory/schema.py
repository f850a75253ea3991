"""The declarative inventory schema: which keys exist where, and what type each value must have.

Everything the validator knows about keys lives in these tables, not in ``if`` chains, so that the
same data can generate the reference documentation (``TRANSPORT_OPTIONS`` carries a description
and default for every transport option) and so a new option is a one-line change. The defaults
here are the ones the transports and the executor use (``setting``), not copies of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .. import bounds
from ..bounds import Bound

if TYPE_CHECKING:  # pragma: no cover
    from ..target import Target

TRANSPORTS = ("ssh", "local")  # the transports puppetops runs
# Bolt's other transports. An inventory shared with Bolt may list Windows hosts or containers:
# their targets load and are listed with their transport (their config sections are Bolt's and
# are not checked here), and a run that selects one is refused before anything runs
# (``ConnectionPool.check``), instead of the whole inventory being refused.
OTHER_BOLT_TRANSPORTS = ("winrm", "docker", "podman", "pcp", "remote", "jail", "lxd")
BOLT_TRANSPORTS = TRANSPORTS + OTHER_BOLT_TRANSPORTS

# Keys of the top level (the implicit `all` group), of a group and of a target given as a mapping.
# `plugin_hooks` is accepted for Bolt compatibility and ignored.
TOP_LEVEL_KEYS = frozenset({"config", "facts", "vars", "features", "groups", "targets", "version",
                            "plugin_hooks"})
GROUP_KEYS = frozenset({"name", "config", "facts", "vars", "features", "groups", "targets", "plugin_hooks"})
TARGET_KEYS = frozenset({"name", "uri", "alias", "config", "facts", "vars", "features", "plugin_hooks"})

SUPPORTED_VERSION = 2
ENV_VAR_PLUGIN = "env_var"


@dataclass(frozen=True)
class ValueType:
    """A type a value must have: ``expected`` is the human wording used in errors and docs."""

    expected: str
    accepts: Callable[[Any], bool]
    hint: str = ""  # extra advice appended to the error, for mistakes that need more than a type

    @classmethod
    def number(cls, bound: Bound) -> ValueType:
        """A bounded number (``puppetops.bounds``): YAML's ``true`` is no port, ``.inf`` no
        timeout a socket accepts, ``.nan`` no timeout at all."""
        return cls(bound.expected, bound.accepts)


@dataclass(frozen=True)
class Option:
    """One transport config option. ``secret`` values are never echoed back in messages."""

    type: ValueType
    description: str
    default: Any = None
    secret: bool = False


def _is_env_var_ref(value: Any) -> bool:
    return (isinstance(value, dict) and set(value) == {"_plugin", "var"}
            and value["_plugin"] == ENV_VAR_PLUGIN and isinstance(value["var"], str) and bool(value["var"]))


MAPPING = ValueType("a mapping", lambda v: isinstance(v, dict))
LIST = ValueType("a list", lambda v: isinstance(v, list))
STRING_LIST = ValueType("a list of strings", lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v))
STRING = ValueType("a string", lambda v: isinstance(v, str))
BOOLEAN = ValueType("a boolean (true or false)", lambda v: isinstance(v, bool))
PORT = ValueType.number(bounds.PORT)
COUNT = ValueType.number(bounds.COUNT)
SECONDS = ValueType.number(bounds.SECONDS)
TRANSPORT = ValueType("one of " + ", ".join(f"'{t}'" for t in BOLT_TRANSPORTS),
                      lambda v: v in BOLT_TRANSPORTS)
ENV_VAR_REF = ValueType(
    "{_plugin: env_var, var: NAME}", _is_env_var_ref,
    hint="Secrets are not read from the inventory file: export the password in an environment "
         "variable and reference it as `sudo-password: {_plugin: env_var, var: SUDO_PASSWORD}`")

# Inheritable data blocks allowed on the top level, on groups and on targets.
DATA_TYPES: dict[str, ValueType] = {"config": MAPPING, "facts": MAPPING, "vars": MAPPING, "features": STRING_LIST}

_ESCALATION: dict[str, Option] = {
    "run-as": Option(STRING, "User to run commands as, through sudo."),
    "sudo-password": Option(ENV_VAR_REF, "Where to read the sudo password from; only an environment "
                                         "variable reference is allowed.", secret=True),
    "command-timeout": Option(SECONDS, "Seconds a command may run before it is stopped.", default=600),
}

TRANSPORT_OPTIONS: dict[str, dict[str, Option]] = {
    "ssh": {
        "user": Option(STRING, "Login user.", default="root"),
        "port": Option(PORT, "SSH port.", default=22),
        "host": Option(STRING, "Host to connect to when the target has no URI (default: the target name)."),
        "private-key": Option(STRING, "Path of the private key file."),
        "host-key-check": Option(BOOLEAN, "Verify the host key against the known hosts.", default=True),
        "known-hosts-file": Option(STRING, "Path of the known hosts file.",
                                   default="~/.ssh/known_hosts"),
        "connect-timeout": Option(SECONDS, "Seconds to wait for the connection to open.",
                                  default=10),
        "attempts": Option(COUNT, "Attempts for transient connection faults.", default=3),
        "persistent-shell": Option(BOOLEAN, "Run commands that get no stdin data in one long-lived "
                                            "shell per connection (a subshell each) instead of a new "
                                            "SSH session per command.", default=True),
        **_ESCALATION,
    },
    "local": dict(_ESCALATION),
}

def setting(config: dict[str, Any], transport: str, key: str) -> Any:
    """Transport option ``key`` as ``config`` (a target's merged ``config.<transport>``) sets
    it, else the default this schema documents for it."""
    value = config.get(key)
    return TRANSPORT_OPTIONS[transport][key].default if value in (None, "") else value


def target_setting(target: Target, key: str) -> Any:
    """Transport option ``key`` for ``target``: its effective ``port``/``user`` (URI over
    config), else its merged config, else this schema's default — what its connection uses.
    None for an option its transport does not have (Bolt's other transports)."""
    effective = {"port": target.port, "user": target.user}.get(key)
    if effective not in (None, ""):
        return effective
    if key not in TRANSPORT_OPTIONS.get(target.transport, {}):
        return target.transport_config.get(key)
    return setting(target.transport_config, target.transport, key)


# Keys directly under `config`: the transport choice and one section per transport.
CONFIG_KEYS = frozenset({"transport", *BOLT_TRANSPORTS})


def describe_type(value: Any) -> str:
    """The YAML name of a value's type, as users wrote it ("null", "list", ...)."""
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "list"), (dict, "mapping")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def describe_value(value: Any, *, secret: bool = False) -> str:
    """``describe_type`` plus the value itself for scalars, unless it is a secret."""
    kind = describe_type(value)
    if secret or value is None or isinstance(value, (list, dict)):
        return kind
    return f"{kind} {value!r}"
