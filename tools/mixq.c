/* mixq command-line tool. Uses only the public API (include/mixq). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mixq/mixq.h"

/* ---------------------------------------------------------------- helpers */
static const char *prog = "mixq"; /* argv[0], for commands the user can paste back */

static int fail(const char *ctx) {
    const char *msg = mixq_last_error();
    fprintf(stderr, "mixq %s: error: %s\n", ctx, msg && *msg ? msg : "unknown error");
    return 1;
}

/* One line: what, then where to read more. */
static int usage_error(const char *cmd, const char *fmt, const char *arg) {
    fprintf(stderr, "mixq %s: error: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "; hint: `mixq %s --help` lists the options\n", cmd);
    return 2;
}

/* An option a command's parser did not take. With missing_value, a (the last argument) is
 * reported as needing a value when the command's help lists it; otherwise, and for an option
 * the help does not list, it is an unknown option, with the nearest option the help lists. */
static int bad_option(const char *cmd, const char *help, const char *a, int missing_value) {
    enum { MAXOPT = 96, OPTLEN = 32 };
    char store[MAXOPT][OPTLEN];
    const char *opts[MAXOPT];
    int n = 0, known = 0;
    for (const char *p = help; n < MAXOPT && (p = strstr(p, "--")) != NULL;) {
        const char *e = p + 2;
        while (isalnum((unsigned char)*e) || *e == '-') e++;
        if (e - p > 2 && e - p < OPTLEN) {
            snprintf(store[n], OPTLEN, "%.*s", (int)(e - p), p);
            known |= !strcmp(store[n], a);
            opts[n] = store[n];
            n++;
        }
        p = e;
    }
    if (missing_value && known) return usage_error(cmd, "option '%s' needs a value", a);
    const char *near = mixq_closest_name(a, opts, n);
    fprintf(stderr, "mixq %s: error: unknown option '%s'; %s%s%shint: `mixq %s --help` lists the "
            "options\n", cmd, a, near ? "did you mean '" : "", near ? near : "", near ? "'? " : "", cmd);
    return 2;
}

/* --out: required, and the folders above it are made now (mkdir -p), not found missing when the
 * work is done. Returns 0, or the exit code. */
static int check_out(const char *cmd, const char *out) {
    if (!out) return usage_error(cmd, "%s", "--out is required");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = 0; /* a run directory may end in '/' */
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = 0;
    for (char *p = dir + 1;; p++) {
        if (*p && *p != '/') continue;
        char c = *p;
        *p = 0;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "mixq %s: error: cannot create the folder '%s' for --out %s: %s; hint: a "
                    "writable --out path\n", cmd, dir, out, strerror(errno));
            return 1;
        }
        *p = c;
        if (!c) return 0;
    }
}

/* argv as a command line the shell reads back: prog, then each argument, quoted when needed. */
static void command_line(char *buf, size_t n, int argc, char **argv) {
    size_t k = (size_t)snprintf(buf, n, "%s", prog);
    for (int i = 0; i < argc && k < n; i++) {
        const char *a = argv[i];
        int plain = *a != 0;
        for (const char *c = a; *c; c++)
            plain &= isalnum((unsigned char)*c) || strchr("_./=:,+-@%", *c) != NULL;
        if (plain) k += (size_t)snprintf(buf + k, n - k, " %s", a);
        else {
            k += (size_t)snprintf(buf + k, n - k, " '");
            for (const char *c = a; *c && k < n; c++) {
                if (*c == '\'') k += (size_t)snprintf(buf + k, n - k, "'\\''");
                else k += (size_t)snprintf(buf + k, n - k, "%c", *c);
            }
            if (k < n) k += (size_t)snprintf(buf + k, n - k, "'");
        }
    }
}

static int parse_int(const char *cmd, const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "mixq %s: error: %s expects an integer in [%ld, %ld], got '%s'\n", cmd,
                flag, lo, hi, s ? s : "(nothing)");
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int parse_u64(const char *cmd, const char *flag, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = s ? strtoull(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || s[0] == '-') {
        fprintf(stderr, "mixq %s: error: %s expects a non-negative integer, got '%s'\n", cmd, flag,
                s ? s : "(nothing)");
        return 0;
    }
    *out = (uint64_t)v;
    return 1;
}

static int parse_float(const char *cmd, const char *flag, const char *s, double lo, double hi,
                       float *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "mixq %s: error: %s expects a number in [%g, %g], got '%s'\n", cmd, flag,
                lo, hi, s ? s : "(nothing)");
        return 0;
    }
    *out = (float)v;
    return 1;
}

static void fmt_time(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, n, "--:--");
        return;
    }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%02d:%02d", t / 60, t % 60);
}

/* ---------------------------------------------------------------- input preprocessing */
/* The options that give a model its input transform, shared by every command that reads a
 * model and data (one parser: pp_option, then pp_apply once the model is loaded). */
#define PP_HELP                                                                                 \
    "  --preprocess NAME     the model's input transform, when it records none or another:\n"   \
    "                        unit (pixel/255: torchvision ToTensor() alone) | signed ([-1,1]) |\n" \
    "                        raw (0..255) | imagenet (= torchvision-normalize) | mnist |\n"      \
    "                        fashion-mnist | cifar10 | dataset (mixq's default: the dataset's\n" \
    "                        own per-channel mean and std)\n"                                    \
    "  --mean A[,B,C]        x = (pixel * scale - mean) / std, per channel (default 0)\n"        \
    "  --std A[,B,C]         (default 1)\n"                                                      \
    "  --scale X             (default 1/255; a fraction such as 1/255 or a number)\n"            \
    "  --channel-order rgb|bgr  bgr: the model reads the channels reversed (default rgb)\n"     \
    "                        A model records its transform (train writes the one it used,\n"    \
    "                        export keeps it in metadata_props mixq.preprocess); one given\n"    \
    "                        here replaces it, and is written with the model.\n"

typedef struct pp_opts {
    const char *preset, *mean, *std, *scale, *order;
} pp_opts;

/* 1 when a is one of the preprocessing options (its value v is taken), else 0. */
static int pp_option(const char *a, const char *v, pp_opts *o) {
    const char **slot = !strcmp(a, "--preprocess")      ? &o->preset
                        : !strcmp(a, "--mean")          ? &o->mean
                        : !strcmp(a, "--std")           ? &o->std
                        : !strcmp(a, "--scale")         ? &o->scale
                        : !strcmp(a, "--channel-order") ? &o->order
                                                        : NULL;
    if (!slot) return 0;
    *slot = v;
    return 1;
}

/* "0.485,0.456,0.406" -> v[], count; 0 on a malformed list (message printed). */
static int parse_float_list(const char *cmd, const char *flag, const char *s, float *v, int max) {
    int n = 0;
    const char *p = s;
    while (p && *p) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno || !isfinite(x) || n == max || (*end && *end != ',')) {
            fprintf(stderr, "mixq %s: error: %s expects 1 to %d comma-separated numbers, got '%s'\n",
                    cmd, flag, max, s);
            return 0;
        }
        v[n++] = (float)x;
        p = *end ? end + 1 : end;
    }
    if (!n) fprintf(stderr, "mixq %s: error: %s expects 1 to %d comma-separated numbers, got '%s'\n",
                    cmd, flag, max, s ? s : "");
    return n;
}

/* The transform the options give for a model of `channels` channels: 0 ok, else the exit code. */
static int pp_build(const char *cmd, const pp_opts *o, int channels, mixq_preprocess *pp) {
    if (o->preset && mixq_preprocess_preset(o->preset, channels, pp)) return fail(cmd);
    if (!o->preset && mixq_preprocess_preset("unit", channels, pp)) return fail(cmd);
    if (!o->mean && !o->std && !o->scale && !o->order) return 0;
    if (pp->from_data)
        return usage_error(cmd, "%s", "--preprocess dataset takes its mean and std from the data; it "
                           "cannot be combined with --mean/--std/--scale/--channel-order");
    float mean[MIXQ_PP_MAX_CH], std[MIXQ_PP_MAX_CH], scale = pp->scale;
    int nm = channels, ns = channels, bgr = pp->bgr;
    memcpy(mean, pp->mean, sizeof mean);
    memcpy(std, pp->std, sizeof std);
    if (o->mean && !(nm = parse_float_list(cmd, "--mean", o->mean, mean, MIXQ_PP_MAX_CH))) return 2;
    if (o->std && !(ns = parse_float_list(cmd, "--std", o->std, std, MIXQ_PP_MAX_CH))) return 2;
    if (o->scale) {
        float num, den = 1;
        char buf[64];
        snprintf(buf, sizeof buf, "%s", o->scale);
        char *slash = strchr(buf, '/');
        if (slash) *slash = 0;
        if (!parse_float(cmd, "--scale", buf, 1e-12, 1e12, &num) ||
            (slash && !parse_float(cmd, "--scale (denominator)", slash + 1, 1e-12, 1e12, &den)))
            return 2;
        scale = num / den;
    }
    if (o->order) {
        if (strcmp(o->order, "rgb") && strcmp(o->order, "bgr"))
            return usage_error(cmd, "--channel-order expects rgb or bgr, got '%s'", o->order);
        bgr = !strcmp(o->order, "bgr");
    }
    if (mixq_preprocess_custom(channels, scale, mean, nm, std, ns, bgr, pp)) return fail(cmd);
    if (o->preset) snprintf(pp->name, sizeof pp->name, "%s+custom", o->preset);
    return 0;
}

/* Give the loaded model its transform: the options' one (replacing what it records, said when
 * different), or, when the model records none, say once which one is assumed and record it.
 * Returns 0, or the exit code. */
static int pp_apply(const char *cmd, mixq_model *m, const pp_opts *o, const char *path) {
    mixq_preprocess cur, pp;
    int recorded = mixq_model_preprocess(m, &cur);
    char was[200], now[200];
    mixq_preprocess_describe(&cur, was, sizeof was);
    if (o->preset || o->mean || o->std || o->scale || o->order) {
        int c, h, w, k, rc;
        mixq_model_input_shape(m, &c, &h, &w, &k);
        if ((rc = pp_build(cmd, o, c, &pp))) return rc;
        mixq_preprocess_describe(&pp, now, sizeof now);
        if (recorded && strcmp(was, now))
            fprintf(stderr, "mixq %s: note: '%s' records the input transform %s; using %s as given\n",
                    cmd, path, was, now);
    } else if (!recorded) {
        pp = cur;
        fprintf(stderr, "mixq %s: note: '%s' records no input preprocessing; assuming %s. hint: if it "
                "was trained on other inputs, say so: --preprocess unit for torchvision's ToTensor() "
                "alone, or --mean/--std/--scale (`mixq %s --help`)\n", cmd, path, was, cmd);
    } else {
        return 0;
    }
    return mixq_model_set_preprocess(m, &pp) ? fail(cmd) : 0;
}

/* ---------------------------------------------------------------- the validation split */
/* --split-seed and --val of the commands that carve a validation split for a trained model. */
typedef struct split_opts {
    int seed_given, val_given;
    uint64_t seed;
    int val;
} split_opts;

/* 1 when a is --split-seed (or --seed, where seed_alias: eval and run, whose only seed it is) or
 * --val, its value parsed into o (*ok 0 on a bad value). */
static int split_option(const char *cmd, const char *a, const char *v, int val_lo, int seed_alias,
                        split_opts *o, int *ok) {
    if (!strcmp(a, "--split-seed") || (seed_alias && !strcmp(a, "--seed"))) {
        *ok = parse_u64(cmd, a, v, &o->seed);
        o->seed_given = 1;
    } else if (!strcmp(a, "--val")) {
        *ok = parse_int(cmd, a, v, val_lo, 10000000, &o->val);
        o->val_given = 1;
    } else return 0;
    return 1;
}

/* The split to carve for model m (run seed `seed`): *seed_out by mixq_model_split_seed, and
 * --val, else the count m holds out, else o->val's default. */
static void split_for(const mixq_model *m, const split_opts *o, uint64_t seed, uint64_t *seed_out, int *val) {
    mixq_holdout h;
    *seed_out = mixq_model_split_seed(m, o->seed_given, o->seed, seed);
    *val = !o->val_given && mixq_model_holdout(m, &h) && h.count > 0 ? h.count : o->val;
}

/* Warn when model m (from `path`) was trained on some of the validation images vh holds, or when
 * that cannot be told. */
static void split_warn(const char *cmd, const char *path, const mixq_model *m, const mixq_holdout *h) {
    mixq_holdout held, vh = *h;
    int seen = 0;
    if (!mixq_model_holdout(m, &held)) {
        fprintf(stderr, "mixq %s: note: '%s' records no held-out split (an import from another "
                "tool, or a file from before models recorded one): validation images are split seed "
                "%llu's %d, which it may have trained on\n", cmd, path, (unsigned long long)vh.seed, vh.count);
        return;
    }
    if (mixq_holdout_seen(&held, &vh, &seen)) { /* another training file, or no memory to tell */
        fprintf(stderr, "mixq %s: warning: '%s': %s: whether it trained on the validation images "
                "cannot be told; hint: is --data the data it was trained on?\n", cmd, path,
                mixq_last_error());
        return;
    }
    if (!seen) return;
    char was[160], hint[160];
    if (!held.count) {
        snprintf(was, sizeof was, "it records none held out: it trained on the whole file, or on held-out images since");
        snprintf(hint, sizeof hint, "compare it on the test split (mixq eval, the default)");
    } else {
        snprintf(was, sizeof was, "it held out %d, split seed %llu", held.count,
                 (unsigned long long)held.seed);
        if (held.seed != vh.seed)
            snprintf(hint, sizeof hint, "leave out --split-seed (eval's and run's --seed): the model's "
                     "own split is then used");
        else
            snprintf(hint, sizeof hint, "--val %d or fewer", held.count);
    }
    fprintf(stderr, "mixq %s: warning: %d of the %d validation images (split seed %llu) are images "
            "'%s' was trained on (%s): validation accuracy on them overstates; hint: %s\n", cmd, seen,
            vh.count, (unsigned long long)vh.seed, path, was, hint);
}

/* split_warn for the images of va (a split carved from the training file). */
static void split_check(const char *cmd, const char *path, const mixq_model *m, const mixq_dataset *va) {
    mixq_holdout vh;
    if (va && mixq_dataset_holdout(va, &vh) == MIXQ_OK) split_warn(cmd, path, m, &vh);
}

/* --resume: what the checkpoint holds, said before the long loading; 1 (reported) if it cannot
 * be read. */
static int resume_info(const char *cmd, const mixq_train_config *tc, int quiet) {
    int done, all;
    if (!tc->resume) return 0;
    if (mixq_train_checkpoint_info(tc->checkpoint, &done, &all)) return fail(cmd);
    if (!quiet)
        fprintf(stderr, "resuming from %s: %d of %d epochs done%s\n", tc->checkpoint, done, all,
                done == all ? " (nothing left to train)" : "");
    return 0;
}

/* ---------------------------------------------------------------- train */
typedef struct progress_state {
    int tty, quiet;
    double last_print;
    int stopped; /* training stopped on SIGINT at stop (epoch, step) */
    mixq_progress stop;
    /* quantize --epoch-models: the model to write after each epoch, named from out */
    mixq_model *epoch_m;
    const char *epoch_out;
    int epoch_failed;
    float distill_w; /* > 0: distilling, the loss's parts are printed apart */
} progress_state;

/* out with ".epochN" before its extension (x.mixq -> x.epoch3.mixq; no extension: appended), in
 * a new string (NULL: out of memory). */
static char *epoch_name(const char *out, int epoch) {
    const char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
    if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : out)) dot = out + strlen(out);
    const size_t n = strlen(out) + 32;
    char *buf = malloc(n);
    if (buf) snprintf(buf, n, "%.*s.epoch%d%s", (int)(dot - out), out, epoch, dot);
    return buf;
}

/* SIGINT during `mixq train`: the first one stops training after the current step (the model so
 * far is then saved); a second one kills as usual. */
static volatile sig_atomic_t train_interrupted;
static void on_sigint_stop(int sig) {
    (void)sig;
    train_interrupted = 1;
}

