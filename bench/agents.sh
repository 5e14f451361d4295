#!/bin/sh
# Paired comparison of search agents: agents x seeds x budgets on one model and hardware target,
# every agent with the same model, target, budget, seeds, episodes and flags; then a markdown
# report (bench/agents_report.py) with test accuracy after the final fine-tune (mean ± sd), the
# paired difference against `random` with a 95 % t-interval over seeds, wins/losses per seed,
# scored candidates, cost ratios, whether every chosen policy fits, and wall times.
#
#   sh bench/agents.sh                       # = --preset lenet5
#   sh bench/agents.sh --preset resnet20     # resnet20, bismo_edge, latency=0.2
#   sh bench/agents.sh --model M.mixq --hw bismo_edge --budgets "latency=0.2 latency=0.5" \
#       --agents "haq random uniform" --seeds "1 2 3 4 5" --episodes 100 --out runs/agents
#   sh bench/agents.sh --report-only runs/agents   # rewrite runs/agents/report.md from the runs
#
# Options (defaults in brackets):
#   --preset P        lenet5: runs/accuracy/lenet5.mixq, bismo_edge, latency=0.75 (the default);
#                     resnet20: runs/accuracy/resnet20.mixq, bismo_edge, latency=0.2.
#                     Flags given explicitly win over the preset's.
#   --model M         float model (mixq train / bench/accuracy.sh)
#   --hw T            hardware target (mixq cost --list) [bismo_edge]
#   --budget B        one budget, passed to mixq search unchanged (latency=0.5, latency=0.5,energy=0.55);
#                     required with --model unless a --preset gives it
#   --budgets "B ..." several budgets, space-separated: one comparison per budget (--budget and
#                     --budgets set the same list; the last one given wins)
#   --agents "A ..."  [haq random uniform]; `random` is the reference of the paired differences
#   --seeds "S ..."   [1 2 3 4 5]
#   --episodes N      [100]
#   --data D          [fashion-mnist]
#   --extra "FLAGS"   more mixq search flags, after the defaults "--finetune-images 2048
#                     --final-epochs 1", so they override them (mixq takes the last of a repeated flag)
#   --out DIR         [runs/agents]
#   --report-only DIR only rewrite DIR/report.md (and DIR/runs.csv) from the run directories there
#   MIXQ=path         the binary [build/release/mixq]
#
# Runs go one at a time (timings matter), the agents taking turns seed by seed, each into
# DIR/<model>_<hw>_<budget>_<agent>_s<seed>/ with its log beside it (DIR/<same>.log: the settings, the command, the load average before and
# after, mixq's output); DIR/commands.txt keeps every invocation. Re-running the same command
# after an interruption skips complete runs (summary.json present) and resumes a started one
# (config.json present) with --resume; a run directory made with different settings is refused
# before anything runs. The report covers every run directory in DIR, grouped by (model, target,
# budget), and is written to DIR/report.md (one row per run: DIR/runs.csv) and printed. The
# report reads summary.json fields defensively: a field it lacks shows as "-". bench/search_seeds.sh
# is a thin wrapper over this script. Exit status: 0, 1 if a run failed, 2 on
# a usage error or a settings clash, 130 on Ctrl-C.
set -eu
set -f # --extra, --agents, --seeds and --budgets are split on blanks, never globbed

HERE=$(dirname "$0")
MIXQ=${MIXQ:-build/release/mixq}
PY=${PYTHON:-python3}

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}
die() { echo "agents.sh: $*" >&2; exit 2; }

# a shell-quoted rendering of the arguments, for the logs and the report
quote() {
    out=
    for x in "$@"; do
        case $x in
            '' | *[!A-Za-z0-9_./=,:+@%-]*) x="'$(printf '%s' "$x" | sed "s/'/'\\\\''/g")'" ;;
        esac
        out="$out${out:+ }$x"
    done
    printf '%s' "$out"
}

CMDLINE="sh bench/agents.sh${*:+ $(quote "$@")}"
PRESET='' MODEL='' HW='' BUDGETS='' AGENTS='' SEEDS='' EPISODES='' DATA='' EXTRA='' OUT='' REPORT_ONLY=''
while [ $# -gt 0 ]; do
    case $1 in
        -h | --help) usage ;;
    esac
    [ $# -ge 2 ] || die "$1 needs a value (--help lists the options)"
    case $1 in
        --preset) PRESET=$2 ;;
        --model) MODEL=$2 ;;
        --hw) HW=$2 ;;
        --budget | --budgets) BUDGETS=$2 ;;
        --agents) AGENTS=$2 ;;
        --seeds) SEEDS=$2 ;;
        --episodes) EPISODES=$2 ;;
        --data) DATA=$2 ;;
        --extra) EXTRA=$2 ;;
        --out) OUT=$2 ;;
        --report-only) REPORT_ONLY=$2 ;;
        *) die "unknown option '$1' (--help lists the options)" ;;
    esac
    shift 2
done

if [ -n "$REPORT_ONLY" ]; then
    [ -d "$REPORT_ONLY" ] || die "--report-only: no directory '$REPORT_ONLY'"
    exec "$PY" "$HERE/agents_report.py" "$REPORT_ONLY"
fi

[ -n "$PRESET$MODEL" ] || PRESET=lenet5
case $PRESET in
    '') ;;
    lenet5) : "${MODEL:=runs/accuracy/lenet5.mixq}" "${HW:=bismo_edge}" "${BUDGETS:=latency=0.75}" ;;
    resnet20) : "${MODEL:=runs/accuracy/resnet20.mixq}" "${HW:=bismo_edge}" "${BUDGETS:=latency=0.2}" ;;
    *) die "--preset expects lenet5 or resnet20, got '$PRESET'" ;;
