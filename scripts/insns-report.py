#!/usr/bin/env python3
"""make insns: the guest instructions of each timed gmem_bench window, per
page, C against Rust, and the kernel functions where the two differ.

    insns-report.py OUT [TOP]

OUT holds what run-insns.sh and qemu-insn-count.so wrote: counts.txt (per
block start, instructions per phase), kallsyms and bench.txt (the BENCH
lines, in the order their windows ran). gmem_bench runs the marker at each
clock read and its windows are pairs of reads, so phase 2i+1 is window i.
"""
import bisect
import collections
import re
import sys

# Kernel text starts here on x86-64; below it is user space (the VMM, and
# the guest's code running in L2, mapped at user addresses).
KERNEL_START = 0xFFFF800000000000
PAGE_KB = 4


def die(msg):
    sys.exit(f"insns-report: {msg}")


def load_symbols(path):
    syms = []
    for line in open(path):
        f = line.split()
        if len(f) < 3 or f[1] not in "tTwW":
            continue
        addr = int(f[0], 16)
        if addr:
            syms.append((addr, f[2] + (" " + f[3] if len(f) > 3 else "")))
    if not syms:
        die(f"{path}: no addresses (was it read as root?)")
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def short(name):
    """A Rust symbol's last path segments, demangled enough to read."""
    mod = ""
    if name.endswith("]"):
        name, mod = name.rsplit(" ", 1)
        mod = " " + mod
    if not name.startswith("_RN"):
        return name + mod
    # v0 mangling: identifiers are <length><text>; keep the readable ones.
    parts, i = [], 0
    while i < len(name):
        m = re.match(r"(\d+)", name[i:])
        if not m:
            i += 1
            continue
        n, i = int(m.group(1)), i + len(m.group(1))
        ident = name[i:i + n]
        if n and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ident):
            parts.append(ident)
        i += n
    keep = [p for p in parts if not re.fullmatch(r"[A-Z][a-z]?", p)]
    return "::".join(keep[-3:]) + mod


def main():
    if len(sys.argv) < 2:
        die("usage: insns-report.py OUT [TOP]")
    out = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    addrs, names = load_symbols(f"{out}/kallsyms")

    windows = []
    for line in open(f"{out}/bench.txt"):
        kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
        windows.append((kv["backend"], kv["workload"], int(kv["mib"])))

    phases = None
    per = collections.defaultdict(collections.Counter)
    for line in open(f"{out}/counts.txt"):
        if line.startswith("# phases"):
            phases = int(line.split()[2])
            continue
        if line.startswith("#"):
            continue
        f = line.split()
        vaddr = int(f[0], 16)
        if vaddr < KERNEL_START:
            name = "[user space]"
        else:
            i = bisect.bisect_right(addrs, vaddr) - 1
            name = names[i] if i >= 0 else "[unknown]"
        for p, c in enumerate(f[1:]):
            if c != "0":
                per[p][name] += int(c)
    if phases != 2 * len(windows) + 1:
        die(f"{phases} phases for {len(windows)} windows: the marks and the "
            "windows do not pair up (want 2 marks per window)")

    by = {}
    for i, (backend, workload, mib) in enumerate(windows):
        by[(backend, workload)] = (per[2 * i + 1], mib * 1024 // PAGE_KB)

    workloads = [w for b, w, _ in windows if b == "c" and ("rust", w) in by]
    if not workloads:
        die("no workload ran on both backends")
    print("Guest instructions per 4 KiB page, each timed window counted exactly")
    print("(QEMU TCG plugin; the same on every run, whatever the host's load)")
    print()
    print(f"{'workload':<20} {'C':>10} {'Rust':>10} {'Rust-C':>9} {'Rust/C':>8}")
    for w in workloads:
        (c, pages), (r, _) = by[("c", w)], by[("rust", w)]
        tc, tr = sum(c.values()) / pages, sum(r.values()) / pages
        print(f"{w:<20} {tc:10.1f} {tr:10.1f} {tr - tc:+9.1f} {tr / tc:8.4f}")
    # The control: the same code on both backends. Other work landing in the
    # windows (another process, a worker) would show here first.
    if "shmem-host-write" in workloads:
        (c, _), (r, _) = by[("c", "shmem-host-write")], by[("rust", "shmem-host-write")]
        drift = sum(r.values()) / sum(c.values()) - 1
        if abs(drift) > 0.001:
            print(f"\nwarning: the control row shmem-host-write differs by {drift:+.2%}: "
                  "the windows counted work that is not the workload's")
    for w in workloads:
        (c, pages), (r, _) = by[("c", w)], by[("rust", w)]
        print()
        print(f"{w}: the functions where C and Rust differ most, instructions per page")
        print(f"{'C':>9} {'Rust':>9} {'Rust-C':>9}  function")
        rows = sorted(set(c) | set(r), key=lambda n: -abs(r[n] - c[n]))
        for n in rows[:top]:
            print(f"{c[n] / pages:9.1f} {r[n] / pages:9.1f} "
                  f"{(r[n] - c[n]) / pages:+9.1f}  {short(n)}")


if __name__ == "__main__":
    main()