/* A progress line: every epoch's end, and on a terminal a live bar between. */
static void print_progress(const mixq_progress *p, progress_state *ps) {
    if (ps->quiet) return;
    char eta[32], el[32];
    fmt_time(eta, sizeof eta, p->eta_s);
    fmt_time(el, sizeof el, p->elapsed_s);
    if (ps->tty) {
        if (!p->epoch_done && p->elapsed_s - ps->last_print < 0.1) return;
        ps->last_print = p->elapsed_s;
        int width = 24, fill = (int)((double)p->step / p->steps_per_epoch * width);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\repoch %d/%d [%s] %d/%d loss %.4f acc %.2f%% %.0f img/s eta %s  ",
                p->epoch, p->epochs, bar, p->step, p->steps_per_epoch, (double)p->loss,
                100.0 * p->accuracy, p->images_per_s, eta);
        if (p->epoch_done) {
            if (p->val_accuracy >= 0) fprintf(stderr, "val %.2f%%", 100.0 * p->val_accuracy);
            fputc('\n', stderr);
        }
    } else if (p->epoch_done) {
        fprintf(stderr, "epoch %d/%d loss %.4f", p->epoch, p->epochs, (double)p->loss);
        if (ps->distill_w > 0) /* loss = (1 - w) ce + w kd */
            fprintf(stderr, " (ce %.4f kd %.4f)", (double)p->ce,
                    ((double)p->loss - (1.0 - ps->distill_w) * p->ce) / ps->distill_w);
        fprintf(stderr, " train_acc %.2f%%", 100.0 * p->accuracy);
        if (p->val_accuracy >= 0) fprintf(stderr, " val_acc %.2f%%", 100.0 * p->val_accuracy);
        fprintf(stderr, " lr %.4g %.0f img/s elapsed %s eta %s\n", (double)p->lr, p->images_per_s,
                el, eta);
    }
}

static int on_progress(const mixq_progress *p, void *user) {
    progress_state *ps = user;
    if (train_interrupted && !ps->stopped) {
        ps->stopped = 1;
        ps->stop = *p;
        return 1;
    }
    print_progress(p, ps);
    if (p->epoch_done && ps->epoch_m) {
        char *name = epoch_name(ps->epoch_out, p->epoch);
        if (!name || mixq_model_save(ps->epoch_m, name)) {
            if (!name) fprintf(stderr, "mixq quantize: error: out of memory naming epoch %d's model\n", p->epoch);
            ps->epoch_failed = 1 + !name; /* 2: reported here */
            free(name);
            return 1;
        }
        if (!ps->quiet) fprintf(stderr, "wrote %s\n", name);
        free(name);
    }
    return 0;
}

static const char train_help[] =
    "usage: mixq train --model ARCH --data DATA --out FILE [options]\n"
    "\n"
    "Train a CNN in FP32 and write it to FILE.\n"
    "\n"
    "  --model ARCH          lenet5 | resnet20 | vgg11 | mobilenet_v1 | mobilenet_v2 | squeezenet,\n"
    "                        or a model file to train\n"
    "                        further: .mixq (e.g. one an interrupted run saved) or .onnx\n"
    "  --data DATA           fashion-mnist (Debian's dataset-fashion-mnist; $MIXQ_DATA_DIR\n"
    "                        overrides /usr/share/datasets) | DIR: MNIST-format IDX files\n"
    "                        (train/t10k-images-idx3-ubyte, -labels-idx1-ubyte, plain or .gz,\n"
    "                        e.g. MNIST's own) or CIFAR-10 binary batches\n"
    "  --out FILE            model file to write\n"
    "  --epochs N            epochs (default 10; 0 writes the initialised, untrained model)\n"
    "  --batch N             batch size (default 128)\n"
    "  --optimizer sgd|adam  (default sgd)\n"
    "  --lr X                initial learning rate (default 0.1 for sgd, 0.001 for adam)\n"
    "  --momentum X          SGD momentum (default 0.9)\n"
    "  --wd X                weight decay on conv/linear weights (default 5e-4)\n"
    "  --schedule S          cosine | step | const (default cosine)\n"
    "  --step-size N         epochs between steps for --schedule step (default 30)\n"
    "  --gamma X             step factor (default 0.1)\n"
    "  --warmup N            linear warm-up epochs (default 0)\n"
    "  --label-smoothing X   (default 0)\n"
    "  --no-augment          disable random crop + horizontal flip\n"
    "  --val N               validation images carved from the training set (default 5000;\n"
    "                        0 = none); the test set is never used for training. The model\n"
    "                        records which images it held out: later commands validate on them\n"
    "  --split-seed N        the seed of that split (default: --seed; a --model FILE that\n"
    "                        records its split: that split, and its --val)\n"
    "  --width X             width multiplier (mobilenet_v1, mobilenet_v2, squeezenet)\n"
    "  --seed N              seed for initialisation, shuffling, augmentation (default 1)\n"
    "  --threads N           worker threads (default: all cores); results do not depend on it\n"
    "  --max-steps N         stop after N steps (for quick checks)\n"
    "  --checkpoint FILE     write the whole training state to FILE after every epoch\n"
    "                        (weights, optimizer moments, epochs done; atomically)\n"
    "  --resume              continue from --checkpoint's FILE after its last epoch: the\n"
    "                        same command (settings, data, MODEL) plus --resume gives\n"
    "                        the model a run never stopped gives, bit for bit\n"
    "  --quiet               no progress output\n"
    PP_HELP
    "                        Without them, a new model is trained on (and records) mixq's\n"
    "                        default: (pixel/255 - mean) / std with the training set's own\n"
    "                        per-channel statistics.\n"
    "\n"
    "Ctrl-C stops after the current step, writes the model so far to FILE and prints the\n"
    "command that continues it (--model FILE, the remaining epochs, from the lr reached);\n"
    "with --checkpoint, also the one that resumes from the last epoch's end exactly.\n";

static int cmd_train(int argc, char **argv) {
    const char *C = "train";
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    const char *arch = NULL, *data = NULL, *out = NULL;
    int threads = 0, lr_set = 0, quiet = 0;
    split_opts so = {.val = 5000};
    float width = 0;
    pp_opts ppo = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1, takes = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(train_help, stdout);
            return 0;
        } else if (!strcmp(a, "--model")) arch = v;
        else if (pp_option(a, v, &ppo)) ok = v != NULL;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--epochs")) ok = parse_int(C, a, v, 0, 100000, &tc.epochs);
        else if (!strcmp(a, "--batch")) ok = parse_int(C, a, v, 2, 65536, &tc.batch);
        else if (!strcmp(a, "--optimizer")) {
            if (v && !strcmp(v, "sgd")) tc.optimizer = MIXQ_OPT_SGD;
            else if (v && !strcmp(v, "adam")) tc.optimizer = MIXQ_OPT_ADAM;
            else return usage_error(C, "--optimizer expects sgd or adam, got '%s'", v ? v : "");
        } else if (!strcmp(a, "--lr")) {
            ok = parse_float(C, a, v, 1e-9, 10, &tc.lr);
            lr_set = 1;
        } else if (!strcmp(a, "--momentum")) ok = parse_float(C, a, v, 0, 0.999999, &tc.momentum);
        else if (!strcmp(a, "--wd")) ok = parse_float(C, a, v, 0, 0.5, &tc.weight_decay);
        else if (!strcmp(a, "--schedule")) {
            if (v && !strcmp(v, "cosine")) tc.schedule = MIXQ_SCHED_COSINE;
            else if (v && !strcmp(v, "step")) tc.schedule = MIXQ_SCHED_STEP;
            else if (v && !strcmp(v, "const")) tc.schedule = MIXQ_SCHED_CONST;
            else return usage_error(C, "--schedule expects cosine, step or const, got '%s'", v ? v : "");
        } else if (!strcmp(a, "--step-size")) ok = parse_int(C, a, v, 1, 100000, &tc.step_size);
        else if (!strcmp(a, "--gamma")) ok = parse_float(C, a, v, 1e-6, 1, &tc.gamma);
        else if (!strcmp(a, "--warmup")) ok = parse_int(C, a, v, 0, 100000, &tc.warmup_epochs);
        else if (!strcmp(a, "--label-smoothing")) ok = parse_float(C, a, v, 0, 0.99, &tc.label_smoothing);
        else if (!strcmp(a, "--no-augment")) {
            tc.augment = 0;
            takes = 0;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
            takes = 0;
        } else if (split_option(C, a, v, 0, 0, &so, &ok)) ;
        else if (!strcmp(a, "--width")) ok = parse_float(C, a, v, 0.125, 4, &width);
        else if (!strcmp(a, "--seed")) ok = parse_u64(C, a, v, &tc.seed);
        else if (!strcmp(a, "--threads")) ok = parse_int(C, a, v, 1, 32, &threads);
        else if (!strcmp(a, "--max-steps")) ok = parse_int(C, a, v, 1, 100000000, &tc.max_steps);
        else if (!strcmp(a, "--checkpoint")) tc.checkpoint = v;
        else if (!strcmp(a, "--resume")) {
            tc.resume = 1;
            takes = 0;
        } else return bad_option(C, train_help, a, 0);
        if (!ok) return 2;
        if (takes) {
            if (!v) return bad_option(C, train_help, a, 1);
            i++;
        }
    }
    if (!arch) return usage_error(C, "%s", "--model is required");
    if (!data) return usage_error(C, "%s", "--data is required");
    if (tc.resume && !tc.checkpoint) return usage_error(C, "%s", "--resume needs --checkpoint FILE to resume from");
    int out_rc = check_out(C, out);
    if (out_rc) return out_rc;
    if (tc.optimizer == MIXQ_OPT_ADAM && !lr_set) tc.lr = 1e-3f;
    if (threads && mixq_set_threads(threads)) return fail(C);
    if (resume_info(C, &tc, quiet)) return 1;

    mixq_dataset *tr = NULL, *va = NULL;
    mixq_model *m = NULL;
    int rc = 1;
    size_t al = strlen(arch);
    int from_file = (al > 5 && !strcmp(arch + al - 5, ".onnx")) || (al > 5 && !strcmp(arch + al - 5, ".mixq"));
    if (from_file && mixq_model_load(arch, &m)) {
        fail(C);
        goto out;
    }
    /* a model read from a file keeps to the split it records; a new one records its own */
    uint64_t split_seed;
    int val;
    split_for(m, &so, tc.seed, &split_seed, &val);
    if (mixq_dataset_load(data, MIXQ_SPLIT_TRAIN, val, split_seed, &tr)) {
        fail(C);
        goto out;
    }
    if (val > 0 && mixq_dataset_load(data, MIXQ_SPLIT_VAL, val, split_seed, &va)) {
        fail(C);
        goto out;
    }
    int c, h, w, k;
    mixq_dataset_shape(tr, &c, &h, &w, &k);
    mixq_model_config mc = {.arch = arch, .in_c = c, .in_h = h, .in_w = w, .classes = k,
                            .width = width, .seed = tc.seed};
    mixq_holdout held, trh;
    int seen = 0;
    if (!from_file && (mixq_model_create(&mc, &m) || mixq_dataset_holdout(tr, &trh) ||
                       mixq_model_set_holdout(m, &trh))) {
        fail(C);
        goto out;
    }
    if (from_file && tc.epochs > 0 && !mixq_train_keeps_holdout(m, tr, &seen) && mixq_model_holdout(m, &held) &&
        mixq_dataset_holdout(tr, &trh) == MIXQ_OK) {
        if (held.images != trh.images)
            fprintf(stderr, "mixq %s: warning: '%s' held out images of a training file of %d images, "
                    "this data's has %d: it will record no held-out images\n", C, arch, held.images, trh.images);
        else if (seen < 0)
            fprintf(stderr, "mixq %s: warning: %s: it will record no held-out images\n", C, mixq_last_error());
        else
            fprintf(stderr, "mixq %s: warning: these training images include %d of the %d that '%s' held "
                    "out (split seed %llu): it will record no held-out images; hint: leave out "
                    "--split-seed and --val to keep to its split\n", C, seen, held.count, arch,
                    (unsigned long long)held.seed);
    }
    split_check(C, arch, m, va);
    /* a new model is trained on (and records) the given transform, else the dataset's statistics
     * (as numbers: mixq_train records them too, this also covers --epochs 0) */
    if ((from_file || ppo.preset || ppo.mean || ppo.std || ppo.scale || ppo.order) &&
        (rc = pp_apply(C, m, &ppo, arch)) != 0)
        goto out;
    rc = 1;
    mixq_preprocess mpp;
    mixq_model_preprocess(m, &mpp);
    if (mpp.from_data && (mixq_dataset_preprocess(tr, &mpp) || mixq_model_set_preprocess(m, &mpp))) {
        fail(C);
        goto out;
    }
    fprintf(stderr, "training %s (%lld parameters, %.1f MMACs/image) on %s: %d train / %d val "
            "images, %d epochs, batch %d, %d threads\n",
            arch, (long long)mixq_model_param_count(m), mixq_model_macs(m) / 1e6,
            mixq_dataset_name(tr), mixq_dataset_count(tr), va ? mixq_dataset_count(va) : 0,
            tc.epochs, tc.batch, mixq_get_threads());
    progress_state ps = {.tty = isatty(2), .quiet = quiet};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint_stop;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills */
    sigaction(SIGINT, &sa, NULL);
    if (tc.epochs > 0 && mixq_train(m, tr, va, &tc, on_progress, &ps)) {
        if (ps.tty) fputc('\n', stderr);
        fail(C);
        goto out;
    }
    if (ps.stopped) {
        if (ps.tty) fputc('\n', stderr);
        if (mixq_model_save(m, out)) {
            fail(C);
            goto out;
        }
        /* the same command, from the saved model, for the epochs left, at the lr reached */
        const mixq_progress *q = &ps.stop;
        int left = q->epochs - q->epoch + (q->step < q->steps_per_epoch);
        char cont[4096], ep[16], lr[32], **av = calloc((size_t)argc + 8, sizeof *av);
        int n = 0;
        snprintf(ep, sizeof ep, "%d", left);
        snprintf(lr, sizeof lr, "%.4g", (double)q->lr);
        if (av) {
            av[n++] = "train";
            for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (!strcmp(a, "--model") || !strcmp(a, "--epochs") || !strcmp(a, "--lr") ||
                    !strcmp(a, "--warmup") || !strcmp(a, "--width") || !strcmp(a, "--checkpoint")) {
                    i++; /* (a new run: it must not overwrite the checkpoint below) */
                    continue;
                }
                if (!strcmp(a, "--resume")) continue;
                av[n++] = argv[i];
            }
            av[n++] = "--model", av[n++] = (char *)out, av[n++] = "--epochs", av[n++] = ep;
            av[n++] = "--lr", av[n++] = lr;
            command_line(cont, sizeof cont, n, av);
            free(av);
        } else snprintf(cont, sizeof cont, "%s train --model %s ... --epochs %s --lr %s", prog, out, ep, lr);
        fprintf(stderr, "mixq train: interrupted at epoch %d/%d, step %d/%d; wrote the model so far to "
                "%s; continue training it with: %s\n", q->epoch, q->epochs, q->step, q->steps_per_epoch,
                out, cont);
        /* the checkpoint's last epoch: this one when it stopped at the epoch's end */
        const int ck_done = q->step == q->steps_per_epoch ? q->epoch : q->epoch - 1;
        if (tc.checkpoint && ck_done >= 1) {
            char *ca[1024];
            int nk = 0;
            ca[nk++] = "train";
            for (int i = 1; i < argc && nk < 1022; i++) ca[nk++] = argv[i];
            if (!tc.resume) ca[nk++] = "--resume";
            command_line(cont, sizeof cont, nk, ca);
            fprintf(stderr, "mixq train: or resume from the end of epoch %d, exactly as if never stopped, "
                    "with: %s\n", ck_done, cont);
        }
        rc = 130;
        goto out;
    }
    if (va) {
        float acc;
        if (mixq_evaluate(m, va, 256, &acc, NULL)) {
            fail(C);
            goto out;
        }
        printf("val_accuracy %.2f%%\n", 100.0 * acc);
    }
    if (mixq_model_save(m, out)) {
        fail(C);
        goto out;
    }
    printf("wrote %s\n", out);
    rc = 0;
out:
    mixq_model_free(m);
    mixq_dataset_free(tr);
    mixq_dataset_free(va);
    return rc;
}

/* ---------------------------------------------------------------- eval */
static const char eval_help[] =
    "usage: mixq eval MODEL --data DATA [--split test|val] [--val N] [--split-seed N]\n"
    "                 [--batch N] [--threads N]\n"
    "\n"
    "Print the accuracy of MODEL on the test split (default) as `accuracy NN.NN%`.\n"
    "--split val evaluates on the validation images carved from the training set: by default\n"
    "the ones MODEL records it was trained without; --val N and --split-seed N (alias --seed)\n"
    "choose others (a model with no record: defaults 5000 and 1). A warning says when MODEL\n"
    "trained on some of them.\n"
    "  --batch N     images per forward pass (default 256)\n"
    "  --threads N   worker threads (default: all cores); results do not depend on it\n"
    "  --dump-inputs FILE  write every image as the model takes it: raw float32 [N][C][H][W]\n"
    "  --dump-logits FILE  write the model's logits: raw float32 [N][classes] (with\n"
    "                      --dump-inputs, what another runtime is compared on; see\n"
    "                      scripts/ort_run.js and `make bench-ort`)\n"
    PP_HELP;

/* Write every image of d as the model takes it (raw float32 [n][c][h][w]) to in_path and the
 * model's logits (float32 [n][classes]) to out_path (either may be NULL): for comparing with
 * another runtime. 0, or the exit code. */
