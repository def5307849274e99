#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# perl under the shim: hashes, sorting, regexes, sprintf and pack print the
# same as without the shim.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
PERL=$(need perl)
workload() { "${RUN[@]}" "$PERL" "$HERE/workload.pl"; }
compare
# shellcheck disable=SC2016 # perl code
served "$PERL" -e 'my %h; $h{$_} = "x" x ($_ % 50) for 1..20000; print scalar(keys %h), "\n"'
finish
