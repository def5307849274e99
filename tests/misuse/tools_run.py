#!/usr/bin/env python3
"""Runs the misuse cases of shim_cases.c under the memory tools, as a user
would, and says what the tool reported:

    tools_run.py --build DIR --table            every case on every subject
    tools_run.py --build DIR SUBJECT CASE       one, checked against EXPECT

Subjects:

    valgrind:B  (B = slab, page, kv, libc) the plain malloc/free cases
                (misuse-shim-tools) under the shim on backend B, in
                valgrind's memcheck:
                    kalloc run -b B -- valgrind PROG CASE
                (kalloc run adds --soname-synonyms=somalloc=nouserintercepts
                for valgrind: without it memcheck replaces the malloc of
                every library exporting one, the shim's too, and the backend
                is never used; with it, only glibc's: on libc, memcheck's
                own malloc serves the libc backend)
    asan:B      (B = slab, page, kv) the same cases calling kmalloc, kfree
                and krealloc (misuse-shim-asan: shim_cases.c built with
                -DSHIM_CASES_KAPI -fsanitize=address), KALLOC_BACKEND=B

An outcome is what the tool reported first, then how the program ended:

    memcheck: KIND / asan: KIND
             the tool's report names the kind of error (Invalid free,
             Invalid write...; use-after-poison, SEGV...) and the victim's
             allocation site, the function of shim_cases.c that allocated
             it (memcheck's "alloc'd at" or "created by" for a stack
             address; under ASan kalloc's description of the block after
             ASan's report, src/core/memtools.c)
    ..., no site  the kind but no allocation site (for a pointer never
             allocated there is none to give)
    asan: SEGV in F  ASan's report of a fault inside the allocator (file F),
             not in the program
    ...; then E  the program then ended as E (below), not as the tool ends it
    E        the tool said nothing; E is the outcome class of shim_run.py:
             caught, abort, reported, SIGSEGV, missed, hang, exit N

The one-case form exits 0 when the outcome is EXPECT's, 1 otherwise,
printing both and the stderr.  Every pair has a row: a change in either
direction fails.  The measured table is in tests/README.md ("misuse under
the tools").
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shim_run import CASES, classify  # noqa: E402

# The function of shim_cases.c that allocates each case's victim (None: the
# victim was never allocated, there is no site to give).
SITE = {
    "double_free_small": "double_free", "double_free_large": "double_free",
    "double_free_small_delayed": "double_free",
    "double_free_large_delayed": "double_free",
    "interior_free_small": "bad_free", "interior_free_large": "bad_free",
    "unaligned_free_small": "bad_free", "unaligned_free_large": "bad_free",
    "free_stack": "stack_free", "free_own_mapping": "own_mapping",
    "free_foreign_mapping": None, "realloc_uninit": None, "free_uninit": None,
    "overflow_small_1": "overflow", "overflow_small_8": "overflow",
    "overflow_large_1": "overflow", "overflow_large_8": "overflow",
    "write_after_free_small": "write_after_free",
    "write_after_free_small_reuse": "write_after_free",
    "write_after_free_large": "write_after_free",
    "double_free_medium": "double_free",
    "double_free_medium_delayed": "double_free",
    "interior_free_medium": "bad_free",
}
assert set(SITE) == set(CASES)
# a compiler's clone of a function (site.constprop.0), should one be made
CLONE = r"(?:\.[a-z]+\.\d+)*"

VALGRIND = ["valgrind", "-q", "--leak-check=no"]

SUBJECTS = ["valgrind:slab", "valgrind:page", "valgrind:kv", "valgrind:libc",
            "asan:slab", "asan:page", "asan:kv"]

# Not caught, and what happens depends on the mapping after the block:
# any of these (a tuple is a set of outcomes, each seen or possible).
LARGE_OVERFLOW = ("missed", "asan: SEGV, no site")

# What each pair measured (2026-12-05, Debian 12, valgrind 3.19, gcc 12).
# Comments say why where the tool does not simply report the misuse.
# slab hands memcheck a free it finds wrong before it aborts (a second
# free of a small block, a pointer inside one: memtools.c, bad_free):
# memcheck reports it with the block's stacks
_SLAB_TELLS = {
    **{c: "memcheck: Invalid free; then caught" for c in (
        "double_free_small", "double_free_small_delayed",
        "interior_free_small", "unaligned_free_small")},
    # a pointer past the block, in slab's chunk: memcheck knows no block
    "free_own_mapping": "memcheck: Invalid free, no site; then caught"}
_SLAB_VALGRIND = {
    **_SLAB_TELLS,
    "interior_free_large": "memcheck: Invalid free; then caught",
    "unaligned_free_large": "memcheck: Invalid free; then caught",
    # a medium block's span stays in slab's chunk: its second free is
    # one memcheck sees, as a small block's
    "double_free_medium": "memcheck: Invalid free; then caught",
    "double_free_medium_delayed": "memcheck: Invalid free; then caught",
    "interior_free_medium": "memcheck: Invalid free; then caught",
    # under memcheck slab unmaps a large block at its free (so memcheck
    # sees a use of it): a second free is of a pointer it no longer
    # knows, which the shim reports and leaves alone
    "double_free_large": "reported",
    "double_free_large_delayed": "reported",
    # foreign pointers: the shim leaves them alone, memcheck never
    # sees a free
    "free_stack": "reported", "free_foreign_mapping": "reported",
    "realloc_uninit": "reported", "free_uninit": "reported",
    # memcheck reports the write; slab's free-list check then aborts
    # when the overwritten link is used: 8 bytes reach the next block's
    # link, and the report names the block before it, the victim; one
    # byte spoils the link without naming the victim
    "overflow_small_1": "memcheck: Invalid write; then abort",
    "overflow_small_8": "memcheck: Invalid write; then caught",
    # no later allocation of the class reaches the spoiled block (a C
    # program under the shim loads no libstdc++, whose exit-time frees
    # used to): memcheck's report is the catch
    "write_after_free_small": "memcheck: Invalid write",
    "write_after_free_small_reuse": "memcheck: Invalid write",
    # the block ends its mapping (or is unmapped): the write then faults
    "overflow_large_1": "memcheck: Invalid write; then SIGSEGV",
    "overflow_large_8": "memcheck: Invalid write; then SIGSEGV",
    "write_after_free_large": "memcheck: Invalid write; then SIGSEGV",
}
# Under ASan no free reaches ASan's runtime: kfree is the backend's,
# whose checks abort as through the API (tests/README.md, "misuse")
_SLAB_ASAN = {
    **{c: "caught" for c in CASES
       if not c.startswith(("overflow", "write_after_free"))},
    "overflow_small_1": "asan: use-after-poison",
    "overflow_small_8": "asan: use-after-poison",
    "write_after_free_small": "asan: use-after-poison",
    "write_after_free_small_reuse": "asan: use-after-poison",
    # the block ends its mapping, or is unmapped at its free
    "overflow_large_1": "asan: SEGV, no site",
    "overflow_large_8": "asan: SEGV, no site",
    "write_after_free_large": "asan: SEGV, no site",
}
EXPECT = {
    "valgrind:slab": _SLAB_VALGRIND,
    "valgrind:page": {
        **{c: "caught" for c in CASES if c.startswith("double_free")},
        # page's table knows block starts only: the shim leaves the rest
        **{c: "reported" for c in (
            "interior_free_small", "interior_free_large",
            "interior_free_medium",
            "unaligned_free_small", "unaligned_free_large", "free_stack",
            "free_own_mapping", "free_foreign_mapping", "realloc_uninit",
            "free_uninit")},
        "overflow_small_1": "memcheck: Invalid write",
        "overflow_small_8": "memcheck: Invalid write",
        # whether the write past the mapping faults depends on what the
        # process maps after it (it did while the shim loaded libstdc++):
        # memcheck's report is the catch
        "overflow_large_1": "memcheck: Invalid write",
        "overflow_large_8": "memcheck: Invalid write",
        "write_after_free_small": "memcheck: Invalid write",
        "write_after_free_small_reuse": "memcheck: Invalid write",
        "write_after_free_large": "memcheck: Invalid write",
    },
    # kv serves every size on slab first (page only when slab fails):
    # the outcomes are slab's
    "valgrind:kv": _SLAB_VALGRIND,
    # memcheck's own malloc serves the libc backend: it sees every free
    "valgrind:libc": {
        **{c: "memcheck: Invalid free" for c in CASES
           if "free" in c and "write" not in c},
        # no allocation site: never allocated, or (own_mapping) a pointer
        # in no block ("inside an unallocated block"); the stack's site is
        # the frame that made it ("created by stack_free")
        "free_own_mapping": "memcheck: Invalid free, no site",
        "free_foreign_mapping": "memcheck: Invalid free, no site",
        "free_uninit": "memcheck: Invalid free, no site",
        "realloc_uninit": "memcheck: Invalid free, no site",
        **{c: "memcheck: Invalid write" for c in CASES
           if c.startswith(("overflow", "write_after_free"))},
    },
    "asan:slab": _SLAB_ASAN,
    "asan:page": {
        **{c: "caught" for c in CASES
           if not c.startswith(("overflow", "write_after_free"))},
        "overflow_small_1": "asan: use-after-poison",
        "overflow_small_8": "asan: use-after-poison",
        # a 1 MiB block has no tail to poison; the write lands in whatever
        # mapping follows the block (ASan's layout varies run to run)
        "overflow_large_1": LARGE_OVERFLOW,
        "overflow_large_8": LARGE_OVERFLOW,
        "write_after_free_small": "asan: use-after-poison",
        "write_after_free_small_reuse": "asan: use-after-poison",
        "write_after_free_large": "asan: use-after-poison",
    },
    "asan:kv": _SLAB_ASAN,
}
assert all(set(EXPECT[s]) == set(CASES) for s in SUBJECTS), \
    [(s, set(CASES) ^ set(EXPECT[s])) for s in SUBJECTS]


def memcheck_report(err, case):
    """(kind, site named) of memcheck's first error in err, or None."""
    blocks, cur = [], []
    for line in err.splitlines():
        m = re.match(r"==\d+== ?(.*)", line)
        if not m:
            continue
        text = m.group(1)
        if text.strip():
            cur.append(text)
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    for b in blocks:
        head = b[0]
        if head.startswith(("Process terminating", "Warning:", "HEAP SUMMARY",
                            "Access not within", "If you believe")):
            continue
        kind = re.sub(r" of size \d+$", "", head)
        kind = re.sub(r"\(\).*", "", kind)  # "Invalid free() / delete..."
        site = SITE[case]
        named = False
        if site:
            # the frames after the address's description
            desc = "\n".join(b)
            i = max(desc.find("alloc'd"), desc.find("created by"))
            named = i >= 0 and re.search(
                rf"(by 0x[0-9A-F]+:|created by) {site}{CLONE} \(shim_cases\.c:",
                desc[i:]) is not None
        return kind, named
    return None


