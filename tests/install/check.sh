#!/bin/sh
# make install into a temporary prefix, then build tests/install/prog.c against it with
# pkg-config, once against libmixq.so and once statically against libmixq.a (Libs.private), and
# run both on a model file. Prints "N passed, N failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
MAKE=${MAKE:-make}
CC=${CC:-cc}
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT
pass=0; fail=0
ok() { echo "ok $1"; pass=$((pass+1)); }
no() { echo "not ok $1"; fail=$((fail+1)); }
if $MAKE -s install PREFIX="$prefix" >"$work/install.log" 2>&1; then ok install
else cat "$work/install.log"; no install; echo "$pass passed, $fail failed"; exit 1; fi
# the soname the header's version gives: libmixq.so.MAJOR, or .0.MINOR before 1.0 (Makefile's SOVER)
major=$(sed -n 's/^#define MIXQ_VERSION_MAJOR \([0-9]*\)$/\1/p' include/mixq/mixq.h)
minor=$(sed -n 's/^#define MIXQ_VERSION_MINOR \([0-9]*\)$/\1/p' include/mixq/mixq.h)
if [ "$major" = 0 ]; then sover=0.$minor; else sover=$major; fi
for f in lib/libmixq.a lib/libmixq.so lib/libmixq.so.$sover include/mixq/mixq.h bin/mixq lib/pkgconfig/mixq.pc; do
    if [ -e "$prefix/$f" ]; then ok "installed $f"; else no "installed $f"; fi
done
soname=$(readelf -d "$prefix/lib/libmixq.so" 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
if [ "$soname" = "libmixq.so.$sover" ]; then ok "soname $soname"; else no "soname '$soname'"; fi
# only the public API is exported
if nm -D --defined-only "$prefix/lib/libmixq.so" | awk '{print $3}' | grep -v '^mixq_' | grep -q .; then
    no "libmixq.so exports only mixq_*"; else ok "libmixq.so exports only mixq_*"; fi
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
"$prefix/bin/mixq" train --model lenet5 --data fashion-mnist --epochs 0 --out "$work/m.mixq" \
    >"$work/train.log" 2>&1 || cat "$work/train.log"
[ -f "$work/m.mixq" ] && ok "installed mixq wrote a model" || no "installed mixq wrote a model"
# shared
if $CC -std=c11 -o "$work/prog" tests/install/prog.c $(pkg-config --cflags --libs mixq) &&
   LD_LIBRARY_PATH="$prefix/lib" "$work/prog" "$work/m.mixq"; then ok "pkg-config mixq (shared)"
else no "pkg-config mixq (shared)"; fi
# static
if $CC -std=c11 -o "$work/prog_static" tests/install/prog.c $(pkg-config --cflags mixq) \
       "$prefix/lib/libmixq.a" $(pkg-config --static --libs mixq | sed 's/-lmixq\b//') &&
   "$work/prog_static" "$work/m.mixq"; then ok "pkg-config --static mixq"
else no "pkg-config --static mixq"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
