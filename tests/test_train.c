/* Training loop tests: a short run must learn, results must not depend on the thread count,
 * a NaN loss must stop training with the step named, and bad configurations are rejected. */
#include <omp.h>
#include <stdint.h>
#include <unistd.h>

#include "mixq/mixq.h"
#include "nn/optim.h"
#include "test.h"

static int have_fmnist(void) {
    return access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0;
}

static mixq_model *lenet(uint64_t seed) {
    mixq_model_config cfg = {.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10,
                             .seed = seed};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&cfg, &m));
    return m;
}

typedef struct rec { float first_loss, last_loss; int calls; } rec;
static int record(const mixq_progress *p, void *u) {
    rec *r = u;
    if (r->calls++ == 0) r->first_loss = p->loss;
    r->last_loss = p->loss;
    return 0;
}

/* the last progress call's loss and its cross-entropy part */
typedef struct parts { float loss, ce; } parts;
static int record_parts(const mixq_progress *p, void *u) {
    parts *r = u;
    r->loss = p->loss;
    r->ce = p->ce;
    return 0;
}

/* 4096 training and 1000 validation images of Fashion-MNIST, and one epoch over them in batches
 * of 64 at lr 0.05: 0 (skipped or failed) if the dataset is not there. */
static int short_data(mixq_dataset **tr, mixq_dataset **va) {
    if (!have_fmnist()) {
        test_skip("dataset-fashion-mnist is not installed (scripts/deps.sh installs it)");
        return 0;
    }
    CHECK_OK(mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TRAIN, 1000, 3, tr));
    CHECK_OK(mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_VAL, 1000, 3, va));
    if (!*tr || !*va) {
        mixq_dataset_free(*tr);
        mixq_dataset_free(*va);
        return 0;
    }
    CHECK_OK(mixq_dataset_truncate(*tr, 4096));
    return 1;
}

static void short_cfg(mixq_train_config *tc) {
    mixq_train_config_default(tc);
    tc->epochs = 1;
    tc->lr = 0.05f;
    tc->batch = 64;
}

static void test_short_run_learns(void) {
    mixq_dataset *tr = NULL, *va = NULL;
    if (!short_data(&tr, &va)) return;
    mixq_model *m = lenet(1);
    mixq_train_config tc;
    short_cfg(&tc);
    rec r = {0};
    CHECK_OK(mixq_train(m, tr, NULL, &tc, record, &r));
    CHECK(r.calls == 64);
    CHECKF(r.last_loss < 0.8f * r.first_loss, "loss %.3f -> %.3f", r.first_loss, r.last_loss);
    float acc = 0, loss = 0;
    CHECK_OK(mixq_evaluate(m, va, 256, &acc, &loss));
    CHECKF(acc > 0.65f, "validation accuracy %.3f after 64 steps (chance 0.10)", acc);
    printf("  64 steps of lenet5: loss %.3f -> %.3f, val accuracy %.1f%%\n", r.first_loss,
           r.last_loss, 100 * acc);
    mixq_model_free(m);
    mixq_dataset_free(tr);
    mixq_dataset_free(va);
}

/* 1 when every tensor of a and b is bit-identical (the first that is not is named). */
static int same_weights(mixq_model *a, mixq_model *b, const char *what) {
    for (int i = 0; i < mixq_model_tensor_count(a); i++) {
        mixq_tensor_info ti;
        mixq_model_tensor(a, i, &ti);
        if (memcmp(mixq_model_tensor_data(a, ti.name), mixq_model_tensor_data(b, ti.name),
                   sizeof(float) * (size_t)ti.numel)) {
            fprintf(stderr, "  %s: tensor %s differs\n", what, ti.name);
            return 0;
        }
    }
    return 1;
}

