"""One remote script per host: every section of its status, each printed after a marker line.

Status must cost one round trip per host, whatever the host runs, so that a fleet's status
takes about as long as one fan-out of ``true``: each concept (Puppet Server, code, CA, LB,
PuppetDB, agent) contributes a ``Section`` — a shell command and the parser of its output —
and a host's sections run as one script. Each command runs in a subshell with its errors on
stdout, so one failing read is that section's error and never hides the others.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ...errors import StepError
from ...puppet import node
from ...puppet.layout import LAYOUTS, Layout
from ...target import Target

MARK = "@@puppetops-status"
_MARKED = re.compile(rf"^{MARK} ([a-z_]+)$", re.M)
AIO_TEST = "[ -x /opt/puppetlabs/bin/puppet ]"  # as the facts script tells the layouts apart


@dataclass(frozen=True)
class Section:
    """One read of a host's status: ``command`` prints what ``parse`` turns into data."""

    name: str
    command: str
    parse: Callable[[str], Any]


def script(sections: Sequence[Section]) -> str:
    """The sections' commands, run at the same time (a main server's reads wait on Puppet
    Server, the CA and the webhook: together they take as long as the slowest), their
    outputs printed in order, each after its marker on a line of its own."""
    if len(sections) == 1:
        return f"printf '\\n%s\\n' '{MARK} {sections[0].name}'; ( {sections[0].command}\n) 2>&1"
    started = "\n".join(f"( {s.command}\n) >\"$d/{i}\" 2>&1 &" for i, s in enumerate(sections))
    printed = "; ".join(f"printf '\\n%s\\n' '{MARK} {s.name}'; cat \"$d/{i}\""
                        for i, s in enumerate(sections))
    return (f"d=$(mktemp -d) || exit 1; trap 'rm -rf \"$d\"' EXIT\n{started}\nwait\n"
            f"{printed}")


def host_script(target: Target, build: Callable[[Layout], Sequence[Section]]) -> str:
    """The script for ``target``: its sections for its package layout — the ``puppet_layout``
    var or fact when known, else chosen on the host as the facts script does (no extra round
    trip to learn it first)."""
    known = target.vars.get("puppet_layout") or target.facts.get("puppet_layout")
    if known:
        return script(build(node.layout(target)))
    aio, debian = script(build(LAYOUTS["aio"])), script(build(LAYOUTS["debian"]))
    return aio if aio == debian else f"if {AIO_TEST}; then\n{aio}\nelse\n{debian}\nfi"


def parse(text: str, sections: Sequence[Section]) -> dict[str, Any]:
    """Each section's data, by name; ``{"error": ...}`` for a section whose output does not
    parse (its own error message, e.g. curl's, is in it) or that never printed."""
    parsers = {s.name: s.parse for s in sections}
    found: dict[str, Any] = {}
    pieces = _MARKED.split(text)
    for name, output in zip(pieces[1::2], pieces[2::2]):
        if name not in parsers:
            continue
        try:
            found[name] = parsers[name](output.strip("\n"))
        except (StepError, ValueError, LookupError, TypeError) as exc:  # what the host said
            # is not what the section reads (not answering, an error text, another format)
            found[name] = {"error": str(exc) or type(exc).__name__}
    for name in parsers:
        found.setdefault(name, {"error": "no output"})
    return found
