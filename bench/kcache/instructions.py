#!/usr/bin/env python3
"""kalloc-bench-kcache's subjects in instructions (callgrind), for when wall
time is too noisy to trust: the same loops, counted instead of timed.

    bench/kcache/instructions.py [--build DIR] [--iters N] [--size BYTES]

Each subject's loop function (run_kmalloc, run_cache, ...) is counted
alone (callgrind --toggle-collect) in one run of one round; the report is
instructions per object and the ratios of #11's targets.  The backend is
KALLOC_BACKEND's (default slab); the plugins come from the build tree.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

SUBJECTS = ["kmalloc", "cache", "cache_ctor", "emul", "bulk16", "single16"]
RATIOS = [("cache / kmalloc", "cache", "kmalloc", 1.0),
          ("cache+ctor / emul+ctor", "cache_ctor", "emul", 0.5),
          ("cache / emul+ctor", "cache", "emul", 0.5),
          ("bulk16 / single16", "bulk16", "single16", 0.5)]


def count(exe, env, subject, iters, size):
    with tempfile.NamedTemporaryFile(suffix=".cg") as out:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out.name,
               "--toggle-collect=run_" + subject, exe, "--rounds", "1",
               "--iters", str(iters), "--size", str(size)]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        m = re.search(r"Collected : (\d+)", r.stderr)
        if r.returncode or not m:
            sys.exit("instructions.py: %s failed:\n%s" % (" ".join(cmd), r.stderr))
        return int(m.group(1)) / iters  # every subject handles iters objects


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--iters", type=int, default=100000)
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()
    exe = os.path.join(a.build, "bench", "kcache", "kalloc-bench-kcache")
    if not os.access(exe, os.X_OK):
        sys.exit("instructions.py: %s is not built" % exe)
    env = dict(os.environ, KALLOC_TOOLS="0")
    dirs = sorted(glob.glob(os.path.join(os.path.abspath(a.build), "plugins", "*", "")))
    env["KALLOC_PLUGIN_PATH"] = ":".join(dirs + [env.get("KALLOC_PLUGIN_PATH", "")])
    ir = {s: count(exe, env, s, a.iters, a.size) for s in SUBJECTS}
    print("object caches, %d-byte objects, instructions per object (callgrind)"
          % a.size)
    for s in SUBJECTS:
        print("  %-12s %8.1f" % (s.replace("_", "+"), ir[s]))
    print("ratios (target):")
    for name, num, den, target in RATIOS:
        print("  %-24s %5.2f  (<= %.2f)" % (name, ir[num] / ir[den], target))


if __name__ == "__main__":
    main()
