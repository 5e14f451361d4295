/* End-to-end CLI tests: exit codes and messages for good and bad input. The binary comes from
 * $MIXQ_BIN (set by tests/run.sh's callers), default build/release/mixq. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static const char *bin(void) {
    const char *b = getenv("MIXQ_BIN");
    return b && *b ? b : "build/release/mixq";
}

/* Run the shell command cmd capturing stdout+stderr; returns the exit status (-1 if it
 * crashed). */
static int run_sh(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    if (!p) return -2;
    size_t got = fread(out, 1, n - 1, p);
    out[got] = 0;
    int st = pclose(p);
    if (WIFSIGNALED(st)) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run `mixq ARGS` capturing stdout+stderr; returns the exit status (-1 if it crashed). */
static int run(const char *args, char *out, size_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin(), args);
    return run_sh(cmd, out, n);
}

/* Two records per CIFAR batch f: label f, one pixel 7 f (test_write_cifar_dir's fill). */
static void cifar_fill(int f, int r, unsigned char *rec, void *user) {
    (void)user;
    rec[0] = (unsigned char)f;
    if (r == 0) rec[100] = (unsigned char)(7 * f);
}

/* `mixq ARGS` exits with code and prints needle (with one_line: and nothing but one line). */
#define EXPECT_(args, code, needle, one_line)                                              \
    do {                                                                                  \
        char out_[16384];                                                                 \
        int rc_ = run(args, out_, sizeof out_);                                           \
        CHECKF(rc_ == (code), "`mixq %s` exited %d, want %d; output:\n%s", args, rc_, code, out_); \
        CHECKF(strstr(out_, needle) != NULL, "`mixq %s` output lacks '%s':\n%s", args, needle, out_); \
        const char *nl_ = strchr(out_, '\n');                                              \
        CHECKF(!(one_line) || (nl_ && !nl_[1]), "`mixq %s` did not print one line:\n%s", args, out_); \
    } while (0)
#define EXPECT(args, code, needle) EXPECT_(args, code, needle, 0)
#define EXPECT_LINE(args, code, needle) EXPECT_(args, code, needle, 1) /* errors: one line */

static void test_usage_errors(void) {
    EXPECT("", 2, "usage");
    EXPECT("--help", 0, "train");
    EXPECT("frobnicate", 2, "unknown command");
    EXPECT("train --help", 0, "--epochs");
    EXPECT("train --data fashion-mnist --out x.mixq", 2, "--model is required");
    EXPECT("train --model lenet5 --data fashion-mnist --out x.mixq --epochs -1", 2, "--epochs");
    EXPECT("train --model lenet5 --data fashion-mnist --out x.mixq --epochs ten", 2, "'ten'");
    EXPECT("train --model lenet5 --data fashion-mnist --out x.mixq --lr nan", 2, "--lr");
    EXPECT("train --model lenet5 --data fashion-mnist --out x.mixq --threads 0", 2, "--threads");
    EXPECT("train --model lenet5 --data fashion-mnist --bogus", 2, "unknown option");
    EXPECT("train --model lenet5 --data fashion-mnist --out", 2, "needs a value");
    EXPECT("eval", 2, "model file is required");
    EXPECT("info --help", 0, "usage");
}

static void test_bad_inputs(void) {
    char args[1024];
    EXPECT("train --model resnet99 --data fashion-mnist --epochs 0 --out /tmp/x.mixq", 1,
           "unknown model 'resnet99'");
    EXPECT("train --model lenet5 --data /nonexistent/data --epochs 0 --out /tmp/x.mixq", 1,
           "/nonexistent/data");
    EXPECT("eval /nonexistent/m.mixq --data fashion-mnist", 1, "/nonexistent/m.mixq");
    EXPECT("info /nonexistent/m.mixq", 1, "does not exist; hint: train it first: mixq train");
    /* a truncated model file */
    snprintf(args, sizeof args, "%s/trunc.mixq", test_tmpdir());
    test_write_file(args, "MIXQMODL\1\0", 10);
    char a2[1200];
    snprintf(a2, sizeof a2, "info %s", args);
    EXPECT(a2, 1, "truncated");
    /* a directory with a truncated IDX file */
    char dir[600], f[700];
    snprintf(dir, sizeof dir, "%s/baddata", test_tmpdir());
    mkdir(dir, 0755);
    unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 28, 0, 0, 0, 28};
    snprintf(f, sizeof f, "%s/train-images-idx3-ubyte", dir);
    test_write_file(f, hdr, sizeof hdr);
    unsigned char lhdr[8] = {0, 0, 8, 1, 0, 0, 0, 100};
    snprintf(f, sizeof f, "%s/train-labels-idx1-ubyte", dir);
    test_write_file(f, lhdr, sizeof lhdr);
    snprintf(a2, sizeof a2, "train --model lenet5 --data %s --epochs 1 --val 0 --out %s/m.mixq", dir,
             test_tmpdir());
    EXPECT(a2, 1, "train-images-idx3-ubyte");
}


