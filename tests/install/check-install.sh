#!/bin/sh
# The installed library works on its own: configure a fresh build of this
# source tree with --prefix in a temporary directory, install it, build
# demo.c (kernel-style code, only <kalloc/linux.h>) with
# `pkg-config --cflags --libs kalloc`, and run it with LD_LIBRARY_PATH only:
# no KALLOC_PLUGIN_PATH, so the library must find its installed plugins.
# Then build examples/plugin out of tree the same way (its Makefile, the
# installed <kalloc/plugin.h>) and run the installed kalloc-conform on it.
#
# Usage: tests/install/check-install.sh [SOURCE_DIR]   (default: this tree)
# Prints "ok - ..." or "FAIL - ..." per check and ends with one line,
# "PASS: install test" (exit 0) or "FAIL: install test (N failed)" (exit 1).
# KEEP_TMP=1 keeps the temporary directory for inspection.
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "${1:-$here/../..}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kalloc-install.XXXXXX") || exit 1
[ "${KEEP_TMP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT
failed=0

ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; failed=$((failed + 1)); }
# Runs a step quietly; on failure shows its log and stops the test.
step() {
	what=$1; shift
	if "$@" >"$tmp/step.log" 2>&1; then
		ok "$what"
	else
		fail "$what"
		sed 's/^/    /' "$tmp/step.log" | tail -n 30
		echo "FAIL: install test (stopped at: $what)"
		exit 1
	fi
}

# The test must not lean on the environment of a development shell.
unset KALLOC_PLUGIN_PATH KALLOC_BACKEND LD_PRELOAD

prefix=$tmp/prefix
step "configure $src with --prefix=$prefix" \
	meson setup "$tmp/build" "$src" --prefix="$prefix"
step "build" ninja -C "$tmp/build"
step "install" meson install -C "$tmp/build" --no-rebuild

# ---- what was installed ------------------------------------------------
pc=$(find "$prefix" -name kalloc.pc | head -n 1)
[ -n "$pc" ] && ok "kalloc.pc installed" || fail "kalloc.pc not installed"
lib=$(find "$prefix" -name 'libkalloc.so.0' | head -n 1)
[ -n "$lib" ] && ok "libkalloc.so.0 installed" || fail "libkalloc.so.0 not installed"
plugin=$(find "$prefix" -path '*/kalloc/plugins/kalloc-libc.so' | head -n 1)
[ -n "$plugin" ] && ok "libc plugin installed in <libdir>/kalloc/plugins" ||
	fail "no <libdir>/kalloc/plugins/kalloc-libc.so"
for h in kalloc.h kalloc/linux.h kalloc/vec.h kalloc/plugin.h kalloc/rcu.h \
	kalloc/compat/linux/slab.h kalloc/compat/linux/mempool.h \
	kalloc/compat/linux/rcupdate.h; do
	[ -f "$prefix/include/$h" ] && ok "header $h installed" ||
		fail "header $h not installed"
done
for m in man1/kalloc.1 man1/kalloc-conform.1 man3/kalloc.3 \
	man3/kalloc_linux.3 man7/kalloc.7 man7/kalloc_plugin.7; do
	page=$(find "$prefix" -path "*/man/$m" | head -1)
	if [ -n "$page" ] && man -l "$page" 2>/dev/null | grep -q .; then
		ok "manual page $m installed and readable with man -l"
	else
		fail "manual page $m not installed or not readable"
	fi
done
if [ -z "$pc" ] || [ -z "$lib" ]; then
	echo "FAIL: install test ($failed failed)"
	exit 1
fi
libdir=$(dirname "$lib")

# Only the public API is exported: kalloc_* and the kernel's names.
if command -v nm >/dev/null; then
	extra=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' |
		grep -Ev '^(kalloc_[a-z_]+|k(malloc|zalloc|calloc|malloc_array|realloc|realloc_array|free|size|memdup|strdup)|v(malloc|zalloc|realloc|free)|kv(malloc|zalloc|calloc|realloc|free))$' |
		grep -Ev '^(k(m|z|c)alloc_node|kmalloc_array_node|kv(m|z)alloc_node|kvmalloc_array|k(v)?free_sensitive|kstrndup|kmemdup_nul|kstrdup_const|kfree_const|kvmemdup|vcalloc|vmalloc_array|__vmalloc|kmalloc_size_roundup)$' |
		grep -Ev '^(__)?kmem_cache_[a-z_]+$|^mempool_[a-z_]+$')
	[ -z "$extra" ] && ok "libkalloc exports only the public API" ||
		fail "libkalloc exports non-API symbols: $(echo $extra)"
