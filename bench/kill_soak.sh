#!/bin/sh
# Kill -9 soak (issue 15): for each agent, a short search is run once uninterrupted, then again
# from scratch while being killed with SIGKILL at KILLS pseudo-random moments (each restart with
# --resume), then resumed to the end. The final evals.jsonl, best_policy.json, pareto.csv and
# pareto.json must be byte-identical to the uninterrupted run's. Then `mixq train` and
# `mixq quantize` are killed at random moments while overwriting an existing output: the file
# must afterwards be the old one or a complete new one (mixq info reads it), never torn, and no
# <file>.tmp may be read as the output.
#
#   sh bench/kill_soak.sh                       # agents "haq random uniform greedy releq hawq", 20 kills
#   AGENTS="haq" KILLS=5 sh bench/kill_soak.sh
#   MODEL=runs/accuracy/lenet5.mixq  OUT=runs/kill_soak  SEED=1  MIXQ=build/release/mixq
#
# A search is killed after it has scored 0, 1 or 2 more records since its restart plus a random
# 0-0.4 s (so every restart makes progress and kills land anywhere in an episode); a search that
# scores fewer than 20 records (uniform, greedy, hawq) at a random moment in [0.1, 1] x the
# uninterrupted run's wall time, so kills land in its Hessian pass or its few scores; train and
# quantize at a random moment in [0.6, 1.1] x their uninterrupted run's wall time, around their
# final write. The draws come from a generator seeded by SEED, so a soak can be repeated. Writes
# OUT/soak.md and prints it.
# Exit status: 0 when every comparison holds, 1 otherwise, 2 on a usage error.
set -u
MIXQ=${MIXQ:-build/release/mixq}
MODEL=${MODEL:-runs/accuracy/lenet5.mixq}
OUT=${OUT:-runs/kill_soak}
AGENTS=${AGENTS:-haq random uniform greedy releq hawq}
KILLS=${KILLS:-20}
SEED=${SEED:-1}
[ -x "$MIXQ" ] || { echo "kill_soak.sh: no binary '$MIXQ' (make -j2 release)" >&2; exit 2; }
[ -f "$MODEL" ] || { echo "kill_soak.sh: no model '$MODEL' (sh bench/accuracy.sh lenet5 trains it)" >&2; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT"
export MIXQ_THREADS=${MIXQ_THREADS:-1}

# the k-th draw in [0, 1) (a deterministic LCG in awk, seeded by SEED)
draw() { awk -v s="$SEED" -v k="$1" 'BEGIN { x = (s * 7919 + k * 104729) % 2147483647;
    for (i = 0; i < 5; i++) x = (x * 16807) % 2147483647; printf "%.4f", x / 2147483647 }'; }
# sleep a random moment (the $1-th draw) in [$3, $3 + $4] x $2 milliseconds
sleep_part() { sleep "$(awk -v u="$(draw "$1")" -v t="$2" -v lo="$3" -v w="$4" 'BEGIN { printf "%.3f", t * (lo + w * u) / 1000 }')"; }
now_ms() { date +%s%3N; }
lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }
# kill -9 the search $1 (run directory $2) at the k-th ($3) random point after it has scored
# 0, 1 or 2 more records than it had (so each restart makes progress and the kill lands anywhere
# in an episode: scoring, appending evals.jsonl, the agent's checkpoint, state.json), or, when it
# scores no more (the Hessian pass, the final steps), after at most 60 s
kill_after_progress() {
    u=$(draw "$3")
    more=$(awk -v u="$u" 'BEGIN { printf "%d", u * 3 }')
    extra=$(awk -v u="$u" 'BEGIN { printf "%.2f", (u * 3 - int(u * 3)) * 0.4 }')
    want=$(($(lines "$2/evals.jsonl") + more))
    t=0
    while kill -0 "$1" 2>/dev/null && [ "$(lines "$2/evals.jsonl")" -lt "$want" ] && [ $t -lt 3000 ]; do
        sleep 0.02
        t=$((t + 1))
    done
    sleep "$extra"
    kill -9 "$1" 2>/dev/null
}

args_for() { # agent
    a="--data fashion-mnist --agent $1 --hw bismo_edge --episodes 40 --warmup 10 --val 500 --eval-images 300"
    a="$a --calib-images 32 --finetune-images 64 --final-epochs 0 --no-report --quiet --seed $SEED"
    case $1 in
        releq) a="$a --budget none" ;;
        hawq) a="$a --budget latency=0.8 --sweep 4 --hessian-images 64" ;;
        *) a="$a --budget latency=0.8" ;;
    esac
    printf '%s' "$a"
}

