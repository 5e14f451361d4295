#!/bin/sh
# Run every test binary in $1/tests from the repository root, show their output, and print the
# summed "N passed, N failed, N skipped" line, after the list of skipped tests by name. Exits
# non-zero if any binary fails or crashes. Under CI=true a skip that is not about a missing CPU
# feature is already a failure inside the binary (tests/harness.c).
dir="$1/tests"
total_pass=0; total_fail=0; total_skip=0; bad=0
skips=$(mktemp)
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
    f=$(echo "$line" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p'); f=${f:-0}
    s=$(echo "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p'); s=${s:-0}
    if [ -z "$line" ] && [ $rc -eq 0 ]; then f=1; echo "$name printed no summary line"; fi
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # a crash counts as a failure
    if [ "$f" -ne 0 ]; then bad=1; cat "$out"; fi
    grep -E '^skip(-cpu)? ' "$out" | sed "s/^/  $name: /" >>"$skips"
    echo "== $name: $p passed, $f failed, $s skipped ($((end-start))s, exit $rc)"
    total_pass=$((total_pass+p)); total_fail=$((total_fail+f)); total_skip=$((total_skip+s))
    rm -f "$out"
done
if [ -s "$skips" ]; then
    echo "skipped tests (skip-cpu: a CPU feature this machine lacks):"
    cat "$skips"
fi
rm -f "$skips"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ $bad -eq 0 ] && [ $total_fail -eq 0 ]
