#!/bin/sh
# run_libfuzzer.sh FUZZER WORK_CORPUS SEED_CORPUS [libFuzzer flags...]
# Runs a libFuzzer binary on the committed seeds plus a work corpus kept in
# the build tree (new inputs go there, never into the source tree).
set -e
fuzzer=$1 work=$2 seeds=$3
shift 3
mkdir -p "$work"
exec "$fuzzer" "$@" "$work" "$seeds"