fail=0 k=0
report="$OUT/soak.md"
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
{
    echo "# Kill -9 soak ($(date -u '+%Y-%m-%d %H:%M UTC'), $cpu, MIXQ_THREADS=$MIXQ_THREADS)"
    echo
    echo "\`SEED=$SEED KILLS=$KILLS sh bench/kill_soak.sh\`, model $MODEL"
    echo
    echo "| run | kills sent | killed mid-run | restarts that found the run finished | records scored under the kills / in all | final files identical |"
    echo "|---|---|---|---|---|---|"
} > "$report"

for A in $AGENTS; do
    ARGS=$(args_for "$A")
    ref="$OUT/ref_$A" run="$OUT/kill_$A"
    t0=$(now_ms)
    # shellcheck disable=SC2086
    if ! "$MIXQ" search "$MODEL" $ARGS --out "$ref" > "$OUT/ref_$A.log" 2>&1; then
        echo "kill_soak.sh: the uninterrupted $A search failed (see $OUT/ref_$A.log)" >&2
        echo "| search $A | - | - | - | - | reference run failed |" >> "$report"
        fail=1
        continue
    fi
    T=$(($(now_ms) - t0))
    nref=$(lines "$ref/evals.jsonl")
    sent=0 mid=0 done_early=0
    i=0
    while [ $i -lt "$KILLS" ]; do
        i=$((i + 1)) k=$((k + 1))
        res=''
        [ -f "$run/config.json" ] && res=--resume
        # shellcheck disable=SC2086
        "$MIXQ" search "$MODEL" $ARGS --out "$run" $res >> "$OUT/kill_$A.log" 2>&1 &
        pid=$!
        if [ "$nref" -ge 20 ]; then kill_after_progress "$pid" "$run" $k && sent=$((sent + 1))
        else # few records (uniform, greedy, hawq): at a random moment of a whole run's time
            sleep_part $k "$T" 0.1 0.9
            kill -9 "$pid" 2>/dev/null && sent=$((sent + 1))
        fi
        wait "$pid" 2>/dev/null
        st=$?
        if [ $st -eq 137 ]; then mid=$((mid + 1))
        elif [ $st -eq 0 ]; then done_early=$((done_early + 1)); break
        else echo "kill_soak.sh: $A restart $i exited $st (see $OUT/kill_$A.log)" >&2; fail=1; fi
    done
    under=$(cat "$run/evals.jsonl" 2>/dev/null | wc -l)
    res=''
    [ -f "$run/config.json" ] && res=--resume
    # shellcheck disable=SC2086
    "$MIXQ" search "$MODEL" $ARGS --out "$run" $res >> "$OUT/kill_$A.log" 2>&1 || { echo "kill_soak.sh: $A final resume failed" >&2; fail=1; }
    same=yes
    for f in evals.jsonl best_policy.json pareto.csv pareto.json; do
        if ! cmp -s "$ref/$f" "$run/$f"; then same="no ($f differs)"; fail=1; break; fi
    done
    echo "| search $A | $sent | $mid | $done_early | $under / $(wc -l < "$ref/evals.jsonl") | $same |" >> "$report"
done

# train and quantize overwrite an existing output: old or complete new, never torn. Kills land
# in [0.6, 1.1] x the reference run's wall time, around the final write.
for what in train quantize; do
    dst="$OUT/$what.mixq"
    case $what in
        train) set -- train --model lenet5 --data fashion-mnist --epochs 1 --max-steps 40 --no-augment --quiet --out "$dst" ;;
        quantize) set -- quantize "$MODEL" --data fashion-mnist --policy examples/policies/w4a4.json --finetune-epochs 0.05 --quiet --out "$dst" ;;
    esac
    t0=$(now_ms)
    "$MIXQ" "$@" > "$OUT/$what.log" 2>&1 || { echo "kill_soak.sh: $what failed (see $OUT/$what.log)" >&2; fail=1; continue; }
    T=$(($(now_ms) - t0))
    sent=0 old=0 new=0 torn=0
    i=0
    while [ $i -lt "$KILLS" ]; do
        i=$((i + 1)) k=$((k + 1))
        before=$(date -r "$dst" +%s%N)
        "$MIXQ" "$@" >> "$OUT/$what.log" 2>&1 &
        pid=$!
        sleep_part $k "$T" 0.6 0.5
        kill -9 "$pid" 2>/dev/null && sent=$((sent + 1))
        wait "$pid" 2>/dev/null
        if ! "$MIXQ" info "$dst" > /dev/null 2>&1; then torn=$((torn + 1)); fail=1
        elif [ "$(date -r "$dst" +%s%N)" = "$before" ]; then old=$((old + 1))
        else new=$((new + 1)); fi
    done
    echo "| $what (overwriting; a run takes $T ms) | $sent | - | - | - | $old kept the old file, $new left the complete new one, $torn torn |" >> "$report"
done
cat "$report"
exit $fail
