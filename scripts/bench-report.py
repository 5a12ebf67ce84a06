#!/usr/bin/env python3
"""Summarise gmem_bench and gmem_stress_test -b output: median per workload,
size and backend, the spread across rounds, the Rust/C ratio of the medians,
and memory left behind; with a second file from a QEMU -icount boot, the same
in instruction-count time next to it.

    bench-report.py BENCH_TXT [ICOUNT_TXT] [--markdown]

A row is a time (ms=, lower is better) or a rate (rate=, per second, higher is
better). The spread is (max - min) / median over the rounds.
"""
import statistics
import sys
from collections import defaultdict

ORDER = ["allocate", "floor-allocate", "floor-allocate-zero", "fault-in", "fault-in-v2", "punch-4k", "convert-4k",
         "convert-large", "floor", "host-write", "huge-host-write", "shmem-host-write", "mfd-allocate",
         "shmem-allocate", "mfd-fault-in",
         "mfd-punch-4k", "shmem-punch-4k", "huge-allocate", "huge-fault-in", "huge-punch-4k",
         "huge-punch-alt", "ndm-fault-in", "huge-ndm-fault-in", "populate-memcpy", "populate-write",
         "populate-memcpy-ndm", "populate-write-ndm", "roundtrip-punch-4k", "roundtrip-inplace-4k",
         "roundtrip-punch-2m", "roundtrip-inplace-2m", "shared-fault-in", "huge-shared-fault-in"]
# Rows and their floors: guest_memfd allocation against the page allocator
# alone; fault-in against allocating and zeroing (6.12 zeroes a page at its
# first fault, not at fallocate); the VMM's first touch of a mapped guest_memfd
# against a plain shmem memfd's;
# MFD_INACCESSIBLE workloads against plain shmem (the memfd rows run the same
# code in C and Rust rounds: their Rust/C ratio is the noise).
FLOORS = [("allocate", "floor-allocate"), ("fault-in", "floor-allocate-zero"),
          ("host-write", "shmem-host-write"),
          ("mfd-allocate", "shmem-allocate"), ("mfd-punch-4k", "shmem-punch-4k")]
# 2 MiB-folio rows (gmem_rs only) and the 4 KiB rows of both backends they
# are measured against.
HUGE = [("huge-allocate", "allocate"), ("huge-fault-in", "fault-in"),
        ("huge-punch-4k", "punch-4k"), ("huge-shared-fault-in", "shared-fault-in"),
        ("huge-host-write", "host-write")]
# Secret-free rows against the rows without the flag (or without write()),
# each backend against itself.
SECRET = [("ndm-fault-in", "fault-in"), ("huge-ndm-fault-in", "huge-fault-in"),
          ("populate-write", "populate-memcpy"), ("populate-memcpy-ndm", "populate-memcpy"),
          ("populate-write-ndm", "populate-memcpy-ndm")]
# In-place conversion round trips against 6.12's attribute + punch + refault
# flow (rates: how many times more per second).
ROUNDTRIP = [("roundtrip-inplace-4k", "roundtrip-punch-4k"),
             ("roundtrip-inplace-2m", "roundtrip-punch-2m")]
# Rows whose cost per 4 KiB page is shown across sizes.
SCALING = ["allocate", "fault-in", "punch-4k"]


# Fields of a row that are not its value: the rest (pages_2m=, returned_kb=,
# ...) are facts about the last round, shown with the HUGE lines.
COMMON = {"backend", "workload", "mib", "ms", "rate", "leaked_kb"}
extra = {}


def parse(path):
    runs = defaultdict(list)
    leaked = defaultdict(int)
    unit = {}
    if not path:
        return runs, leaked, unit
    with open(path) as f:
        for line in f:
            if not line.startswith("BENCH "):
                continue
            kv = dict(w.split("=", 1) for w in line.split()[1:])
            key = (kv["workload"], int(kv["mib"]), kv["backend"])
            is_rate = "rate" in kv
            value = float(kv["rate"] if is_rate else kv["ms"])
            u = "/s" if is_rate else "ms"
            # Times of one operation, given in ms, read better in us.
            if kv["workload"].endswith("-us"):
                value, u = value * 1000, "us"
            runs[key].append(value)
            extra[key] = {k: v for k, v in kv.items() if k not in COMMON}
            leaked[key] = max(leaked[key], int(kv["leaked_kb"]))
            unit[key[:2]] = u
    return runs, leaked, unit