/* Write text to $TMP/name and return `mixq cost --arch resnet20 --hw HW --policy|--hw FILE`. */
static const char *cost_cmd(const char *name, const char *text, const char *fmt) {
    static char cmd[2300];
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    CHECK(test_write_file(path, text, strlen(text)) == 0);
    snprintf(cmd, sizeof cmd, fmt, path);
    return cmd;
}

static void test_cost(void) {
    EXPECT("cost --help", 0, "--sweep");
    EXPECT("cost --list", 0, "bismo_cloud");
    EXPECT("cost --hw bitfusion --show", 0, "\"dram_bits_per_cycle\": 192");
    EXPECT("cost --arch resnet20 --hw bitfusion", 0, "vs uniform W8A8: cycles 1.000x");
    EXPECT("cost --arch resnet20 --hw bitfusion", 0, "layer3.2.conv2");
    EXPECT("cost --arch resnet20 --hw bitfusion --csv", 0, "total,,8,8,1758131,");
    EXPECT("cost --arch resnet20 --hw stripes", 0, "estimate");
    EXPECT("cost --arch lenet5 --hw bismo_edge --sweep", 0, "conv1 (conv5x5/1)");
    EXPECT("cost --arch lenet5 --hw bismo_edge --sweep --metric energy", 0, "energy uJ");
    EXPECT("cost --arch lenet5 --hw bitfusion --sweep --csv", 0, "fc3,8,8,");
    /* a W4A4 policy: every layer 4/4, cheaper than W8A8 on BitFusion */
    const char *b = cost_cmd("w4a4.json", "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4}}",
                             "cost --arch resnet20 --hw bitfusion --policy %s");
    EXPECT(b, 0, "4/4");
    EXPECT(b, 0, "vs uniform W8A8: cycles 0.");
    /* per-kernel bits are shown as k<max>/<a> */
    b = cost_cmd("kern.json",
                 "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 8, \"a_bits\": 8}, \"layers\": {\"conv1\": "
                 "{\"w_bits\": [2, 2, 2, 2, 2, 2, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], \"granularity\": \"kernel\"}}}",
                 "cost --arch resnet20 --hw bitfusion --policy %s");
    EXPECT(b, 0, "k8/8");
    /* errors */
    EXPECT("cost --arch resnet20", 2, "--hw is required");
    EXPECT("cost --hw bitfusion", 2, "a model file or --arch");
    EXPECT("cost --arch resnet20 --hw tpu9", 1, "unknown hardware target 'tpu9'");
    EXPECT("cost --arch resnet20 --hw /nonexistent/hw.json", 1, "/nonexistent/hw.json");
    EXPECT("cost --arch resnet20 --hw bitfusion --metric speed", 2, "--metric");
    EXPECT("cost --arch resnet20 --hw bitfusion --batch 0", 2, "--batch");
    EXPECT("cost /nonexistent/m.mixq --hw bitfusion", 1, "/nonexistent/m.mixq");
    b = cost_cmd("bad_hw.json",
                 "{\"mixq_hw\": 1, \"name\": \"x\", \"backend\": \"bismo\", \"batch\": 1, "
                 "\"freq_hz\": 2e8, \"bits\": {\"min\": 1, \"max\": 8}, \"bismo\": {\"dm\": 8}}",
                 "cost --arch resnet20 --hw %s");
    EXPECT(b, 1, "field 'bismo.dn' is missing");
    /* a float layer (32 bits) on an integer accelerator is an error naming the layer */
    const char *fl = "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4}, \"layers\": "
                     "{\"fc\": {\"w_bits\": 32, \"a_bits\": 32}}}";
    b = cost_cmd("float.json", fl, "cost --arch resnet20 --hw bismo_cloud --policy %s");
    EXPECT(b, 1, "layer 'fc'");
    b = cost_cmd("float.json", fl, "cost --arch resnet20 --hw size --policy %s");
    EXPECT(b, 0, "32/32");
}