def asan_report(err, case):
    """(kind, site named, file of the faulting frame) of ASan's report."""
    m = re.search(r"ERROR: AddressSanitizer: ([\w-]+)", err)
    if not m:
        return None
    kind = m.group(1)
    site = SITE[case]
    tail = err[m.end():]
    i = tail.find("allocated at:")
    named = bool(site) and i >= 0 and re.search(
        rf"#\d+ 0x[0-9a-f]+ in {site}{CLONE} \S*shim_cases\.c:",
        tail[i:]) is not None
    # the first frame not in the sanitizer's runtime nor libc's string code
    where = None
    for f in re.finditer(r"#\d+ 0x[0-9a-f]+ in \S+ (\S+?):\d+", tail):
        path = f.group(1)
        if "sanitizer" in path or "sysdeps" in path:
            continue
        where = os.path.basename(path)
        break
    return kind, named, where


def run_case(build, subject, case):
    """(outcome, stderr) of one case."""
    tool, _, backend = subject.partition(":")
    env = dict(os.environ)
    for v in ("MALLOC_PERTURB_", "KALLOC_DEBUG", "KALLOC_TOOLS", "ASAN_OPTIONS"):
        env.pop(v, None)
    misuse = os.path.join(build, "tests", "misuse")
    if tool == "valgrind":
        argv = [os.path.join(build, "src", "cli", "kalloc"), "run", "-b",
                backend, "--"] + VALGRIND + [
                os.path.join(misuse, "misuse-shim-tools"), case]
    elif tool == "asan":
        argv = [os.path.join(misuse, "misuse-shim-asan"), case]
        env["KALLOC_BACKEND"] = backend
        env["ASAN_OPTIONS"] = "detect_leaks=0"
        env.setdefault("KALLOC_PLUGIN_PATH", ":".join(
            os.path.join(build, "plugins", b) for b in ("slab", "page", "kv")))
    else:
        sys.exit(f"tools_run.py: unknown subject '{subject}'")
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True,
                           errors="replace", timeout=100)
    except subprocess.TimeoutExpired:
        return "hang", ""
    err = p.stderr
    if tool == "valgrind":
        # the program's own lines decide how it ended (memcheck's name the
        # victim too)
        own = "\n".join(l for l in err.splitlines()
                        if not re.match(r"==\d+==", l))
        end = classify(p.returncode, own)
        r = memcheck_report(err, case)
        if not r:
            return end, err
        kind, named = r
        out = f"memcheck: {kind}" + ("" if named else ", no site")
        return out + ("" if end == "missed" else f"; then {end}"), err
    end = classify(p.returncode, err)
    r = asan_report(err, case)
    if not r:
        return end, err
    kind, named, where = r
    if kind == "SEGV" and where and where != "shim_cases.c":
        out = f"asan: SEGV in {where}"
    else:
        out = f"asan: {kind}" + ("" if named else ", no site")
    # ASan ends the program with exit 1 after its report
    return out + ("" if end == "exit 1" else f"; then {end}"), err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--subjects", default=",".join(SUBJECTS))
    ap.add_argument("pair", nargs="*")
    a = ap.parse_args()
    if a.table:
        subs = a.subjects.split(",")
        print("| case | " + " | ".join(subs) + " |")
        print("|---|" + "---|" * len(subs))
        tool = dict.fromkeys(subs, 0)
        backend = dict.fromkeys(subs, 0)
        pool = concurrent.futures.ThreadPoolExecutor(os.cpu_count())
        runs = {(c, s): pool.submit(run_case, a.build, s, c)
                for c in CASES for s in subs}
        for case in CASES:
            row = []
            for s in subs:
                out, _ = runs[case, s].result()
                tool[s] += out.startswith(("memcheck:", "asan:")) and \
                    "no site" not in out.split(";")[0] and \
                    not out.startswith("asan: SEGV")
                backend[s] += out.endswith("caught")
                row.append(out)
            print(f"| {case} | " + " | ".join(row) + " |", flush=True)
        print("| **the tool: kind and allocation site** | " +
              " | ".join(f"**{tool[s]}/{len(CASES)}**" for s in subs) + " |")
        print("| the backend: caught, pointer named | " +
              " | ".join(str(backend[s]) for s in subs) + " |")
        return 0
    if len(a.pair) != 2 or a.pair[1] not in CASES or a.pair[0] not in EXPECT:
        ap.error("give SUBJECT CASE, or --table")
    subject, case = a.pair
    want = EXPECT[subject][case]
    want = want if isinstance(want, tuple) else (want,)
    got, err = run_case(a.build, subject, case)
    if got in want:
        print(f"{subject} {case}: {got}")
        return 0
    print(f"{subject} {case}: want {' or '.join(want)}, got {got}; "
          f"stderr:\n{err}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
