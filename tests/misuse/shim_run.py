#!/usr/bin/env python3
"""Runs the misuse programs (shim_cases.c) as a user would, and says what
each allocator did:

    shim_run.py --build DIR --table            every case on every subject
    shim_run.py --build DIR SUBJECT CASE       one, checked against EXPECT

Subjects: glibc (no preload), tcmalloc, jemalloc, mimalloc (preloaded),
and kalloc:B / kalloc:B+debug (`kalloc run -b B`, the latter with
KALLOC_DEBUG=FZPU).  Outcomes:

    caught   killed by SIGABRT, the report naming the misused pointer
    abort    killed by SIGABRT, the pointer not named
    reported ran to the end, but a "kalloc:" line named the pointer (a
             foreign pointer the shim left alone, or a debug check at
             exit)
    SIGSEGV  (or another signal) a crash, nothing said
    missed   the program ran on as if nothing happened

The one-case form exits 0 when the outcome is EXPECT's (a pair without a
row must be "missed"), 1 otherwise, printing both and the stderr.
"""
import argparse
import os
import re
import signal
import subprocess
import sys

CASES = [
    "double_free_small", "double_free_large", "double_free_small_delayed",
    "double_free_large_delayed", "interior_free_small", "interior_free_large",
    "unaligned_free_small", "unaligned_free_large", "free_stack",
    "free_own_mapping", "free_foreign_mapping", "realloc_uninit",
    "free_uninit", "overflow_small_1", "overflow_small_8", "overflow_large_1",
    "overflow_large_8", "write_after_free_small",
    "write_after_free_small_reuse", "write_after_free_large",
    "double_free_medium", "double_free_medium_delayed", "interior_free_medium",
]

LIB = "/usr/lib/x86_64-linux-gnu"

# What each kalloc subject is held to ("missed" where there is no row):
# these are the tests.  The measured table for every subject is in
# tests/README.md ("Misuse under the shim").
EXPECT = {
    "kalloc:slab": {
        "double_free_small": "caught",
        "double_free_small_delayed": "caught",
        "double_free_large": "caught",
        "double_free_large_delayed": "caught",
        "double_free_medium": "caught",
        "double_free_medium_delayed": "caught",
        "interior_free_small": "caught",
        "interior_free_large": "caught",
        "interior_free_medium": "caught",
        "unaligned_free_small": "caught",
        "unaligned_free_large": "caught",
        "free_own_mapping": "caught",
        "overflow_small_8": "caught",
        "write_after_free_small_reuse": "caught",
        # the free list's check fires, naming the next block
        "overflow_small_1": "abort",
        # foreign pointers: reported once and left alone (src/shim/README.md)
        "free_stack": "reported",
        "free_foreign_mapping": "reported",
        "realloc_uninit": "reported",
        "free_uninit": "reported",
        # the block ends its mapping: the write itself faults, in the program
        "overflow_large_1": "SIGSEGV",
        "overflow_large_8": "SIGSEGV",
    },
    # KALLOC_DEBUG=FZPU: the core checks every free and realloc against
    # the blocks it handed out, and the shim hands it the pointers neither
    # it nor slab knows (kalloc_checks_frees)
    "kalloc:slab+debug": {
        **{c: "caught" for c in (
            "double_free_small", "double_free_small_delayed",
            "double_free_large", "double_free_large_delayed",
            "double_free_medium", "double_free_medium_delayed",
            "interior_free_small", "interior_free_large",
            "interior_free_medium",
            "unaligned_free_small", "unaligned_free_large", "free_stack",
            "free_own_mapping", "free_foreign_mapping", "realloc_uninit",
            "free_uninit", "overflow_small_1", "overflow_small_8",
            "overflow_large_1", "overflow_large_8")},
        # poison found overwritten when the block leaves the quarantine
        # or at exit: reported, the program ran on
        "write_after_free_small": "reported",
        "write_after_free_small_reuse": "reported",
        "write_after_free_large": "reported",
    },
    "kalloc:page": {
        # a free of a block page freed lately (its address in the ring,
        # its memory cached or mapped by no one) is a double free
        "double_free_small": "caught",
        "double_free_small_delayed": "caught",
        "double_free_large": "caught",
        "double_free_large_delayed": "caught",
        "double_free_medium": "caught",
        "double_free_medium_delayed": "caught",
        # page's table knows block starts only: anything else is foreign
        "interior_free_small": "reported",
        "interior_free_large": "reported",
        "interior_free_medium": "reported",
        "unaligned_free_small": "reported",
        "unaligned_free_large": "reported",
        "free_stack": "reported",
        "free_own_mapping": "reported",
        "free_foreign_mapping": "reported",
        "realloc_uninit": "reported",
        "free_uninit": "reported",
        # (overflow_large_*: the write past a large block's last page
        # faults unless another mapping happens to follow it: no test)
    },
}


