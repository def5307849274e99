#!/usr/bin/env python3
"""What a `kalloc run` user gets: allocation-only programs (progs.c) under
glibc, the three libraries preloaded, and `kalloc run -b BACKEND`, side by
side.

    bench/preload/run.py [--build DIR] [--rounds N] [--scale N]
                         [--only W,..] [--callgrind] [--md FILE]

Each round runs every subject once on every workload, in an order shuffled
per round (the machine is shared: interleaving spreads its noise evenly);
the table shows each subject's median CPU seconds (user + system; wall
seconds for xthread, whose consumer spins while it waits), its peak RSS,
and both as ratios against the best of the four peers on that workload.
--callgrind adds the instructions per malloc/free pair of the tight loop,
counted by valgrind's callgrind (stable on a noisy machine): the
difference of two runs of N and 2N iterations, divided by N.
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import time

LIB = "/usr/lib/x86_64-linux-gnu"
TLS = "glibc.rtld.optional_static_tls=16384"
PEERS = {
    "glibc": {},
    "jemalloc": {"LD_PRELOAD": f"{LIB}/libjemalloc.so.2", "GLIBC_TUNABLES": TLS},
    "tcmalloc": {"LD_PRELOAD": f"{LIB}/libtcmalloc_minimal.so.4"},
    "mimalloc": {"LD_PRELOAD": f"{LIB}/libmimalloc.so.2"},
}
KALLOC = ["slab", "kv", "page", "jemalloc", "tcmalloc", "mimalloc"]
WORKLOADS = ["tight", "tight2", "xthread", "memalign", "large", "grow"]
WALL = {"xthread"}


def subjects(build):
    out = [(name, env, []) for name, env in PEERS.items()]
    kalloc = os.path.join(build, "src", "cli", "kalloc")
    for b in KALLOC:
        out.append((f"kalloc:{b}", {}, [kalloc, "run", "-b", b, "--"]))
    return out


def run_once(prefix, env, prog, workload, scale):
    """(cpu seconds, wall seconds, peak RSS KiB) of one run."""
    e = dict(os.environ)
    e.update(env)
    t0 = time.perf_counter()
    p = subprocess.Popen(prefix + [prog, workload, str(scale)], env=e,
                         stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"{' '.join(prefix)} {workload}: exit status {status}")
    rss = [int(l.split()[1]) for l in out.splitlines() if l.startswith("peak_rss_kib")]
    if not rss:
        raise RuntimeError(f"{' '.join(prefix)} {workload}: no peak_rss_kib line")
    return ru.ru_utime + ru.ru_stime, wall, rss[0]


def callgrind_pair(prefix, env, prog):
    """Instructions per iteration of the tight loop (see the top)."""
    def count(n):
        e = dict(os.environ)
        e.update(env)
        out = subprocess.run(prefix + ["valgrind", "--tool=callgrind",
                                       "--callgrind-out-file=/dev/null",
                                       prog, "tight", "1", str(n)],
                             env=e, capture_output=True, text=True)
        for line in out.stderr.splitlines():
            if "Collected" in line:
                return int(line.split()[-1])
        raise RuntimeError(f"callgrind: no count for {prefix}: {out.stderr[-300:]}")
    n = 100000
    return (count(2 * n) - count(n)) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--md")
    a = ap.parse_args()
    prog = os.path.join(a.build, "bench", "preload", "kalloc-preload-prog")
    if not os.access(prog, os.X_OK):
        sys.exit(f"run.py: {prog} not found: build first (meson setup {a.build} "
                 f"&& ninja -C {a.build})")
    works = a.only.split(",")
    subs = subjects(a.build)
    res = {(w, s[0]): [] for w in works for s in subs}
    rng = random.Random(42)
    for r in range(a.rounds):
        order = [(w, s) for w in works for s in subs]
        rng.shuffle(order)
        for w, (name, env, prefix) in order:
            res[(w, name)].append(run_once(prefix, env, prog, w, a.scale))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

    lines = [f"median of {a.rounds} interleaved rounds, scale {a.scale}; "
             "time = CPU seconds (wall for xthread); x = / best peer", ""]
    head = "| subject | " + " | ".join(f"{w} time (x) | RSS MiB (x)" for w in works) + " |"
    lines += [head, "|" + "---|" * (1 + 2 * len(works))]
    med = {}
    for (w, name), runs in res.items():
        t = statistics.median(x[1] if w in WALL else x[0] for x in runs)
        m = statistics.median(x[2] for x in runs) / 1024
        med[(w, name)] = (t, m)
    for name, _, _ in subs:
        cells = []
        for w in works:
            best_t = min(med[(w, p)][0] for p in PEERS)
            best_m = min(med[(w, p)][1] for p in PEERS)
            t, m = med[(w, name)]
            cells.append(f"{t:.3f} ({t / best_t:.2f})")
            cells.append(f"{m:.1f} ({m / best_m:.2f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    if a.callgrind:
        lines += ["", "instructions per iteration of `tight` (callgrind; the "
                  "loop's own work is about 25):", "",
                  "| subject | instructions | x best peer |", "|---|---|---|"]
        counts = {name: callgrind_pair(prefix, env, prog) for name, env, prefix in subs
                  if name != "kalloc:page"}
        best = min(counts[p] for p in PEERS)
        for name, c in counts.items():
            lines.append(f"| {name} | {c:.0f} | {c / best:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