/* Same seed -> bit-identical weights after training, with 1 and with 2 threads. */
static void test_thread_determinism(void) {
    if (!have_fmnist()) {
        test_skip("dataset-fashion-mnist is not installed (scripts/deps.sh installs it)");
        return;
    }
    mixq_dataset *tr = NULL;
    CHECK_OK(mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TRAIN, 1000, 3, &tr));
    if (!tr) return;
    CHECK_OK(mixq_dataset_truncate(tr, 256));
    const char *archs[] = {"lenet5", "resnet20"};
    for (int a = 0; a < 2; a++) {
        mixq_model *ms[2];
        for (int t = 0; t < 2; t++) {
            CHECK_OK(mixq_set_threads(t + 1));
            mixq_model_config cfg = {.arch = archs[a], .in_c = 1, .in_h = 28, .in_w = 28,
                                     .classes = 10, .seed = 4};
            ms[t] = NULL;
            CHECK_OK(mixq_model_create(&cfg, &ms[t]));
            mixq_train_config tc;
            mixq_train_config_default(&tc);
            tc.epochs = 1;
            tc.batch = 64;
            tc.max_steps = 3;
            if (ms[t]) CHECK_OK(mixq_train(ms[t], tr, NULL, &tc, NULL, NULL));
        }
        if (ms[0] && ms[1]) CHECK(same_weights(ms[0], ms[1], archs[a]));
        mixq_model_free(ms[0]);
        mixq_model_free(ms[1]);
    }
    mixq_set_threads(2);
    mixq_dataset_free(tr);
}

/* Pure distillation (weight 1) teaches a fresh model the teacher's answers without labels'
 * help; weight 0 is plain training bit for bit; a teacher with its own input transform sees the
 * same images and crops; a bad teacher or setting is an error. */
static void test_distillation(void) {
    mixq_dataset *tr = NULL, *va = NULL;
    if (!short_data(&tr, &va)) return;
    mixq_model *teacher = lenet(1), *s = lenet(5);
    mixq_train_config tc;
    short_cfg(&tc);
    /* the learning check in the release pass (twice 64 steps, 30 s under the sanitizers); the
     * shorter runs below take every path of the distillation there too, from an untrained
     * teacher */
    if (!test_sanitized()) {
        CHECK_OK(mixq_train(teacher, tr, NULL, &tc, NULL, NULL));
        float tacc = 0, acc = 0, tacc2 = 0;
        CHECK_OK(mixq_evaluate(teacher, va, 256, &tacc, NULL));
        /* weight 1: the labels play no part; the student learns from the teacher alone */
        tc.teacher = teacher;
        tc.distill_weight = 1.0f;
        tc.distill_temperature = 2.0f;
        CHECK_OK(mixq_train(s, tr, NULL, &tc, NULL, NULL));
        CHECK_OK(mixq_evaluate(s, va, 256, &acc, NULL));
        CHECKF(acc > 0.5f, "distilled %.3f, teacher %.3f (chance 0.10)", acc, tacc);
        printf("  64 steps of pure distillation: val accuracy %.1f%% (teacher %.1f%%)\n",
               100 * acc, 100 * tacc);
        /* the teacher is not changed by being used */
        CHECK_OK(mixq_evaluate(teacher, va, 256, &tacc2, NULL));
        CHECK(tacc2 == tacc);
    }

    /* weight 0: the same weights as no teacher at all */
    mixq_model *a = lenet(5), *b = lenet(5);
    tc.teacher = teacher;
    tc.max_steps = 5;
    tc.distill_weight = 0.0f;
    parts pa = {-1, -1}, pb = {-1, -1};
    CHECK_OK(mixq_train(a, tr, NULL, &tc, record_parts, &pa));
    tc.teacher = NULL;
    CHECK_OK(mixq_train(b, tr, NULL, &tc, record_parts, &pb));
    CHECK(same_weights(a, b, "distillation weight 0 against none"));
    /* the progress's cross-entropy part: the whole loss at weight 0 and without a teacher */
    CHECKF(pa.ce == pa.loss && pb.ce == pb.loss && pa.loss == pb.loss && pa.loss > 0,
           "weight 0: loss %g ce %g; no teacher: loss %g ce %g", pa.loss, pa.ce, pb.loss, pb.ce);
    mixq_model_free(a);
    mixq_model_free(b);

    /* the student on ToTensor() inputs; the teacher given that transform by name (the student's
     * batch serves it) and as an equal custom one (its own batch): the same training */
    mixq_preprocess unit, custom;
    float zero = 0, one = 1;
    CHECK_OK(mixq_preprocess_preset("unit", 1, &unit));
    CHECK_OK(mixq_preprocess_custom(1, 1.0f / 255, &zero, 1, &one, 1, 0, &custom));
    a = lenet(5);
    b = lenet(5);
    CHECK_OK(mixq_model_set_preprocess(a, &unit));
    CHECK_OK(mixq_model_set_preprocess(b, &unit));
    tc.teacher = teacher;
    tc.distill_weight = 0.7f;
    CHECK_OK(mixq_model_set_preprocess(teacher, &unit));
    CHECK_OK(mixq_train(a, tr, NULL, &tc, record_parts, &pa));
    {   /* loss = 0.3 ce + 0.7 kd: the distillation part kd = T^2 KL is not negative */
        const double kd = (pa.loss - 0.3 * pa.ce) / 0.7;
        CHECKF(pa.ce > 0 && kd > -1e-6 && pa.ce != pa.loss, "weight 0.7: loss %g ce %g kd %g", pa.loss, pa.ce, kd);
    }
    CHECK_OK(mixq_model_set_preprocess(teacher, &custom));
    CHECK_OK(mixq_train(b, tr, NULL, &tc, NULL, NULL));
    CHECK(same_weights(a, b, "the teacher's own batch against the shared one"));
    mixq_model_free(a);
    mixq_model_free(b);

    /* errors */
    tc.teacher = s;
    CHECK(mixq_train(s, tr, NULL, &tc, NULL, NULL) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "teacher is the model being trained") != NULL);
    mixq_model_config cfg = {.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 7};
    mixq_model *m7 = NULL;
    CHECK_OK(mixq_model_create(&cfg, &m7));
    tc.teacher = m7;
    CHECK(mixq_train(s, tr, NULL, &tc, NULL, NULL) == MIXQ_ERR_SHAPE);
    CHECK(strstr(mixq_last_error(), "7 classes") != NULL);
    tc.teacher = teacher;
    tc.distill_weight = 1.5f;
    CHECK(mixq_train(s, tr, NULL, &tc, NULL, NULL) == MIXQ_ERR_ARG);
    tc.distill_weight = 0.5f;
    tc.distill_temperature = 0;
    CHECK(mixq_train(s, tr, NULL, &tc, NULL, NULL) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "temperature") != NULL);
    mixq_model_free(m7);
    mixq_model_free(s);
    mixq_model_free(teacher);
    mixq_dataset_free(tr);
    mixq_dataset_free(va);
}

