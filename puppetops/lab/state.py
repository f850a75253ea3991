"""What the lab records in its state dir, so any later process can find and remove its objects.

``lab.json`` is written *before* anything is created (phase ``building``) and updated as PIDs
become known, so ``down()`` can clean up after an ``up()`` that crashed at any point. It is the
second half of the ownership rule: the lab only removes an object whose name has the lab's
prefix *and* that this record lists.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import LabError
from ..procs import Proc

STATE_FILE = "lab.json"


@dataclass
class HostRecord:
    short: str
    netns: str
    veth: str
    launcher: Proc | None = None  # `unshare` in the root PID namespace, parent of the host's PID 1
    sshd: Proc | None = None  # the host's PID 1

    def to_json(self) -> dict:
        return {"short": self.short, "netns": self.netns, "veth": self.veth,
                "launcher": self.launcher.to_json() if self.launcher else None,
                "sshd": self.sshd.to_json() if self.sshd else None}

    @classmethod
    def from_json(cls, data: dict) -> "HostRecord":
        return cls(data["short"], data["netns"], data["veth"],
                   Proc.from_json(data["launcher"]) if data.get("launcher") else None,
                   Proc.from_json(data["sshd"]) if data.get("sshd") else None)


@dataclass
class LabRecord:
    bridge: str
    subnet: str
    domain: str
    compilers: int
    agents: int
    phase: str = "building"  # "up" once every sshd answered
    hosts: list[HostRecord] = field(default_factory=list)

    def save(self, state_dir: Path) -> None:
        data = {k: v for k, v in self.__dict__.items() if k != "hosts"}
        data["hosts"] = [h.to_json() for h in self.hosts]
        tmp = state_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, state_dir / STATE_FILE)

    @classmethod
    def load(cls, state_dir: Path) -> "LabRecord | None":
        try:
            data = json.loads((state_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise LabError(f"{state_dir / STATE_FILE} is not a lab record ({exc}); inspect it, "
                           "remove the lab's objects by hand and delete the file") from None
        hosts = [HostRecord.from_json(h) for h in data.pop("hosts")]
        known = {f.name for f in fields(cls)}  # a record from another version may have other keys
        return cls(**{k: v for k, v in data.items() if k in known}, hosts=hosts)
