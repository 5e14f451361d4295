/* mixq's QDQ exports mean the same thing in ONNX Runtime (issue 14): PyTorch fixtures quantized
 * (W4A4; a per-kernel mix of 2..8-bit weights with a 2-bit layer), exported, and run by ORT
 * (npm onnxruntime-node, which scripts/deps.sh installs into build/ort) with its default graph
 * optimizations, which fuse DequantizeLinear -> Conv/Gemm into integer kernels, on 500 images:
 * every prediction as mixq's, logits to float rounding. Skipped, visibly, without node or the
 * package; under CI that is a failure (deps.sh installs both). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static const char *bin(void) {
    const char *b = getenv("MIXQ_BIN");
    return b && *b ? b : "build/release/mixq";
}

/* sh -c cmd with stdout+stderr in out; the exit status (-1: it crashed) */
static int sh(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    if (!p) return -2;
    size_t got = fread(out, 1, n - 1, p);
    out[got] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void check_export(const char *fixture, const char *policy_json, int max_differ, double max_diff) {
    const char *t = test_tmpdir();
    char cmd[4096], out[8192];
    snprintf(cmd, sizeof cmd, "%s/%s.policy.json", t, fixture);
    CHECK(test_write_file(cmd, policy_json, strlen(policy_json)) == 0);
    snprintf(cmd, sizeof cmd,
             "%s quantize tests/fixtures/onnx/%s.onnx --policy %s/%s.policy.json --data fashion-mnist "
             "--calib-images 512 --out %s/%s.q.mixq --quiet 2>&1 && "
             "%s export %s/%s.q.mixq --format onnx --out %s/%s.q.onnx 2>&1 && "
             "%s eval %s/%s.q.mixq --data fashion-mnist --split val --val 500 --dump-inputs %s/in.f32 "
             "--dump-logits %s/ref.f32 2>&1 && "
             "node scripts/ort_run.js compare %s/%s.q.onnx %s/in.f32 %s/ref.f32 1 28 28 10 all 2>&1",
             bin(), fixture, t, fixture, t, fixture, bin(), t, fixture, t, fixture, bin(), t, fixture, t, t, t,
             fixture, t, t);
    int rc = sh(cmd, out, sizeof out);
    CHECKF(rc == 0, "%s: exit %d:\n%s", fixture, rc, out);
    const char *r = strstr(out, " max_logit_diff "); /* ort_run.js's line, its last */
    while (r && r > out && r[-1] != '\n') r--;
    int images = 0, differ = -1;
    double diff = -1;
    CHECKF(r && sscanf(r, "images %d differing %d max_logit_diff %lf", &images, &differ, &diff) == 3,
           "%s: no comparison line in:\n%s", fixture, out);
    printf("  %s: ONNX Runtime (default optimizations) vs mixq on %d images: %d predictions differ, "
           "max logit difference %.3g\n", fixture, images, differ, diff);
    CHECK(images == 500);
    CHECKF(differ >= 0 && differ <= max_differ, "%s: %d predictions differ", fixture, differ);
    CHECKF(diff >= 0 && diff <= max_diff, "%s: logits differ by %g", fixture, diff);
}

static void test_ort_exports(void) {
    if (!test_need_fmnist()) return;
    if (system("command -v node >/dev/null 2>&1") != 0) {
        test_skip("node is not installed (scripts/deps.sh installs nodejs and npm)");
        return;
    }
    if (access("build/ort/node_modules/onnxruntime-node/package.json", R_OK) != 0) {
        test_skip("ONNX Runtime for node is not in build/ort (scripts/deps.sh runs scripts/ort.sh)");
        return;
    }
    check_export("resnet_tiny", "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4}}", 0, 0.05);
    check_export("dw_tiny",
                 "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4},"
                 " \"layers\": {\"dw1\": {\"w_bits\": 2, \"a_bits\": 2},"
                 " \"pw1\": {\"w_bits\": [2, 3, 4, 5, 6, 7, 8, 2, 3, 4, 5, 6, 7, 8, 2, 3]}}}",
                 0, 0.05);
}

int main(void) {
    TEST_RUN(test_ort_exports);
    return test_summary();
}
