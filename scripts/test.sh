#!/bin/sh
# The full test suite, as CI runs it: release build + tests, then the ASan+UBSan build + tests.
# Prints a final "N passed, N failed" line summing both runs; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh || exit 1
JOBS=$(nproc 2>/dev/null || echo 2)
total_p=0; total_f=0; status=0
for variant in release asan; do
    echo "=== $variant build"
    if ! make -s VARIANT=$variant -j"$JOBS" all tests; then
        echo "build ($variant) failed"; total_f=$((total_f+1)); status=1; continue
    fi
    log=$(mktemp)
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
        MIXQ_BIN=build/$variant/mixq sh tests/run.sh build/$variant | tee "$log"
    rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    rm -f "$log"
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed$/\1/p'); f=${f:-1}
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    [ "$f" -ne 0 ] && status=1
    total_p=$((total_p+p)); total_f=$((total_f+f))
done
echo "$total_p passed, $total_f failed"
exit $status
