#!/usr/bin/env bash
# long_paths.sh BUILDDIR shim|no-shim: what depends on the length of a path works at any
# length, as in a checkout deep in a user's home.  Plugins are copied to a
# directory of about 230 characters, then:
#  - an unknown backend's message names the valid backends and the plugin
#    directory, whole; with a plugin path longer than a message can hold,
#    it shortens the list with "..." and still ends with the installed
#    directory (the last one, as with a short path);
#  - the shim's one-line warning keeps its end ("; using slab"), unless
#    no-shim (a sanitized build: its runtime must be malloc);
#  - kalloc-bench runs a plugin given by its long path (no cut name that
#    is then "not found");
#  - kalloc-conform runs that plugin.
set -u
build=$1 use_shim=$2
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
deep=$tmp
for i in 1 2 3 4 5; do
	deep=$deep/a-directory-name-as-long-as-they-come-$i
done
mkdir -p "$deep"
cp "$build/plugins/slab/kalloc-slab.so" "$build/plugins/libc/kalloc-libc.so" "$deep/"
echo "directory of ${#deep} characters"

conform=$build/tests/conformance/kalloc-conform
# 1. the message, whole
msg=$(KALLOC_PLUGIN_PATH=$deep "$conform" no_such_backend 2>&1)
case $msg in
*"valid backends: libc, slab "*"searched $deep:"*")") ok "unknown backend: valid names and the whole directory" ;;
*) fail "unknown backend message: $msg" ;;
esac
installed=${msg##*:}            # the last directory searched, and ")"
installed=${installed%)}
[ -n "$installed" ] && [ "$installed" != "$deep" ] ||
	fail "no installed directory at the end of: $msg"

# 2. a plugin path longer than a message: shortened, never cut
long=$deep
for i in $(seq 1 12); do long=$long:$deep/missing-$i; done
msg=$(KALLOC_PLUGIN_PATH=$long "$conform" no_such_backend 2>&1)
case $msg in
*"valid backends: libc, slab "*":...:$installed)") ok "a ${#long}-byte plugin path is shortened with ... and keeps $installed" ;;
*) fail "long plugin path message: $msg" ;;
esac

# 3. the shim's warning line keeps its end
shim=$build/src/shim/libkalloc-shim.so
if [ "$use_shim" = shim ]; then
	err=$(KALLOC_PLUGIN_PATH=$deep KALLOC_BACKEND=no_such_backend \
		LD_PRELOAD=$shim /bin/ls -d / 2>&1 >/dev/null)
	case $err in
	*"$deep:"*"; using slab") ok "the shim's warning is whole" ;;
	*) fail "the shim's warning: $err" ;;
	esac
fi

# 4. kalloc-bench with a plugin given by its long path
bench=$build/bench/kalloc-bench
if [ -x "$bench" ]; then
	out=$("$bench" --quick --rounds 1 --only churn --no-direct --no-preload \
		--backends "$deep/kalloc-slab.so" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q "kalloc-slab.so" &&
		! printf '%s\n' "$out" | grep -qi "not found"; then
		ok "kalloc-bench measures the plugin at its long path"
	else
		fail "kalloc-bench (exit $rc): $(printf '%s\n' "$out" | tail -5)"
	fi
	huge=$deep
	while [ ${#huge} -lt 5000 ]; do huge=$huge/x; done
	out=$("$bench" --quick --rounds 1 --only churn --no-direct --no-preload \
		--backends "$huge/kalloc-slab.so" 2>&1)
	rc=$?
	if [ $rc -eq 2 ] && printf '%s\n' "$out" | grep -q "bytes long, more than"; then
		ok "kalloc-bench refuses a 5000-byte path, saying why"
	else
		fail "kalloc-bench on a 5000-byte path (exit $rc): $(printf '%s\n' "$out" | tail -3)"
	fi
fi

# 5. kalloc-conform on the plugin at its long path
if CK_RUN_CASE=G1 "$conform" "$deep/kalloc-slab.so" >"$tmp/c.out" 2>&1 &&
	grep -q "G1 .*PASS" "$tmp/c.out"; then
	ok "kalloc-conform runs the plugin at its long path"
else
	fail "kalloc-conform: $(tail -3 "$tmp/c.out")"
fi

echo "long_paths: $fails failed"
[ $fails -eq 0 ]