static void test_onnx_cli(void) {
    char a[1200];
    EXPECT("import --help", 0, "GlobalAveragePool");
    EXPECT("export --help", 0, "QDQ");
    snprintf(a, sizeof a, "import tests/fixtures/onnx/resnet_tiny.onnx --out %s/rt.mixq", test_tmpdir());
    EXPECT(a, 0, "layer2.0.downsample.0");
    snprintf(a, sizeof a, "export %s/rt.mixq --format onnx --out %s/rt.onnx", test_tmpdir(), test_tmpdir());
    EXPECT(a, 0, "float");
    snprintf(a, sizeof a, "info %s/rt.onnx", test_tmpdir());
    EXPECT(a, 0, "layer1.0.conv2");
    snprintf(a, sizeof a, "import tests/fixtures/onnx/pad_folded.onnx --out %s/pf.mixq", test_tmpdir());
    EXPECT(a, 0, "wrote"); /* asymmetric zero padding folds into the conv */
    EXPECT("import tests/fixtures/onnx/resnet_tiny.onnx", 2, "--out is required");
    snprintf(a, sizeof a, "export %s/rt.mixq --format tflite --out x", test_tmpdir());
    EXPECT(a, 2, "--format expects onnx");
    EXPECT("cost tests/fixtures/onnx/dw_tiny.onnx --hw bismo_edge", 0, "dw1");
    /* input preprocessing: a ToTensor()-only PyTorch model (tests/fixtures/onnx/unit_net.onnx) */
    EXPECT("eval tests/fixtures/onnx/unit_net.onnx --data fashion-mnist --preprocess unti", 1,
           "did you mean 'unit'");
    snprintf(a, sizeof a, "export tests/fixtures/onnx/unit_net.onnx --format onnx --out %s/u.onnx "
             "--embed-preprocess", test_tmpdir());
    EXPECT(a, 1, "cannot embed");
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        test_skip("dataset-fashion-mnist is not installed (scripts/deps.sh installs it)");
        return;
    }
    EXPECT("eval tests/fixtures/onnx/unit_net.onnx --data fashion-mnist", 0,
           "records no input preprocessing; assuming dataset");
    EXPECT("eval tests/fixtures/onnx/unit_net.onnx --data fashion-mnist --preprocess unit", 0,
           "accuracy 87.59%"); /* PyTorch's, tests/fixtures/onnx/preprocess_ref.mqfx */
    EXPECT("eval tests/fixtures/onnx/unit_net.onnx --data fashion-mnist --mean 0 --std 1 --scale 1/255",
           0, "accuracy 87.59%");
    snprintf(a, sizeof a, "import tests/fixtures/onnx/unit_net.onnx --preprocess unit --out %s/u.mixq",
             test_tmpdir());
    EXPECT(a, 0, "input transform: unit: x = pixel / 255");
    snprintf(a, sizeof a, "export %s/u.mixq --format onnx --out %s/u.onnx --embed-preprocess",
             test_tmpdir(), test_tmpdir());
    EXPECT(a, 0, "wrote");
    snprintf(a, sizeof a, "eval %s/u.onnx --data fashion-mnist", test_tmpdir());
    EXPECT(a, 0, "accuracy 87.59%");
}

