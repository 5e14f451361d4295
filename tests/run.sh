#!/bin/sh
# Run every test binary in $1/tests from the repository root, show their output, and print the
# summed "N passed, N failed" line. Exits non-zero if any binary fails or crashes.
dir="$1/tests"
total_pass=0; total_fail=0; bad=0
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.o|*.d) continue;; esac
    name=$(basename "$t")
    out=$(mktemp)
    start=$(date +%s)
    "$t" >"$out" 2>&1
    rc=$?
    end=$(date +%s)
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # a crash counts as a failure
    if [ "$f" -ne 0 ]; then bad=1; cat "$out"; fi
    echo "== $name: $p passed, $f failed ($((end-start))s, exit $rc)"
    total_pass=$((total_pass+p)); total_fail=$((total_fail+f))
    rm -f "$out"
done
echo "$total_pass passed, $total_fail failed"
[ $bad -eq 0 ] && [ $total_fail -eq 0 ]