static int dump_eval(const char *C, mixq_model *m, const mixq_dataset *d, int batch, const char *in_path,
                     const char *out_path) {
    int c, h, w, k, rc = 0;
    mixq_model_input_shape(m, &c, &h, &w, &k);
    mixq_preprocess pp;
    mixq_model_preprocess(m, &pp);
    const int n = mixq_dataset_count(d), per = c * h * w;
    float *x = malloc(sizeof(float) * (size_t)batch * per), *lg = malloc(sizeof(float) * (size_t)batch * k);
    FILE *fi = in_path ? fopen(in_path, "wb") : NULL, *fo = out_path ? fopen(out_path, "wb") : NULL;
    if (!x || !lg) rc = usage_error(C, "%s", "out of memory for the dumps");
    else if ((in_path && !fi) || (out_path && !fo)) {
        fprintf(stderr, "mixq %s: error: cannot write '%s': %s\n", C, in_path && !fi ? in_path : out_path,
                strerror(errno));
        rc = 1;
    }
    for (int s = 0; !rc && s < n; s += batch) {
        const int b = n - s < batch ? n - s : batch;
        if (mixq_dataset_batch(d, &pp, s, b, x, NULL) || mixq_model_forward(m, x, b, 0, lg)) rc = fail(C);
        else if ((fi && fwrite(x, sizeof(float) * (size_t)per, (size_t)b, fi) != (size_t)b) ||
                 (fo && fwrite(lg, sizeof(float) * (size_t)k, (size_t)b, fo) != (size_t)b)) {
            fprintf(stderr, "mixq %s: error: write error on the dumps: %s\n", C, strerror(errno));
            rc = 1;
        }
    }
    if (fi && fclose(fi) && !rc) rc = 1;
    if (fo && fclose(fo) && !rc) rc = 1;
    free(x);
    free(lg);
    return rc;
}

static int cmd_eval(int argc, char **argv) {
    const char *C = "eval", *path = NULL, *data = NULL, *dump_in = NULL, *dump_out = NULL;
    int batch = 256, threads = 0;
    split_opts so = {.val = 5000};
    pp_opts ppo = {0};
    mixq_split split = MIXQ_SPLIT_TEST;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(eval_help, stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (path) return usage_error(C, "unexpected argument '%s'", a);
            path = a;
            continue;
        }
        if (!v) return bad_option(C, eval_help, a, 1);
        if (pp_option(a, v, &ppo)) ;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--dump-inputs")) dump_in = v;
        else if (!strcmp(a, "--dump-logits")) dump_out = v;
        else if (!strcmp(a, "--split")) {
            if (!strcmp(v, "test")) split = MIXQ_SPLIT_TEST;
            else if (!strcmp(v, "val")) split = MIXQ_SPLIT_VAL;
            else return usage_error(C, "--split expects test or val, got '%s'", v);
        } else if (!strcmp(a, "--batch")) ok = parse_int(C, a, v, 1, 65536, &batch);
        else if (split_option(C, a, v, 1, 1, &so, &ok)) ;
        else if (!strcmp(a, "--threads")) ok = parse_int(C, a, v, 1, 32, &threads);
        else return bad_option(C, eval_help, a, 0);
        if (!ok) return 2;
        i++;
    }
    if (!path) return usage_error(C, "%s", "a model file is required");
    if (!data) return usage_error(C, "%s", "--data is required");
    if (threads && mixq_set_threads(threads)) return fail(C);
    mixq_model *m = NULL;
    mixq_dataset *d = NULL;
    int rc = 1;
    if (mixq_model_load(path, &m)) {
        fail(C);
        goto out;
    }
    if ((rc = pp_apply(C, m, &ppo, path)) != 0) goto out;
    rc = 1;
    uint64_t split_seed;
    int val;
    split_for(m, &so, 1, &split_seed, &val);
    if (mixq_dataset_load(data, split, split == MIXQ_SPLIT_VAL ? val : 0, split_seed, &d)) {
        fail(C);
        goto out;
    }
    if (split == MIXQ_SPLIT_VAL) split_check(C, path, m, d);
    float acc, loss;
    if (mixq_evaluate(m, d, batch, &acc, &loss)) {
        fail(C);
        goto out;
    }
    if ((dump_in || dump_out) && (rc = dump_eval(C, m, d, batch, dump_in, dump_out)) != 0) goto out;
    rc = 1;
    printf("accuracy %.2f%%\n", 100.0 * acc);
    printf("loss %.4f\nimages %d\n", (double)loss, mixq_dataset_count(d));
    if (mixq_model_is_quantized(m)) {
        mixq_quant_totals t;
        if (!mixq_model_quant_totals(m, &t))
            printf("quantized: %d layers, %.3f bits/weight, size %.1f KiB (%.2fx smaller than fp32), "
                   "%.4g BitOps per image\n", mixq_model_quant_layers(m), t.weight_bits / (double)t.weights,
                   t.size_bits / 8192.0, t.fp32_size_bits / t.size_bits, t.bitops);
    }
    rc = 0;
out:
    mixq_model_free(m);
    mixq_dataset_free(d);
    return rc;
}

/* ---------------------------------------------------------------- info */
static const char info_help[] =
    "usage: mixq info MODEL\n"
    "\n"
    "List the layers of MODEL with their output shapes, parameters and MACs per image.\n";

static int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(info_help, stdout);
            return 0;
        }
        if (argv[i][0] == '-') return bad_option("info", info_help, argv[i], 0);
        if (path) return usage_error("info", "unexpected argument '%s'", argv[i]);
        path = argv[i];
    }
    if (!path) return usage_error("info", "%s", "a model file is required");
    mixq_model *m = NULL;
    if (mixq_model_load(path, &m)) return fail("info");
    int c, h, w, k;
    mixq_model_input_shape(m, &c, &h, &w, &k);
    printf("model %s: input %dx%dx%d, %d classes\n", mixq_model_arch(m), c, h, w, k);
    mixq_preprocess pp;
    char ppd[200];
    int recorded = mixq_model_preprocess(m, &pp);
    mixq_preprocess_describe(&pp, ppd, sizeof ppd);
    printf("input transform: %s%s\n", ppd, recorded ? "" : " (none recorded: mixq's default)");
    mixq_holdout ho;
    if (!mixq_model_holdout(m, &ho))
        printf("held out: not recorded\n");
    else if (!ho.count)
        printf("held out: none (trained on all %d training images, or on its own held-out ones)\n", ho.images);
    else
        printf("held out: %d of %d training images (split seed %llu); validation uses them\n", ho.count,
               ho.images, (unsigned long long)ho.seed);
    printf("%-4s %-26s %-10s %-18s %-14s %10s %12s\n", "#", "name", "op", "inputs", "output",
           "params", "MACs");
    int n = mixq_model_node_count(m);
    for (int i = 0; i < n; i++) {
        mixq_node_info ni;
        if (mixq_model_node(m, i, &ni)) {
            mixq_model_free(m);
            return fail("info");
        }
        char ins[64] = "-", shape[32], extra[160] = "";
        if (ni.n_inputs == 1) snprintf(ins, sizeof ins, "%d", ni.inputs[0]);
        if (ni.n_inputs == 2) snprintf(ins, sizeof ins, "%d,%d", ni.inputs[0], ni.inputs[1]);
        snprintf(shape, sizeof shape, "%dx%dx%d", ni.out_c, ni.out_h, ni.out_w);
        char ks[24], st[24], pd[48]; /* k3 s1 p1, or k1x3 s2x1 p0,1,0,1 (top, left, bottom, right) */
        if (ni.kh == ni.kw) snprintf(ks, sizeof ks, "%d", ni.kh);
        else snprintf(ks, sizeof ks, "%dx%d", ni.kh, ni.kw);
        if (ni.stride == ni.stride_w) snprintf(st, sizeof st, "%d", ni.stride);
        else snprintf(st, sizeof st, "%dx%d", ni.stride, ni.stride_w);
        if (ni.pad == ni.pad_left && ni.pad == ni.pad_bottom && ni.pad == ni.pad_right)
            snprintf(pd, sizeof pd, "%d", ni.pad);
        else snprintf(pd, sizeof pd, "%d,%d,%d,%d", ni.pad, ni.pad_left, ni.pad_bottom, ni.pad_right);
        if (ni.op == MIXQ_OP_CONV)
            snprintf(extra, sizeof extra, " k%s s%s p%s%s", ks, st, pd,
                     ni.groups > 1 ? (ni.groups == ni.in_c ? " dw" : " grouped") : "");
        else if (ni.op == MIXQ_OP_MAXPOOL || ni.op == MIXQ_OP_AVGPOOL)
            snprintf(extra, sizeof extra, " k%s s%s p%s", ks, st, pd);
        printf("%-4d %-26s %-10s %-18s %-14s %10lld %12lld%s\n", i, ni.name, mixq_op_name(ni.op),
               ins, shape, (long long)ni.params, (long long)ni.macs, extra);
    }
    printf("total: %lld parameters, %lld MACs per image (%.2f MMACs)\n",
           (long long)mixq_model_param_count(m), (long long)mixq_model_macs(m),
           mixq_model_macs(m) / 1e6);
    mixq_model_free(m);
    return 0;
}

/* ---------------------------------------------------------------- policy show */
static void print_policy_table(const mixq_model *m) {
    int n = mixq_model_quant_layers(m);
    printf("%-24s %-7s %-16s %6s %-8s %6s %12s %12s %14s\n", "layer", "op", "w_bits", "a_bits",
           "scale", "clip", "MACs", "weight_bits", "BitOps");
    static const char *const gn[] = {"layer", "channel", "kernel"}; /* mixq_granularity order */
    _Static_assert(sizeof gn / sizeof gn[0] == MIXQ_GRAN_COUNT,
                   "gn: one name per mixq_granularity");
    for (int i = 0; i < n; i++) {
        mixq_layer_quant l;
        if (mixq_model_quant_layer(m, i, &l)) return;
        char wb[48], ab[16], clip[24];
        int lo = 99, hi = 0;
        for (int k = 0; k < l.kernels; k++) {
            if (l.kernel_bits[k] < lo) lo = l.kernel_bits[k];
            if (l.kernel_bits[k] > hi) hi = l.kernel_bits[k];
        }
        if (lo == hi) snprintf(wb, sizeof wb, "%d", hi);
        else snprintf(wb, sizeof wb, "%d..%d avg %.2f", lo, hi, l.weight_bits / (double)l.weights);
        snprintf(ab, sizeof ab, "%d%s", l.a_bits, l.a_signed ? "s" : "u");
        if (l.a_clip > 0) snprintf(clip, sizeof clip, "%.3g", (double)l.a_clip);
        else snprintf(clip, sizeof clip, "-");
        printf("%-24s %-7s %-16s %6s %-8s %6s %12lld %12.0f %14.4g\n", l.name, mixq_op_name(l.op), wb,
               ab, gn[l.granularity], clip, (long long)l.macs, l.weight_bits, l.bitops);
    }
    /* per-kernel layers: how many kernels at each width */
    for (int i = 0, head = 0; i < n; i++) {
        mixq_layer_quant l;
        if (mixq_model_quant_layer(m, i, &l)) return;
        int cnt[33] = {0}, widths = 0;
        for (int k = 0; k < l.kernels; k++)
            if (l.kernel_bits[k] >= 1 && l.kernel_bits[k] <= 32) widths += !cnt[l.kernel_bits[k]]++;
        if (widths < 2) continue;
        if (!head++) printf("kernels per weight width (per-kernel layers):\n");
        printf("  %-24s", l.name);
        for (int b = 1; b <= 32; b++)
            if (cnt[b]) printf(" %2d:%-4d", b, cnt[b]);
        printf(" (%d kernels)\n", l.kernels);
    }
    mixq_quant_totals t;
    if (mixq_model_quant_totals(m, &t)) return;
    printf("total: %d layers, %lld weights, %.0f weight bits (%.3f bits/weight), model size %.1f KiB "
           "(fp32 %.1f KiB, %.2fx smaller), %.4g BitOps per image (%.2f GBitOps)\n",
           n, (long long)t.weights, t.weight_bits, t.weight_bits / (double)t.weights,
           t.size_bits / 8192.0, t.fp32_size_bits / 8192.0, t.fp32_size_bits / t.size_bits, t.bitops,
           t.bitops / 1e9);
}

static const char policy_help[] =
    "usage: mixq policy show MODEL POLICY.json\n"
    "\n"
    "Resolve POLICY against MODEL's layers and print, per conv/linear layer, the weight bits\n"
    "(per-kernel ranges), input activation bits (s = signed, u = unsigned), scale granularity,\n"
    "activation clip (once calibrated), MACs, weight bits in total and BitOps per image\n"
    "(MACs x w_bits x a_bits); for layers whose kernels have several widths, how many kernels\n"
    "have each width (WIDTH:COUNT); then the model size and totals. A policy rule that matches no\n"
    "layer, a bad bit width or a per-kernel array of the wrong length is an error.\n";

static int cmd_policy(int argc, char **argv) {
    const char *C = "policy";
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(policy_help, stdout);
            return 0;
        }
    if (argc >= 2 && strcmp(argv[1], "show")) {
        const char *sub[] = {"show"}, *near = mixq_closest_name(argv[1], sub, 1);
        fprintf(stderr, "mixq policy: error: unknown subcommand '%s'; %shint: mixq policy show MODEL "
                "POLICY.json\n", argv[1], near ? "did you mean 'show'? " : "");
        return 2;
    }
    if (argc != 4) return usage_error(C, "%s", "expected: mixq policy show MODEL POLICY.json");
    mixq_model *m = NULL;
    mixq_policy *p = NULL;
    int rc = 1;
    if (mixq_model_load(argv[2], &m) || mixq_policy_load(argv[3], &p) || mixq_model_quantize(m, p)) {
        fail(C);
        goto out;
    }
    printf("policy %s on %s (%s)\n", argv[3], argv[2], mixq_model_arch(m));
    print_policy_table(m);
    rc = 0;
out:
    mixq_policy_free(p);
    mixq_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- quantize */
static const char quantize_help[] =
    "usage: mixq quantize MODEL --policy POLICY.json --data DATA --out FILE [options]\n"
    "\n"
    "Quantize MODEL with POLICY: calibrate the activation clips on training images, optionally\n"
    "fine-tune with quantization-aware training (straight-through estimator, learned PACT\n"
    "clips), report the validation accuracy and write FILE with the policy embedded\n"
    "(`mixq eval FILE` then reports the quantized test accuracy).\n"
    "\n"
    "  --finetune-epochs E    QAT epochs (default 0: calibration only; fractions allowed)\n"
    "  --calib-images N       images for calibration (default 2048, from the training split)\n"
    "  --lr X                 fine-tuning learning rate (default 0.01), cosine over ceil(E)\n"
    "                         epochs: a fractional E stops partway down the curve (0.05\n"
    "                         epochs ends at 0.99 x lr); whole epochs end near 0\n"
    "  --wd X                 weight decay (default 5e-4)\n"
    "  --batch N              (default 128)\n"
    "  --teacher FILE         distil the fine-tune from this model (e.g. MODEL itself, the\n"
    "                         float one): it runs on each training batch, and the loss is\n"
    "                         (1 - W) cross-entropy + W T^2 KL(teacher || model) on the\n"
    "                         logits softened by T (Hinton et al.); each epoch's line gives\n"
    "                         its parts, (ce X kd Y) with kd = T^2 KL; the input transform\n"
    "                         options below apply to it too\n"
    "  --distill-weight W     in [0, 1] (default 0.5)\n"
    "  --distill-temperature T  (default 1; W 0.5 at T 1 is LSQ's setting)\n"
    "  --val N                validation images carved from the training set (default: the\n"
    "                         count MODEL records it held out, else 5000); the test set is\n"
    "                         never used\n"
    "  --split-seed N         their split's seed (default: the split MODEL records it was\n"
    "                         trained without, so they are images it never trained on; else\n"
    "                         --seed)\n"
    "  --seed N               fine-tune shuffling and augmentation (default 1)\n"
    "  --epoch-models         also write the model after each epoch of the fine-tune, FILE\n"
    "                         with .epochN before its extension (x.mixq: x.epoch1.mixq, ...),\n"
    "                         to evaluate every epoch (mixq run)\n"
    "  --checkpoint FILE      write the whole fine-tuning state to FILE after every epoch\n"
    "                         (weights, optimizer moments, clips, epochs done; atomically)\n"
    "  --resume               continue from --checkpoint's FILE after its last epoch: the\n"
    "                         same command plus --resume gives the model a fine-tune never\n"
    "                         stopped gives, bit for bit\n"
    "  --threads N            worker threads (default: all cores)\n"
    "  --quiet                no progress output\n"
    PP_HELP;

