"""Resolve a 1,000-target inventory: load + validate + merge + select, time and memory.

Runs in puppetops' environment:  python client_inventory.py INVENTORY.yaml
Prints one JSON line. The file is made by ``inventory_bench.write_inventory``.
"""
import json
import resource
import statistics
import sys
import time
import tracemalloc

from puppetops import Inventory


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resolve(path: str) -> int:
    inventory = Inventory.load(path)
    inventory.select("all")
    inventory.select("web*,db")
    return len(inventory.targets)


def main() -> None:
    path = sys.argv[1]
    python_rss = rss_mb()
    start = time.perf_counter()
    targets = resolve(path)
    first = time.perf_counter() - start
    repeats = []
    for _ in range(5):
        start = time.perf_counter()
        resolve(path)
        repeats.append(time.perf_counter() - start)
    tracemalloc.start()
    resolve(path)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"targets": targets, "first_s": first, "load_s": statistics.median(repeats),
                      "python_rss_mb": python_rss, "max_rss_mb": rss_mb(),
                      "traced_peak_mb": traced_peak / 2**20}))


if __name__ == "__main__":
    main()