static void test_train_zero_epochs_info_eval(void) {
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        test_skip("dataset-fashion-mnist is not installed (scripts/deps.sh installs it)");
        return;
    }
    char a[4096];
    snprintf(a, sizeof a, "train --model resnet20 --data fashion-mnist --epochs 0 --out %s/r.mixq",
             test_tmpdir());
    EXPECT(a, 0, "wrote");
    snprintf(a, sizeof a, "info %s/r.mixq", test_tmpdir());
    EXPECT(a, 0, "layer2.1.conv1");
    EXPECT(a, 0, "total:");
    /* 500 validation images: resnet20 over all 10 000 test images is half a minute under ASan */
    snprintf(a, sizeof a, "eval %s/r.mixq --data fashion-mnist --split val --val 500", test_tmpdir());
    EXPECT(a, 0, "accuracy ");
    /* wrong image size: a 3x32x32 CIFAR-format directory against the 1x28x28 model */
    char dir[700];
    snprintf(dir, sizeof dir, "%s/cifar", test_tmpdir());
    static const int two[6] = {2, 2, 2, 2, 2, 2};
    CHECK(test_write_cifar_dir(dir, two, cifar_fill, NULL) == 0);
    snprintf(a, sizeof a, "eval %s/r.mixq --data %s", test_tmpdir(), dir);
    EXPECT(a, 1, "is 3x32x32 with 10 classes but model 'resnet20' expects 1x28x28");
    /* train a few steps and log plain lines (not a terminal) */
    snprintf(a, sizeof a,
             "train --model lenet5 --data fashion-mnist --epochs 1 --max-steps 5 --val 500 --out "
             "%s/l.mixq",
             test_tmpdir());
    EXPECT(a, 0, "val_acc");
    /* policies and quantization on that model */
    char pol[900];
    snprintf(pol, sizeof pol, "%s/w4.json", test_tmpdir());
    const char *w4 = "{\"mixq_policy\": 1, \"default\": {\"w_bits\": 4, \"a_bits\": 4},\n"
                     " \"layers\": {\"conv1\": {\"w_bits\": 8, \"a_bits\": 8}}}\n";
    test_write_file(pol, w4, strlen(w4));
    snprintf(a, sizeof a, "policy show %s/l.mixq %s", test_tmpdir(), pol);
    EXPECT(a, 0, "total: 5 layers");
    snprintf(a, sizeof a, "quantize %s/l.mixq --policy %s --data fashion-mnist --calib-images 256 "
             "--finetune-epochs 0.01 --val 500 --out %s/q.mixq --quiet", test_tmpdir(), pol, test_tmpdir());
    EXPECT(a, 0, "wrote");
    snprintf(a, sizeof a, "eval %s/q.mixq --data fashion-mnist", test_tmpdir());
    EXPECT(a, 0, "quantized: 5 layers");
    /* --epoch-models: the model after each epoch too (a fraction of one: its one epoch), the
     * same file as the final one when nothing follows it */
    snprintf(a, sizeof a, "quantize %s/l.mixq --policy %s --data fashion-mnist --calib-images 256 "
             "--finetune-epochs 0.01 --val 500 --epoch-models --out %s/qe.mixq", test_tmpdir(), pol, test_tmpdir());
    EXPECT(a, 0, "qe.epoch1.mixq");
    {
        char e1[1100], fin[1100];
        snprintf(e1, sizeof e1, "%s/qe.epoch1.mixq", test_tmpdir());
        snprintf(fin, sizeof fin, "%s/qe.mixq", test_tmpdir());
        CHECKF(test_same_file(e1, fin), "%s and %s differ (or one is missing)", e1, fin);
    }
    /* an epoch's model that cannot be written stops the command with the save's message */
    snprintf(a, sizeof a, "%s/qf.epoch1.mixq", test_tmpdir());
    CHECK(mkdir(a, 0755) == 0);
    snprintf(a, sizeof a, "quantize %s/l.mixq --policy %s --data fashion-mnist --calib-images 256 "
             "--finetune-epochs 0.01 --val 500 --epoch-models --out %s/qf.mixq", test_tmpdir(), pol, test_tmpdir());
    EXPECT(a, 1, "qf.epoch1.mixq': Is a directory");
    snprintf(a, sizeof a, "%s/qf.mixq", test_tmpdir());
    CHECK(access(a, F_OK) != 0);
    snprintf(a, sizeof a, "quantize %s/l.mixq --policy %s --data fashion-mnist --epoch-models --out %s/qe.mixq",
             test_tmpdir(), pol, test_tmpdir());
    EXPECT_LINE(a, 2, "--epoch-models writes the fine-tune's epochs: give --finetune-epochs too");
    /* the validation split: l.mixq records the 500 images it held out (split seed 1); the
     * commands after it keep to them by default, warn when told to take others, and a
     * fine-tune on some of them leaves a model that records none */
    snprintf(a, sizeof a, "info %s/l.mixq", test_tmpdir());
    EXPECT(a, 0, "held out: 500 of 60000 training images (split seed 1)");
    snprintf(a, sizeof a, "eval %s/q.mixq --data fashion-mnist --split val", test_tmpdir());
    EXPECT(a, 0, "images 500");
    {
        char o[16384];
        CHECK(run(a, o, sizeof o) == 0 && !strstr(o, "warning"));
    }
    /* an ONNX export carries the record (metadata_props mixq.holdout) */
    snprintf(a, sizeof a, "export %s/q.mixq --format onnx --out %s/q.onnx", test_tmpdir(), test_tmpdir());
    EXPECT(a, 0, "wrote");
    snprintf(a, sizeof a, "info %s/q.onnx", test_tmpdir());
    EXPECT(a, 0, "held out: 500 of 60000 training images (split seed 1)");
    snprintf(a, sizeof a, "eval %s/q.mixq --data fashion-mnist --split val --seed 2", test_tmpdir());
    EXPECT(a, 0, "of the 500 validation images (split seed 2) are images");
    snprintf(a, sizeof a, "run %s/q.mixq --data fashion-mnist --split val --val 600 --images 50", test_tmpdir());
    EXPECT(a, 0, "100 of the 600 validation images (split seed 1) are images");
    EXPECT(a, 0, "hint: --val 500 or fewer");
    /* data of another training file (100 images, not 60000): whether it trained on them cannot
     * be told */
    char nd[1100];
    snprintf(nd, sizeof nd, "%s/noise100", test_tmpdir());
    CHECK(test_write_noise_idx(nd, 100) == 0);
    snprintf(a, sizeof a, "eval %s/q.mixq --data %s --split val --val 20", test_tmpdir(), nd);
    EXPECT(a, 0, "not the same data: whether it trained on the validation images cannot be told; "
           "hint: is --data the data it was trained on?");
    /* checkpoints: a fine-tune stopped partway through epoch 2 (1.4 epochs of 2) and resumed from
     * its checkpoint of epoch 1 writes the model of the fine-tune never stopped; so does training */
    {
        const char *T = test_tmpdir();
        char base[3200], fa[1200], fb[1200], c[4200];
        snprintf(base, sizeof base, "quantize %s/l.mixq --policy %s --data %s --val 20 --calib-images 64 "
                 "--batch 16", T, pol, nd);
        snprintf(c, sizeof c, "%s --finetune-epochs 2 --out %s/qc_a.mixq --quiet", base, T);
        EXPECT(c, 0, "wrote");
        snprintf(c, sizeof c, "%s --finetune-epochs 1.4 --checkpoint %s/qc.ckpt --out %s/qc_x.mixq --quiet", base, T, T);
        EXPECT(c, 0, "wrote");
        snprintf(c, sizeof c, "%s --finetune-epochs 2 --checkpoint %s/qc.ckpt --resume --out %s/qc_b.mixq", base, T, T);
        EXPECT(c, 0, "qc.ckpt: 1 of 2 epochs done\n");
        EXPECT(c, 0, "epochs done (nothing left to train)"); /* the run above finished it */
        snprintf(fa, sizeof fa, "%s/qc_a.mixq", T);
        snprintf(fb, sizeof fb, "%s/qc_b.mixq", T);
        CHECKF(test_same_file(fa, fb), "the resumed fine-tune %s differs from the uninterrupted %s", fb, fa);
        snprintf(c, sizeof c, "%s --finetune-epochs 2 --lr 0.02 --checkpoint %s/qc.ckpt --resume --out %s/qc_c.mixq",
                 base, T, T);
        EXPECT(c, 1, "its learning rate is 0.01, this run's 0.02");
        snprintf(c, sizeof c, "%s --finetune-epochs 2 --resume --out %s/qc_c.mixq", base, T);
        EXPECT_LINE(c, 2, "--resume needs --checkpoint FILE to resume from");
        snprintf(c, sizeof c, "%s --checkpoint %s/qc.ckpt --out %s/qc_c.mixq", base, T, T);
        EXPECT_LINE(c, 2, "--checkpoint saves the fine-tune's state: give --finetune-epochs too");
        snprintf(c, sizeof c, "%s --finetune-epochs 2 --checkpoint %s/none.ckpt --resume --out %s/qc_c.mixq", base, T, T);
        EXPECT(c, 1, "none.ckpt' does not exist");
        snprintf(base, sizeof base, "train --model lenet5 --data %s --val 20 --batch 16 --epochs 2 --quiet", nd);
        snprintf(c, sizeof c, "%s --out %s/tc_a.mixq", base, T);
        EXPECT(c, 0, "wrote");
        snprintf(c, sizeof c, "%s --max-steps 7 --checkpoint %s/tc.ckpt --out %s/tc_x.mixq", base, T, T);
        EXPECT(c, 0, "wrote");
        snprintf(c, sizeof c, "train --model lenet5 --data %s --val 20 --batch 16 --epochs 2 --checkpoint %s/tc.ckpt "
                 "--resume --out %s/tc_b.mixq", nd, T, T);
        EXPECT(c, 0, "tc.ckpt: 1 of 2 epochs done\n");
        snprintf(fa, sizeof fa, "%s/tc_a.mixq", T);
        snprintf(fb, sizeof fb, "%s/tc_b.mixq", T);
        CHECKF(test_same_file(fa, fb), "the resumed training %s differs from the uninterrupted %s", fb, fa);
        snprintf(c, sizeof c, "%s --resume --out %s/tc_c.mixq", base, T);
        EXPECT_LINE(c, 2, "--resume needs --checkpoint FILE to resume from");
    }
    snprintf(a, sizeof a, "quantize %s/l.mixq --policy %s --data fashion-mnist --calib-images 256 "
             "--finetune-epochs 0.01 --split-seed 2 --out %s/qs.mixq --quiet", test_tmpdir(), pol, test_tmpdir());
    EXPECT(a, 0, "of the 500 validation images (split seed 2) are images");
    snprintf(a, sizeof a, "info %s/qs.mixq", test_tmpdir());
    EXPECT(a, 0, "held out: none");
    /* the fine-tune distilled from the float model */
    snprintf(a, sizeof a, "quantize %s/l.mixq --policy %s --data fashion-mnist --calib-images 256 "
             "--finetune-epochs 0.01 --val 500 --teacher %s/l.mixq --distill-temperature 2 --out "
             "%s/qd.mixq --quiet", test_tmpdir(), pol, test_tmpdir(), test_tmpdir());
    EXPECT(a, 0, "weight 0.5, temperature 2");
    EXPECT(a, 0, "wrote");
    /* its epoch line gives the loss's parts: cross-entropy and distillation */
    snprintf(a, sizeof a, "quantize %s/l.mixq --policy %s --data fashion-mnist --calib-images 256 "
             "--finetune-epochs 0.01 --val 500 --teacher %s/l.mixq --out %s/qd.mixq",
             test_tmpdir(), pol, test_tmpdir(), test_tmpdir());
    EXPECT(a, 0, " kd ");
    snprintf(a, sizeof a, "quantize %s/l.mixq --policy %s --data fashion-mnist --teacher %s/l.mixq "
             "--out %s/qd.mixq", test_tmpdir(), pol, test_tmpdir(), test_tmpdir());
    EXPECT(a, 2, "give --finetune-epochs too");
    snprintf(a, sizeof a, "quantize %s/l.mixq --policy %s --data fashion-mnist --finetune-epochs 1 "
             "--teacher %s/nothere.mixq --out %s/qd.mixq", test_tmpdir(), pol, test_tmpdir(),
             test_tmpdir());
    EXPECT(a, 1, "nothere.mixq");
    EXPECT("quantize m.mixq --distill-weight 1.5", 2, "--distill-weight");
    snprintf(a, sizeof a, "info %s/q.mixq", test_tmpdir());
    EXPECT(a, 0, "conv1");
    /* the CPU runtime on that quantized model, against its fake quantization */
    snprintf(a, sizeof a, "run %s/q.mixq --data fashion-mnist --images 300 --layers", test_tmpdir());
    EXPECT(a, 0, "predictions differing 0 of 300");
    EXPECT(a, 0, "bn+relu");
    snprintf(a, sizeof a, "run %s/q.mixq --data fashion-mnist --images 50 --kernel bitserial",
             test_tmpdir());
    EXPECT(a, 0, "predictions differing 0 of 50");
    snprintf(a, sizeof a, "run %s/l.mixq --data fashion-mnist", test_tmpdir());
    EXPECT(a, 1, "is not quantized");
    snprintf(a, sizeof a, "run %s/q.mixq --data fashion-mnist --kernel int4", test_tmpdir());
    EXPECT(a, 2, "--kernel expects auto, bitserial or int8");
    snprintf(a, sizeof a, "run %s/q.mixq --data fashion-mnist --cpu-table /nonexistent/t.json",
             test_tmpdir());
    EXPECT(a, 1, "/nonexistent/t.json");
    EXPECT("run --help", 0, "calibrate-cpu");
    snprintf(a, sizeof a, "calibrate-cpu --model %s/q.mixq --reps 1 --out %s/cpu.json", test_tmpdir(),
             test_tmpdir());
    EXPECT(a, 0, "wrote");
    snprintf(a, sizeof a, "cost %s/q.mixq --hw %s/cpu.json", test_tmpdir(), test_tmpdir());
    EXPECT(a, 0, "vs uniform W8A8");
    snprintf(a, sizeof a, "run %s/q.mixq --data fashion-mnist --images 40 --cpu-table %s/cpu.json",
             test_tmpdir(), test_tmpdir());
    EXPECT(a, 0, "predictions differing 0 of 40");
    EXPECT("calibrate-cpu --arch lenet5 --model x.mixq", 2, "exactly one of --model and --arch");
    /* bad policies: exit 1 with the entry and line */
    const char *nomatch = "{\"mixq_policy\": 1,\n \"rules\": [{\"match\": \"layer9*\", \"w_bits\": 2}]}";
    test_write_file(pol, nomatch, strlen(nomatch));
    snprintf(a, sizeof a, "policy show %s/l.mixq %s", test_tmpdir(), pol);
    EXPECT(a, 1, "rules[0] (line 2) (glob \"layer9*\") matches no layer");
    const char *broken = "{\"mixq_policy\": 1,\n \"default\": {\"w_bits\": 9}}";
    test_write_file(pol, broken, strlen(broken));
    EXPECT(a, 1, "line 2: default.w_bits is 9 bits");
    snprintf(a, sizeof a, "quantize %s/l.mixq --data fashion-mnist --out %s/q2.mixq", test_tmpdir(),
             test_tmpdir());
    EXPECT(a, 2, "--policy is required");
    EXPECT("policy list", 2, "unknown subcommand 'list'");
}

