#!/bin/sh
# tests/fuzz/run.sh BUILD NAME...: each harness BUILD/fuzz_NAME runs once over its committed seeds
# (tests/fuzz/corpus/NAME), then fuzzes for FUZZ_SECONDS (default 20; 0: the seeds only), keeping
# new inputs in BUILD/corpus/NAME and writing a crash to BUILD/crash-NAME-*. Prints one line per
# harness (seconds, executions, crashes) and exits non-zero if any harness failed.
# Run from the repository root.
build=$1
shift
secs=${FUZZ_SECONDS:-20}
export MIXQ_THREADS=1
fail=0
for name in "$@"; do
    bin=$build/fuzz_$name
    seeds=tests/fuzz/corpus/$name
    work=$build/corpus/$name
    log=$build/fuzz_$name.log
    mkdir -p "$work"
    # the seeds, each once
    if ! "$bin" -timeout=20 -rss_limit_mb=4096 "$seeds"/* >"$log" 2>&1; then
        echo "fuzz $name: FAILED on its seeds (see $log)"
        fail=1
        continue
    fi
    execs=0
    if [ "$secs" -gt 0 ]; then
        if ! "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
            -artifact_prefix="$build/crash-$name-" "$work" "$seeds" >>"$log" 2>&1; then
            echo "fuzz $name: CRASH after fuzzing (see $log and $build/crash-$name-*)"
            fail=1
            continue
        fi
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    fi
    echo "fuzz $name: $(ls "$seeds" | wc -l) seeds, ${secs} s, ${execs:-0} executions, 0 crashes"
done
exit $fail
