#!/bin/sh
# tests/fuzz/run.sh BUILD NAME...: each harness BUILD/fuzz_NAME runs once over its committed seeds
# (tests/fuzz/corpus/NAME), then fuzzes for FUZZ_SECONDS (default 20; 0: the seeds only), keeping
# new inputs in BUILD/corpus/NAME and writing a crash to BUILD/crash-NAME-*. Prints one line per
# harness (seconds, executions, crashes) and exits non-zero if any harness failed. With
# FUZZ_REPORT=FILE the same lines go to FILE as a markdown table, with the CPU and the date.
# FUZZ_JOBS=N (default 1) runs N harnesses at a time; the lines keep the order of the names.
# Run from the repository root.
build=$1
shift
secs=${FUZZ_SECONDS:-20}
export MIXQ_THREADS=1
fail=0
report=${FUZZ_REPORT:-}
if [ -n "$report" ]; then
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
    {
        echo "# Fuzzing, ${secs} s per parser (\`make fuzz-long\`)"
        echo
        echo "$(date -u +%Y-%m-%d), $cpu, $(nproc) CPUs, one process per parser, clang-14 libFuzzer with"
        echo "ASan + UBSan (library included), MIXQ_THREADS=1. Corpus: the committed seeds plus what"
        echo "fuzzing kept (build/fuzz/corpus/NAME)."
        echo
        echo "| parser | seeds | seconds | executions | exec/s | corpus kept | crashes |"
        echo "|---|---|---|---|---|---|---|"
    } >"$report"
fi
# one harness: its line on stdout, its table row in $2 (the exit code says whether it failed)
one() {
    name=$1
    row=$2
    # a resumed search may redo its episodes and calibration (seconds on a busy machine): a hang
    # is two minutes there, 20 s elsewhere
    to=20
    [ "$name" = rundir ] && to=120
    bin=$build/fuzz_$name
    seeds=tests/fuzz/corpus/$name
    work=$build/corpus/$name
    log=$build/fuzz_$name.log
    mkdir -p "$work"
    # the seeds, each once
    if ! "$bin" -timeout=$to -rss_limit_mb=4096 "$seeds"/* >"$log" 2>&1; then
        echo "fuzz $name: FAILED on its seeds (see $log)"
        echo "| $name | $(ls "$seeds" | wc -l) | 0 | - | - | - | failed on its seeds |" >"$row"
        return 1
    fi
    execs=0
    if [ "$secs" -gt 0 ]; then
        if ! "$bin" -max_total_time="$secs" -timeout=$to -rss_limit_mb=4096 -print_final_stats=1 \
            -artifact_prefix="$build/crash-$name-" "$work" "$seeds" >>"$log" 2>&1; then
            echo "fuzz $name: CRASH after fuzzing (see $log and $build/crash-$name-*)"
            echo "| $name | $(ls "$seeds" | wc -l) | $secs | - | - | - | 1 (build/fuzz/crash-$name-*) |" >"$row"
            return 1
        fi
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    fi
    echo "fuzz $name: $(ls "$seeds" | wc -l) seeds, ${secs} s, ${execs:-0} executions, 0 crashes"
    echo "| $name | $(ls "$seeds" | wc -l) | $secs | ${execs:-0} | $(( ${execs:-0} / (secs > 0 ? secs : 1) )) |" \
        "$(ls "$work" | wc -l) | 0 |" >"$row"
}
jobs=${FUZZ_JOBS:-1}
tmp=$(mktemp -d)
i=0
for name in "$@"; do
    i=$((i + 1))
    ( one "$name" "$tmp/$i.row" >"$tmp/$i.out" 2>&1 || touch "$tmp/$i.failed" ) &
    [ $((i % jobs)) -eq 0 ] && wait
done
wait
i=0
for name in "$@"; do
    i=$((i + 1))
    cat "$tmp/$i.out"
    [ -n "$report" ] && [ -f "$tmp/$i.row" ] && cat "$tmp/$i.row" >>"$report"
    [ -f "$tmp/$i.failed" ] && fail=1
done
rm -rf "$tmp"
[ -n "$report" ] && [ $fail -ne 0 ] && echo "Failed: see the lines above and build/fuzz/fuzz_NAME.log." >>"$report" 
exit $fail