/* Every command takes --help; a typo gets the nearest name; usage errors are one line. */
static void test_help_and_typos(void) {
    static const char *const cmds[] = {"train", "eval", "info", "policy", "policy show", "quantize",
                                       "cost", "search", "report", "import", "export", "run", "calibrate-cpu"};
    char a[256];
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        EXPECT(a, 0, "usage: mixq ");
    }
    EXPECT("--version", 0, "mixq 0.");
    EXPECT("--help", 0, "mixq --version");
    EXPECT("eval --help", 0, "--threads N");
    EXPECT("run --help", 0, "--val N");
    EXPECT("run --help", 0, "--split-seed N");
    EXPECT("search --help", 0, "greedy 2 x layers + 1");
    EXPECT("search --help", 0, "greedy or hawq (Hessian-trace");
    EXPECT("search --help", 0, "--sweep N");
    EXPECT("search --help", 0, "--distill W");
    EXPECT_LINE("serach --out x", 2, "unknown command 'serach'; did you mean 'search'?");
    EXPECT_LINE("--versoin", 2, "did you mean '--version'?");
    EXPECT_LINE("cost --arch lenet5 --hw bitfusion --layers", 2, "unknown option '--layers'");
    EXPECT_LINE("cost --arch lenet5 --hw bitfusion --shwo", 2, "did you mean '--show'?");
    EXPECT_LINE("train --model lenet5 --epoch 3", 2, "did you mean '--epochs'?");
    EXPECT_LINE("eval m.mixq --data", 2, "option '--data' needs a value");
    EXPECT_LINE("policy shwo m.mixq p.json", 2, "did you mean 'show'?");
    EXPECT_LINE("cost --arch resnet2 --hw bitfusion", 1, "did you mean 'resnet20'?");
    EXPECT_LINE("cost --arch resnet20 --hw bismo_edg", 1, "did you mean 'bismo_edge'?");
    EXPECT_LINE("train --model lenet5 --data mnist --out x.mixq", 1, "pass --data DIR");
    EXPECT_LINE("eval runs/none/resnet20.mixq --data fashion-mnist", 1,
                "train it first: mixq train --model resnet20 --data fashion-mnist --out runs/none/resnet20.mixq");
    EXPECT_LINE("report runs/x --otu r.html", 2, "did you mean '--out'?");
    EXPECT_LINE("report --out r.html", 2, "give at least one run directory");
    EXPECT_LINE("report runs/none --out r.html", 1, "'runs/none' is not a directory");
    snprintf(a, sizeof a, "report tests/fixtures/report/lenet5_haq --out %s/cli_report.html", test_tmpdir());
    EXPECT(a, 0, "(1 run directory, 1 note)");
    /* the HAQ table example reads its table from the repository */
    EXPECT("cost --hw examples/hw/haq_mobilenetv2_cloud.json --show", 0, "haq_mobilenetv2_cloud");
}

