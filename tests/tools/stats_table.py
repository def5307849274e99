#!/usr/bin/env python3
"""stats_table.py KALLOC: the statistics a user gets at exit.

Runs this Python (sys.executable: the interpreter itself, not a wrapper
script) on a script that keeps blocks of many sizes live at exit, with a
fixed hash seed so that both runs allocate alike, under `kalloc run -b slab
--stats` and `--stats=json`, and checks the table's shape: a title, the
core's row, the backend's global counters as "group: key value, ..."
lines, then one row per size class with /proc/slabinfo's columns plus
ours, sorted by bytes in use, most first; that the JSON line holds
the same classes with the same counters; and that `--stats=slabinfo`
prints them as the kernel's /proc/slabinfo 2.1 does (its two header lines,
then one line per class in its format), with the table's geometry.
"""
import json
import os
import re
import subprocess
import sys

COLUMNS = ["name", "active_objs", "num_objs", "objsize", "objperslab",
           "pagesperslab", "num_slabs", "in_use_bytes", "constructed",
           "failures"]


SCRIPT = "keep = [bytes(n) for n in range(1, 9000, 7)]"


def run(kalloc, python, stats):
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONMALLOC="malloc")
    p = subprocess.run([kalloc, "run", "-b", "slab", stats, "--", python,
                        "-c", SCRIPT], capture_output=True, text=True,
                       timeout=120, env=env)
    if p.returncode != 0:
        sys.exit(f"FAIL: {stats}: exit {p.returncode}: {p.stderr[-2000:]}")
    return p.stderr


def main():
    kalloc, prog = sys.argv[1], sys.executable
    fails = []
    table = run(kalloc, prog, "--stats").splitlines()
    if not table or not table[0].startswith("kalloc statistics (pid "):
        fails.append(f"no title line: {table[:1]}")
    head = [i for i, l in enumerate(table) if l.startswith("# name")]
    if len(head) != 1:
        sys.exit(f"FAIL: want one class header, got {len(head)}:\n" +
                 "\n".join(table))
    h = head[0]
    if table[h].split()[1:] != COLUMNS:
        fails.append(f"columns {table[h].split()[1:]}, want {COLUMNS}")
    core = [l for l in table[:h] if l.startswith("slab ")]
    if len(core) != 1 or len(core[0].split()) != 10:
        fails.append(f"core row: {core}")
    globals_ = [l for l in table[:h] if l.startswith("slab:")]
    if not globals_ or any(len(l) > 110 for l in globals_):
        fails.append(f"global counter lines missing or too long: {globals_}")
    rows = {}
    in_use = []
    for line in table[h + 1:]:
        f = line.split()
        if len(f) != len(COLUMNS) or not line.startswith("  kmalloc-"):
            fails.append(f"row of {len(f)} fields: {line!r}")
            continue
        name = f[0]
        if name in rows:
            fails.append(f"{name} twice")
        vals = dict(zip(COLUMNS[1:], f[1:]))
        rows[name] = vals
        if int(vals["in_use_bytes"]) != int(vals["active_objs"]) * int(vals["objsize"]):
            fails.append(f"{name}: in_use_bytes is not active_objs * objsize")
        if int(vals["active_objs"]) > int(vals["num_objs"]):
            fails.append(f"{name}: more active than allocated objects")
        in_use.append(int(vals["in_use_bytes"]))
    if len(rows) < 3:
        fails.append(f"only {len(rows)} class rows for a program using many sizes")
    if in_use != sorted(in_use, reverse=True):
        fails.append(f"rows not sorted by bytes in use: {in_use}")

    out = run(kalloc, prog, "--stats=json").splitlines()
    if len(out) != 1:
        fails.append(f"JSON: want one line, got {len(out)}")
    doc = json.loads(out[0])
    (handle,) = [x for x in doc["handles"] if x["backend"] == "slab"]
    if handle["core"]["allocs"] < 1000:
        fails.append(f"JSON core allocs {handle['core']['allocs']}")
    classes = {g: v for g, v in handle["groups"].items() if "objsize" in v}
    if set(classes) != set(rows):
        # the same program, the same sizes: the same classes
        fails.append(f"JSON classes {sorted(classes)} vs table {sorted(rows)}")
    for g, v in classes.items():
        for key in COLUMNS[1:7]:
            if key not in v:
                fails.append(f"JSON {g} lacks {key}")
    # the kernel's format: s_show() in mm/slab_common.c
    info = run(kalloc, prog, "--stats=slabinfo").splitlines()
    want_head = ["slabinfo - version: 2.1",
                 "# name            <active_objs> <num_objs> <objsize> "
                 "<objperslab> <pagesperslab> : tunables <limit> <batchcount> "
                 "<sharedfactor> : slabdata <active_slabs> <num_slabs> "
                 "<sharedavail>"]
    if info[:2] != want_head:
        fails.append(f"slabinfo header {info[:2]}")
    line_re = re.compile(r"(\S+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) : tunables +0 +0 +0"
                         r" : slabdata +(\d+) +(\d+) +0")
    seen = {}
    for line in info[2:]:
        m = line_re.fullmatch(line)
        if not m:
            fails.append(f"slabinfo line not in the kernel's format: {line!r}")
            continue
        name, active, num, objsize, perslab, pages, aslabs, nslabs = m.groups()
        seen[name] = (int(objsize), int(perslab), int(pages))
        if int(active) > int(num) or aslabs != nslabs:
            fails.append(f"slabinfo {name}: {line!r}")
    if set(seen) != set(rows):
        fails.append(f"slabinfo classes {sorted(seen)} vs table {sorted(rows)}")
    for name, geom in seen.items():
        r = rows.get(name)
        if r and geom != (int(r["objsize"]), int(r["objperslab"]), int(r["pagesperslab"])):
            fails.append(f"slabinfo {name} geometry {geom} vs table {r}")
    for f in fails:
        print("FAIL:", f)
    print("\n".join(table[:h + 4]))
    print(f"stats_table: {len(rows)} class rows ({len(seen)} in slabinfo), "
          f"{len(fails)} problems")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