static void test_nan_loss_stops(void) {
    if (!have_fmnist()) {
        test_skip("dataset-fashion-mnist is not installed (scripts/deps.sh installs it)");
        return;
    }
    mixq_dataset *tr = NULL;
    CHECK_OK(mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TRAIN, 0, 3, &tr));
    if (!tr) return;
    CHECK_OK(mixq_dataset_truncate(tr, 128));
    mixq_model *m = lenet(2);
    mixq_model_tensor_data(m, "fc2.weight")[7] = NAN;
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    tc.epochs = 1;
    tc.batch = 32;
    mixq_status st = mixq_train(m, tr, NULL, &tc, NULL, NULL);
    CHECK(st == MIXQ_ERR_NUMERIC);
    CHECKF(strstr(mixq_last_error(), "epoch 1 step 1") != NULL, "message: %s", mixq_last_error());
    mixq_model_free(m);
    mixq_dataset_free(tr);
}

static void test_bad_train_config(void) {
    if (!have_fmnist()) {
        test_skip("dataset-fashion-mnist is not installed (scripts/deps.sh installs it)");
        return;
    }
    mixq_dataset *tr = NULL;
    CHECK_OK(mixq_dataset_load("fashion-mnist", MIXQ_SPLIT_TEST, 0, 3, &tr));
    if (!tr) return;
    mixq_model *m = lenet(2);
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    tc.batch = 1;
    CHECK(mixq_train(m, tr, NULL, &tc, NULL, NULL) == MIXQ_ERR_ARG);
    mixq_train_config_default(&tc);
    tc.lr = NAN;
    CHECK(mixq_train(m, tr, NULL, &tc, NULL, NULL) == MIXQ_ERR_ARG);
    mixq_train_config_default(&tc);
    tc.epochs = -1;
    CHECK(mixq_train(m, tr, NULL, &tc, NULL, NULL) == MIXQ_ERR_ARG);
    /* a model built for another input shape */
    mixq_model_config cfg = {.arch = "lenet5", .in_c = 3, .in_h = 32, .in_w = 32, .classes = 10};
    mixq_model *m3 = NULL;
    CHECK_OK(mixq_model_create(&cfg, &m3));
    mixq_train_config_default(&tc);
    CHECK(mixq_train(m3, tr, NULL, &tc, NULL, NULL) == MIXQ_ERR_SHAPE);
    CHECK(strstr(mixq_last_error(), "3x32x32") != NULL);
    mixq_model_free(m3);
    mixq_model_free(m);
    mixq_dataset_free(tr);
}