static int cmd_quantize(int argc, char **argv) {
    const char *C = "quantize", *path = NULL, *pol = NULL, *data = NULL, *out = NULL;
    const char *tpath = NULL;
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    tc.lr = 0.01f;
    float epochs = 0;
    int calib = 2048, threads = 0, quiet = 0, epoch_models = 0;
    split_opts so = {.val = 5000};
    pp_opts ppo = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(quantize_help, stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (path) return usage_error(C, "unexpected argument '%s'", a);
            path = a;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--epoch-models")) {
            epoch_models = 1;
            continue;
        }
        if (!strcmp(a, "--resume")) {
            tc.resume = 1;
            continue;
        }
        if (!v) return bad_option(C, quantize_help, a, 1);
        if (pp_option(a, v, &ppo)) ;
        else if (!strcmp(a, "--policy")) pol = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--finetune-epochs")) ok = parse_float(C, a, v, 0, 10000, &epochs);
        else if (!strcmp(a, "--calib-images")) ok = parse_int(C, a, v, 1, 10000000, &calib);
        else if (!strcmp(a, "--lr")) ok = parse_float(C, a, v, 1e-9, 10, &tc.lr);
        else if (!strcmp(a, "--wd")) ok = parse_float(C, a, v, 0, 0.5, &tc.weight_decay);
        else if (!strcmp(a, "--batch")) ok = parse_int(C, a, v, 2, 65536, &tc.batch);
        else if (!strcmp(a, "--teacher")) tpath = v;
        else if (!strcmp(a, "--checkpoint")) tc.checkpoint = v;
        else if (!strcmp(a, "--distill-weight")) ok = parse_float(C, a, v, 0, 1, &tc.distill_weight);
        else if (!strcmp(a, "--distill-temperature"))
            ok = parse_float(C, a, v, 0.05, 100, &tc.distill_temperature);
        else if (split_option(C, a, v, 1, 0, &so, &ok)) ;
        else if (!strcmp(a, "--seed")) ok = parse_u64(C, a, v, &tc.seed);
        else if (!strcmp(a, "--threads")) ok = parse_int(C, a, v, 1, 32, &threads);
        else return bad_option(C, quantize_help, a, 0);
        if (!ok) return 2;
        i++;
    }
    if (!path) return usage_error(C, "%s", "a model file is required");
    if (!pol) return usage_error(C, "%s", "--policy is required");
    if (!data) return usage_error(C, "%s", "--data is required");
    if (tpath && !(epochs > 0))
        return usage_error(C, "%s", "--teacher distils the fine-tune: give --finetune-epochs too");
    if (epoch_models && !(epochs > 0))
        return usage_error(C, "%s", "--epoch-models writes the fine-tune's epochs: give --finetune-epochs too");
    if (tc.checkpoint && !(epochs > 0))
        return usage_error(C, "%s", "--checkpoint saves the fine-tune's state: give --finetune-epochs too");
    if (tc.resume && !tc.checkpoint) return usage_error(C, "%s", "--resume needs --checkpoint FILE to resume from");
    int out_rc = check_out(C, out);
    if (out_rc) return out_rc;
    if (threads && mixq_set_threads(threads)) return fail(C);
    if (resume_info(C, &tc, quiet)) return 1;
    mixq_model *m = NULL, *teacher = NULL;
    mixq_policy *p = NULL;
    mixq_dataset *tr = NULL, *va = NULL;
    int rc = 1;
    float acc;
    if (mixq_model_load(path, &m) || (tpath && mixq_model_load(tpath, &teacher))) {
        fail(C);
        goto out;
    }
    if ((rc = pp_apply(C, m, &ppo, path)) != 0 ||
        (teacher && (rc = pp_apply(C, teacher, &ppo, tpath)) != 0))
        goto out;
    rc = 1;
    uint64_t split_seed;
    int val;
    split_for(m, &so, tc.seed, &split_seed, &val);
    if (mixq_policy_load(pol, &p) || mixq_model_quantize(m, p) ||
        mixq_dataset_load(data, MIXQ_SPLIT_TRAIN, val, split_seed, &tr) ||
        mixq_dataset_load(data, MIXQ_SPLIT_VAL, val, split_seed, &va)) {
        fail(C);
        goto out;
    }
    split_check(C, path, m, va);
    if (mixq_model_calibrate(m, tr, calib) || mixq_evaluate(m, va, 256, &acc, NULL)) {
        fail(C);
        goto out;
    }
    printf("calibrated on %d training images: val_accuracy %.2f%%\n",
           calib < mixq_dataset_count(tr) ? calib : mixq_dataset_count(tr), 100.0 * acc);
    if (epochs > 0) {
        /* fractional epochs: whole epochs plus a step limit */
        int steps_per_epoch = (mixq_dataset_count(tr) + tc.batch - 1) / tc.batch;
        tc.epochs = (int)ceilf(epochs);
        if ((float)tc.epochs != epochs) tc.max_steps = (int)(epochs * (float)steps_per_epoch + 0.5f);
        if (tc.max_steps == 0 && (float)tc.epochs != epochs) tc.max_steps = 1;
        progress_state ps = {.tty = isatty(2), .quiet = quiet, .epoch_m = epoch_models ? m : NULL, .epoch_out = out,
                             .distill_w = teacher ? tc.distill_weight : 0};
        tc.teacher = teacher;
        if (teacher)
            printf("distilling from %s: weight %g, temperature %g\n", tpath,
                   (double)tc.distill_weight, (double)tc.distill_temperature);
        if (mixq_train(m, tr, va, &tc, on_progress, &ps) || ps.epoch_failed) {
            if (ps.tty) fputc('\n', stderr);
            if (ps.epoch_failed != 2) fail(C);
            goto out;
        }
        if (mixq_evaluate(m, va, 256, &acc, NULL)) {
            fail(C);
            goto out;
        }
        printf("after %g epochs of QAT: val_accuracy %.2f%%\n", (double)epochs, 100.0 * acc);
    }
    print_policy_table(m);
    if (mixq_model_save(m, out)) {
        fail(C);
        goto out;
    }
    printf("wrote %s\n", out);
    rc = 0;
out:
    mixq_dataset_free(tr);
    mixq_dataset_free(va);
    mixq_policy_free(p);
    mixq_model_free(teacher);
    mixq_model_free(m);
    return rc;
}


/* ---------------------------------------------------------------- cost */
static const char cost_help[] =
    "usage: mixq cost MODEL --hw TARGET [--policy POLICY.json] [options]\n"
    "       mixq cost --arch ARCH --hw TARGET [...]     (a zoo architecture, no weights needed)\n"
    "       mixq cost --list | mixq cost --hw TARGET --show\n"
    "\n"
    "Cost every conv/linear layer of a model on a hardware target: cycles, latency, energy\n"
    "(compute / on-chip buffers / DRAM), DRAM traffic and whether memory or compute bounds it,\n"
    "with totals and the ratio to the same model at uniform W8A8. The bits come from --policy,\n"
    "else from the model's own policy (a quantized model), else W8A8.\n"
    "\n"
    "  --hw TARGET       a preset (see --list), a JSON description (copy one from hw/ and\n"
    "                    edit it), or a HAQ lookup table (.npy or .csv)\n"
    "  --policy P.json   mixed-precision policy to cost (per-kernel bits are costed as groups\n"
    "                    of kernels with equal bits, see README)\n"
    "  --batch N         images per run (default: the target's, e.g. 16 for bitfusion)\n"
    "  --sweep           print the (w, a) grid of every layer instead: rows w, columns a,\n"
    "                    over the target's bit range (at most 1..8)\n"
    "  --metric M        what --sweep prints: cycles (default), latency, energy, dram\n"
    "  --csv             machine-readable output\n"
    "  --arch ARCH       cost an architecture from the zoo (input shape from --in C,H,W,\n"
    "                    default 1,28,28; --classes N, default 10)\n"
    "  --list            list the built-in targets\n"
    "  --show            print the target's JSON description\n";

static const char *layer_kind(const mixq_hw_layer *l, char *buf, size_t n) {
    if (l->fc) snprintf(buf, n, "fc %d>%d", l->in_c, l->out_c);
    else if (l->groups > 1 && l->groups == l->in_c && l->groups == l->out_c)
        snprintf(buf, n, "dw%dx%d/%d", l->kh, l->kw, l->stride);
    else snprintf(buf, n, "conv%dx%d/%d", l->kh, l->kw, l->stride);
    return buf;
}

typedef struct cost_layer {
    mixq_hw_layer hl;
    int w, a;          /* bits (w: the largest kernel's) */
    const int *kbits;  /* per-kernel bits when they differ, else NULL */
} cost_layer;

static int cost_all(mixq_hw *hw, const cost_layer *L, int n, int uniform, mixq_cost *per,
                    mixq_cost *tot) {
    memset(tot, 0, sizeof *tot);
    for (int i = 0; i < n; i++) {
        mixq_status st = uniform ? mixq_hw_cost(hw, &L[i].hl, uniform, uniform, &per[i])
                         : L[i].kbits ? mixq_hw_cost_kernels(hw, &L[i].hl, L[i].kbits, L[i].a, &per[i])
                                      : mixq_hw_cost(hw, &L[i].hl, L[i].w, L[i].a, &per[i]);
        if (st) return 0;
        mixq_cost_add(tot, &per[i]);
    }
    return 1;
}

static int cmd_cost(int argc, char **argv) {
    const char *C = "cost", *path = NULL, *hwname = NULL, *pol = NULL, *arch = NULL,
               *metric = "cycles", *in = "1,28,28";
    int batch = 0, csv = 0, sweep = 0, list = 0, show = 0, classes = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(cost_help, stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (path) return usage_error(C, "unexpected argument '%s'", a);
            path = a;
            continue;
        }
        if (!strcmp(a, "--csv")) { csv = 1; continue; }
        if (!strcmp(a, "--sweep")) { sweep = 1; continue; }
        if (!strcmp(a, "--list")) { list = 1; continue; }
        if (!strcmp(a, "--show")) { show = 1; continue; }
        if (!v) return bad_option(C, cost_help, a, 1);
        if (!strcmp(a, "--hw")) hwname = v;
        else if (!strcmp(a, "--policy")) pol = v;
        else if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--in")) in = v;
        else if (!strcmp(a, "--classes")) ok = parse_int(C, a, v, 2, 100000, &classes);
        else if (!strcmp(a, "--batch")) ok = parse_int(C, a, v, 1, 1 << 20, &batch);
        else if (!strcmp(a, "--metric")) {
            if (strcmp(v, "cycles") && strcmp(v, "latency") && strcmp(v, "energy") && strcmp(v, "dram"))
                return usage_error(C, "--metric expects cycles, latency, energy or dram, got '%s'", v);
            metric = v;
        } else return bad_option(C, cost_help, a, 0);
        if (!ok) return 2;
        i++;
    }
    if (list) {
        for (const char *const *p = mixq_hw_presets(); *p; p++) {
            mixq_hw *hw = NULL;
            if (mixq_hw_load(*p, &hw)) return fail(C);
            printf("%-18s %-10s %s\n", *p, mixq_hw_backend(hw), mixq_hw_description(hw));
            mixq_hw_free(hw);
        }
        printf("%-18s %-10s %s\n", "cpu", "cpu", "this machine, measured: `mixq calibrate-cpu` writes "
               "mixq-cpu.json ($MIXQ_CPU_TABLE overrides the path)");
        return 0;
    }
    if (!hwname) return usage_error(C, "%s", "--hw is required (mixq cost --list shows the presets)");
    mixq_hw *hw = NULL;
    if (mixq_hw_load(hwname, &hw)) return fail(C);
    if (show) {
        fputs(mixq_hw_text(hw), stdout);
        mixq_hw_free(hw);
        return 0;
    }
    if (!path == !arch) {
        mixq_hw_free(hw);
        return usage_error(C, "%s", "give a model file or --arch ARCH (not both)");
    }
    mixq_model *m = NULL;
    mixq_policy *p = NULL;
    cost_layer *L = NULL;
    mixq_cost *per = NULL, *per8 = NULL;
    int rc = 1, n = 0;
    if (arch) {
        mixq_model_config mc = {.arch = arch, .classes = classes, .seed = 1};
        if (sscanf(in, "%d,%d,%d", &mc.in_c, &mc.in_h, &mc.in_w) != 3 || mc.in_c < 1 || mc.in_h < 1 ||
            mc.in_w < 1) {
            mixq_hw_free(hw);
            return usage_error(C, "--in expects C,H,W (e.g. 3,32,32), got '%s'", in);
        }
        if (mixq_model_create(&mc, &m)) goto fail;
    } else if (mixq_model_load(path, &m)) goto fail;
    if (pol && (mixq_policy_load(pol, &p) || mixq_model_quantize(m, p))) goto fail;
    n = mixq_model_hw_layer_count(m);
    L = calloc((size_t)n + 1, sizeof *L);
    per = calloc((size_t)n + 1, sizeof *per);
    per8 = calloc((size_t)n + 1, sizeof *per8);
    if (!L || !per || !per8) {
        fprintf(stderr, "mixq cost: error: out of memory\n");
        goto out;
    }
    int quantized = mixq_model_is_quantized(m), nq = mixq_model_quant_layers(m);
    for (int i = 0; i < n; i++) {
        int node = -1;
        if (mixq_model_hw_layer(m, i, &L[i].hl, &node)) goto fail;
        L[i].hl.batch = batch;
        L[i].w = L[i].a = 8;
        for (int q = 0; quantized && q < nq; q++) {
            mixq_layer_quant lq;
            if (mixq_model_quant_layer(m, q, &lq)) goto fail;
            if (lq.node != node) continue;
            L[i].w = lq.w_bits, L[i].a = lq.a_bits;
            for (int k = 1; k < lq.kernels; k++)
                if (lq.kernel_bits[k] != lq.kernel_bits[0]) L[i].kbits = lq.kernel_bits;
        }
    }
    const char *source = pol ? pol : quantized ? "the model's policy" : "uniform W8A8 (no policy)";
    if (sweep) {
        int lo, hi;
        mixq_hw_bits(hw, &lo, &hi);
        if (hi > 8) hi = 8;
        if (csv) printf("layer,w_bits,a_bits,cycles,latency_s,energy_j,dram_bytes,flags\n");
        else
            printf("%s on %s: %s per layer, rows w_bits %d..%d, columns a_bits %d..%d (batch %d)\n",
                   path ? path : arch, mixq_hw_name(hw), metric, lo, hi, lo, hi,
                   batch ? batch : mixq_hw_batch(hw));
        for (int i = 0; i < n; i++) {
            char kind[48];
            if (!csv) {
                printf("\n%s (%s)\n%4s", L[i].hl.name, layer_kind(&L[i].hl, kind, sizeof kind), "w\\a");
                for (int a = lo; a <= hi; a++) printf(" %11d", a);
                printf("\n");
            }
            for (int w = lo; w <= hi; w++) {
                if (!csv) printf("%4d", w);
                for (int a = lo; a <= hi; a++) {
                    mixq_cost c;
                    if (mixq_hw_cost(hw, &L[i].hl, w, a, &c)) goto fail;
                    if (csv) {
                        printf("%s,%d,%d,%.0f,%.6g,%.6g,%.0f,%u\n", L[i].hl.name, w, a, c.cycles,
                               c.latency_s, c.energy_j, c.dram_bytes, c.flags);
                        continue;
                    }
                    double v = !strcmp(metric, "cycles") ? c.cycles
                               : !strcmp(metric, "latency") ? c.latency_s * 1e6
                               : !strcmp(metric, "energy") ? c.energy_j * 1e6
                                                           : c.dram_bytes / 1024.0;
                    printf(" %11.5g", v);
                }
                if (!csv) printf("\n");
            }
        }
        if (!csv && strcmp(metric, "cycles"))
            printf("\n(units: latency us, energy uJ, dram KiB)\n");
        rc = 0;
        goto out;
    }
    mixq_cost tot, tot8;
    if (!cost_all(hw, L, n, 0, per, &tot)) goto fail;
    int have8 = cost_all(hw, L, n, 8, per8, &tot8);
    if (!have8) mixq_clear_error(); /* W8A8 may be outside the target's bits (e.g. a 4-bit table) */
    if (csv) {
        printf("layer,op,w_bits,a_bits,cycles,compute_cycles,stall_cycles,latency_s,energy_j,"
               "e_compute_j,e_sram_j,e_dram_j,dram_bytes,macs,bitops,size_bits,bound,flags\n");
        for (int i = 0; i <= n; i++) {
            const mixq_cost *c = i < n ? &per[i] : &tot;
            char kind[48];
            printf("%s,%s,%d,%d,%.0f,%.0f,%.0f,%.6g,%.6g,%.6g,%.6g,%.6g,%.0f,%.0f,%.0f,%.0f,%s,%u\n",
                   i < n ? L[i].hl.name : "total", i < n ? layer_kind(&L[i].hl, kind, sizeof kind) : "",
                   c->w_bits, c->a_bits, c->cycles, c->compute_cycles, c->stall_cycles, c->latency_s,
                   c->energy_j, c->e_compute_j, c->e_sram_j, c->e_dram_j, c->dram_bytes, c->macs,
                   c->bitops, c->size_bits, c->flags & MIXQ_COST_MEMBOUND ? "memory" : "compute",
                   c->flags);
        }
        rc = 0;
        goto out;
    }
    printf("%s on %s (%s, batch %d): %s\n", path ? path : arch, mixq_hw_name(hw), mixq_hw_backend(hw),
           batch ? batch : mixq_hw_batch(hw), source);
    int proxy = !strcmp(mixq_hw_backend(hw), "size") || !strcmp(mixq_hw_backend(hw), "bitops");
    if (proxy) {
        /* a proxy's "cycles" are its value: weight bits or BitOps */
        const char *unit = !strcmp(mixq_hw_backend(hw), "size") ? "weight_bits" : "bitops";
        printf("%-22s %-12s %5s %16s %12s\n", "layer", "op", "w/a", unit, "MACs");
        for (int i = 0; i <= n; i++) {
            const mixq_cost *c = i < n ? &per[i] : &tot;
            char kind[48], bits[16];
            if (i < n && L[i].kbits) snprintf(bits, sizeof bits, "k%d/%d", L[i].w, L[i].a);
            else if (i < n) snprintf(bits, sizeof bits, "%d/%d", c->w_bits, c->a_bits);
            else bits[0] = 0;
            printf("%-22s %-12s %5s %16.0f %12.0f\n", i < n ? L[i].hl.name : "total",
                   i < n ? layer_kind(&L[i].hl, kind, sizeof kind) : "", bits, c->cycles, c->macs);
        }
        if (have8) printf("vs uniform W8A8: %s %.3fx (W8A8: %.0f)\n", unit, tot.cycles / tot8.cycles, tot8.cycles);
        rc = 0;
        goto out;
    }
    printf("%-22s %-12s %5s %13s %11s %11s %10s %10s %10s %11s %-7s\n", "layer", "op", "w/a", "cycles",
           "latency_us", "energy_uJ", "compute", "buffers", "dram", "dram_KiB", "bound");
    for (int i = 0; i <= n; i++) {
        const mixq_cost *c = i < n ? &per[i] : &tot;
        char kind[48], bits[16];
        if (i == n) printf("%.*s\n", 131, "-----------------------------------------------------------------------------------------------------------------------------------------------");
        if (i < n && L[i].kbits) snprintf(bits, sizeof bits, "k%d/%d", L[i].w, L[i].a);
        else if (i < n) snprintf(bits, sizeof bits, "%d/%d", c->w_bits, c->a_bits);
        else bits[0] = 0;
        printf("%-22s %-12s %5s %13.0f %11.2f %11.3f %10.3f %10.3f %10.3f %11.1f %-7s%s\n",
               i < n ? L[i].hl.name : "total", i < n ? layer_kind(&L[i].hl, kind, sizeof kind) : "",
               bits, c->cycles, c->latency_s * 1e6, c->energy_j * 1e6, c->e_compute_j * 1e6,
               c->e_sram_j * 1e6, c->e_dram_j * 1e6, c->dram_bytes / 1024.0,
               i == n ? "" : c->flags & MIXQ_COST_MEMBOUND ? "memory" : "compute",
               c->flags & MIXQ_COST_ROUNDED && i < n ? " (bits rounded up)" : "");
    }
    int nmem = 0;
    for (int i = 0; i < n; i++) nmem += !!(per[i].flags & MIXQ_COST_MEMBOUND);
    printf("model: %.4g MACs, %.4g BitOps, %.1f KiB of weights (batch %d); %d of %d layers "
           "memory-bound\n",
           tot.macs, tot.bitops, tot.size_bits / 8192.0, batch ? batch : mixq_hw_batch(hw), nmem, n);
    if (have8) {
        char e[32] = "n/a", d[32] = "n/a";
        if (tot8.energy_j > 0) snprintf(e, sizeof e, "%.3fx", tot.energy_j / tot8.energy_j);
        if (tot8.dram_bytes > 0) snprintf(d, sizeof d, "%.3fx", tot.dram_bytes / tot8.dram_bytes);
        printf("vs uniform W8A8: cycles %.3fx, latency %.3fx, energy %s, DRAM %s (W8A8: %.0f "
               "cycles, %.2f us, %.3f uJ)\n",
               tot.cycles / tot8.cycles, tot.latency_s / tot8.latency_s, e, d, tot8.cycles,
               tot8.latency_s * 1e6, tot8.energy_j * 1e6);
    }
    if (tot.flags & MIXQ_COST_ESTIMATE)
        printf("note: %s's energy is an estimate from generic constants (see its description: "
               "mixq cost --hw %s --show)\n",
               mixq_hw_name(hw), hwname);
    rc = 0;
    goto out;