/* Every environment variable the library and the CLI read is documented in `mixq --help` and
 * in the README. */
static void test_env_documented(void) {
    char names[4096], help[16384], *readme = NULL;
    int rc = run_sh("grep -rhoE 'getenv\\(\"MIXQ_[A-Z0-9_]+\"' src tools | sed 's/.*\"\\(MIXQ_[A-Z0-9_]*\\)\"/\\1/' "
                    "| sort -u", names, sizeof names);
    CHECK(rc == 0);
    CHECK(run("--help", help, sizeof help) == 0);
    FILE *f = fopen("README.md", "rb");
    CHECK(f != NULL);
    if (f) {
        readme = calloc(1, 1 << 20);
        if (readme) CHECK(fread(readme, 1, (1 << 20) - 1, f) > 0);
        fclose(f);
    }
    int count = 0;
    for (char *tok = strtok(names, "\n"); tok; tok = strtok(NULL, "\n"), count++) {
        CHECKF(strstr(help, tok) != NULL, "`mixq --help` does not document %s", tok);
        CHECKF(readme && strstr(readme, tok) != NULL, "README.md does not document %s", tok);
    }
    CHECKF(count >= 9, "found only %d MIXQ_ variables in src/ and tools/", count);
    free(readme);
}

/* An untrained lenet5 (epochs 0) at $TMP/name.mixq for the tests below, if the dataset is
 * installed (0 when it is not: the test is skipped). */