def stats(v):
    if not v:
        return None
    m = statistics.median(v)
    return m, (max(v) - min(v)) / m * 100 if m else 0.0


def sort_key(row):
    w, mib = row
    base = w.split(":")[0]
    return (ORDER.index(base) if base in ORDER else len(ORDER), base, mib, w)


def fmt(x, width, prec=1):
    return ("%*.*f" % (width, prec, x)) if x is not None else "%*s" % (width, "-")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in sys.argv
    wall, leaked, unit = parse(args[0])
    icount, leaked_i, unit_i = parse(args[1] if len(args) > 1 else None)
    unit.update({k: v for k, v in unit_i.items() if k not in unit})
    rows = sorted(unit, key=sort_key)
    out = []
    for w, mib in rows:
        cells = []
        for runs in (wall, icount):
            c, r = stats(runs.get((w, mib, "c"), [])), stats(runs.get((w, mib, "rust"), []))
            ratio = r[0] / c[0] if c and r and c[0] else None
            cells.append((c, r, ratio))
        n = len(wall.get((w, mib, "c"), []))
        ni = len(icount.get((w, mib, "c"), []))
        lk = max(leaked[(w, mib, b)] for b in ("c", "rust"))
        lk = max(lk, max(leaked_i[(w, mib, b)] for b in ("c", "rust")))
        out.append((w, mib, unit[(w, mib)], cells, lk, n, ni))

    def num(x, prec=1):
        if x is None:
            return "-"
        # Three significant digits at least: small times (us) and ratios alike.
        if prec == 1 and abs(x) < 10:
            prec = 3 if abs(x) < 1 else 2
        return "%.*f" % (prec, x)

    def cells_txt(cells):
        txt = []
        for c, r, ratio in cells:
            for s in (c, r):
                txt += [num(s[0]), num(s[1], 0)] if s else ["-", "-"]
            txt.append(num(ratio, 2))
        return txt

    head = ["workload", "MiB", "unit", "C", "±%", "Rust", "±%", "Rust/C",
            "C icount", "±%", "Rust icount", "±%", "Rust/C icount", "leaked KiB"]
    widths = [28, 5, 4, 9, 4, 9, 4, 6, 9, 4, 11, 4, 13, 10]
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
    else:
        print(" ".join("%*s" % (-wd if i == 0 else wd, h) for i, (h, wd) in
                       enumerate(zip(head, widths))))
    for w, mib, u, cells, lk, n, ni in out:
        row = [w, str(mib) if mib else "-", u] + cells_txt(cells) + [str(lk)]
        if markdown:
            print("| " + " | ".join(row) + " |")
        else:
            print(" ".join("%*s" % (-wd if i == 0 else wd, c) for i, (c, wd) in
                           enumerate(zip(row, widths))))
    if not markdown and out:
        print("(medians of %d rounds per backend, C and Rust alternating in one boot; "
              "%d rounds in the -icount boot. ms: lower is better; /s: higher is better. "
              "±%%: spread, (max-min)/median)" % (out[0][5], out[0][6]))
        for w, mib, u, ((c, r, ratio), (ci, ri, ratio_i)), lk, n, ni in out:
            print("BENCHRESULT workload=%s mib=%d unit=%s c_median=%s rust_median=%s "
                  "ratio=%s icount_ratio=%s leaked_kb=%d" % (
                      w, mib, u, "%.1f" % c[0] if c else "-", "%.1f" % r[0] if r else "-",
                      "%.3f" % ratio if ratio else "-", "%.3f" % ratio_i if ratio_i else "-",
                      lk))

    # SCALING and FLOOR lines from the -icount pass when there is one: it repeats.
    src, src_name = (icount, "icount") if icount else (wall, "wall clock")

    # Cost per 4 KiB page across sizes: flat when the cost is linear.
    for w in SCALING:
        sizes = sorted(m for (x, m) in unit if x == w)
        if len(sizes) < 2:
            continue
        parts = []
        for mib in sizes:
            per = []
            for b in ("c", "rust"):
                s = stats(src.get((w, mib, b), []))
                per.append("%.2f" % (s[0] * 1000 / (mib * 256)) if s else "-")
            parts.append("%d MiB %s/%s" % (mib, per[0], per[1]))
        line = "%s, us per page C/Rust (%s): %s" % (w, src_name, ", ".join(parts))
        print(("- " + line) if markdown else ("SCALING " + line))

    # Each backend's median over the floor's (both backends' rounds: a floor
    # runs the same code in each).
    for w, floor in FLOORS:
        for mib in sorted(m for (x, m) in unit if x == w):
            f = stats(src.get((floor, mib, "c"), []) + src.get((floor, mib, "rust"), []))
            parts = []
            for b in ("c", "rust"):
                m = stats(src.get((w, mib, b), []))
                if m and f:
                    parts.append("%s %.1f / %.1f ms = %.2f" % (b, m[0], f[0], m[0] / f[0]))
            if parts:
                line = "%s %d MiB against %s (%s): %s" % (w, mib, floor, src_name,
                                                         "; ".join(parts))
                print(("- " + line) if markdown else ("FLOOR " + line))

    # Each backend's secret-free row over its own row without: 1.10 is 10% dearer.
    for runs, name in ((wall, "wall clock"), (icount, "icount")):
        for w, base in SECRET:
            for mib in sorted(m for (x, m) in unit if x == w):
                parts = []
                for b in ("c", "rust"):
                    m, f = stats(runs.get((w, mib, b), [])), stats(runs.get((base, mib, b), []))
                    if m and f and f[0]:
                        parts.append("%s %.1f / %.1f ms = %.2f" % (b, m[0], f[0], m[0] / f[0]))
                facts = "; ".join("%s %s" % (b, " ".join("%s=%s" % kv for kv in e.items()))
                                  for b in ("c", "rust")
                                  for e in [extra.get((w, mib, b), {})] if e)
                if parts:
                    line = "%s %d MiB against %s (%s): %s%s" % (
                        w, mib, base, name, "; ".join(parts), " (" + facts + ")" if facts else "")
                    print(("- " + line) if markdown else ("SECRET " + line))

    for runs, name in ((wall, "wall clock"), (icount, "icount")):
        for w, base in ROUNDTRIP:
            for mib in sorted(m for (x, m) in unit if x == w):
                m = stats(runs.get((w, mib, "rust"), []))
                if not m:
                    continue
                parts = ["Rust in place %.1f/s" % m[0]]
                for b in ("rust", "c"):
                    f = stats(runs.get((base, mib, b), []))
                    if f and f[0]:
                        parts.append("%s 6.12 flow %.1f/s (%.2f times)" % (b, f[0], m[0] / f[0]))
                line = "%s against %s (%s): %s" % (w, base, name, "; ".join(parts))
                print(("- " + line) if markdown else ("ROUNDTRIP " + line))

    # 2 MiB folios against 4 KiB ones: how many times faster, per clock.
    for runs, name in ((wall, "wall clock"), (icount, "icount")):
        for w, base in HUGE:
            for mib in sorted(m for (x, m) in unit if x == w):
                h = stats(runs.get((w, mib, "rust"), []))
                if not h:
                    continue
                parts = ["Rust 2 MiB %.1f ms" % h[0]]
                for b, label in (("c", "C 4 KiB"), ("rust", "Rust 4 KiB")):
                    m = stats(runs.get((base, mib, b), []))
                    if m and h[0]:
                        parts.append("%s %.1f ms: %.1fx" % (label, m[0], m[0] / h[0]))
                facts = " ".join("%s=%s" % kv for kv in extra.get((w, mib, "rust"), {}).items())
                line = "%s %d MiB (%s): %s%s" % (w, mib, name, "; ".join(parts),
                                                 " (" + facts + ")" if facts else "")
                print(("- " + line) if markdown else ("HUGE " + line))
        for mib in sorted(m for (x, m) in unit if x == "huge-punch-alt"):
            e = extra.get(("huge-punch-alt", mib, "rust"), {})
            if runs.get(("huge-punch-alt", mib, "rust")) and "returned_kb" in e:
                line = "huge-punch-alt %d MiB (%s): every other 4 KiB page punched: %s kB returned of %d kB " \
                       "punched" % (mib, name, e["returned_kb"], mib * 512)
                print(("- " + line) if markdown else ("HUGE " + line))
    return 0 if out else 1


if __name__ == "__main__":
    sys.exit(main())