fail:
    fail(C);
out:
    free(L);
    free(per);
    free(per8);
    mixq_policy_free(p);
    mixq_model_free(m);
    mixq_hw_free(hw);
    return rc;
}


/* ---------------------------------------------------------------- search */
/* in two literals (C's portable limit is 4095 characters), joined by cmd_search */
static const char search_help_1[] =
    "usage: mixq search MODEL --data DATA --out RUN_DIR [options]\n"
    "\n"
    "Search per-layer weight and activation bits for a trained float MODEL under a hardware\n"
    "budget. Every candidate is quantized, calibrated, optionally fine-tuned on a training\n"
    "subset and scored on the validation split (never the test set); the best policy is then\n"
    "fine-tuned on the whole training split and written to RUN_DIR/best.mixq, with its test\n"
    "accuracy. RUN_DIR also gets config.json, evals.jsonl (every scored policy, also the cache),\n"
    "the agent checkpoint, best_policy.json, pareto.json/.csv, summary.json, commands.jsonl (the\n"
    "command lines that ran it) and report.html (plots: `mixq report --help`).\n"
    "\n"
    "  --agent A            haq (DDPG, default), uniform, random, greedy or hawq (Hessian-trace\n"
    "                       sensitivities, then an integer programme with GLPK: one candidate\n"
    "                       per budget), releq (ReLeQ's PPO over weight widths, below), or\n"
    "                       autoq (AutoQ: per layer a goal and activation width, per kernel a\n"
    "                       weight width, hierarchical DDPG; below), or ebs (a differentiable\n"
    "                       search: shared weights, learned strengths over the widths; below)\n"
    "  --hw TARGET          hardware target (default bitfusion; see mixq cost --list)\n"
    "  --budget M=V[,M=V]   latency, energy, size or bitops; a fraction of uniform W8A8 (0.5) or\n"
    "                       absolute with a unit (2ms, 300uJ, 64KiB, 1e9ops). Several at once\n"
    "                       (latency=0.5,energy=0.55): every one must hold, the first is the\n"
    "                       primary metric (reported, and minimised in accuracy mode). Default\n"
    "                       latency=0.5; releq: none (no --budget, or --budget none)\n"
    "  --mode M             resource (most accuracy within the budget, default) or accuracy\n"
    "                       (least cost with a drop <= --max-drop points)\n"
    "  --max-drop X         (default 1.0)\n"
    "  --episodes N         candidates haq and random propose (default 60; HAQ's paper: 600).\n"
    "                       uniform and greedy ignore it: uniform scores every uniform (w, a)\n"
    "                       pair that fits, greedy 2 x layers + 1 candidates (one per weight\n"
    "                       and activation of each layer at the lowest bits, then its policy)\n"
    "  --warmup N           HAQ: random episodes before learning (default 20)\n"
    "  --bits LO..HI        action range (default 2..8)\n"
    "  --no-pin             do not pin the first and last layers to 8/8\n"
    "  --finetune-images N  per-candidate fine-tune on N training images (default 0: calibration only)\n"
    "  --eval-images N      validation images per score (default 2000)\n"
    "  --calib-images N     (default 512)\n"
    "  --final-epochs E     QAT epochs of the best policy (default 1; 0: none, only its\n"
    "                       calibration and test accuracy)\n"
    "  --lr X, --final-lr X, --batch N, --hw-batch N, --seed N, --threads N\n"
    "  --val N, --split-seed N  the validation split (default: the one MODEL records it was\n"
    "                       trained without, else 5000 images by --seed)\n"
    "  --rl K=V[,K=V...]    DDPG settings (HAQ's defaults): hidden=300, batch=64, replay=<128 x\n"
    "                       layers>, actor_lr=1e-4, critic_lr=1e-3, tau=0.01, gamma=1,\n"
    "                       sigma=0.5, sigma_decay=0.99 (a search shorter than HAQ's 600\n"
    "                       episodes decays faster to the same end: 0.99^(580/(episodes-warmup))).\n"
    "                       Exploration (what keeps HAQ from proposing one policy over and over;\n"
    "                       0 or pre = HAQ's own behaviour): sigma_min=<half a bit: 0.5/(HI-LO+1)>\n"
    "                       noise floor; penalty=1 (reward lost when the wall cuts every bit);\n"
    "                       redraw=8 (redraws when an earlier episode scored the policy; random\n"
    "                       too); store=post (replay the bits scored) or pre (HAQ: the requests)\n"
    "  --report-every N     rewrite RUN_DIR/report.html (mixq report) every N episodes (default\n"
    "                       10; 0: only when the search ends); --no-report: never\n";
static const char search_help_2[] =
    "  --distill W          the fine-tunes (per candidate and final) distilled from the float\n"
    "                       model with weight W in (0, 1] (`mixq quantize --teacher`; default 0:\n"
    "                       none); --distill-temperature T (default 1)\n"
    "  releq (weights only; the first layer, and the last unless --no-pin, stay at 8/8):\n"
    "  --bit-set B,B,...    the weight widths it picks from (default 2,3,4,5,8)\n"
    "  --a-bits N           activation bits of the searched layers (default 8)\n"
    "  --reward K=V,...     the shaped reward: margin=0.8, a=0.6, b=3 (y = accuracy / FP32's,\n"
    "                       x = mean weight bits / 8 - lowest width / highest width: -1 when\n"
    "                       y < margin, else 2((1-x^a) y^(b/y) - 0.5)); hw=H in 0..1 blends the\n"
    "                       target's cost in: x = (1-H) x + H (cost ratio - cheapest ratio)\n"
    "                       (default 0: bits only, as ReLeQ)\n"
    "  --ppo K=V,...        PPO settings (ReLeQ's defaults): lr=1e-4, clip=0.3, vf=1, ent=0.01,\n"
    "                       gamma=0.9, lambda=1, epochs=1 (updates per episode), hidden=128\n"
    "                       (LSTM units), temp=0.5 (softmax temperature)\n"
    "  autoq (per-kernel weight widths; not for stripes or dadn, whose weights are bit-parallel):\n"
    "  --autoq K=V,...      psi_acc, psi_lat, psi_e: the reward psi_acc ln(acc/fp32) - psi_lat\n"
    "                       ln(latency ratio) - psi_e ln(energy ratio) (resource mode 10,0,0;\n"
    "                       accuracy mode 10,0.5,0.5 and -1 - 0.1 x excess beyond --max-drop);\n"
    "                       zeta0=0.1, zeta1=0.9: the kernel agent's reward mixes goal completion\n"
    "                       and the task's, zeta rising from zeta0 to zeta1 over the episodes;\n"
    "                       llc_hidden=128, llc_updates=64 (kernel agent's updates per episode);\n"
    "                       relabel=hiro (HIRO goal relabelling) or none. The layer agent takes --rl\n"
    "  ebs (one training-like search per budget; the budget is needed, --mode accuracy is not\n"
    "  for it):\n"
    "  --bit-set B,B,...    the candidate widths of weights and activations (default for ebs\n"
    "                       2,3,4,5,6,8)\n"
    "  --a-bit-set B,B,...  the activations' own candidate widths (default: --bit-set's), e.g.\n"
    "                       --bit-set 1,2,3,4,8 --a-bit-set 2,3,4,8: 1-bit weights, activations\n"
    "                       of 2 bits or more (the budget wall lowers them no further)\n"
    "  --ebs K=V,...        epochs=1 (over half the training split; the strengths train on the\n"
    "                       other half), mixing=softmax or gumbel (straight-through one-hot),\n"
    "                       tau0=5, tau1=0.5 (Gumbel temperature, geometric), lambda=2 (the\n"
    "                       expected-cost hinge), lr=0.01 (Adam on the strengths). The weights\n"
    "                       train with SGD at --lr; images=N: search on a seeded sample of N\n"
    "                       training images (default: all). --sweep / --sweep-from as hawq's\n";
static const char search_help_3[] =
    "  hawq:\n"
    "  --hessian-images N   training images of the Hessian traces (default 256)\n"
    "  --hessian-probes N   at most N Hutchinson probes (default 100; stops sooner when every\n"
    "                       layer's trace moves by < 1e-3 relative, after 10). The traces are kept\n"
    "                       in RUN_DIR/hessian.json and reused by a run with the same settings\n"
    "  --sweep N            solve N budgets on the primary metric, evenly from --sweep-from to the\n"
    "                       budget, and score each (the Pareto files hold the frontier; every\n"
    "                       solve in RUN_DIR/sweep.csv). Default 1 (accuracy mode: 10)\n"
    "  --sweep-from R       the sweep's lowest budget, a fraction of W8A8 (default: the cheapest\n"
    "                       reachable cost)\n"
    "  --a-bit-set B,B,...  the activation widths the programme may pick (default: all of --bits),\n"
    "                       e.g. --bits 1..8 --a-bit-set 2,3,4,8: weights from 1 bit, activations\n"
    "                       from 2 (the activation term is a proxy, not a Hessian: 1-bit\n"
    "                       activations look cheaper to it than they are)\n"
    "  --kernel-wise        per-kernel weight widths: each budget's layer-wise programme fixes the\n"
    "                       activation widths, then groups of each layer's kernels (the target's\n"
    "                       weight-tile rows: bismo Dn, loom filters x tiles, cpu 16) get a width\n"
    "                       each from a second programme; costs checked per kernel. Not for\n"
    "                       stripes or dadn (bit-parallel weights gain nothing)\n"
    "  MPI (mpirun -np N mixq search ...; rank 0 searches, every rank scores):\n"
    "  --parallel K         candidates proposed per round and scored at once (default: one per\n"
    "                       rank). The results depend on K, never on the number of ranks\n"
    "  --worker-timeout S   drop a rank silent for S seconds on one candidate and score it\n"
    "                       elsewhere (default 0: wait). Needs mpirun --mca\n"
    "                       orte_abort_on_non_zero_status 0 to outlive a rank that died\n"
    "  --resume             continue RUN_DIR (refused if its configuration differs)\n"
    "  --quiet              no progress output\n"
    "\n"
    "Ctrl-C (or any kill) loses at most the candidate being scored: the run prints where it\n"
    "stopped and the command that resumes it (the same flags plus --resume).\n"
    "A budget at or above uniform W8A8's cost (latency=1 or more) constrains nothing: warned.\n";

typedef struct search_ui {
    int quiet, tty;
    const char *budget;
    const char *resume; /* the command line that resumes this run */
    const char *out;    /* the run directory */
    const char *cmd;    /* this command line, for RUN_DIR/commands.jsonl */
    int report_failed;
    const char *pp_note; /* said once the search starts: the model records no input transform */
} search_ui;

/* s as a JSON string's contents. */
static void json_escape(FILE *f, const char *s) {
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
}

/* Provenance for `mixq report`: one line per command that ran (or resumed) the search, appended
 * once the run directory has accepted it. A failure here is only a warning. */
static void record_command(const search_ui *u) {
    char path[4200];
    snprintf(path, sizeof path, "%s/commands.jsonl", u->out);
    FILE *f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "mixq search: warning: cannot append to %s: %s\n", path, strerror(errno));
        return;
    }
    char when[32] = "";
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(f, "{\"time\": \"%s\", \"mixq\": \"%s\", \"command\": \"", when, mixq_version());
    json_escape(f, u->cmd);
    fprintf(f, "\"}\n");
    if (fclose(f)) fprintf(stderr, "mixq search: warning: cannot write %s: %s\n", path, strerror(errno));
}

/* SIGINT during a search: every finished episode is on disk (a run killed at any point resumes
 * to the same result), so the handler only says where the run stopped and how to resume it,
 * from a message prepared outside the handler (two buffers: the handler reads the finished one),
 * then exits with 130 as the shell would. */
static char search_stop_msg[2][4600];
static size_t search_stop_len[2];
static volatile sig_atomic_t search_stop_cur;

static void on_sigint_search(int sig) {
    (void)sig;
    int k = search_stop_cur;
    if (write(2, search_stop_msg[k], search_stop_len[k]) < 0) _exit(130);
    _exit(130);
}

static void search_stop_set(const search_ui *u, const char *where) {
    int k = !search_stop_cur;
    snprintf(search_stop_msg[k], sizeof search_stop_msg[k], "\nmixq search: interrupted %s; resume with: %s\n",
             where, u->resume);
    search_stop_len[k] = strlen(search_stop_msg[k]);
    search_stop_cur = k;
}