static int lenet5_model(const char *name) {
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        test_skip("dataset-fashion-mnist is not installed (scripts/deps.sh installs it)");
        return 0;
    }
    char a[1200];
    snprintf(a, sizeof a, "train --model lenet5 --data fashion-mnist --epochs 0 --val 500 --out %s/%s.mixq",
             test_tmpdir(), name);
    EXPECT(a, 0, "wrote");
    return 1;
}

/* Messages that need a trained model and the dataset: policy typos and JSON errors, budgets that
 * constrain nothing or cannot be met, internal names, --final-epochs 0. */
static void test_messages(void) {
    if (!lenet5_model("msg")) return;
    char a[2048], pol[900];
    const char *T = test_tmpdir();
    snprintf(pol, sizeof pol, "%s/msg.json", T);
    const char *typo = "{\"mixq_policy\": 1,\n \"layers\": {\"fc_3\": {\"w_bits\": 4}}}";
    CHECK(test_write_file(pol, typo, strlen(typo)) == 0);
    /* --out's folders are made before the work */
    snprintf(a, sizeof a, "train --model lenet5 --data fashion-mnist --epochs 0 --val 500 --out %s/new/dir/m.mixq", T);
    EXPECT(a, 0, "wrote");
    snprintf(a, sizeof a, "policy show %s/msg.mixq %s", T, pol);
    EXPECT_LINE(a, 1, "matches no layer of this lenet5; did you mean 'fc3'? hint:");
    const char *broken = "{\"mixq_policy\": 1,\n \"default\": {\"w_bits\": 4,\n\n  }\n";
    CHECK(test_write_file(pol, broken, strlen(broken)) == 0);
    EXPECT_LINE(a, 1, "malformed JSON");
    EXPECT_LINE(a, 1, "; hint: ");
    /* budgets */
    const char *S = "search %s/msg.mixq --data fashion-mnist --hw bismo_edge --episodes 1 --val 500 "
                    "--eval-images 50 --calib-images 32 --final-epochs 0 --out %s/%s --budget %s";
    snprintf(a, sizeof a, S, T, T, "s1", "latency=2ms");
    char out[16384];
    int rc = run(a, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "x the cost of uniform W8A8, so it constrains nothing") &&
           strstr(out, "no final fine-tune (--final-epochs 0)"), "`mixq %s` exited %d:\n%s", a, rc, out);
    /* the final fine-tune reports its steps (the last --final-epochs wins) */
    snprintf(a, sizeof a, S, T, T, "s1f", "latency=0.9 --final-epochs 0.02");
    rc = run(a, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "final fine-tune of the best policy (val ") && strstr(out, " steps...\n") &&
           strstr(out, "final fine-tune: step 1/") && strstr(out, "  ETA "), "`mixq %s` exited %d:\n%s", a, rc, out);
    snprintf(a, sizeof a, S, T, T, "s2", "latency=0.1");
    EXPECT_LINE(a, 1, " us = 0.");
    snprintf(a, sizeof a, S, T, T, "s3", "size=1KiB");
    EXPECT_LINE(a, 1, "the budget 1 KiB = ");
    snprintf(a, sizeof a, S, T, T, "s4", "latency=0.9 --rl replay=10");
    EXPECT_LINE(a, 1, "--rl replay=10 is smaller than the DDPG batch (--rl batch=64)");
    snprintf(a, sizeof a, S, T, T, "s5", "latency=0.9 --agent gredy");
    EXPECT_LINE(a, 1, "did you mean 'greedy'?");
    snprintf(a, sizeof a, S, T, T, "s6", "latency=0.9 --sweep 3");
    EXPECT_LINE(a, 1, "--sweep and --sweep-from are the hawq and ebs agents'; hint: --agent hawq or ebs");
    snprintf(a, sizeof a, S, T, T, "s7", "latency=0.9 --agent hawq --swep 3");
    EXPECT_LINE(a, 2, "did you mean '--sweep'?");
    /* releq: its options, checked before any work */
    EXPECT("search --help", 0, "--bit-set B,B,...");
    snprintf(a, sizeof a, S, T, T, "s8", "none --agent releq --bit-set 2,3,9");
    EXPECT_LINE(a, 2, "--bit-set expects 2 to 8 distinct widths within 1..8");
    snprintf(a, sizeof a, S, T, T, "s8", "none --agent releq --bit-set 4,2,4");
    EXPECT_LINE(a, 2, "--bit-set lists a width twice");
    snprintf(a, sizeof a, S, T, T, "s8", "latency=0.9 --agent ebs --a-bit-set 2,2");
    EXPECT_LINE(a, 2, "--a-bit-set lists a width twice");
    snprintf(a, sizeof a, S, T, T, "s8", "latency=0.9 --a-bit-set 2,8");
    EXPECT_LINE(a, 1, "--a-bit-set (activation candidate widths) is the ebs and hawq agents'; hint: --agent ebs or hawq");
    snprintf(a, sizeof a, S, T, T, "s8", "none --agent releq --reward margn=0.5");
    EXPECT_LINE(a, 2, "unknown --reward key 'margn'; did you mean 'margin'? hint: margin, a, b, hw");
    snprintf(a, sizeof a, S, T, T, "s8", "none --agent releq --reward hw=2");
    EXPECT_LINE(a, 2, "--reward hw expects a number in [0, 1]");
    snprintf(a, sizeof a, S, T, T, "s8", "none --agent releq --ppo clp=0.2");
    EXPECT_LINE(a, 2, "did you mean 'clip'?");
    snprintf(a, sizeof a, S, T, T, "s8", "latency=0.9 --a-bits 4");
    EXPECT_LINE(a, 1, "--a-bits (a_bits 4) is the releq agent's");
    snprintf(a, sizeof a, S, T, T, "s8", "latency=0.7 --agent releq");
    EXPECT_LINE(a, 1, "cannot be met by the releq agent");
    snprintf(a, sizeof a, S, T, T, "s8", "none --agent haq");
    EXPECT_LINE(a, 1, "needs a budget");
}

