# Sourced by the bench scripts that time a searched model against W8A8 (bench/cpu_search.sh,
# bench/vgg_cifar_kd.sh). speed_pairs OUT DATA REPS NAME=FILE...: each model on the integer
# runtime ($MIXQ run, 1 thread), batch 1 (2 000 images) and batch 64 (10 000), the models
# alternating, REPS runs each; one "BATCH NAME IMAGES/S" line per run into OUT.
speed_pairs() {
    sp_out=$1 sp_data=$2 sp_reps=$3
    shift 3
    : > "$sp_out"
    for sp_b in 1 64; do
        sp_n=$([ "$sp_b" = 1 ] && echo 2000 || echo 10000)
        for sp_r in $(seq "$sp_reps"); do
            for sp_m in "$@"; do
                sp_ips=$("$MIXQ" run "${sp_m#*=}" --data "$sp_data" --threads 1 --batch "$sp_b" \
                    --images "$sp_n" --no-compare | sed -n 's/^throughput \([0-9.]*\) images.*/\1/p')
                [ -n "$sp_ips" ] || { echo "speed_pairs: no throughput from ${sp_m#*=} (run $sp_r)" >&2; return 1; }
                echo "$sp_b ${sp_m%%=*} $sp_ips" >> "$sp_out"
            done
        done
    done
}