static void on_search(const mixq_search_progress *p, void *user) {
    search_ui *u = user;
    char where[96];
    if (!strcmp(p->phase, "report")) { /* once per search; the search goes on */
        fprintf(stderr, "mixq search: warning: report.html not written: %s (the search goes on; `mixq report %s "
                "--out FILE` writes it later)\n", mixq_last_error(), u->out);
        u->report_failed = 1;
        return;
    }
    if (!strcmp(p->phase, "fp32")) {
        record_command(u);
        if (u->pp_note) fputs(u->pp_note, stderr);
        u->pp_note = NULL;
    }
    if (!strcmp(p->phase, "search")) {
        snprintf(where, sizeof where, "after episode %d of %d", p->episode, p->episodes);
        search_stop_set(u, where);
    } else if (!strcmp(p->phase, "final")) {
        search_stop_set(u, "during the final fine-tune (every episode is done)");
    } else if (!strcmp(p->phase, "fp32") && p->budget_ratio >= 1)
        fprintf(stderr, "mixq search: warning: budget '%s' is %.3f x the cost of uniform W8A8, so it "
                "constrains nothing (8 bits everywhere already fits); hint: a fraction below 1, e.g. "
                "--budget latency=0.5\n", u->budget, p->budget_ratio);
    if (u->quiet) return;
    char eta[32], el[32];
    fmt_time(eta, sizeof eta, p->eta_s);
    fmt_time(el, sizeof el, p->elapsed_s);
    if (!strcmp(p->phase, "fp32")) {
        fprintf(stderr, "scoring the float model...\n");
        return;
    }
    if (!strcmp(p->phase, "hessian")) { /* every 10th probe and the last */
        if (p->episode == 1 || p->episode % 10 == 0 || p->episode == p->episodes)
            fprintf(stderr, "hessian traces: probe %d/%d  %s%s\n", p->episode, p->episodes, el,
                    p->episode == p->episodes ? "  done" : "");
        return;
    }
    if (!strcmp(p->phase, "ebs")) { /* a search step: the first, every 20th and the last */
        fprintf(stderr, "ebs search %d/%d: step %d/%d  argmax bits w %.2f a %.2f  cost %.3fx  expected %.3fx%s  %s  ETA %s\n",
                p->scored, p->cache_hits, p->episode, p->episodes, p->mean_w_bits, p->mean_a_bits, p->cost_ratio,
                p->best_cost_ratio, p->budget_ratio > 0 && p->cost_ratio > p->budget_ratio ? " (over budget)" : "",
                el, eta);
        return;
    }
    if (!strcmp(p->phase, "final")) {
        if (p->episode == 0)
            fprintf(stderr, "final fine-tune of the best policy (val %.2f%%, cost %.3fx): %d steps...\n",
                    p->best_accuracy, p->best_cost_ratio, p->episodes);
        else
            fprintf(stderr, "final fine-tune: step %d/%d  %s  ETA %s\n", p->episode, p->episodes, el, eta);
        return;
    }
    char split[96] = ""; /* agents that time themselves: where the time goes */
    if (p->agent_s >= 0)
        snprintf(split, sizeof split, "  agent %.1f s, scoring %.1f s", p->agent_s, p->score_s);
    fprintf(stderr, "episode %3d/%d  bits w %.2f a %.2f  cost %.3fx  acc %6.2f%%%s  best %6.2f%% (%.3fx)  "
            "scored %d, cache hits %d%s  %s  ETA %s\n",
            p->episode, p->episodes, p->mean_w_bits, p->mean_a_bits, p->cost_ratio, p->accuracy,
            p->cached ? " (cached)" : "", p->best_accuracy, p->best_cost_ratio, p->scored, p->cache_hits, split, el,
            eta);
}

/* --rl hidden=300,actor_lr=1e-4,... */
static int parse_rl(const char *v, mixq_search_config *sc) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            fprintf(stderr, "mixq search: error: --rl expects KEY=VALUE pairs, got '%s'\n", tok);
            return 0;
        }
        *eq = 0;
        const char *k = tok, *x = eq + 1;
        char flag[64];
        snprintf(flag, sizeof flag, "--rl %s", k);
        if (!strcmp(k, "hidden")) { if (!parse_int("search", flag, x, 1, 4096, &sc->rl_hidden)) return 0; }
        else if (!strcmp(k, "batch")) { if (!parse_int("search", flag, x, 1, 65536, &sc->rl_batch)) return 0; }
        else if (!strcmp(k, "replay")) { if (!parse_int("search", flag, x, 1, 1 << 26, &sc->rl_replay)) return 0; }
        else if (!strcmp(k, "actor_lr")) { if (!parse_float("search", flag, x, 1e-9, 1, &sc->rl_actor_lr)) return 0; }
        else if (!strcmp(k, "critic_lr")) { if (!parse_float("search", flag, x, 1e-9, 1, &sc->rl_critic_lr)) return 0; }
        else if (!strcmp(k, "tau")) { if (!parse_float("search", flag, x, 1e-6, 1, &sc->rl_tau)) return 0; }
        else if (!strcmp(k, "gamma")) { if (!parse_float("search", flag, x, 1e-6, 1, &sc->rl_gamma)) return 0; }
        else if (!strcmp(k, "sigma")) { if (!parse_float("search", flag, x, 1e-6, 10, &sc->rl_sigma)) return 0; }
        else if (!strcmp(k, "sigma_decay")) { if (!parse_float("search", flag, x, 1e-6, 1, &sc->rl_sigma_decay)) return 0; }
        else if (!strcmp(k, "sigma_min")) { if (!parse_float("search", flag, x, 0, 1, &sc->rl_sigma_min)) return 0; }
        else if (!strcmp(k, "penalty")) { if (!parse_float("search", flag, x, 0, 1000, &sc->rl_penalty)) return 0; }
        else if (!strcmp(k, "redraw")) { if (!parse_int("search", flag, x, 0, 1000, &sc->rl_redraw)) return 0; }
        else if (!strcmp(k, "store")) {
            if (!strcmp(x, "post")) sc->rl_store_post = 1;
            else if (!strcmp(x, "pre")) sc->rl_store_post = 0;
            else return usage_error("search", "--rl store expects post or pre, got '%s'", x), 0;
        } else {
            static const char *const keys[] = {"hidden", "batch", "replay", "actor_lr", "critic_lr", "tau", "gamma",
                                               "sigma", "sigma_decay", "sigma_min", "penalty", "redraw", "store"};
            const char *near = mixq_closest_name(k, keys, (int)(sizeof keys / sizeof keys[0]));
            fprintf(stderr, "mixq search: error: unknown --rl key '%s'; %s%s%shint: hidden, batch, replay, "
                    "actor_lr, critic_lr, tau, gamma, sigma, sigma_decay, sigma_min, penalty, redraw, store\n", k,
                    near ? "did you mean '" : "", near ? near : "", near ? "'? " : "");
            return 0;
        }
    }
    return 1;
}

/* A double in [lo, hi] for `flag`. */
static int parse_dbl(const char *flag, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "mixq search: error: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi,
                s ? s : "(nothing)");
        return 0;
    }
    *out = v;
    return 1;
}

static int bit_set_error(const char *opt, const char *what, const char *v) {
    char m[256];
    snprintf(m, sizeof m, "%s %s '%.100s'", opt, what, v);
    usage_error("search", "%s", m);
    return 0;
}

/* --bit-set / --a-bit-set 2,3,4,5,8: 2 to 8 distinct widths in 1..8, any order (kept ascending),
 * into out[8] and *n */
static int parse_bit_set(const char *opt, const char *v, int *out, int *count) {
    int bits[8], n = 0;
    const char *p = v;
    for (;;) {
        char *end;
        errno = 0;
        long b = strtol(p, &end, 10);
        if (end == p || errno || b < 1 || b > 8 || n == 8 || (*end && *end != ','))
            return bit_set_error(opt, "expects 2 to 8 distinct widths within 1..8 separated by commas "
                                 "(e.g. 2,3,4,5,8), got", v);
        int at = n;
        while (at > 0 && bits[at - 1] > b) at--;
        if (at > 0 && bits[at - 1] == b)
            return bit_set_error(opt, "lists a width twice:", v);
        memmove(bits + at + 1, bits + at, sizeof(int) * (size_t)(n - at));
        bits[at] = (int)b;
        n++;
        if (!*end) break;
        p = end + 1;
    }
    if (n < 2) return bit_set_error(opt, "needs at least 2 widths to choose from, got", v);
    memcpy(out, bits, sizeof(int) * (size_t)n);
    *count = n;
    return 1;
}

/* --reward margin=0.8,a=0.6,b=3,hw=0 and --ppo lr=1e-4,...: KEY=VALUE lists */
static int parse_kv_list(const char *opt, const char *v, mixq_search_config *sc) {
    static const char *const rkeys[] = {"margin", "a", "b", "hw"};
    static const char *const pkeys[] = {"lr", "clip", "vf", "ent", "gamma", "lambda", "epochs", "hidden", "temp"};
    static const char *const akeys[] = {"psi_acc", "psi_lat", "psi_e", "zeta0", "zeta1", "llc_hidden", "llc_updates",
                                        "relabel"};
    static const char *const ekeys[] = {"epochs", "mixing", "tau0", "tau1", "lambda", "lr", "images"};
    const int ppo = !strcmp(opt, "--ppo"), aq = !strcmp(opt, "--autoq"), eb = !strcmp(opt, "--ebs");
    const char *const *keys = eb ? ekeys : aq ? akeys : ppo ? pkeys : rkeys;
    const int nkeys = eb    ? (int)(sizeof ekeys / sizeof ekeys[0])
                      : aq  ? (int)(sizeof akeys / sizeof akeys[0])
                      : ppo ? (int)(sizeof pkeys / sizeof pkeys[0])
                            : (int)(sizeof rkeys / sizeof rkeys[0]);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            fprintf(stderr, "mixq search: error: %s expects KEY=VALUE pairs, got '%s'; hint: %s %s\n", opt, tok, opt,
                    eb ? "epochs=2,mixing=gumbel" : aq ? "psi_acc=10,psi_lat=0.5" : ppo ? "lr=1e-4,clip=0.3"
                                                                      : "margin=0.8,a=0.6,b=3");
            return 0;
        }
        *eq = 0;
        const char *k = tok, *x = eq + 1;
        char flag[64];
        snprintf(flag, sizeof flag, "%s %s", opt, k);
        int ok = 1, known = 1;
        if (eb) {
            if (!strcmp(k, "epochs")) ok = parse_int("search", flag, x, 1, 1000, &sc->ebs_epochs);
            else if (!strcmp(k, "images")) ok = parse_int("search", flag, x, 4, 100000000, &sc->ebs_images);
            else if (!strcmp(k, "tau0")) ok = parse_dbl(flag, x, 1e-3, 1000, &sc->ebs_tau0);
            else if (!strcmp(k, "tau1")) ok = parse_dbl(flag, x, 1e-3, 1000, &sc->ebs_tau1);
            else if (!strcmp(k, "lambda")) ok = parse_dbl(flag, x, 1e-9, 1e6, &sc->ebs_lambda);
            else if (!strcmp(k, "lr")) ok = parse_dbl(flag, x, 1e-9, 10, &sc->ebs_lr);
            else if (!strcmp(k, "mixing")) {
                if (!strcmp(x, "gumbel")) sc->ebs_gumbel = 1;
                else if (!strcmp(x, "softmax")) sc->ebs_gumbel = 0;
                else {
                    fprintf(stderr, "mixq search: error: --ebs mixing expects softmax or gumbel, got '%s'\n", x);
                    ok = 0;
                }
            } else known = 0;
        } else if (aq) {
            if (!strcmp(k, "psi_acc")) ok = parse_dbl(flag, x, 0, 1e6, &sc->autoq_psi_acc);
            else if (!strcmp(k, "psi_lat")) ok = parse_dbl(flag, x, 0, 1e6, &sc->autoq_psi_lat);
            else if (!strcmp(k, "psi_e")) ok = parse_dbl(flag, x, 0, 1e6, &sc->autoq_psi_e);
            else if (!strcmp(k, "zeta0")) ok = parse_dbl(flag, x, 0, 1, &sc->autoq_zeta0);
            else if (!strcmp(k, "zeta1")) ok = parse_dbl(flag, x, 0, 1, &sc->autoq_zeta1);
            else if (!strcmp(k, "llc_hidden")) ok = parse_int("search", flag, x, 1, 4096, &sc->autoq_llc_hidden);
            else if (!strcmp(k, "llc_updates")) ok = parse_int("search", flag, x, 0, 100000, &sc->autoq_llc_updates);
            else if (!strcmp(k, "relabel")) {
                if (!strcmp(x, "hiro")) sc->autoq_relabel = 1;
                else if (!strcmp(x, "none")) sc->autoq_relabel = 0;
                else {
                    fprintf(stderr, "mixq search: error: --autoq relabel expects hiro or none, got '%s'\n", x);
                    ok = 0;
                }
            } else known = 0;
        } else if (!ppo) {
            if (!strcmp(k, "margin")) ok = parse_dbl(flag, x, 0, 10, &sc->reward_margin);
            else if (!strcmp(k, "a")) ok = parse_dbl(flag, x, 1e-6, 100, &sc->reward_a);
            else if (!strcmp(k, "b")) ok = parse_dbl(flag, x, 0, 100, &sc->reward_b);
            else if (!strcmp(k, "hw")) ok = parse_dbl(flag, x, 0, 1, &sc->reward_hw);
            else known = 0;
        } else {
            if (!strcmp(k, "lr")) ok = parse_dbl(flag, x, 1e-9, 1, &sc->ppo_lr);
            else if (!strcmp(k, "clip")) ok = parse_dbl(flag, x, 1e-6, 0.999, &sc->ppo_clip);
            else if (!strcmp(k, "vf")) ok = parse_dbl(flag, x, 0, 1000, &sc->ppo_vf);
            else if (!strcmp(k, "ent")) ok = parse_dbl(flag, x, 0, 1000, &sc->ppo_ent);
            else if (!strcmp(k, "gamma")) ok = parse_dbl(flag, x, 1e-6, 1, &sc->ppo_gamma);
            else if (!strcmp(k, "lambda")) ok = parse_dbl(flag, x, 0, 1, &sc->ppo_lambda);
            else if (!strcmp(k, "temp")) ok = parse_dbl(flag, x, 1e-3, 100, &sc->ppo_temp);
            else if (!strcmp(k, "epochs")) ok = parse_int("search", flag, x, 1, 1000, &sc->ppo_epochs);
            else if (!strcmp(k, "hidden")) ok = parse_int("search", flag, x, 1, 4096, &sc->ppo_hidden);
            else known = 0;
        }
        if (!known) {
            const char *near = mixq_closest_name(k, keys, nkeys);
            char list[160] = "";
            for (int i = 0; i < nkeys; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", keys[i]);
            fprintf(stderr, "mixq search: error: unknown %s key '%s'; %s%s%shint: %s\n", opt, k,
                    near ? "did you mean '" : "", near ? near : "", near ? "'? " : "", list);
            return 0;
        }
        if (!ok) return 0;
    }
    return 1;
}

static int search_run(int argc, char **argv);

/* Under mpirun every rank runs this: rank 0 is the search, the others score its candidates. */
static int cmd_search(int argc, char **argv) {
    mixq_mpi_init(&argc, &argv);
    int rc = search_run(argc, argv);
    mixq_mpi_finalize();
    return rc;
}

