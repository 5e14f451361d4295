#!/bin/sh
# The full test suite, as CI runs it:
#   1. make warnings: -Werror compile check, gcc and clang (if installed) x several -march targets;
#   2. release build + tests, then the ASan+UBSan build + tests;
#   3. where clang-14 is installed, make fuzz: every parser's fuzz harness over its seeds and
#      FUZZ_SECONDS (default 5 here) of fuzzing;
# The test binaries of each suite run as many at a time as there are cores (TEST_JOBS).
#   4. make install into a temporary prefix and a program built with pkg-config (tests/install/).
# Prints a final "N passed, N failed, N skipped" line summing them all; exits non-zero on any
# failure. Under CI=true a skipped test fails unless a CPU feature is missing (tests/harness.c).
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh || exit 1
JOBS=$(nproc 2>/dev/null || echo 2)
total_p=0; total_f=0; total_s=0; status=0
# add "N passed, N failed[, N skipped]" from the last such line of file $1 (exit code $2)
add_counts() {
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
    f=$(echo "$line" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p'); f=${f:-1}
    s=$(echo "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p'); s=${s:-0}
    [ "$2" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    [ "$f" -ne 0 ] && status=1
    total_p=$((total_p+p)); total_f=$((total_f+f)); total_s=$((total_s+s))
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "=== make warnings"
start=$(date +%s)
if make -s -j"$JOBS" warnings; then echo "1 passed, 0 failed" >"$log"; rc=0
else echo "0 passed, 1 failed" >"$log"; rc=1; fi
echo "make warnings: $(($(date +%s)-start)) s"
add_counts "$log" $rc

for variant in release asan; do
    echo "=== $variant build"
    if ! make -s VARIANT=$variant -j"$JOBS" all tests; then
        echo "build ($variant) failed"; total_f=$((total_f+1)); status=1; continue
    fi
    # the ASan pass leaves out test_readme (the release pass runs every README command; their
    # code paths are test_cli's, which runs under ASan)
    excl=""
    [ "$variant" = asan ] && excl="test_readme"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 TEST_JOBS="$JOBS" \
        TEST_EXCLUDE="$excl" MIXQ_BIN=build/$variant/mixq sh tests/run.sh build/$variant | tee "$log"
    add_counts "$log" 0
    # tests/run.sh's own exit code is folded in through its summary line's failures
done

# the fuzz harnesses (tests/fuzz/) over their committed seeds, then FUZZ_SECONDS (here 5 by
# default, to keep make test within CI's 15 minutes; make fuzz: 20) of fuzzing each, as many at a
# time as there are cores; needs clang-14 (libFuzzer)
if command -v clang-14 >/dev/null 2>&1; then
    echo "=== fuzz (clang-14): each parser's seeds + ${FUZZ_SECONDS:-5} s of fuzzing"
    start=$(date +%s)
    if make -s -j"$JOBS" FUZZ_SECONDS="${FUZZ_SECONDS:-5}" FUZZ_JOBS="$JOBS" fuzz; then
        echo "1 passed, 0 failed" >"$log"; rc=0
    else echo "0 passed, 1 failed" >"$log"; rc=1; fi
    echo "fuzz: $(($(date +%s)-start)) s"
    add_counts "$log" $rc
else
    echo "=== fuzz: not run, clang-14 is not installed (apt-get install clang-14 adds it)"
fi

echo "=== make install + pkg-config"
sh tests/install/check.sh | tee "$log"
add_counts "$log" 0
echo "$total_p passed, $total_f failed, $total_s skipped"
exit $status
