# Sourced by the bench scripts that run PAR jobs at a time (bench/vgg_cifar.sh,
# bench/vgg_cifar_kd.sh): start a job with &, then call par_started.
pids='' fail=0
# at most PAR background jobs: par_started after each start (waits for the oldest when PAR run),
# par_wait at the end; fail=1 when one failed
par_started() {
    pids="$pids $!"
    if [ "$(echo "$pids" | wc -w)" -ge "$PAR" ]; then
        set -- $pids
        wait "$1" || fail=1
        shift
        pids="$*"
    fi
}
par_wait() {
    for p in $pids; do wait "$p" || fail=1; done
    pids=''
}
