# Sourced by the bench scripts that start from bench/vgg_cifar_kd.sh's models
# (bench/vgg_cifar_abits.sh, bench/vgg_cifar_front.sh). vgg_cifar_need NAME: with MIXQ, EPOCHS,
# O (runs/vgg_cifar<EPOCHS>) and V ($O/vgg11.mixq) set, stops with a hint when the float model or
# W8A8 calibrated is missing, and measures this CPU's cost table ($O/cpu.json) if there is none.
vgg_cifar_need() {
    if [ ! -f "$V" ] || [ ! -f "$O/calib_w8a8.mixq" ]; then
        echo "$1: no $V or $O/calib_w8a8.mixq; hint: EPOCHS=$EPOCHS sh bench/vgg_cifar_kd.sh" \
            "makes them (the float model, ~70 min on 2 cores)" >&2
        exit 1
    fi
    [ -f "$O/cpu.json" ] || "$MIXQ" calibrate-cpu --model "$V" --out "$O/cpu.json" --threads 1
}
