#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# sqlite3 under the shim: a database built, indexed, queried and vacuumed
# prints the same as without the shim.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
SQLITE=$(need sqlite3)
workload() { "${RUN[@]}" "$SQLITE" -bail test.db <"$HERE/workload.sql"; }
compare
served "$SQLITE" :memory: "WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x+1 FROM c WHERE x<20000) SELECT count(*), sum(length(printf('%0100d', x))) FROM c;"
finish