/* mixq_train keeps a model's recorded holdout while the training split leaves all of it out
 * (its own split, or one of the same seed holding out more), and leaves count 0 (nothing known to
 * be held out) once it trains on any of it (another seed, a smaller holdout, none) or on a split
 * of another file; training on a test split, or for zero epochs, leaves the record as it is. */
static void test_holdout_kept(void) {
    char a[1100], b[1100];
    snprintf(a, sizeof a, "%s/noise100", test_tmpdir());
    snprintf(b, sizeof b, "%s/noise90", test_tmpdir());
    CHECK(test_write_noise_idx(a, 100) == 0 && test_write_noise_idx(b, 90) == 0);
    static const struct {
        int other_file, count;
        uint64_t seed;
        mixq_split split;
        int kept, seen; /* seen: mixq_train_keeps_holdout's count (-1: cannot tell) */
    } cases[] = {{0, 20, 5, MIXQ_SPLIT_TRAIN, 1, 0}, {0, 40, 5, MIXQ_SPLIT_TRAIN, 1, 0},
                 {0, 10, 5, MIXQ_SPLIT_TRAIN, 0, 10}, {0, 20, 6, MIXQ_SPLIT_TRAIN, 0, -2},
                 {0, 0, 5, MIXQ_SPLIT_TRAIN, 0, 20},  {1, 20, 5, MIXQ_SPLIT_TRAIN, 0, -1},
                 {0, 0, 5, MIXQ_SPLIT_TEST, 1, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mixq_model *m = lenet(1);
        mixq_dataset *d = NULL;
        const mixq_holdout h = {.seed = 5, .count = 20, .images = 100};
        mixq_holdout got;
        CHECK_OK(mixq_dataset_load(cases[i].other_file ? b : a, cases[i].split, cases[i].count, cases[i].seed, &d));
        if (m && d) {
            CHECK_OK(mixq_model_set_holdout(m, &h));
            int seen = -9, want = cases[i].seen;
            CHECK(mixq_train_keeps_holdout(m, d, &seen) == cases[i].kept);
            /* -2: another seed's split, some number of them in 1..20 */
            CHECKF(want == -2 ? seen >= 1 && seen <= 20 : seen == want, "case %zu: seen %d", i, seen);
            mixq_train_config tc;
            mixq_train_config_default(&tc);
            tc.epochs = 1;
            tc.batch = 16;
            tc.max_steps = 1;
            CHECK_OK(mixq_train(m, d, NULL, &tc, NULL, NULL));
            CHECK(mixq_model_holdout(m, &got) == 1 && got.seed == 5 && got.images == 100);
            CHECKF(got.count == (cases[i].kept ? 20 : 0), "case %zu: count %d after training", i, got.count);
        }
        mixq_model_free(m);
        mixq_dataset_free(d);
    }
    /* zero epochs train nothing: even another seed's split leaves the record */
    mixq_model *m = lenet(1);
    mixq_dataset *d = NULL;
    const mixq_holdout h = {.seed = 5, .count = 20, .images = 100};
    mixq_holdout got;
    CHECK_OK(mixq_dataset_load(a, MIXQ_SPLIT_TRAIN, 20, 6, &d));
    if (m && d) {
        mixq_train_config tc;
        mixq_train_config_default(&tc);
        tc.epochs = 0;
        CHECK_OK(mixq_model_set_holdout(m, &h));
        CHECK_OK(mixq_train(m, d, NULL, &tc, NULL, NULL));
        CHECK(mixq_model_holdout(m, &got) == 1 && got.count == 20);
    }
    mixq_model_free(m);
    mixq_dataset_free(d);
}

static void test_lr_schedules(void) {
    mixq_train_config tc;
    mixq_train_config_default(&tc);
    tc.epochs = 10;
    tc.lr = 0.1f;
    tc.schedule = MIXQ_SCHED_COSINE;
    CHECK(fabsf(mq_lr_at(&tc, 0) - 0.1f) < 1e-7f);
    CHECK(fabsf(mq_lr_at(&tc, 5) - 0.05f) < 1e-7f);
    CHECK(mq_lr_at(&tc, 10) < 1e-7f);
    CHECK(mq_lr_at(&tc, 2) > mq_lr_at(&tc, 3));
    tc.schedule = MIXQ_SCHED_STEP;
    tc.step_size = 3;
    tc.gamma = 0.5f;
    CHECK(fabsf(mq_lr_at(&tc, 2.9) - 0.1f) < 1e-7f);
    CHECK(fabsf(mq_lr_at(&tc, 3.0) - 0.05f) < 1e-7f);
    CHECK(fabsf(mq_lr_at(&tc, 7.5) - 0.025f) < 1e-7f);
    tc.schedule = MIXQ_SCHED_CONST;
    tc.warmup_epochs = 2;
    CHECK(mq_lr_at(&tc, 0.5) < mq_lr_at(&tc, 1.5));
    CHECK(mq_lr_at(&tc, 1.5) < 0.1f);
    CHECK(fabsf(mq_lr_at(&tc, 2.5) - 0.1f) < 1e-7f);
}

/* Adam and SGD updates against hand-computed PyTorch-semantics values on one tensor. */
static void test_optimizer_math(void) {
    mixq_model_config cfg = {.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&cfg, &m));
    if (!m) return;
    float *p = mixq_model_tensor_data(m, "fc3.bias");     /* no weight decay */
    float *w = mixq_model_tensor_data(m, "fc3.weight");   /* weight decay */
    float *gp = mixq_model_tensor_grad(m, "fc3.bias"), *gw = mixq_model_tensor_grad(m, "fc3.weight");
    for (int opt = 0; opt < 2; opt++) {
        mixq_train_config tc;
        mixq_train_config_default(&tc);
        tc.optimizer = opt ? MIXQ_OPT_ADAM : MIXQ_OPT_SGD;
        tc.weight_decay = 0.01f;
        mq_optim o;
        CHECK_OK(mq_optim_init(&o, &tc, m));
        p[0] = 1.0f;
        w[0] = 2.0f;
        double pe = 1.0, we = 2.0, mp = 0, mw = 0, vp = 0, vw = 0;
        for (int t = 1; t <= 3; t++) {
            gp[0] = 0.5f * t;
            gw[0] = -0.25f * t;
            double g1 = gp[0], g2 = gw[0] + 0.01 * we;
            if (!opt) {
                mp = t == 1 ? g1 : 0.9 * mp + g1;
                mw = t == 1 ? g2 : 0.9 * mw + g2;
                pe -= 0.01 * mp;
                we -= 0.01 * mw;
            } else {
                mp = 0.9 * mp + 0.1 * g1;
                mw = 0.9 * mw + 0.1 * g2;
                vp = 0.999 * vp + 0.001 * g1 * g1;
                vw = 0.999 * vw + 0.001 * g2 * g2;
                double b1 = 1 - pow(0.9, t), b2 = 1 - pow(0.999, t);
                pe -= 0.01 * (mp / b1) / (sqrt(vp / b2) + 1e-8);
                we -= 0.01 * (mw / b1) / (sqrt(vw / b2) + 1e-8);
            }
            CHECK_OK(mq_optim_step(&o, m, 0.01f));
            CHECKF(fabs(p[0] - pe) < 1e-5 && fabs(w[0] - we) < 1e-5,
                   "opt %d step %d: %g %g vs %g %g", opt, t, p[0], w[0], pe, we);
        }
        mq_optim_free(&o);
    }
    mixq_model_free(m);
}