/* Shell text: wait (at most 120 s) until process $p catches SIGINT (bit 2 of SigCgt in
 * /proc/$p/status). A background job of a non-interactive sh starts with SIGINT ignored, so a
 * Ctrl-C sent before mixq installs its handler is lost: under ASan on a busy machine, "sleep 2"
 * was not enough and the training ran all its epochs. */
#define WAIT_SIGINT_CAUGHT                                                                        \
    "i=0; while [ $i -lt 1200 ]; do c=$(sed -n 's/^SigCgt:[[:space:]]*//p' /proc/$p/status "     \
    "2>/dev/null); d=${c#${c%%?}}; [ -n \"$d\" ] && [ $((0x$d & 2)) -ne 0 ] && break; "              \
    "sleep 0.1; i=$((i+1)); done; "

/* Ctrl-C: a search says where it stopped and how to resume; training saves the model so far
 * and says how to continue it. Both exit 130. */
static void test_sigint(void) {
    if (!lenet5_model("sig")) return;
    char a[4096], out[16384];
    const char *T = test_tmpdir();
    snprintf(a, sizeof a,
             "%s search %s/sig.mixq --data fashion-mnist --hw bismo_edge --budget latency=0.9 --episodes "
             "100000 --val 500 --eval-images 50 --calib-images 32 --out %s/sigrun --quiet 2>&1 & p=$!; "
             WAIT_SIGINT_CAUGHT "sleep 1; kill -INT $p; wait $p; echo rc=$?", bin(), T, T);
    run_sh(a, out, sizeof out);
    CHECKF(strstr(out, "mixq search: interrupted ") && strstr(out, "; resume with: ") &&
           strstr(out, "--out ") && strstr(out, " --resume\n") && strstr(out, "rc=130"),
           "search after SIGINT:\n%s", out);
    snprintf(a, sizeof a,
             "%s train --model lenet5 --data fashion-mnist --epochs 50 --val 500 --out %s/sigt.mixq "
             "2>&1 & p=$!; " WAIT_SIGINT_CAUGHT "kill -INT $p; wait $p; echo rc=$?", bin(), T);
    run_sh(a, out, sizeof out);
    CHECKF(strstr(out, "mixq train: interrupted at epoch ") && strstr(out, "continue training it with: ") &&
           strstr(out, "rc=130"), "train after SIGINT:\n%s", out);
    snprintf(a, sizeof a, "info %s/sigt.mixq", T);
    EXPECT(a, 0, "lenet5");
}

int main(void) {
    TEST_RUN(test_help_and_typos);
    TEST_RUN(test_env_documented);
    TEST_RUN(test_messages);
    TEST_RUN(test_sigint);
    TEST_RUN(test_usage_errors);
    TEST_RUN(test_bad_inputs);
    TEST_RUN(test_cost);
    TEST_RUN(test_onnx_cli);
    TEST_RUN(test_train_zero_epochs_info_eval);
    return test_summary();
}
