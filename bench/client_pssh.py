"""parallel-ssh (libssh2 + gevent): ``ParallelSSHClient(...).run_command(cmd)`` and ``join``.

parallel-ssh's native client has no known_hosts handling, so this peer runs with host-key
checking OFF (the only one); say so wherever its numbers are shown.

Runs in the peers venv:  python client_pssh.py SPEC.json N COMMAND ; prints ``ok=K/N``.
"""
import json
import sys

from pssh.clients import ParallelSSHClient


def main() -> None:
    spec, count, command = json.load(open(sys.argv[1])), int(sys.argv[2]), sys.argv[3]
    client = ParallelSSHClient(spec["hosts"][:count], user=spec["user"], port=spec["port"],
                               pkey=spec["key"], pool_size=100, num_retries=1)
    output = client.run_command(command, stop_on_errors=False)
    client.join(output)
    ok = 0
    for host_out in output:
        for _ in host_out.stdout or ():
            pass
        if host_out.exception is None and host_out.exit_code == 0:
            ok += 1
    print(f"ok={ok}/{count}")


if __name__ == "__main__":
    main()
