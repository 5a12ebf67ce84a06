#!/usr/bin/env python3
"""Summarise gmem_bench output: median, min and max per workload and
backend, the Rust/C ratio of the medians, and memory left behind.

    bench-report.py BENCH_TXT [--markdown]
"""
import statistics
import sys
from collections import defaultdict

ORDER = ["allocate", "fault-in", "punch-4k", "convert-4k", "convert-large", "floor",
         "mfd-allocate", "shmem-allocate", "mfd-fault-in", "mfd-punch-4k", "shmem-punch-4k"]
# MFD_INACCESSIBLE workloads and their plain-shmem floor (the memfd rows run
# the same code in C and Rust rounds: their Rust/C ratio is the noise).
FLOORS = [("mfd-allocate", "shmem-allocate"), ("mfd-punch-4k", "shmem-punch-4k")]


def parse(path):
    runs = defaultdict(list)
    leaked = defaultdict(int)
    mib = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("BENCH "):
                continue
            kv = dict(w.split("=", 1) for w in line.split()[1:])
            key = (kv["workload"], kv["backend"])
            runs[key].append(float(kv["ms"]))
            leaked[key] = max(leaked[key], int(kv["leaked_kb"]))
            mib[kv["workload"]] = int(kv["mib"])
    return runs, leaked, mib


def main():
    runs, leaked, mib = parse(sys.argv[1])
    markdown = "--markdown" in sys.argv
    workloads = [w for w in ORDER if (w, "c") in runs] + sorted(
        {w for w, _ in runs} - set(ORDER))
    rows = []
    for w in workloads:
        c, rs = runs.get((w, "c"), []), runs.get((w, "rust"), [])
        if not c or not rs:
            continue
        cm, rm = statistics.median(c), statistics.median(rs)
        rows.append((w, mib[w], cm, min(c), max(c), rm, min(rs), max(rs),
                     rm / cm if cm else float("nan"),
                     max(leaked[(w, "c")], leaked[(w, "rust")]), len(c), len(rs)))
    head = ("workload", "MiB", "C median", "C min", "C max", "Rust median",
            "Rust min", "Rust max", "Rust/C", "max leaked KiB")
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %d |" % r[:10])
    else:
        print("%-14s %5s %9s %9s %9s %11s %9s %9s %7s %10s" % head)
        for r in rows:
            print("%-14s %5d %9.1f %9.1f %9.1f %11.1f %9.1f %9.1f %7.2f %10d" % r[:10])
        print("(ms; %d rounds per backend, alternating C and Rust in one boot)" % rows[0][10]
              if rows else "no results")
        for r in rows:
            print("BENCHRESULT workload=%s mib=%d c_median_ms=%.1f rust_median_ms=%.1f "
                  "ratio=%.3f leaked_kb=%d" % (r[0], r[1], r[2], r[5], r[8], r[9]))
    for w, floor in FLOORS:
        a, b = runs.get((w, "c"), []) + runs.get((w, "rust"), []), \
            runs.get((floor, "c"), []) + runs.get((floor, "rust"), [])
        if a and b:
            ma, mb = statistics.median(a), statistics.median(b)
            line = "%s against %s: %.1f / %.1f ms = %.2f" % (w, floor, ma, mb, ma / mb)
            print(("- " + line) if markdown else ("FLOOR " + line))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
