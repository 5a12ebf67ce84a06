#!/usr/bin/env python3
"""make insns: the guest instructions of each timed gmem_bench window, per
page, C against Rust, and the kernel functions where the two differ.

    insns-report.py OUT [TOP]

OUT holds what run-insns.sh and qemu-insn-count.so wrote: counts.txt (per
block start, instructions per phase), kallsyms and bench.txt ("MARK alone",
then the BENCH lines in the order their windows ran: C, Rust, C, Rust).
Of each backend's two runs of a window, the smaller count is taken: work
outside the workload only ever adds to a window.
Phase 1 lies between two marks with nothing else; gmem_bench runs the
marker at each clock read and its windows are pairs of reads, so phase
2i+3 is window i.
"""
import bisect
import collections
import re
import subprocess
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


def demangle(names):
    """Rust symbols as paths, by binutils' c++filt, crate hashes dropped."""
    rust = sorted({n.split(" ")[0] for n in names if n.startswith("_R")})
    plain = {}
    if rust:
        try:
            res = subprocess.run(["c++filt"], input="\n".join(rust), capture_output=True,
                                 text=True, check=True)
            plain = dict(zip(rust, res.stdout.splitlines()))
        except (OSError, subprocess.CalledProcessError):
            pass
    out = {}
    for n in names:
        sym, _, mod = n.partition(" ")
        readable = re.sub(r"\[[0-9a-f]{16}\]", "", plain.get(sym, sym))
        out[n] = readable + (" " + mod if mod else "")
    return out


def main():
    if len(sys.argv) < 2:
        die("usage: insns-report.py OUT [TOP]")
    out = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    addrs, names = load_symbols(f"{out}/kallsyms")

    windows = []
    lines = open(f"{out}/bench.txt").read().splitlines()
    if not lines or lines[0] != "MARK alone":
        die(f"{out}/bench.txt does not start with the marks' calibration")
    for line in lines[1:]:
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
    if phases != 2 * len(windows) + 3:
        die(f"{phases} phases for {len(windows)} windows: the marks and the "
            "windows do not pair up (want 2 marks per window, and 2 first)")

    # (backend, workload) -> [(counts, pages)], one per run, in order.
    by = collections.defaultdict(list)
    for i, (backend, workload, mib) in enumerate(windows):
        by[(backend, workload)].append((per[2 * i + 3], mib * 1024 // PAGE_KB))

    workloads = []
    for b, w, _ in windows:
        if b == "c" and w not in workloads and all(len(by[(x, w)]) == 2 for x in ("c", "rust")):
            workloads.append(w)
    if not workloads:
        die("no workload ran twice on each backend")

    def best(backend, w):
        """The run with fewer instructions, and the two runs' spread."""
        runs = [(sum(x.values()), x, pages) for x, pages in by[(backend, w)]]
        runs.sort(key=lambda r: r[0])
        return runs[0][1], runs[0][2], runs[1][0] / runs[0][0] - 1

    print("Guest instructions per 4 KiB page, each timed window counted exactly")
    print("(QEMU TCG plugin; the same on every run, whatever the host's load).")
    print(f"A window holds about one run of the marker: {sum(per[1].values()):,} "
          "instructions, the same for both backends.")
    print()
    print(f"{'workload':<20} {'C':>10} {'Rust':>10} {'Rust-C':>9} {'Rust/C':>8} "
          f"{'C ±':>7} {'Rust ±':>7}")
    for w in workloads:
        (c, pages, sc), (r, _, sr) = best("c", w), best("rust", w)
        tc, tr = sum(c.values()) / pages, sum(r.values()) / pages
        print(f"{w:<20} {tc:10.1f} {tr:10.1f} {tr - tc:+9.1f} {tr / tc:8.4f} "
              f"{sc:7.2%} {sr:7.2%}")
    print("(±: how much more the other run of the same backend counted)")
    # The control: the same code on both backends. Other work landing in the
    # windows (another process, a worker) would show here first.
    if "shmem-host-write" in workloads:
        (c, _, _), (r, _, _) = (best(b, "shmem-host-write") for b in ("c", "rust"))
        drift = sum(r.values()) / sum(c.values()) - 1
        if abs(drift) > 0.001:
            print(f"\nwarning: the control row shmem-host-write differs by {drift:+.2%}: "
                  "the windows counted work that is not the workload's")
    for w in workloads:
        (c, pages, _), (r, _, _) = best("c", w), best("rust", w)
        print()
        print(f"{w}: the functions where C and Rust differ most, instructions per page")
        print(f"{'C':>9} {'Rust':>9} {'Rust-C':>9}  function")
        rows = sorted(set(c) | set(r), key=lambda n: -abs(r[n] - c[n]))[:top]
        names = demangle(rows)
        for n in rows:
            print(f"{c[n] / pages:9.1f} {r[n] / pages:9.1f} "
                  f"{(r[n] - c[n]) / pages:+9.1f}  {names[n]}")


if __name__ == "__main__":
    main()