static int search_run(int argc, char **argv) {
    const char *C = "search", *path = NULL, *data = NULL, *out = NULL;
    char search_help[sizeof search_help_1 + sizeof search_help_2 + sizeof search_help_3];
    snprintf(search_help, sizeof search_help, "%s%s%s", search_help_1, search_help_2, search_help_3);
    mixq_search_config sc;
    mixq_search_config_default(&sc);
    split_opts so = {.val = sc.val_images};
    int threads = 0, resume = 0, quiet = 0, budget_given = 0, bit_set_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(search_help, stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (path) return usage_error(C, "unexpected argument '%s'", a);
            path = a;
            continue;
        }
        if (!strcmp(a, "--resume")) { resume = 1; continue; }
        if (!strcmp(a, "--quiet")) { quiet = 1; continue; }
        if (!strcmp(a, "--no-pin")) { sc.pin_ends = 0; continue; }
        if (!strcmp(a, "--kernel-wise")) { sc.kernel_wise = 1; continue; }

        if (!strcmp(a, "--no-report")) { sc.report_every = -1; continue; }
        if (!v) return bad_option(C, search_help, a, 1);
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--agent")) sc.agent = v;
        else if (!strcmp(a, "--hw")) sc.hw = v;
        else if (!strcmp(a, "--budget")) sc.budget = v, budget_given = 1;
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "resource")) sc.accuracy_mode = 0;
            else if (!strcmp(v, "accuracy")) sc.accuracy_mode = 1;
            else return usage_error(C, "--mode expects resource or accuracy, got '%s'", v);
        } else if (!strcmp(a, "--max-drop")) {
            float x;
            ok = parse_float(C, a, v, 0, 100, &x);
            sc.max_drop = x;
        } else if (!strcmp(a, "--episodes")) ok = parse_int(C, a, v, 1, 1000000, &sc.episodes);
        else if (!strcmp(a, "--warmup")) ok = parse_int(C, a, v, 0, 1000000, &sc.warmup);
        else if (!strcmp(a, "--bits")) {
            if (sscanf(v, "%d..%d", &sc.b_min, &sc.b_max) != 2 || sc.b_min < 1 || sc.b_max > 8 || sc.b_min > sc.b_max)
                return usage_error(C, "--bits expects LO..HI within 1..8, got '%s'", v);
        } else if (!strcmp(a, "--finetune-images")) ok = parse_int(C, a, v, 0, 100000000, &sc.finetune_images);
        else if (!strcmp(a, "--eval-images")) ok = parse_int(C, a, v, 1, 100000000, &sc.eval_images);
        else if (!strcmp(a, "--calib-images")) ok = parse_int(C, a, v, 1, 100000000, &sc.calib_images);
        else if (!strcmp(a, "--final-epochs")) ok = parse_float(C, a, v, 0, 10000, &sc.final_epochs);
        else if (!strcmp(a, "--lr")) ok = parse_float(C, a, v, 1e-9, 10, &sc.lr);
        else if (!strcmp(a, "--final-lr")) ok = parse_float(C, a, v, 1e-9, 10, &sc.final_lr);
        else if (!strcmp(a, "--distill")) ok = parse_float(C, a, v, 0, 1, &sc.distill);
        else if (!strcmp(a, "--distill-temperature"))
            ok = parse_float(C, a, v, 0.05, 100, &sc.distill_temperature);
        else if (!strcmp(a, "--batch")) ok = parse_int(C, a, v, 2, 65536, &sc.batch);
        else if (split_option(C, a, v, 1, 0, &so, &ok)) ;
        else if (!strcmp(a, "--hw-batch")) ok = parse_int(C, a, v, 1, 1 << 20, &sc.hw_batch);
        else if (!strcmp(a, "--seed")) ok = parse_u64(C, a, v, &sc.seed);
        else if (!strcmp(a, "--threads")) ok = parse_int(C, a, v, 1, 32, &threads);
        else if (!strcmp(a, "--rl")) ok = parse_rl(v, &sc);
        else if (!strcmp(a, "--bit-set")) ok = parse_bit_set(a, v, sc.bit_set, &sc.n_bit_set), bit_set_given = 1;
        else if (!strcmp(a, "--a-bit-set")) ok = parse_bit_set(a, v, sc.a_bit_set, &sc.n_a_bit_set);
        else if (!strcmp(a, "--a-bits")) ok = parse_int(C, a, v, 1, 8, &sc.a_bits);
        else if (!strcmp(a, "--reward") || !strcmp(a, "--ppo") || !strcmp(a, "--autoq") || !strcmp(a, "--ebs"))
            ok = parse_kv_list(a, v, &sc);
        else if (!strcmp(a, "--report-every")) ok = parse_int(C, a, v, 0, 100000000, &sc.report_every);
        else if (!strcmp(a, "--hessian-images")) ok = parse_int(C, a, v, 1, 100000000, &sc.hessian_images);
        else if (!strcmp(a, "--hessian-probes")) ok = parse_int(C, a, v, 1, 1000000, &sc.hessian_probes);
        else if (!strcmp(a, "--sweep")) ok = parse_int(C, a, v, 1, 10000, &sc.sweep);
        else if (!strcmp(a, "--parallel")) ok = parse_int(C, a, v, 1, 4096, &sc.parallel);
        else if (!strcmp(a, "--worker-timeout")) {
            float x;
            ok = parse_float(C, a, v, 0, 1e7f, &x);
            sc.worker_timeout = x;
        }
        else if (!strcmp(a, "--sweep-from")) {
            float x;
            ok = parse_float(C, a, v, 1e-6f, 100, &x);
            sc.sweep_from = x;
        }
        else return bad_option(C, search_help, a, 0);
        if (!ok) return 2;
        i++;
    }
    if (!path) return usage_error(C, "%s", "a model file is required");
    if (!data) return usage_error(C, "%s", "--data is required");
    if (!budget_given && !strcmp(sc.agent, "releq")) sc.budget = ""; /* releq: no budget by default */
    if (!bit_set_given && !strcmp(sc.agent, "ebs")) sc.n_bit_set = 0; /* ebs: its own default widths */
    int out_rc = check_out(C, out);
    if (out_rc) return out_rc;
    if (threads && mixq_set_threads(threads)) return fail(C);
    /* the command that resumes this run: the same one, with --resume */
    char resume_cmd[4096], this_cmd[4096];
    command_line(resume_cmd, sizeof resume_cmd - 10, argc, argv);
    snprintf(this_cmd, sizeof this_cmd, "%s", resume_cmd);
    if (!resume) strcat(resume_cmd, " --resume");
    search_ui ui = {quiet, isatty(2), sc.budget && *sc.budget ? sc.budget : "none", resume_cmd, out, this_cmd, 0, NULL};
    search_stop_set(&ui, "before the first episode ended");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint_search;
    sigaction(SIGINT, &sa, NULL);
    char pp_note[1400];
    { /* the search applies the transform the model records: say when it records none */
        mixq_model *pm = NULL;
        mixq_preprocess pp;
        mixq_holdout vh;
        if (mixq_model_load(path, &pm)) return fail(C);
        /* its validation split: the model's own unless given (mixq_search follows the same rule;
         * the check assumes --data is the file the model was trained on) */
        split_for(pm, &so, sc.seed, &sc.split_seed, &sc.val_images);
        sc.split_seed_set = 1;
        if (mixq_mpi_rank() == 0) {
            if (!mixq_model_holdout(pm, &vh)) vh.images = 0;
            vh.seed = sc.split_seed, vh.count = sc.val_images;
            split_warn(C, path, pm, &vh);
        }
        if (!mixq_model_preprocess(pm, &pp)) {
            char d[200];
            mixq_preprocess_describe(&pp, d, sizeof d);
            snprintf(pp_note, sizeof pp_note, "mixq %s: note: '%.600s' records no input preprocessing; "
                     "assuming %s. hint: if it was trained on other inputs, record them first: mixq "
                     "import/eval/quantize ... --preprocess NAME (or --mean/--std/--scale)\n", C, path, d);
            ui.pp_note = pp_note;
        }
        mixq_model_free(pm);
    }
    mixq_search_result r;
    if (mixq_mpi_rank() > 0) { /* a worker rank: scores only, says nothing unless it fails */
        signal(SIGINT, SIG_DFL);
        int st = mixq_search(path, data, &sc, out, resume, NULL, NULL, &r);
        if (!st) return 0;
        fprintf(stderr, "mixq search (rank %d): error: %s\n", mixq_mpi_rank(), mixq_last_error());
        return 1;
    }
    int st = mixq_search(path, data, &sc, out, resume, on_search, &ui, &r);
    signal(SIGINT, SIG_DFL);
    if (st) return fail(C);
    /* the best policy, per layer, with its costs on the target */
    char best[1200];
    snprintf(best, sizeof best, "%s/best.mixq", out);
    mixq_model *m = NULL;
    mixq_hw *hw = NULL;
    if (mixq_model_load(best, &m) || mixq_hw_load(sc.hw, &hw)) {
        mixq_model_free(m);
        return fail(C);
    }
    printf("best policy (%s agent, %s on %s):\n", sc.agent,
           sc.budget && *sc.budget && strcmp(sc.budget, "none") ? sc.budget : "no budget", mixq_hw_name(hw));
    print_policy_table(m);
    char bud[32] = "no budget";
    if (r.budget_ratio > 0) snprintf(bud, sizeof bud, "budget %.3fx", r.budget_ratio);
    printf("cost / W8A8: latency %.3fx, energy %.3fx, size %.3fx, BitOps %.3fx (%s)\n", r.ratio[0], r.ratio[1],
           r.ratio[2], r.ratio[3], bud);
    printf("accuracy: fp32 %.2f%% (val subset), best candidate %.2f%% (val subset); %s val %.2f%%, "
           "test %.2f%%\n", r.fp32_val_accuracy, r.best_val_accuracy,
           sc.final_epochs > 0 ? "after the final fine-tune" : "best policy calibrated (no fine-tune)",
           r.final_val_accuracy, r.final_test_accuracy);
    printf("%d candidates scored in %.1f s (%.1f per minute), %s %.1f s; Pareto set: %s%spareto.csv\n",
           r.candidates, r.search_s, r.search_s > 0 ? r.candidates * 60.0 / r.search_s : 0.0,
           sc.final_epochs > 0 ? "final fine-tune" : "no final fine-tune (--final-epochs 0): calibration "
                                                     "and test", r.final_s, out,
           out[strlen(out) - 1] == '/' ? "" : "/");
    if (sc.report_every >= 0 && !ui.report_failed)
        printf("report: %s%sreport.html\n", out, out[strlen(out) - 1] == '/' ? "" : "/");
    mixq_hw_free(hw);
    mixq_model_free(m);
    return 0;
}

/* ---------------------------------------------------------------- report */
static const char report_help[] =
    "usage: mixq report RUN_DIR [RUN_DIR...] --out report.html [options]\n"
    "\n"
    "Write one self-contained HTML page (inline SVG and CSS: no script, nothing fetched; prints\n"
    "to PDF) about the search run directories: validation accuracy against latency, energy, size\n"
    "and BitOps (every candidate a point, each agent's Pareto front a line, the chosen policy a\n"
    "star, uniform policies and W8A8 as references, one colour per agent), the search over\n"
    "episodes (accuracy, best so far, cost, reward, distinct candidates), the chosen policy's\n"
    "bits per layer with MACs (a heat map for per-kernel bits), its cost per layer on the target\n"
    "(latency with memory-bound layers, energy split into compute / buffers / DRAM), and each\n"
    "run's configuration and provenance. `mixq search` writes RUN_DIR/report.html itself.\n"
    "A run directory with missing or torn files gives a page of what is there, with notes\n"
    "(also printed here); the model and target are loaded from config.json to cost the layers.\n"
    "\n"
    "  --out FILE      the page to write (required)\n"
    "  --title TEXT    the page title (default: mixq search report)\n"
    "  --model PATH    the float model the runs searched, when config.json's path does not\n"
    "                  lead to it from here (it is also looked for relative to each run\n"
    "                  directory and its parents, with the recorded checksum)\n"
    "  --hw TARGET     the hardware target to cost the layers on (default: config.json's)\n"
    "  --quiet         do not print the notes\n";

typedef struct report_ui {
    int quiet, notes;
} report_ui;

static void on_report_note(const char *dir, const char *text, void *user) {
    report_ui *u = user;
    u->notes++;
    if (!u->quiet) fprintf(stderr, "mixq report: note: %s%s%s\n", dir, *dir ? ": " : "", text);
}

static int cmd_report(int argc, char **argv) {
    const char *C = "report", *out = NULL;
    const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    if (!dirs) return fail(C);
    int n = 0, rc = 2;
    mixq_report_config rc_cfg;
    mixq_report_config_default(&rc_cfg);
    report_ui ui = {0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(report_help, stdout);
            free(dirs);
            return 0;
        }
        if (a[0] != '-') {
            dirs[n++] = a;
            continue;
        }
        if (!strcmp(a, "--quiet")) { ui.quiet = 1; continue; }
        if (!v) {
            rc = bad_option(C, report_help, a, 1);
            goto out;
        }
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--title")) rc_cfg.title = v;
        else if (!strcmp(a, "--model")) rc_cfg.model = v;
        else if (!strcmp(a, "--hw")) rc_cfg.hw = v;
        else {
            rc = bad_option(C, report_help, a, 0);
            goto out;
        }
        i++;
    }
    if (!n) {
        rc = usage_error(C, "%s", "give at least one run directory (what `mixq search --out` wrote)");
        goto out;
    }
    if ((rc = check_out(C, out))) goto out;
    rc_cfg.note = on_report_note;
    rc_cfg.user = &ui;
    if (mixq_report_write(dirs, n, out, &rc_cfg)) {
        rc = fail(C);
        goto out;
    }
    printf("wrote %s (%d run director%s, %d note%s)\n", out, n, n == 1 ? "y" : "ies", ui.notes, ui.notes == 1 ? "" : "s");
    rc = 0;
out:
    free(dirs);
    return rc;
}


/* ---------------------------------------------------------------- import / export */
static const char import_help[] =
    "usage: mixq import MODEL.onnx --out FILE.mixq [--preprocess NAME | --mean/--std/--scale]\n"
    "\n"
    "Read an ONNX CNN (e.g. exported by torch.onnx.export in eval mode, opset 9..17) into a mixq\n"
    "model and print the layers it understood, named after the PyTorch modules. Supported:\n"
    "Conv (any kernel, strides and pads), Gemm, MatMul+Add, BatchNormalization, Relu, Clip\n"
    "(ReLU6), Sigmoid, HardSigmoid, HardSwish, Mul, Concat, MaxPool, AveragePool,\n"
    "GlobalAveragePool, Add, Flatten, Reshape to 2-D, Identity, Dropout, Constant, zero Pad on\n"
    "any side (PyTorch's pad chains constant-folded), and mixq's own QDQ exports (read back\n"
    "quantized). Anything else is an error naming\n"
    "the node. train (--model FILE.onnx), eval, quantize and search also read .onnx directly.\n"
    "The input transform comes from the file's mixq.preprocess metadata (a mixq export) and\n"
    "from leading Sub/Div nodes on the input, which are folded into it; or give it:\n"
    PP_HELP;

static int cmd_import(int argc, char **argv) {
    const char *C = "import", *path = NULL, *out = NULL;
    pp_opts ppo = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(import_help, stdout);
            return 0;
        }
        if (a[0] == '-' && i + 1 >= argc) return bad_option(C, import_help, a, 1);
        if (pp_option(a, argv[i + 1], &ppo)) i++;
        else if (!strcmp(a, "--out")) out = argv[++i];
        else if (a[0] == '-') return bad_option(C, import_help, a, 0);
        else if (path) return usage_error(C, "unexpected argument '%s'", a);
        else path = a;
    }
    if (!path) return usage_error(C, "%s", "an .onnx file is required");
    int out_rc = check_out(C, out);
    if (out_rc) return out_rc;
    mixq_model *m = NULL;
    if (mixq_model_import_onnx(path, &m)) return fail(C);
    int rc = pp_apply(C, m, &ppo, path);
    if (!rc && mixq_model_save(m, out)) rc = fail(C);
    mixq_model_free(m);
    if (rc) return rc;
    printf("imported %s:\n", path);
    char *args[2] = {"info", (char *)out};
    rc = cmd_info(2, args);
    if (!rc) printf("wrote %s\n", out);
    return rc;
}

static const char export_help[] =
    "usage: mixq export MODEL --format onnx --out FILE.onnx [--embed-preprocess] [--data DATA]\n"
    "\n"
    "Write MODEL as ONNX (opset 13). A float model becomes plain Conv/Gemm/BatchNormalization/...\n"
    "nodes. A quantized model becomes QDQ: QuantizeLinear/DequantizeLinear around weights\n"
    "(int8 containers holding the b-bit values, per-channel scales along axis 0 where the policy\n"
    "uses them) and around input activations (a Clip to the calibrated range first, so an 8-bit\n"
    "container stays within b bits); metadata_props hold mixq.version, mixq.policy, mixq.bits\n"
    "(per layer and per kernel), mixq.provenance, mixq.preprocess (the input transform, JSON)\n"
    "and mixq.holdout (the training images the model held out, when it records them).\n"
    "k-means layers are written dequantized.\n"
    "\n"
    "  --embed-preprocess    start the graph with the input transform (Sub and Div, and a Gather\n"
    "                        for BGR), so it takes raw pixels 0..255 as floats\n"
    "  --data DATA           for a model whose transform is mixq's default (the dataset's own\n"
    "                        statistics): the dataset to take the numbers from\n"
    PP_HELP;

