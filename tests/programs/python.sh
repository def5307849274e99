#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# python3 under the shim: a workload of containers, json, regex, zlib,
# objects and threads prints the same as without the shim.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# Debian's interpreter when there is one (a PATH python3 may be a wrapper).
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(need python3); fi
workload() { "${RUN[@]}" "$PY" "$HERE/workload.py"; }
compare
served "$PY" -c 'print(sum(len(str(i)) for i in range(100000)))'
finish