/* MIXQ_THREADS holds from the start: the first OpenMP region of a process (before anything asks
 * the library its thread count) already runs on that many threads. Probed in a child process
 * started with the variable set (this binary, re-executed). */
static void test_threads_env(void) {
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0);
    if (n <= 0) return;
    self[n] = 0;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "MIXQ_THREADS=1 MIXQ_THREADS_PROBE=1 '%s'", self);
    FILE *f = popen(cmd, "r");
    int t = -1;
    CHECK(f != NULL);
    if (f) {
        CHECK(fscanf(f, "threads %d", &t) == 1);
        CHECK(pclose(f) == 0);
    }
    CHECKF(t == 1, "the first parallel region ran %d threads under MIXQ_THREADS=1", t);
}

int main(void) {
    if (getenv("MIXQ_THREADS_PROBE")) { /* the child of test_threads_env: nothing called yet */
        int t = 0;
#pragma omp parallel
        {
#pragma omp single
            t = omp_get_num_threads();
        }
        printf("threads %d\n", t);
        return 0;
    }
    TEST_RUN(test_threads_env);
    TEST_RUN(test_short_run_learns);
    TEST_RUN(test_thread_determinism);
    TEST_RUN(test_distillation);
    TEST_RUN(test_nan_loss_stops);
    TEST_RUN(test_bad_train_config);
    TEST_RUN(test_holdout_kept);
    TEST_RUN(test_lr_schedules);
    TEST_RUN(test_optimizer_math);
    return test_summary();
}
