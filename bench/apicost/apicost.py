#!/usr/bin/env python3
"""The kalloc API in front of a library against the library's own entry
points (issue 12, target 6), on one loop that only allocates and frees.

    bench/apicost/apicost.py [--build DIR] [--iters N]          instructions
    bench/apicost/apicost.py [--build DIR] --time [--rounds R]  wall time
    bench/apicost/apicost.py [--build DIR] --smoke              a quick run

For each library backend (jemalloc, tcmalloc, mimalloc) it runs
kalloc_alloc/kalloc_free and kmalloc/kfree on that backend and the
library's own pair (mallocx/dallocx, tc_malloc/tc_free, mi_malloc/mi_free);
slab's two rows are there for reference.  Instructions are counted by
callgrind over the subject's loop alone (run_SUBJECT), per pair, as the
difference of a run of 2N and one of N turns, so the filling and emptying
of the slots cancel out.  --time reports the median of R interleaved runs
of every subject, nanoseconds per pair.  Ratios are kalloc (or kmalloc)
over the library's own pair: the target is 1.05 or less.
"""
import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile

LIBRARIES = ["jemalloc", "tcmalloc", "mimalloc"]


def environment(build):
    env = dict(os.environ, KALLOC_TOOLS="0")
    dirs = sorted(glob.glob(os.path.join(os.path.abspath(build), "plugins", "*", "")))
    env["KALLOC_PLUGIN_PATH"] = ":".join(dirs + [env.get("KALLOC_PLUGIN_PATH", "")])
    # jemalloc's initial-exec TLS: what `kalloc run` sets for a dlopen'ed one
    env["GLIBC_TUNABLES"] = "glibc.rtld.optional_static_tls=16384"
    return env


def subjects(build):
    """(label, exe, subject, backend) for every row that can run."""
    d = os.path.join(build, "bench", "apicost")
    rows = []
    kexe = os.path.join(d, "kalloc-bench-apicost")
    if not os.access(kexe, os.X_OK):
        sys.exit("apicost.py: %s is not built" % kexe)
    for lib in LIBRARIES + ["slab"]:
        lexe = os.path.join(d, "kalloc-bench-apicost-" + lib)
        if lib != "slab" and not os.access(lexe, os.X_OK):
            continue  # the library was not found at configure time
        for sub in ("kalloc", "kmalloc"):
            rows.append(("%s on %s" % (sub, lib), kexe, sub, lib))
        if lib != "slab":
            rows.append(("%s's own" % lib, lexe, lib, None))
    return rows


def run(exe, sub, backend, iters, env, prefix=()):
    e = dict(env)
    if backend:
        e["KALLOC_BACKEND"] = backend
    r = subprocess.run(list(prefix) + [exe, sub, str(iters)], env=e,
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit("apicost.py: %s %s failed:\n%s%s" % (exe, sub, r.stdout, r.stderr))
    if backend and ("backend %s\n" % backend) not in r.stdout:
        sys.exit("apicost.py: %s ran on another backend than %s:\n%s%s"
                 % (sub, backend, r.stdout, r.stderr))
    return r


def instructions(exe, sub, backend, iters, env):
    counts = []
    for n in (iters, 2 * iters):
        with tempfile.NamedTemporaryFile(suffix=".cg") as out:
            r = run(exe, sub, backend, n, env,
                    ["valgrind", "--tool=callgrind",
                     "--callgrind-out-file=" + out.name,
                     "--toggle-collect=run_" + sub])
            m = re.search(r"Collected : (\d+)", r.stderr)
            if not m:
                sys.exit("apicost.py: no count from callgrind:\n" + r.stderr)
            counts.append(int(m.group(1)))
    return (counts[1] - counts[0]) / iters


def wall(exe, sub, backend, iters, env):
    out = run(exe, sub, backend, iters, env).stdout
    return float(re.search(r"([0-9.]+) ns/pair", out).group(1))


def report(rows, value, unit):
    print("%-22s %10s  %s" % ("subject", unit, "ratio to the library's own"))
    for label, exe, sub, backend in rows:
        own = value.get("%s's own" % backend)
        ratio = "%.2f" % (value[label] / own) if own else ""
        print("%-22s %10.1f  %s" % (label, value[label], ratio))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--iters", type=int, default=0)
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    env = environment(a.build)
    rows = subjects(a.build)
    if a.smoke:
        for label, exe, sub, backend in rows:
            run(exe, sub, backend, 10000, env)
            print("ok  %s" % label)
        return
    if a.time:
        iters = a.iters or 5000000
        runs = {r[0]: [] for r in rows}
        for _ in range(a.rounds):
            for label, exe, sub, backend in rows:
                runs[label].append(wall(exe, sub, backend, iters, env))
        print("median of %d interleaved runs, %d pairs each" % (a.rounds, iters))
        report(rows, {k: statistics.median(v) for k, v in runs.items()}, "ns/pair")
        return
    iters = a.iters or 100000
    print("instructions per pair (callgrind), random 8-512 B, 4096 live")
    report(rows, {r[0]: instructions(r[1], r[2], r[3], iters, env) for r in rows},
           "Ir/pair")


if __name__ == "__main__":
    main()
