#!/usr/bin/env python3
"""Merge benchmark outputs into one table.

Reads the outputs of bench_core and bench/peers/asyncio_core.py (and of any
other bench program that prints the same lines; files, or stdin when none is
given) and keeps their machine-readable lines

    RESULT <workload> <impl> <metric> <value>

then prints: wall and CPU time per operation for corio, Asio and asyncio with
the ratios Asio/corio and asyncio/corio (> 1 means corio is faster); heap allocations per
operation; RSS of many live sleeping tasks; operator new calls per spawn+join.

    bench/report.py bench_core.txt asyncio_core.txt
    bench/report.py --markdown bench_core.txt asyncio_core.txt   # for docs/performance.md

Standard library only (Python 3.11).
"""

import argparse
import sys

TIMED = ["spawn_join_all", "spawn_join_one", "await_ready", "sleep_random", "allocs_spawn_join"]
DESCRIPTION = {
    "spawn_join_all": "spawn N trivial tasks, then join each",
    "spawn_join_one": "spawn one task, join it; repeat",
    "await_ready": "await a child that completes at once",
    "sleep_random": "N tasks sleep 0-10 ms (wall / N)",
    "allocs_spawn_join": "steady-state spawn+join (alloc count)",
}


def parse(lines, data, order):
    for line in lines:
        parts = line.split()
        if len(parts) != 5 or parts[0] != "RESULT":
            continue
        _, workload, impl, metric, value = parts
        try:
            v = float(value)
        except ValueError:
            continue
        if workload not in order:
            order.append(workload)
        data.setdefault(workload, {}).setdefault(impl, {})[metric] = v


def get(data, w, impl, metric):
    return data.get(w, {}).get(impl, {}).get(metric)


def fmt_num(v, spec):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


