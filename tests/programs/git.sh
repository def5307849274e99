#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# git under the shim: a repository built over several commits, branched,
# merged, diffed, packed and checked prints the same as without the shim
# (fixed identities and dates make every hash reproducible).
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
GIT=$(need git)
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.org GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.org
export GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'
export TZ=UTC LC_ALL=C

g() { "${RUN[@]}" "$GIT" -c init.defaultBranch=main -c gc.auto=0 -c core.pager=cat "$@"; }

# 60 files of generated text; `round N` rewrites a slice of every one.
round() {
	awk -v n="$1" 'BEGIN { for (f = 1; f <= 60; f++) {
		out = "f" f ".txt"
		for (l = 1; l <= 200; l++)
			printf "file %d line %d value %d\n", f, l,
				(l * f + (l % 7 == n % 7 ? n : 0)) % 1000 > out
		close(out) } }'
}

workload() {
	g init -q repo && cd repo || return 1
	round 0
	g add -A && g commit -q -m "round 0"
	for n in 1 2 3 4; do
		round "$n"
		g commit -q -a -m "round $n"
	done
	g checkout -q -b side HEAD~2
	round 9
	g commit -q -a -m "side"
	g checkout -q main
	g merge -q -s ours -m "merge side" side
	g log --stat --format='%H %an %s' | head -40
	g diff --stat HEAD~4 HEAD
	g diff HEAD~3 HEAD~2 -- f7.txt
	g gc -q --aggressive
	g count-objects -v | grep in-pack
	g fsck --full --strict
	g rev-list --count --all
	g grep -c 'value 99' HEAD~1 -- 'f1*.txt'
	g archive --format=tar HEAD | cksum
}

compare
served "$GIT" -c init.defaultBranch=main init -q "$TMP/served/r"
finish
