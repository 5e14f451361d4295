#!/bin/sh
# Run every test binary in $1/tests from the repository root, show their output, and print the
# summed "N passed, N failed, N skipped" line, after the list of skipped tests by name. Exits
# non-zero if any binary fails or crashes. Under CI=true a skip that is not about a missing CPU
# feature is already a failure inside the binary (tests/harness.c).
# TEST_JOBS=N (default 1) runs N binaries at a time, the longest first; the output keeps the
# binaries' alphabetical order and each one's seconds are its own wall time. The binaries in
# `alone` run afterwards, one at a time: test_readme's `--hw cpu` search scores against latencies
# that `mixq calibrate-cpu` measures, which another test running beside it would distort.
# TEST_EXCLUDE="test_a test_b" leaves those binaries out (make test's ASan pass: test_readme,
# whose README commands the release pass runs and test_cli's ASan run covers in kind).
dir="$1/tests"
jobs=${TEST_JOBS:-1}
# binaries side by side: OpenMP threads that wait sleep instead of spinning on the shared cores
[ "$jobs" -gt 1 ] && export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
excluded=" ${TEST_EXCLUDE:-} "
total_pass=0; total_fail=0; total_skip=0; bad=0
tmp=$(mktemp -d)
skips=$tmp/skips
: >"$skips"
# the longest binaries first, so that N at a time finish together
slow="test_search test_cli test_releq test_autoq test_ebs test_hawq test_mpi test_onnx test_runtime test_faults test_ort"
alone="test_readme"
list=""
for s in $slow; do
    case "$excluded" in *" $s "*) continue;; esac
    [ -x "$dir/$s" ] && list="$list $dir/$s"
done
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.o|*.d) continue;; esac
    case " $slow $alone $excluded " in *" $(basename "$t") "*) continue;; esac
    list="$list $t"
done
# a job slot per token in a FIFO (POSIX sh has no `wait -n`)
mkfifo "$tmp/slots"
exec 3<>"$tmp/slots"
i=0
while [ $i -lt "$jobs" ]; do echo >&3; i=$((i + 1)); done
for t in $list; do
    name=$(basename "$t")
    read -r _ <&3
    (
        start=$(date +%s)
        "$t" >"$tmp/$name.out" 2>&1
        echo $? >"$tmp/$name.rc"
        echo $(($(date +%s) - start)) >"$tmp/$name.secs"
        echo >&3
    ) &
done
wait
exec 3>&-
for s in $alone; do
    t=$dir/$s
    case "$excluded" in *" $s "*) continue;; esac
    [ -x "$t" ] || continue
    start=$(date +%s)
    "$t" >"$tmp/$s.out" 2>&1
    echo $? >"$tmp/$s.rc"
    echo $(($(date +%s) - start)) >"$tmp/$s.secs"
done
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.o|*.d) continue;; esac
    name=$(basename "$t")
    case "$excluded" in *" $name "*) echo "== $name: not in this pass (TEST_EXCLUDE)"; continue;; esac
    out=$tmp/$name.out
    rc=$(cat "$tmp/$name.rc" 2>/dev/null || echo 1)
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
    f=$(echo "$line" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p'); f=${f:-0}
    s=$(echo "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p'); s=${s:-0}
    if [ -z "$line" ] && [ "$rc" -eq 0 ]; then f=1; echo "$name printed no summary line"; fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # a crash counts as a failure
    if [ "$f" -ne 0 ]; then bad=1; cat "$out"; fi
    grep -E '^skip(-cpu)? ' "$out" | sed "s/^/  $name: /" >>"$skips"
    echo "== $name: $p passed, $f failed, $s skipped ($(cat "$tmp/$name.secs" 2>/dev/null || echo ?)s, exit $rc)"
    total_pass=$((total_pass+p)); total_fail=$((total_fail+f)); total_skip=$((total_skip+s))
done
if [ -s "$skips" ]; then
    echo "skipped tests (skip-cpu: a CPU feature this machine lacks):"
    cat "$skips"
fi
rm -rf "$tmp"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ $bad -eq 0 ] && [ $total_fail -eq 0 ]