class Table:
    def __init__(self, headers, markdown):
        self.headers = headers
        self.rows = []
        self.markdown = markdown

    def add(self, row):
        self.rows.append([str(c) for c in row])

    def render(self):
        if not self.rows:
            return ""
        if self.markdown:
            out = ["| " + " | ".join(self.headers) + " |",
                   "|" + "|".join("---" if i == 0 else "--:" for i in range(len(self.headers))) + "|"]
            out += ["| " + " | ".join(r) + " |" for r in self.rows]
            return "\n".join(out)
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) for i, h in enumerate(self.headers)]
        line = lambda cells: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                                       for i, c in enumerate(cells))
        out = [line(self.headers), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows]
        return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description="Merge RESULT lines into a comparison table.")
    ap.add_argument("files", nargs="*", help="benchmark outputs (default: stdin)")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = ap.parse_args()

    data, order = {}, []
    if args.files:
        for f in args.files:
            with open(f, encoding="utf-8", errors="replace") as fh:
                parse(fh, data, order)
    else:
        parse(sys.stdin, data, order)
    if not data:
        sys.exit("report.py: no RESULT lines found")

    md = args.markdown
    sections = []

    t = Table(["workload", "N", "corio ns/op", "Asio ns/op", "asyncio ns/op",
               "Asio/corio", "asyncio/corio"], md)
    for w in TIMED:
        if w not in data:
            continue
        c = get(data, w, "corio", "ns_per_op")
        a = get(data, w, "asio", "ns_per_op")
        p = get(data, w, "asyncio", "ns_per_op")
        n = get(data, w, "corio", "n") or get(data, w, "asio", "n")
        pn = get(data, w, "asyncio", "n")
        n_text = fmt_num(n, ",.0f")
        if pn is not None and n is not None and pn != n:
            n_text += f" (asyncio {pn:,.0f})"
        t.add([w, n_text, fmt_num(c, ".1f"), fmt_num(a, ".1f"), fmt_num(p, ".1f"),
               fmt_num(ratio(a, c), ".2f"), fmt_num(ratio(p, c), ".1f")])
    sections.append(("Wall time per operation (median of repetitions; ratio > 1: corio is faster)", t))

    t = Table(["workload", "corio cpu ns/op", "Asio cpu ns/op", "asyncio cpu ns/op",
               "Asio/corio", "asyncio/corio"], md)
    for w in TIMED:
        c = get(data, w, "corio", "cpu_ns_per_op")
        a = get(data, w, "asio", "cpu_ns_per_op")
        p = get(data, w, "asyncio", "cpu_ns_per_op")
        if c is None and a is None and p is None:
            continue
        t.add([w, fmt_num(c, ".1f"), fmt_num(a, ".1f"), fmt_num(p, ".1f"),
               fmt_num(ratio(a, c), ".2f"), fmt_num(ratio(p, c), ".1f")])
    sections.append(("CPU time per operation (this thread, user + system; median; "
                     "less disturbed by a busy machine)", t))

    t = Table(["workload", "corio allocs/op", "Asio allocs/op", "corio bytes/op", "Asio bytes/op"], md)
    for w in TIMED:
        if w not in data or (get(data, w, "corio", "allocs_per_op") is None
                             and get(data, w, "asio", "allocs_per_op") is None):
            continue
        t.add([w, fmt_num(get(data, w, "corio", "allocs_per_op"), ".3f"),
               fmt_num(get(data, w, "asio", "allocs_per_op"), ".3f"),
               fmt_num(get(data, w, "corio", "alloc_bytes_per_op"), ".1f"),
               fmt_num(get(data, w, "asio", "alloc_bytes_per_op"), ".1f")])
    sections.append(("Allocations per operation (global operator new + aligned_alloc + mmap "
                     "calls, last repetition)", t))

    t = Table(["impl", "live tasks", "RSS before MiB", "RSS peak MiB", "bytes/task",
               "VmHWM until all slept", "VmHWM incl. cancel-all", "RSS after MiB", "spawn+start ns/task (cpu)", "cancel+join ns/task (cpu)"], md)
    for impl in ("corio", "asio"):
        if get(data, "rss_sleepers", impl, "failed"):
            t.add([impl, fmt_num(get(data, "rss_sleepers", impl, "n"), ",.0f"), "failed"] + [""] * 7)
            continue
        if get(data, "rss_sleepers", impl, "n") is None:
            continue
        t.add([impl, fmt_num(get(data, "rss_sleepers", impl, "n"), ",.0f"),
               fmt_num(get(data, "rss_sleepers", impl, "rss_base_mib"), ".1f"),
               fmt_num(get(data, "rss_sleepers", impl, "rss_peak_mib"), ".1f"),
               fmt_num(get(data, "rss_sleepers", impl, "bytes_per_task"), ".0f"),
               fmt_num(get(data, "rss_sleepers", impl, "hwm_live_mib"), ".1f"),
               fmt_num(get(data, "rss_sleepers", impl, "hwm_mib"), ".1f"),
               fmt_num(get(data, "rss_sleepers", impl, "rss_after_mib"), ".1f"),
               fmt_num(get(data, "rss_sleepers", impl, "spawn_ns_per_task"), ".1f") + " ("
               + fmt_num(get(data, "rss_sleepers", impl, "spawn_cpu_ns_per_task"), ".1f") + ")",
               fmt_num(get(data, "rss_sleepers", impl, "teardown_ns_per_task"), ".1f") + " ("
               + fmt_num(get(data, "rss_sleepers", impl, "teardown_cpu_ns_per_task"), ".1f") + ")"])
    sections.append(("Memory: live sleeping spawned tasks (fresh process each; "
                     "RSS after = once the loop has ended)", t))

    # Workloads of other bench programs (bench_gather, bench_cancel, ...), which
    # print the same RESULT lines: one row per implementation, ratios to corio.
    t = Table(["workload", "impl", "ns/op", "cpu ns/op", "impl/corio (wall)", "impl/corio (cpu)"], md)
    for w in order:
        if w in TIMED or w == "rss_sleepers":
            continue
        impls = data[w]
        cw = get(data, w, "corio", "ns_per_op")
        cc = get(data, w, "corio", "cpu_ns_per_op")
        for impl, metrics in impls.items():
            nw, nc = metrics.get("ns_per_op"), metrics.get("cpu_ns_per_op")
            if nw is None and nc is None:
                continue
            is_corio = impl == "corio"
            t.add([w, impl, fmt_num(nw, ".1f"), fmt_num(nc, ".1f"),
                   "" if is_corio else fmt_num(ratio(nw, cw), ".2f"),
                   "" if is_corio else fmt_num(ratio(nc, cc), ".2f")])
    sections.append(("Other workloads (ratio > 1: corio is faster)", t))

    for title, table in sections:
        body = table.render()
        if not body:
            continue
        print(("### " if md else "== ") + title)
        print()
        print(body)
        print()

    lines = []
    for impl in ("corio", "asio"):
        v = get(data, "allocs_spawn_join", impl, "new_calls_per_op")
        if v is None:
            continue
        al = get(data, "allocs_spawn_join", impl, "aligned_alloc_calls_per_op") or 0.0
        mm = get(data, "allocs_spawn_join", impl, "mmap_calls_per_op") or 0.0
        lines.append(f"operator new calls per spawn+join ({impl}): {v:.3f}"
                     f"  (aligned_alloc calls: {al:.4f}, mmap calls: {mm:.4f})")
    if lines:
        print(("### " if md else "== ") + "Steady-state allocations")
        print()
        for l in lines:
            print(("- " if md else "") + l)
        print()
    ar = get(data, "await_ready", "asyncio", "n")
    ac = get(data, "await_ready", "corio", "n")
    if ar is not None and ac is not None and ar != ac:
        print(f"note: asyncio's await_ready used N = {ar:,.0f} (C++: {ac:,.0f}); ns/op is per await.")


if __name__ == "__main__":
    main()
