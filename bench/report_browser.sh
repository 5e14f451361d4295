#!/bin/sh
# `mixq report` in a real browser: writes OUT_PREFIX.html from the run directories, renders it
# with Debian's headless chromium into OUT_PREFIX.png (the whole page) and OUT_PREFIX-top.png
# (its first 2600 pixels: runs, Pareto plots, the search over time), and checks the screenshot
# with tests/test_report --check-png: not blank, and every figure holds drawn pixels.
#   sh bench/report_browser.sh RUN_DIR [RUN_DIR...] OUT_PREFIX
#   sh bench/report_browser.sh runs/agents_r20/*_s? bench/results/report_r20
# Without arguments: the repository's fixture run (tests/fixtures/report/lenet5_haq) into
# runs/report_browser/fixture. Needs chromium (scripts/deps.sh --browser) and the release build
# (make all tests; BUILD= another build folder). Run directories and OUT_PREFIX are relative to
# the current directory, which is also where config.json's model paths are looked for first.
# Prints the report's generation time and the check's figures.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$root/build/release}
MIXQ=${MIXQ:-$BUILD/mixq}
CHECK=$BUILD/tests/test_report
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ $# -eq 0 ]; then
    set -- "$root/tests/fixtures/report/lenet5_haq" runs/report_browser/fixture
fi
if [ $# -lt 2 ]; then
    echo "usage: sh bench/report_browser.sh RUN_DIR [RUN_DIR...] OUT_PREFIX" >&2
    exit 2
fi
for tool in "$MIXQ" "$CHECK"; do
    [ -x "$tool" ] || { echo "report_browser.sh: $tool is missing; hint: make all tests" >&2; exit 1; }
done
[ -x "$CHROMIUM" ] || { echo "report_browser.sh: $CHROMIUM is missing; hint: sh scripts/deps.sh --browser" >&2; exit 1; }
# the last argument is the output prefix, the others are run directories
n=$#
i=0
dirs=""
for a in "$@"; do
    i=$((i + 1))
    if [ $i -eq $n ]; then out=$a; else dirs="$dirs $a"; fi
done
mkdir -p "$(dirname "$out")"
t0=$(date +%s.%N)
# shellcheck disable=SC2086
"$MIXQ" report $dirs --out "$out.html"
t1=$(date +%s.%N)
echo "report: $out.html in $(awk "BEGIN { printf \"%.3f\", $t1 - $t0 }") s (the whole mixq process)"
runs=$((n - 1))
height=${HEIGHT:-$((4000 + 2600 * runs))}
html=$(cd "$(dirname "$out.html")" && pwd)/$(basename "$out.html")
shot() {
    d=$(mktemp -d)
    rc=0
    timeout 300 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
        --user-data-dir="$d" --screenshot="$1" --window-size="1400,$2" "file://$html" >"$d.log" 2>&1 || rc=$?
    rm -rf "$d"
    if [ $rc -ne 0 ] || [ ! -s "$1" ]; then
        echo "report_browser.sh: chromium failed (exit $rc):" >&2
        cat "$d.log" >&2
        rm -f "$d.log"
        exit 1
    fi
    rm -f "$d.log"
}
shot "$out.png" "$height"
# chromium draws the window, not the page: shoot again as tall as the page is
end=$("$CHECK" --page-end "$out.png")
if [ "$end" -ge $((height - 1)) ]; then
    echo "report_browser.sh: warning: the page is taller than $height pixels (cut); hint: HEIGHT=$((height * 2))" >&2
elif [ $((end + 41)) -lt "$height" ]; then
    height=$((end + 41))
    shot "$out.png" "$height"
fi
shot "$out-top.png" 2600
echo "screenshots: $out.png (1400 x $height, the whole page), $out-top.png (1400 x 2600)"
"$CHECK" --check-png "$out.png"