esac
[ -n "$BUDGETS" ] || die "--model without a --preset needs --budget (the presets': lenet5 latency=0.75, resnet20 latency=0.2)"
: "${HW:=bismo_edge}" "${AGENTS:=haq random uniform}" "${SEEDS:=1 2 3 4 5}"
: "${EPISODES:=100}" "${DATA:=fashion-mnist}" "${OUT:=runs/agents}"
OUT=${OUT%/}
[ -f "$MODEL" ] || die "no model '$MODEL' (the presets' models: sh bench/accuracy.sh lenet5|resnet20 writes runs/accuracy/<name>.mixq)"
[ -x "$MIXQ" ] || die "no binary '$MIXQ' (make -j2 all, or MIXQ=path)"
case $EPISODES in '' | *[!0-9]*) die "--episodes expects a number, got '$EPISODES'" ;; esac
for s in $SEEDS; do case $s in *[!0-9]*) die "--seeds expects numbers, got '$s'" ;; esac; done
if [ -z "$AGENTS" ] || [ -z "$SEEDS" ] || [ -z "$BUDGETS" ]; then die "--agents, --seeds and --budgets must not be empty"; fi

mname=$(basename "$MODEL" .mixq)
hname=$(basename "$HW" .json)
run_name() { # budget agent seed
    printf '%s_%s_%s_%s_s%s' "$mname" "$hname" "$(printf '%s' "$1" | tr '=.,/ ' '_____')" "$2" "$3"
}
# the settings of one run, shell-quoted: mixq search's arguments except --out
settings_line() { # budget agent seed
    # shellcheck disable=SC2086 # EXTRA is split on purpose
    quote search "$MODEL" --data "$DATA" --agent "$2" --hw "$HW" --budget "$1" --episodes "$EPISODES" \
        --seed "$3" --finetune-images 2048 --final-epochs 1 $EXTRA
}

# 1. refuse run directories made with other settings, before anything runs
clash=0
for B in $BUDGETS; do for S in $SEEDS; do for A in $AGENTS; do
    n=$(run_name "$B" "$A" "$S")
    d="$OUT/$n"
    [ -f "$d/config.json" ] || [ -f "$d/summary.json" ] || continue
    want="# settings: $(settings_line "$B" "$A" "$S")"
    if [ ! -f "$d.log" ] || [ "$(head -n 1 "$d.log")" != "$want" ]; then
        if [ -f "$d.log" ] && head -n 1 "$d.log" | grep -q '^# settings: '; then
            echo "agents.sh: $d was run with other settings:" >&2
            echo "  it:   $(head -n 1 "$d.log" | sed 's/^# settings: //')" >&2
            echo "  now:  $(settings_line "$B" "$A" "$S")" >&2
            clash=1
        else
            echo "agents.sh: warning: $d has no settings line in $d.log (an older script's run); taken as it is" >&2
        fi
    fi
done; done; done
[ $clash = 0 ] || die "use another --out, or remove those run directories"

mkdir -p "$OUT"
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
printf '%s\t%s\t%s (%s logical CPUs)\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$CMDLINE" "${cpu:-unknown CPU}" \
    "$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')" >> "$OUT/commands.txt"
trap 'echo "agents.sh: interrupted; the same command continues where it stopped" >&2; exit 130' INT TERM

# 2. the runs, one at a time
failed=0
total=0
for B in $BUDGETS; do for S in $SEEDS; do for A in $AGENTS; do total=$((total + 1)); done; done; done
i=0
for B in $BUDGETS; do for S in $SEEDS; do for A in $AGENTS; do
    i=$((i + 1))
    n=$(run_name "$B" "$A" "$S")
    d="$OUT/$n"
    if [ -f "$d/summary.json" ]; then
        echo "[$i/$total] $n: complete, skipped"
        continue
    fi
    settings=$(settings_line "$B" "$A" "$S")
    eval "set -- $settings --out \"\$d\""
    if [ -f "$d/config.json" ]; then
        echo "[$i/$total] $n: resuming"
        echo "# resumed $(date -u '+%Y-%m-%d %H:%M:%S UTC'): $(quote "$MIXQ" "$@" --resume)" >> "$d.log"
        set -- "$@" --resume
    else
        echo "[$i/$total] $n"
        rm -rf "$d"
        {
            echo "# settings: $settings"
            echo "# command $(date -u '+%Y-%m-%d %H:%M:%S UTC'): $(quote "$MIXQ" "$@")"
        } > "$d.log"
    fi
    echo "# load before: $(cat /proc/loadavg 2>/dev/null || echo '?')" >> "$d.log"
    rc=0
    "$MIXQ" "$@" >> "$d.log" 2>&1 || rc=$?
    echo "# load after: $(cat /proc/loadavg 2>/dev/null || echo '?')" >> "$d.log"
    if [ $rc = 130 ]; then
        echo "agents.sh: interrupted; the same command continues where it stopped" >&2
        exit 130
    fi
    if [ $rc != 0 ] || [ ! -f "$d/summary.json" ]; then
        echo "  FAILED (exit $rc), see $d.log:" >&2
        grep -v '^# ' "$d.log" | tail -n 3 | sed 's/^/    /' >&2
        failed=$((failed + 1))
    else
        "$PY" "$HERE/agents_report.py" --line "$d" || true
    fi
done; done; done

# 3. the report
echo
"$PY" "$HERE/agents_report.py" "$OUT"
if [ $failed != 0 ]; then
    echo "agents.sh: $failed of $total runs failed (logs: $OUT/*.log)" >&2
    exit 1
fi