static int cmd_export(int argc, char **argv) {
    const char *C = "export", *path = NULL, *out = NULL, *format = "onnx", *data = NULL;
    pp_opts ppo = {0};
    int embed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(export_help, stdout);
            return 0;
        }
        if (!strcmp(a, "--embed-preprocess")) {
            embed = 1;
            continue;
        }
        if (a[0] == '-' && i + 1 >= argc) return bad_option(C, export_help, a, 1);
        if (pp_option(a, argv[i + 1], &ppo)) i++;
        else if (!strcmp(a, "--out")) out = argv[++i];
        else if (!strcmp(a, "--format")) format = argv[++i];
        else if (!strcmp(a, "--data")) data = argv[++i];
        else if (a[0] == '-') return bad_option(C, export_help, a, 0);
        else if (path) return usage_error(C, "unexpected argument '%s'", a);
        else path = a;
    }
    if (!path) return usage_error(C, "%s", "a model file is required");
    int out_rc = check_out(C, out);
    if (out_rc) return out_rc;
    if (strcmp(format, "onnx")) return usage_error(C, "--format expects onnx, got '%s'", format);
    mixq_model *m = NULL;
    if (mixq_model_load(path, &m)) return fail(C);
    int rc = pp_apply(C, m, &ppo, path);
    mixq_preprocess pp;
    mixq_model_preprocess(m, &pp);
    if (!rc && pp.from_data && data) { /* the dataset's statistics, as numbers */
        mixq_dataset *d = NULL;
        if (mixq_dataset_load(data, MIXQ_SPLIT_TRAIN, 0, 1, &d) || mixq_dataset_preprocess(d, &pp) ||
            mixq_model_set_preprocess(m, &pp))
            rc = fail(C);
        mixq_dataset_free(d);
    }
    if (rc) {
        mixq_model_free(m);
        return rc;
    }
    if (mixq_model_export_onnx_ex(m, out, embed)) rc = fail(C);
    else printf("wrote %s (%s)\n", out, mixq_model_is_quantized(m) ? "quantized, QDQ" : "float");
    mixq_model_free(m);
    return rc;
}


/* ---------------------------------------------------------------- run (CPU runtime) */
static const char run_help[] =
    "usage: mixq run QMODEL --data DATA [--split test|val] [--val N] [--split-seed N]\n"
    "                [--kernel auto|bitserial|int8] [--cpu-table FILE] [--batch N] [--images N]\n"
    "                [--threads N] [--no-compare] [--layers]\n"
    "\n"
    "Run a quantized model file on this CPU with the integer runtime (bit-serial AND+popcount\n"
    "and int8 kernels, fused epilogues) and print its accuracy. Unless --no-compare, the\n"
    "fake-quantized model runs on the same images and the images whose predicted class differs\n"
    "are counted (the integer kernels are exact; only float rounding inside a layer differs).\n"
    "  --kernel     auto (default): per layer, the faster kernel in --cpu-table (a table written\n"
    "               by `mixq calibrate-cpu`), or without a table bitserial where w x a <= 2 bits\n"
    "               (with AVX-512 VPOPCNTDQ: <= 3 from K = C*R*S = 576, <= 4 from K = 1152)\n"
    "               and int8 elsewhere; bitserial / int8 force one kernel for every layer.\n"
    "  --cpu-table  measured table for auto (default: $MIXQ_CPU_TABLE, else mixq-cpu.json if it\n"
    "               exists, else the built-in rule)\n"
    "  --batch N    images per forward (default 64); --images N: only the first N images\n"
    "  --split val  the validation images carved from the training set: the ones QMODEL\n"
    "               records it was trained without, unless --val N and --split-seed N\n"
    "               (alias --seed) choose others (no record: defaults 5000 and 1)\n"
    "  --threads N  worker threads (default: all cores); results do not depend on it\n"
    "  --layers     per-layer table: kernel, bits, fused ops, time per image\n"
    PP_HELP;

static int cmd_run(int argc, char **argv) {
    const char *C = "run", *path = NULL, *data = NULL, *table = NULL;
    int batch = 64, threads = 0, images = 0, compare = 1, layers = 0;
    split_opts so = {.val = 5000};
    pp_opts ppo = {0};
    mixq_split split = MIXQ_SPLIT_TEST;
    mixq_runtime_config rc_cfg;
    mixq_runtime_config_default(&rc_cfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(run_help, stdout);
            return 0;
        }
        if (!strcmp(a, "--no-compare")) {
            compare = 0;
            continue;
        }
        if (!strcmp(a, "--layers")) {
            layers = 1;
            continue;
        }
        if (a[0] != '-') {
            if (path) return usage_error(C, "unexpected argument '%s'", a);
            path = a;
            continue;
        }
        if (!v) return bad_option(C, run_help, a, 1);
        if (pp_option(a, v, &ppo)) ;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--split")) {
            if (!strcmp(v, "test")) split = MIXQ_SPLIT_TEST;
            else if (!strcmp(v, "val")) split = MIXQ_SPLIT_VAL;
            else return usage_error(C, "--split expects test or val, got '%s'", v);
        } else if (!strcmp(a, "--kernel")) {
            if (mixq_kernel_parse(v, &rc_cfg.kernel) || rc_cfg.kernel == MIXQ_KERNEL_FP32)
                return usage_error(C, "--kernel expects auto, bitserial or int8, got '%s'", v);
        } else if (!strcmp(a, "--cpu-table")) table = v;
        else if (!strcmp(a, "--batch")) ok = parse_int(C, a, v, 1, 65536, &batch);
        else if (!strcmp(a, "--images")) ok = parse_int(C, a, v, 1, 100000000, &images);
        else if (split_option(C, a, v, 1, 1, &so, &ok)) ;
        else if (!strcmp(a, "--threads")) ok = parse_int(C, a, v, 1, 32, &threads);
        else return bad_option(C, run_help, a, 0);
        if (!ok) return 2;
        i++;
    }
    if (!path) return usage_error(C, "%s", "a quantized model file is required");
    if (!data) return usage_error(C, "%s", "--data is required");
    if (threads && mixq_set_threads(threads)) return fail(C);
    if (!table && rc_cfg.kernel == MIXQ_KERNEL_AUTO) {
        const char *env = getenv("MIXQ_CPU_TABLE");
        if (env && *env) table = env;
        else if (access("mixq-cpu.json", R_OK) == 0) table = "mixq-cpu.json";
    }
    rc_cfg.cpu_table = table;
    mixq_model *m = NULL;
    mixq_dataset *d = NULL;
    mixq_runtime *rt = NULL;
    int rc = 1;
    if (mixq_model_load(path, &m)) {
        fail(C);
        goto out;
    }
    if ((rc = pp_apply(C, m, &ppo, path)) != 0) goto out;
    rc = 1;
    uint64_t split_seed;
    int val;
    split_for(m, &so, 1, &split_seed, &val);
    if (mixq_dataset_load(data, split, split == MIXQ_SPLIT_VAL ? val : 0, split_seed, &d) ||
        (images && images < mixq_dataset_count(d) && mixq_dataset_truncate(d, images)) ||
        mixq_runtime_create(m, &rc_cfg, &rt)) {
        fail(C);
        goto out;
    }
    if (split == MIXQ_SPLIT_VAL) split_check(C, path, m, d);
    printf("runtime: %d layers, kernel choice %s%s%s, %d threads\n", mixq_runtime_layer_count(rt),
           rc_cfg.kernel == MIXQ_KERNEL_AUTO ? (table ? "from table " : "by the built-in rule")
                                             : "forced ",
           rc_cfg.kernel == MIXQ_KERNEL_AUTO ? (table ? table : "") : mixq_kernel_name(rc_cfg.kernel),
           "", mixq_get_threads());
    mixq_runtime_eval ev;
    if (mixq_runtime_evaluate(rt, compare ? m : NULL, d, batch, &ev)) {
        fail(C);
        goto out;
    }
    if (layers) {
        printf("%-24s %-9s %5s %5s %-20s %12s\n", "layer", "kernel", "w", "a", "fused", "us/image");
        for (int i = 0; i < mixq_runtime_layer_count(rt); i++) {
            mixq_runtime_layer_info li;
            if (mixq_runtime_layer(rt, i, &li)) continue;
            char wb[16];
            snprintf(wb, sizeof wb, "%d%s", li.w_bits, li.mixed ? "*" : "");
            printf("%-24s %-9s %5s %5d %-20s %12.2f\n", li.name, mixq_kernel_name(li.kernel), wb,
                   li.a_bits, li.fused[0] ? li.fused : "-",
                   li.images ? 1e6 * li.seconds / (double)li.images : 0.0);
        }
        printf("(* per-kernel weight bits: the widest shown)\n");
    }
    printf("accuracy %.2f%%\nimages %d\n", 100.0 * ev.accuracy, ev.images);
    printf("throughput %.1f images/s at batch %d (runtime forwards only)\n", ev.images_per_s,
           batch < ev.images ? batch : ev.images);
    if (compare)
        printf("fake-quantized accuracy %.2f%%; predictions differing %d of %d (%d of them exact ties "
               "between two classes); largest logit difference %.3g\n", 100.0 * ev.ref_accuracy, ev.disagree,
               ev.images, ev.disagree_ties, ev.max_logit_diff);
    rc = 0;
out:
    mixq_runtime_free(rt);
    mixq_model_free(m);
    mixq_dataset_free(d);
    return rc;
}

/* ---------------------------------------------------------------- calibrate-cpu */
static const char calib_help[] =
    "usage: mixq calibrate-cpu (--model M | --arch A [--in C,H,W] [--classes N])\n"
    "                          [--out FILE] [--batch N] [--reps N] [--threads N]\n"
    "\n"
    "Time every conv/linear layer shape of a model on this machine with the runtime's kernels:\n"
    "bit-serial at every (w, a) in 1..8, int8 and fp32, each with its input quantization,\n"
    "packing and epilogue; median of --reps timed runs (default 7) of --batch images (default 1).\n"
    "Writes a hardware target with back-end \"cpu\" to --out (default mixq-cpu.json), so\n"
    "`mixq cost/search --hw mixq-cpu.json` (or `--hw cpu`, which reads mixq-cpu.json or\n"
    "$MIXQ_CPU_TABLE) use this machine's measured latency, and `mixq run` picks each layer's\n"
    "fastest kernel from it.\n";

static void on_calib(int i, int n, const char *name, double el, void *user) {
    (void)user;
    fprintf(stderr, "calibrate-cpu: shape %d/%d (%s) done, %.1f s\n", i, n, name, el);
}

static int cmd_calibrate_cpu(int argc, char **argv) {
    const char *C = "calibrate-cpu", *model = NULL, *arch = NULL, *out = "mixq-cpu.json";
    int inc = 1, inh = 28, inw = 28, classes = 10;
    mixq_cpu_calib_config cc;
    mixq_cpu_calib_config_default(&cc);
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(calib_help, stdout);
            return 0;
        }
        if (a[0] != '-') return usage_error(C, "unexpected argument '%s'", a);
        if (!v) return bad_option(C, calib_help, a, 1);
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--in")) {
            if (sscanf(v, "%d,%d,%d", &inc, &inh, &inw) != 3 || inc < 1 || inh < 1 || inw < 1)
                return usage_error(C, "--in expects C,H,W, got '%s'", v);
        } else if (!strcmp(a, "--classes")) ok = parse_int(C, a, v, 2, 100000, &classes);
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--batch")) ok = parse_int(C, a, v, 1, 4096, &cc.batch);
        else if (!strcmp(a, "--reps")) ok = parse_int(C, a, v, 1, 64, &cc.reps);
        else if (!strcmp(a, "--threads")) ok = parse_int(C, a, v, 1, 32, &cc.threads);
        else return bad_option(C, calib_help, a, 0);
        if (!ok) return 2;
    }
    if (!model == !arch) return usage_error(C, "%s", "give exactly one of --model and --arch");
    int out_rc = check_out(C, out);
    if (out_rc) return out_rc;
    mixq_model *m = NULL;
    if (model) {
        if (mixq_model_load(model, &m)) return fail(C);
    } else {
        mixq_model_config mc = {.arch = arch, .in_c = inc, .in_h = inh, .in_w = inw,
                                .classes = classes, .width = 1.0f, .seed = 1};
        if (mixq_model_create(&mc, &m)) return fail(C);
    }
    int rc = 0;
    if (mixq_cpu_calibrate(m, &cc, out, on_calib, NULL)) rc = fail(C);
    else printf("wrote %s (the %d conv/linear layers of %s, batch %d)\n", out,
                mixq_model_hw_layer_count(m), mixq_model_arch(m), cc.batch);
    mixq_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- main */
typedef struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"train", cmd_train, "train a model in FP32 (mixq train --help)"},
    {"eval", cmd_eval, "test accuracy of a model file"},
    {"info", cmd_info, "layers, shapes, parameters and MACs of a model file"},
    {"policy", cmd_policy, "show a quantization policy resolved on a model (policy show)"},
    {"quantize", cmd_quantize, "calibrate, fine-tune (QAT) and save a quantized model"},
    {"cost", cmd_cost, "latency / energy / DRAM of a model on a hardware target"},
    {"search", cmd_search, "search per-layer bits under a hardware budget (HAQ, HAWQ, ReLeQ, baselines)"},
    {"report", cmd_report, "an HTML page of search runs: Pareto plots, bits and cost per layer"},
    {"import", cmd_import, "read an ONNX model into a mixq model file"},
    {"export", cmd_export, "write a model (float or quantized QDQ) as ONNX"},
    {"run", cmd_run, "run a quantized model on this CPU with the integer runtime"},
    {"calibrate-cpu", cmd_calibrate_cpu, "time every layer shape on this CPU (the cpu target)"},
};

static const char env_help[] =
    "\nenvironment (every variable the library reads; all optional):\n"
    "  MIXQ_THREADS=N        default worker threads (--threads overrides; default all cores)\n"
    "  MIXQ_DATA_DIR=DIR     where --data fashion-mnist is found: DIR/fashion-mnist\n"
    "                        (default /usr/share/datasets, Debian's dataset-fashion-mnist)\n"
    "  MIXQ_CPU_TABLE=FILE   the measured table of --hw cpu and `mixq run` (default\n"
    "                        ./mixq-cpu.json, written by `mixq calibrate-cpu`)\n"
    "  MIXQ_BITSERIAL_TIER=T bit-serial kernel tier: vpopcnt, avx512, avx2, scalar or auto\n"
    "                        (default auto: the best this CPU has; a missing one is an error)\n"
    "  MIXQ_BS_HS_MIN_KW=N   avx512 and avx2 tiers: the K (in 64-bit words) from which the\n"
    "                        carry-save popcount tree replaces nibble tables (avx512 default\n"
    "                        8, i.e. K >= 449; avx2: off unless set)\n"
    "  MIXQ_CONV=gemm        float convolutions (training, eval, fake quantization) as\n"
    "                        im2col + sgemm instead of oneDNN's direct convolution (default);\n"
    "                        results differ in rounding only\n"
    "  MIXQ_GEMM=openblas    that sgemm from OpenBLAS instead of oneDNN's (default)\n"
    "  MIXQ_CONV_CHUNK=N     oneDNN convolution: about N floats of activations per chunk of\n"
    "                        images run on one core (default 65536); a tuning knob: weight\n"
    "                        gradients change in rounding, results stay thread-count-free\n"
    "  MIXQ_CONV_WCHUNK=N    oneDNN convolution's weight gradients: about N output pixels per\n"
    "                        chunk of images (default 2048; each chunk's gradient is summed\n"
    "                        after); a tuning knob like MIXQ_CONV_CHUNK\n"
    "  MIXQ_CONV_WTASKS=N    oneDNN convolution's weight gradients: each chunk's gradient is\n"
    "                        cut into slices of output channels until chunks x slices reach\n"
    "                        N tasks (default 16; 1: off); a tuning knob like MIXQ_CONV_CHUNK\n"
    "  MIXQ_PROFILE=1        time every layer's forward and backward pass; the training\n"
    "                        benchmark (bench/bench_train, bench/run.sh) prints the table\n"
    "  MIXQ_TRAIN_TRACE=1    train and quantize --finetune-epochs: at every epoch's end, per\n"
    "                        trainable tensor its norm, how far the epoch moved it and the\n"
    "                        cosine with the last epoch's move (a diagnostic; same results)\n";

static void main_usage(FILE *f) {
    fprintf(f, "usage: mixq COMMAND [options]   (mixq COMMAND --help for details)\n"
               "       mixq --version | --help\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fputs(env_help, f);
}

int main(int argc, char **argv) {
    if (argc > 0 && argv[0] && *argv[0]) prog = argv[0];
    if (argc < 2) {
        main_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        main_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("mixq %s\n", mixq_version());
        return 0;
    }
    const size_t n = sizeof commands / sizeof commands[0];
    const char *names[sizeof commands / sizeof commands[0]];
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
        names[i] = commands[i].name;
    }
    static const char *const top[] = {"--version", "--help"};
    const char *near = argv[1][0] == '-' ? mixq_closest_name(argv[1], top, 2)
                                         : mixq_closest_name(argv[1], names, (int)n);
    fprintf(stderr, "mixq: error: unknown %s '%s'; %s%s%shint: `mixq --help` lists the commands\n",
            argv[1][0] == '-' ? "option" : "command", argv[1], near ? "did you mean '" : "",
            near ? near : "", near ? "'? " : "");
    return 2;
}
