#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The C compiler under the shim: gcc (driver, cc1, as, collect2, ld, all
# preloaded) compiles and links a small program; the object file is
# byte-identical to the one built without the shim, and the program prints
# the same.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
CC=$(need gcc)
workload() {
	"${RUN[@]}" "$CC" -O2 -Wall -c "$HERE/sample.c" -o sample.o &&
		"${RUN[@]}" "$CC" -O2 sample.o -o sample &&
		"${RUN[@]}" ./sample &&
		cksum <sample.o
}
compare
served "$CC" -O2 -c "$HERE/sample.c" -o /dev/null
finish
