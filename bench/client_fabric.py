"""Fabric's own fan-out: ``ThreadingGroup(*hosts).run(cmd)`` (one thread per host), with
host-key checking ON the way a Fabric user turns it on: each Connection's SSHClient loads the
known_hosts file and rejects unknown keys (Fabric's default policy would accept them).

Runs in the peers venv:  python client_fabric.py SPEC.json N COMMAND ; prints ``ok=K/N``.
"""
import json
import sys

import paramiko
from fabric import ThreadingGroup
from fabric.exceptions import GroupException


def main() -> None:
    spec, count, command = json.load(open(sys.argv[1])), int(sys.argv[2]), sys.argv[3]
    group = ThreadingGroup(*spec["hosts"][:count], user=spec["user"], port=spec["port"],
                           connect_kwargs={"key_filename": spec["key"], "look_for_keys": False,
                                           "allow_agent": False})
    for conn in group:
        conn.client.load_host_keys(spec["known_hosts"])
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        results = group.run(command, hide=True, in_stream=False)
    except GroupException as exc:
        results = exc.result
    ok = sum(1 for r in results.values() if not isinstance(r, Exception) and r.ok)
    group.close()
    print(f"ok={ok}/{count}")


if __name__ == "__main__":
    main()