fi

# ---- build a kernel-style program against the installed library ----------
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs kalloc 2>"$tmp/pc.err")
if [ $? -eq 0 ]; then
	ok "pkg-config --cflags --libs kalloc: $flags"
else
	fail "pkg-config kalloc: $(cat "$tmp/pc.err")"
fi
case " $flags " in *" -lkalloc "*) ok "pkg-config links -lkalloc" ;;
	*) fail "pkg-config flags lack -lkalloc" ;; esac
# shellcheck disable=SC2086 # flags are words
step "compile demo.c with only <kalloc/linux.h>" \
	cc -std=c11 -Wall -Wextra -Werror -o "$tmp/demo" "$here/demo.c" $flags

# ---- run it with LD_LIBRARY_PATH only -------------------------------------
LD_LIBRARY_PATH=$libdir "$tmp/demo" >"$tmp/demo.out" 2>"$tmp/demo.err"
status=$?
sed 's/^/    demo: /' "$tmp/demo.out"
[ $status -eq 0 ] && ok "demo exits 0 on the installed default backend" ||
	fail "demo exited $status (stderr: $(cat "$tmp/demo.err"))"
lines=$(wc -l <"$tmp/demo.err")
if [ "$lines" -eq 1 ] && grep -q '^kalloc: .*allocation of' "$tmp/demo.err"; then
	ok "one warning line for the one failure without __GFP_NOWARN"
else
	fail "want one 'kalloc: ... allocation of' line on stderr, got $lines:"
	sed 's/^/    /' "$tmp/demo.err"
fi

# The plugins it found are the installed ones: a bad KALLOC_BACKEND's
# message lists what it searched, which must be the installed plugin dir.
plugindir=$(dirname "$plugin")
KALLOC_BACKEND=bogus LD_LIBRARY_PATH=$libdir "$tmp/demo" >/dev/null 2>"$tmp/bogus.err"
status=$?
if [ $status -eq 0 ] && grep -q "KALLOC_BACKEND=bogus" "$tmp/bogus.err" &&
	grep -q "valid backends: .*libc" "$tmp/bogus.err" &&
	grep -q "searched $plugindir)" "$tmp/bogus.err"; then
	ok "searches only $plugindir and falls back to libc"
else
	fail "KALLOC_BACKEND=bogus (exit $status):"
	sed 's/^/    /' "$tmp/bogus.err"
fi

# ---- kernel code's own include paths: kalloc-linux ------------------------
lflags=$(pkg-config --cflags --libs kalloc-linux 2>"$tmp/pc.err")
if [ $? -eq 0 ]; then
	ok "pkg-config --cflags --libs kalloc-linux: $lflags"
	# shellcheck disable=SC2086 # flags are words
	step "compile kernel_style.c with only <linux/*.h> headers" \
		cc -std=gnu11 -Wall -Wextra -Werror -o "$tmp/kstyle" \
		"$here/kernel_style.c" $lflags
	LD_LIBRARY_PATH=$libdir "$tmp/kstyle" >"$tmp/kstyle.out" 2>&1
	status=$?
	sed 's/^/    kernel_style: /' "$tmp/kstyle.out"
	[ $status -eq 0 ] && ok "kernel-style code runs: caches, bulk, mempool, kfree_rcu" ||
		fail "kernel_style exited $status"
else
	fail "pkg-config kalloc-linux: $(cat "$tmp/pc.err")"
fi

# ---- a third-party backend, out of tree -------------------------------------
cp -r "$src/examples/plugin" "$tmp/plugin"
step "build examples/plugin with its Makefile and pkg-config" \
	make -C "$tmp/plugin"
conform=$prefix/bin/kalloc-conform
LD_LIBRARY_PATH=$libdir "$conform" "$tmp/plugin/kalloc-arena.so" \
	>"$tmp/conform.out" 2>&1
status=$?
sed 's/^/    conform: /' "$tmp/conform.out"
if [ $status -eq 0 ] && grep -qE '^[0-9]+ passed, 0 failed(, [0-9]+ not declared)?$' "$tmp/conform.out"; then
	ok "the installed kalloc-conform passes the example plugin"
else
	fail "kalloc-conform on the example plugin exited $status"
fi

if [ $failed -eq 0 ]; then
	echo "PASS: install test"
	exit 0
fi
echo "FAIL: install test ($failed failed)"
exit 1
