"""Edits of the Puppet config files we own only parts of: pure text in, text out.

The files are the operator's too (comments, settings we do not manage), so each function
changes exactly what it manages and keeps every other line as it was; applying it twice gives
the same text, which is what makes the steps built on it idempotent. No Ruby is started: a
``puppet config set`` costs a second per call and per host.
"""
from __future__ import annotations

import re
import shlex
from typing import Mapping

Settings = Mapping[str, Mapping[str, "str | None"]]  # section -> key -> value (None: remove)

CA_SERVICE = "puppetlabs.services.ca.certificate-authority-service/certificate-authority-service"
CA_DISABLED = ("puppetlabs.services.ca.certificate-authority-disabled-service/"
               "certificate-authority-disabled-service")

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_SETTING = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=")  # INI keys of trapperkeeper too (ssl-port)


def _lines(text: str | None) -> list[str]:
    return (text or "").splitlines()


def _text(lines: list[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


# -- puppet.conf ----------------------------------------------------------------------------

def puppet_conf(text: str | None, settings: Settings) -> str:
    """puppet.conf with ``settings`` applied: each key set once in its section (first
    occurrence replaced, duplicates dropped), keys whose value is None removed, missing
    sections appended."""
    lines = _lines(text)
    for section, values in settings.items():
        lines = _apply_section(lines, section, values)
    return _text(lines)


def _section_bounds(lines: list[str], section: str) -> tuple[int, int] | None:
    start = None
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if m and start is not None:
            return start, i
        if m and m.group(1).strip() == section:
            start = i
    return (start, len(lines)) if start is not None else None


def _apply_section(lines: list[str], section: str, values: Mapping[str, str | None]) -> list[str]:
    bounds = _section_bounds(lines, section)
    if bounds is None:
        wanted = [f"{k} = {v}" for k, v in values.items() if v is not None]
        if not wanted:
            return lines
        return lines + ([""] if lines and lines[-1].strip() else []) + [f"[{section}]"] + wanted
    start, end = bounds
    body, done = [], set()
    for line in lines[start + 1:end]:
        m = _SETTING.match(line)
        key = m.group(1) if m else None
        if key in values:
            if values[key] is not None and key not in done:
                body.append(f"{key} = {values[key]}")
            done.add(key)
            continue
        body.append(line)
    missing = [f"{k} = {v}" for k, v in values.items() if v is not None and k not in done]
    tail = 0  # keep blank lines that separate this section from the next at its end
    while tail < len(body) and not body[len(body) - 1 - tail].strip():
        tail += 1
    body = body[:len(body) - tail] + missing + body[len(body) - tail:]
    return lines[:start + 1] + body + lines[end:]


# -- services.d/ca.cfg ----------------------------------------------------------------------

def ca_cfg(text: str | None, enabled: bool) -> str:
    """ca.cfg with the CA service on (``enabled``) or swapped for the CA-disabled service.

    A compiler must get this before its first start, or it comes up as a CA of its own. Every
    other line (the filesystem watcher, comments) stays.
    """
    want = {CA_SERVICE: enabled, CA_DISABLED: not enabled}
    seen: set[str] = set()
    lines = []
    for line in _lines(text):
        service = line.strip().lstrip("#").strip()
        if service in want:
            if service in seen:
                continue
            seen.add(service)
            line = service if want[service] else f"#{service}"
        lines.append(line)
    lines += [s for s, on in want.items() if on and s not in seen]
    return _text(lines)


# -- conf.d/ca.conf and other HOCON files -----------------------------------------------------

def hocon_settings(text: str | None, block: str, values: Mapping[str, str]) -> str:
    """``block: { key: value }`` settings in a HOCON file laid out one setting per line (as
    the packages ship them): existing keys in the block get the value, missing ones are added
    at its top, a missing block is appended."""
    lines = _lines(text)
    opening = re.compile(rf"^\s*{re.escape(block)}\s*[:=]?\s*\{{\s*$")
    start = next((i for i, line in enumerate(lines) if opening.match(line)), None)
    if start is None:
        return _text(lines + [f"{block}: {{"] + [f"    {k}: {v}" for k, v in values.items()]
                     + ["}"])
    depth, end = 0, len(lines)
    for i in range(start, len(lines)):
        depth += lines[i].count("{") - lines[i].count("}")
        if depth == 0:
            end = i
            break
    done = set()
    for i in range(start + 1, end):
        m = re.match(r"^(\s*)([A-Za-z0-9_-]+)\s*[:=]", lines[i])
        if m and m.group(2) in values:
            lines[i] = f"{m.group(1)}{m.group(2)}: {values[m.group(2)]}"
            done.add(m.group(2))
    added = [f"    {k}: {v}" for k, v in values.items() if k not in done]
    return _text(lines[:start + 1] + added + lines[start + 1:])


# -- conf.d/auth.conf -------------------------------------------------------------------------

def auth_rule(name: str, path: str, methods: list[str], allow: list[str],
              sort_order: int = 200) -> str:
    """One tk-auth rule (type path) allowing exactly the certnames in ``allow``."""
    quoted = ", ".join(f'"{a}"' for a in allow)
    method = methods[0] if len(methods) == 1 else "[" + ", ".join(methods) + "]"
    return "\n".join([
        "        {",
        "            match-request: {",
        f'                path: "{path}"',
        "                type: path",
        f"                method: {method}",
        "            }",
        f"            allow: [{quoted}]",
        f"            sort-order: {sort_order}",
        f'            name: "{name}"',
        "        },",
    ])


def auth_conf(text: str | None, name: str, rule: str) -> str:
    """auth.conf with ``rule`` as the first entry of ``rules``, between marker comments that
    name it, so a later run finds and replaces exactly that rule (e.g. a new allow list)."""
    begin, end = f"# BEGIN puppetops {name}", f"# END puppetops {name}"
    lines = _lines(text)
    block = [f"        {begin}", *rule.splitlines(), f"        {end}"]
    if any(line.strip() == begin for line in lines):
        first = next(i for i, line in enumerate(lines) if line.strip() == begin)
        last = next(i for i, line in enumerate(lines) if line.strip() == end and i > first)
        return _text(lines[:first] + block + lines[last + 1:])
    opening = next((i for i, line in enumerate(lines) if re.match(r"^\s*rules\s*[:=]?\s*\[", line)),
                   None)
    if opening is None:
        raise ValueError("auth.conf has no `rules: [` list to add the rule to")
    return _text(lines[:opening + 1] + block + lines[opening + 1:])


# -- /etc/default/puppetserver -----------------------------------------------------------------

def _jvm_flag_key(flag: str) -> str:
    """What makes two JVM flags "the same setting": -Xmx1g ~ -Xmx512m, -Dk=a ~ -Dk=b."""
    for prefix in ("-Xms", "-Xmx", "-Xss"):
        if flag.startswith(prefix):
            return prefix
    if flag.startswith("-XX:"):
        return "-XX:" + flag[4:].lstrip("+-").split("=", 1)[0]
    return flag.split("=", 1)[0]


def merge_java_args(current: str, wanted: str) -> str:
    """``current`` JAVA_ARGS with each flag of ``wanted`` replacing the flag for the same
    setting (or appended): ``-Xms512m -Xmx512m`` shrinks the heap and keeps the package's
    other flags."""
    flags = shlex.split(current)
    for flag in shlex.split(wanted):
        key = _jvm_flag_key(flag)
        same = [i for i, f in enumerate(flags) if _jvm_flag_key(f) == key]
        if same:
            flags[same[0]] = flag
            flags = [f for i, f in enumerate(flags) if i not in same[1:]]
        else:
            flags.append(flag)
    return " ".join(flags)


def server_defaults(text: str | None, java_args: str) -> str:
    """/etc/default/puppetserver with ``java_args`` merged into JAVA_ARGS (see merge_java_args)."""
    lines = _lines(text)
    pattern = re.compile(r'^JAVA_ARGS=(["\']?)(.*)\1\s*$')
    for i, line in enumerate(lines):
        m = pattern.match(line)
        if m:
            lines[i] = f'JAVA_ARGS="{merge_java_args(m.group(2), java_args)}"'
            return _text(lines)
    return _text(lines + [f'JAVA_ARGS="{java_args}"'])