def subject_cmd(build, subject):
    """(prefix argv, extra environment) of a subject."""
    if subject == "glibc":
        return [], {}
    if subject in ("tcmalloc", "jemalloc", "mimalloc"):
        lib = {"tcmalloc": "libtcmalloc_minimal.so.4", "jemalloc": "libjemalloc.so.2",
               "mimalloc": "libmimalloc.so.2"}[subject]
        return [], {"LD_PRELOAD": f"{LIB}/{lib}",
                    "GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=16384"}
    m = re.fullmatch(r"kalloc:(\w+)(\+debug)?", subject)
    if not m:
        sys.exit(f"shim_run.py: unknown subject '{subject}'")
    env = {"KALLOC_DEBUG": "FZPU"} if m.group(2) else {}
    return [os.path.join(build, "src", "cli", "kalloc"), "run", "-b", m.group(1),
            "--"], env


def run_case(build, subject, case):
    """(outcome, stderr) of one case."""
    prefix, extra = subject_cmd(build, subject)
    env = dict(os.environ)
    env.pop("MALLOC_PERTURB_", None)
    env.update(extra)
    prog = os.path.join(build, "tests", "misuse", "misuse-shim")
    try:
        p = subprocess.run(prefix + [prog, case], env=env, capture_output=True,
                           text=True, errors="replace", timeout=60)
    except subprocess.TimeoutExpired:
        return "hang", ""
    return classify(p.returncode, p.stderr), p.stderr


def classify(returncode, err):
    """The outcome class of a run that ended with returncode (as subprocess
    gives it: -N for signal N) and printed err."""
    m = re.search(r"victim (0x[0-9a-f]+)", err)
    named = m and m.group(1) in err[m.end():]
    if returncode == -signal.SIGABRT:
        return "caught" if named else "abort"
    if returncode < 0:
        return signal.Signals(-returncode).name
    if returncode == 0:
        later = err[m.end():] if m else ""
        if m and any(l.startswith("kalloc:") and m.group(1) in l
                     for l in later.splitlines()):
            return "reported"
        return "missed"
    return f"exit {returncode}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--subjects", default="glibc,tcmalloc,jemalloc,mimalloc,"
                    "kalloc:slab,kalloc:slab+debug,kalloc:page,kalloc:kv")
    ap.add_argument("pair", nargs="*")
    a = ap.parse_args()
    if a.table:
        subs = a.subjects.split(",")
        print("| case | " + " | ".join(subs) + " |")
        print("|---|" + "---|" * len(subs))
        caught = dict.fromkeys(subs, 0)
        reported = dict.fromkeys(subs, 0)
        for case in CASES:
            row = []
            for s in subs:
                out, _ = run_case(a.build, s, case)
                caught[s] += out == "caught"
                reported[s] += out == "reported"
                row.append(out)
            print(f"| {case} | " + " | ".join(row) + " |", flush=True)
        print("| **caught, pointer named** | " +
              " | ".join(f"**{caught[s]}/{len(CASES)}**" for s in subs) + " |")
        print("| reported, ran on | " +
              " | ".join(str(reported[s]) for s in subs) + " |")
        return 0
    if len(a.pair) != 2 or a.pair[1] not in CASES:
        ap.error("give SUBJECT CASE, or --table")
    subject, case = a.pair
    want = EXPECT.get(subject, {}).get(case, "missed")
    got, err = run_case(a.build, subject, case)
    if got == want:
        print(f"{subject} {case}: {got}")
        return 0
    print(f"{subject} {case}: want {want}, got {got}; stderr:\n{err}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
