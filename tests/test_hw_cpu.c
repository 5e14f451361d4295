/* The `cpu` back-end (src/hw/cpu.c): measured tables written by `mixq calibrate-cpu`. Synthetic
 * two-shape tables with hand-chosen times: min(int8, bit-serial) per (w, a), the per-kernel mix
 * as one bit-serial GEMM, missing shapes and wrong batches refused, malformed tables refused,
 * `mixq_hw_load("cpu")` through MIXQ_CPU_TABLE and ./mixq-cpu.json, and a lenet5 costed end to
 * end from a table built from its own layers. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hw/hw.h"
#include "test.h"

/* ------------------------------------------------------------------ building tables */

typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_add(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if (b->n + (size_t)k + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (b->n + (size_t)k + 1 > ncap) ncap *= 2;
        char *ns = realloc(b->s, ncap);
        if (!ns) abort();
        b->s = ns, b->cap = ncap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

typedef struct shape {
    int fc, in_c, in_h, in_w, out_c, kh, kw, stride, pad, groups;
} shape;

/* The two shapes of the synthetic table and their times:
 *   conv 4x8x8 -> 16, 3x3/1 pad 1: int8 1e-3,  bit-serial (w, a) = w*a*1e-4
 *   linear 64 -> 10:               int8 5e-5,  bit-serial (w, a) = (w+a)*1e-5 */
static const shape CONV = {0, 4, 8, 8, 16, 3, 3, 1, 1, 1};
static const shape FC = {1, 64, 1, 1, 10, 1, 1, 1, 0, 1};
static double conv_bs(int w, int a) { return w * a * 1e-4; }
static double fc_bs(int w, int a) { return (w + a) * 1e-5; }
#define CONV_INT8 1e-3
#define FC_INT8 5e-5
#define POWER_W 20.0
#define FREQ 2e9

typedef struct variant {
    int batch;           /* 0: 1 */
    int rows;            /* rows of the first entry's bitserial_s (0: 8) */
    int negative;        /* a negative time at the first entry's [2][5] */
    int unknown_key;     /* an unknown key in the first entry */
    int duplicate;       /* the second entry has the first one's shape */
    int empty;           /* no entries */
    int max_bits;        /* 0: 8 */
    int no_int8;         /* first entry without int8_s */
    int fc_kernel;       /* the linear entry with kh 3 */
    int no_vnni;         /* "int8_vnni": false, int8_s 1e9 (as calibrate-cpu writes it) */
} variant;

static void add_entry(sbuf *b, const shape *s, const char *name, double int8, double (*bs)(int, int),
                      int rows, int negative, int unknown_key, int no_int8) {
    sb_add(b,
           "{\"name\": \"%s\", \"fc\": %d, \"in_c\": %d, \"in_h\": %d, \"in_w\": %d, \"out_c\": %d, "
           "\"kh\": %d, \"kw\": %d, \"stride\": %d, \"pad\": %d, \"groups\": %d, ",
           name, s->fc, s->in_c, s->in_h, s->in_w, s->out_c, s->kh, s->kw, s->stride, s->pad,
           s->groups);
    if (unknown_key) sb_add(b, "\"int4_s\": 1e-3, ");
    if (!no_int8) sb_add(b, "\"int8_s\": %.17g, ", int8);
    sb_add(b, "\"fp32_s\": %.17g, \"bitserial_s\": [", int8 < 1 ? int8 * 2 : 1e-3);
    for (int w = 1; w <= rows; w++) {
        sb_add(b, "%s[", w > 1 ? ", " : "");
        for (int a = 1; a <= 8; a++)
            sb_add(b, "%s%.17g", a > 1 ? ", " : "", negative && w == 3 && a == 6 ? -1e-4 : bs(w, a));
        sb_add(b, "]");
    }
    sb_add(b, "]}");
}

static char *table_json(const variant *v) {
    sbuf b = {0};
    sb_add(&b,
           "{\"mixq_hw\": 1, \"name\": \"cpu\", \"backend\": \"cpu\", \"description\": \"measured by "
           "mixq calibrate-cpu on a test\", \"batch\": %d, \"freq_hz\": %g, \"bits\": {\"min\": 1, "
           "\"max\": %d}, \"cpu\": {\"machine\": \"test machine\", \"threads\": 1, \"tier\": "
           "\"scalar\", %s\"power_w\": %g, \"layers\": [",
           v->batch ? v->batch : 1, FREQ, v->max_bits ? v->max_bits : 8,
           v->no_vnni ? "\"int8_vnni\": false, " : "", POWER_W);
    if (!v->empty) {
        add_entry(&b, &CONV, "conv1", v->no_vnni ? 1e9 : CONV_INT8, conv_bs, v->rows ? v->rows : 8,
                  v->negative, v->unknown_key, v->no_int8);
        sb_add(&b, ", ");
        shape fc = v->duplicate ? CONV : FC;
        if (v->fc_kernel) fc.kh = 3;
        add_entry(&b, &fc, "fc", v->duplicate ? CONV_INT8 : FC_INT8, v->duplicate ? conv_bs : fc_bs,
                  8, 0, 0, 0); /* with no_vnni: an int8_s that must be ignored */
    }
    sb_add(&b, "]}}");
    return b.s;
}

static mixq_status parse_variant(const variant *v, mixq_hw **hw) {
    char *json = table_json(v);
    mixq_status st = mixq_hw_parse(json, strlen(json), "test table", NULL, hw);
    free(json);
    return st;
}

static mixq_hw *good_table(void) {
    variant v = {0};
    mixq_hw *hw = NULL;
    mixq_status st = parse_variant(&v, &hw);
    CHECKF(st == MIXQ_OK, "parse: %s", mixq_last_error());
    return hw;
}

static mixq_hw_layer layer_of(const shape *s, const char *name) {
    mixq_hw_layer l = {.name = name, .fc = s->fc, .in_c = s->in_c, .in_h = s->in_h,
                       .in_w = s->in_w, .out_c = s->out_c, .kh = s->kh, .kw = s->kw,
                       .stride = s->stride, .pad = s->pad, .groups = s->groups};
    return l;
}

static int close_to(double x, double y) { return fabs(x - y) <= 1e-12 * fabs(y); }

/* ------------------------------------------------------------------ tests */

static void test_min_kernel(void) {
    mixq_hw *hw = good_table();
    if (!hw) return;
    CHECK(!strcmp(mixq_hw_backend(hw), "cpu") && mixq_hw_batch(hw) == 1);
    mixq_hw_layer conv = layer_of(&CONV, "conv1"), fc = layer_of(&FC, "fc");
    /* (w, a) -> expected seconds: bit-serial while it is faster, then int8 */
    struct { const mixq_hw_layer *l; int w, a; double s; } cases[] = {
        {&conv, 1, 1, 1e-4}, {&conv, 2, 4, 8e-4}, {&conv, 3, 3, 9e-4}, {&conv, 2, 5, 1e-3},
        {&conv, 4, 4, 1e-3}, {&conv, 8, 8, 1e-3}, {&conv, 1, 8, 8e-4}, {&fc, 1, 1, 2e-5},
        {&fc, 2, 2, 4e-5},   {&fc, 3, 2, 5e-5},   {&fc, 4, 4, 5e-5},   {&fc, 8, 1, 5e-5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mixq_cost c;
        CHECK_OK(mixq_hw_cost(hw, cases[i].l, cases[i].w, cases[i].a, &c));
        CHECKF(close_to(c.latency_s, cases[i].s), "%s w%d a%d: %.6g s, expected %.6g",
               cases[i].l->name, cases[i].w, cases[i].a, c.latency_s, cases[i].s);
        CHECK(close_to(c.cycles, cases[i].s * FREQ) && c.compute_cycles == c.cycles);
        CHECK(close_to(c.energy_j, cases[i].s * POWER_W) && c.e_compute_j == c.energy_j);
        CHECK(c.flags & MIXQ_COST_ESTIMATE);
        CHECK(c.w_bits == cases[i].w && c.a_bits == cases[i].a);
    }
    /* the proxies follow the other back-ends' conventions */
    mixq_cost c;
    CHECK_OK(mixq_hw_cost(hw, &conv, 2, 4, &c));
    double weights = 16.0 * 4 * 9, macs = weights * 64;
    CHECK(c.macs == macs && c.bitops == macs * 8 && c.size_bits == weights * 2);
    CHECK_OK(mixq_hw_cost(hw, &fc, 3, 5, &c));
    CHECK(c.macs == 640 && c.bitops == 640 * 15 && c.size_bits == 640 * 3);
    /* the latency is exactly the measured number */
    CHECK(c.latency_s == FC_INT8);
    /* batch 0 means the table's batch; bits outside 1..8 are refused */
    mixq_hw_layer b0 = fc;
    b0.batch = 1;
    CHECK_OK(mixq_hw_cost(hw, &b0, 1, 1, &c));
    CHECK(mixq_hw_cost(hw, &fc, 9, 1, &c) == MIXQ_ERR_UNSUPPORTED);
    CHECK(mixq_hw_cost(hw, &fc, 0, 1, &c) == MIXQ_ERR_UNSUPPORTED);
    /* a layer given with explicit output size still matches its shape */
    mixq_hw_layer oh = conv;
    oh.out_h = oh.out_w = 8;
    CHECK_OK(mixq_hw_cost(hw, &oh, 1, 1, &c));
    CHECK(close_to(c.latency_s, 1e-4));
    mixq_hw_free(hw);
}

static void test_kernel_mix(void) {
    mixq_hw *hw = good_table();
    if (!hw) return;
    mixq_hw_layer conv = layer_of(&CONV, "conv1");
    int kb[16];
    /* 4 kernels at 1 bit, 12 at 2 bits, a = 2: 4/16 * 2e-4 + 12/16 * 4e-4 = 3.5e-4 < int8 */
    for (int k = 0; k < 16; k++) kb[k] = k % 4 == 0 ? 1 : 2;
    mixq_cost c, again;
    CHECK_OK(mixq_hw_cost_kernels(hw, &conv, kb, 2, &c));
    CHECKF(close_to(c.latency_s, 3.5e-4), "mix: %.6g s", c.latency_s);
    CHECK(close_to(c.cycles, 3.5e-4 * FREQ) && close_to(c.energy_j, 3.5e-4 * POWER_W));
    double weights = 16.0 * 4 * 9, macs = weights * 64;
    CHECK(close_to(c.macs, macs));
    CHECK(close_to(c.size_bits, weights / 16 * (4 * 1 + 12 * 2)));
    CHECK(close_to(c.bitops, macs / 16 * (4 * 1 + 12 * 2) * 2));
    CHECK(c.w_bits == 2 && c.a_bits == 2 && (c.flags & MIXQ_COST_ESTIMATE));
    CHECK_OK(mixq_hw_cost_kernels(hw, &conv, kb, 2, &again));
    CHECK(!memcmp(&c, &again, sizeof c));
    /* 8 kernels at 8 bits, 8 at 1 bit, a = 8: 0.5 * 6.4e-3 + 0.5 * 8e-4 = 3.6e-3 > int8 1e-3 */
    for (int k = 0; k < 16; k++) kb[k] = k < 8 ? 8 : 1;
    CHECK_OK(mixq_hw_cost_kernels(hw, &conv, kb, 8, &c));
    CHECKF(close_to(c.latency_s, CONV_INT8), "mix at int8: %.6g s", c.latency_s);
    CHECK(c.w_bits == 8);
    /* three widths, a = 1: (5*1 + 5*3 + 6*5) / 16 * 1e-4 = 3.125e-4 */
    for (int k = 0; k < 16; k++) kb[k] = k < 5 ? 1 : k < 10 ? 3 : 5;
    CHECK_OK(mixq_hw_cost_kernels(hw, &conv, kb, 1, &c));
    CHECKF(close_to(c.latency_s, 3.125e-4), "three widths: %.6g s", c.latency_s);
    /* every kernel at one width is the plain cost */
    for (int k = 0; k < 16; k++) kb[k] = 3;
    mixq_cost plain;
    CHECK_OK(mixq_hw_cost_kernels(hw, &conv, kb, 2, &c));
    CHECK_OK(mixq_hw_cost(hw, &conv, 3, 2, &plain));
    CHECK(c.latency_s == plain.latency_s && c.macs == plain.macs && c.size_bits == plain.size_bits);
    /* the runtime's view: both kernels' times for a kernel mix */
    double t8 = 0, tb = 0;
    for (int k = 0; k < 16; k++) kb[k] = k % 4 == 0 ? 1 : 2;
    CHECK_OK(mq_hw_cpu_times(hw, &conv, kb, 2, &t8, &tb));
    CHECK(t8 == CONV_INT8 && close_to(tb, 3.5e-4));
    for (int k = 0; k < 16; k++) kb[k] = k < 8 ? 8 : 1;
    CHECK_OK(mq_hw_cpu_times(hw, &conv, kb, 8, &t8, &tb));
    CHECK(t8 == CONV_INT8 && close_to(tb, 3.6e-3));
    mixq_hw_layer conv_b4 = conv;
    conv_b4.batch = 4;
    CHECK(mq_hw_cpu_times(hw, &conv_b4, kb, 8, &t8, &tb) == MIXQ_ERR_ARG);
    CHECK(mq_hw_cpu_times(hw, &conv, kb, 9, &t8, &tb) == MIXQ_ERR_UNSUPPORTED);
    mixq_hw *bitops = NULL;
    CHECK_OK(mixq_hw_load("bitops", &bitops));
    if (bitops) CHECK(mq_hw_cpu_times(bitops, &conv, kb, 8, &t8, &tb) == MIXQ_ERR_ARG);
    mixq_hw_free(bitops);
    /* a width the table does not hold, or a shape it does not have, is refused */
    kb[0] = 9;
    CHECK(mixq_hw_cost_kernels(hw, &conv, kb, 2, &c) == MIXQ_ERR_UNSUPPORTED);
    mixq_hw_layer other = conv;
    other.in_c = 8;
    kb[0] = 1;
    CHECK(mixq_hw_cost_kernels(hw, &other, kb, 2, &c) == MIXQ_ERR_NOTFOUND);
    mixq_hw_free(hw);
}

static void test_refusals(void) {
    mixq_hw *hw = good_table();
    if (!hw) return;
    mixq_cost c;
    /* a shape the table does not hold */
    mixq_hw_layer l = layer_of(&CONV, "conv9");
    l.out_c = 32;
    CHECK(mixq_hw_cost(hw, &l, 4, 4, &c) == MIXQ_ERR_NOTFOUND);
    const char *e = mixq_last_error();
    CHECKF(strstr(e, "calibrate-cpu") && strstr(e, "conv9") && strstr(e, "2 shapes"), "%s", e);
    l = layer_of(&FC, "fc2");
    l.in_c = 65;
    CHECK(mixq_hw_cost(hw, &l, 4, 4, &c) == MIXQ_ERR_NOTFOUND);
    e = mixq_last_error();
    CHECKF(strstr(e, "calibrate-cpu") && strstr(e, "linear 65 -> 10"), "%s", e);
    /* a conv with the linear layer's numbers is not the linear entry */
    l = layer_of(&FC, "as_conv");
    l.fc = 0;
    CHECK(mixq_hw_cost(hw, &l, 4, 4, &c) == MIXQ_ERR_NOTFOUND);
    /* the wrong batch */
    l = layer_of(&CONV, "conv1");
    l.batch = 16;
    CHECK(mixq_hw_cost(hw, &l, 4, 4, &c) == MIXQ_ERR_ARG);
    e = mixq_last_error();
    CHECKF(strstr(e, "batch 16") && strstr(e, "--batch"), "%s", e);
    int kb[16] = {1, 2};
    CHECK(mixq_hw_cost_kernels(hw, &l, kb, 4, &c) == MIXQ_ERR_ARG);
    mixq_hw_free(hw);
    /* without VNNI the int8 time is never used, even where it is smaller */
    variant nv = {.no_vnni = 1};
    CHECK_OK(parse_variant(&nv, &hw));
    if (hw) {
        mixq_hw_layer cv = layer_of(&CONV, "conv1"), f = layer_of(&FC, "fc");
        CHECK_OK(mixq_hw_cost(hw, &cv, 8, 8, &c));
        CHECK(close_to(c.latency_s, 64e-4));
        CHECK_OK(mixq_hw_cost(hw, &f, 8, 8, &c));
        CHECK(close_to(c.latency_s, 16e-5));
        int mix[16];
        for (int k = 0; k < 16; k++) mix[k] = k < 8 ? 8 : 1;
        CHECK_OK(mixq_hw_cost_kernels(hw, &cv, mix, 8, &c));
        CHECK(close_to(c.latency_s, 36e-4));
        double t8 = 0, tb = 0;
        CHECK_OK(mq_hw_cpu_times(hw, &cv, mix, 8, &t8, &tb));
        CHECK(t8 == HUGE_VAL && close_to(tb, 36e-4));
        mixq_hw_free(hw);
    }
    /* a table measured at batch 4 answers batch-4 layers (and batch 0) only */
    variant v4 = {.batch = 4};
    CHECK_OK(parse_variant(&v4, &hw));
    if (hw) {
        l = layer_of(&CONV, "conv1");
        CHECK_OK(mixq_hw_cost(hw, &l, 1, 1, &c));
        l.batch = 4;
        CHECK_OK(mixq_hw_cost(hw, &l, 1, 1, &c));
        l.batch = 1;
        CHECK(mixq_hw_cost(hw, &l, 1, 1, &c) == MIXQ_ERR_ARG);
        mixq_hw_free(hw);
    }
}

static void expect_bad(const variant *v, const char *what, const char *needle) {
    mixq_hw *hw = NULL;
    mixq_status st = parse_variant(v, &hw);
    const char *e = mixq_last_error();
    CHECKF(st == MIXQ_ERR_FORMAT && !hw, "%s: accepted (status %d)", what, (int)st);
    CHECKF(st == MIXQ_OK || strstr(e, needle), "%s: message '%s' lacks '%s'", what, e, needle);
    mixq_hw_free(hw);
}

static void test_malformed(void) {
    variant v = {.rows = 7};
    expect_bad(&v, "7 rows", "cpu.layers[0].bitserial_s");
    v = (variant){.negative = 1};
    expect_bad(&v, "negative", "cpu.layers[0].bitserial_s[2][5]' (w3 a6)");
    v = (variant){.unknown_key = 1};
    expect_bad(&v, "unknown key", "int4_s");
    v = (variant){.duplicate = 1};
    expect_bad(&v, "duplicate", "cpu.layers[1]' has the same shape as cpu.layers[0]");
    v = (variant){.empty = 1};
    expect_bad(&v, "empty", "cpu.layers' is empty");
    v = (variant){.max_bits = 16};
    expect_bad(&v, "16 bits", "bits.max");
    v = (variant){.no_int8 = 1};
    expect_bad(&v, "no int8_s", "cpu.layers[0].int8_s");
    v = (variant){.fc_kernel = 1};
    expect_bad(&v, "fc with kh 3", "cpu.layers[1]");
    /* hand-made: a row of 9, a string time, zero, an unknown key under cpu, a missing cpu */
    static const char *const bad[][2] = {
        {"\"bitserial_s\": [[1,1,1,1,1,1,1,1]", "\"bitserial_s\": [[1,1,1,1,1,1,1,1,1]"},
        {"\"fp32_s\": 1", "\"fp32_s\": \"1\""},
        {"\"int8_s\": 1", "\"int8_s\": 0"},
        {"\"int8_s\": 1", "\"int8_s\": 2e9"},
        {"\"int8_s\": 1", "\"int8_s\": 1e999"},
        {"\"tier\": \"scalar\"", "\"tier\": \"scalar\", \"int8_vnni\": 1"},
        {"\"tier\": \"scalar\"", "\"tier\": \"scalar\", \"cores\": 4"},
        {"\"backend\": \"cpu\"", "\"backend\": \"cpux\""},
    };
    const char *base =
        "{\"mixq_hw\": 1, \"name\": \"cpu\", \"backend\": \"cpu\", \"batch\": 1, \"freq_hz\": 1e9, "
        "\"bits\": {\"min\": 1, \"max\": 8}, \"cpu\": {\"machine\": \"m\", \"threads\": 2, "
        "\"tier\": \"scalar\", \"layers\": [{\"fc\": 1, \"in_c\": 8, \"in_h\": 1, \"in_w\": 1, "
        "\"out_c\": 2, \"kh\": 1, \"kw\": 1, \"stride\": 1, \"pad\": 0, \"groups\": 1, "
        "\"int8_s\": 1, \"fp32_s\": 1, \"bitserial_s\": [[1,1,1,1,1,1,1,1], [1,1,1,1,1,1,1,1], "
        "[1,1,1,1,1,1,1,1], [1,1,1,1,1,1,1,1], [1,1,1,1,1,1,1,1], [1,1,1,1,1,1,1,1], "
        "[1,1,1,1,1,1,1,1], [1,1,1,1,1,1,1,1]]}]}}";
    mixq_hw *hw = NULL;
    CHECK_OK(mixq_hw_parse(base, strlen(base), "base", NULL, &hw));
    if (hw) {
        mixq_hw_layer l = {.name = "l", .fc = 1, .in_c = 8, .out_c = 2};
        mixq_cost c;
        CHECK_OK(mixq_hw_cost(hw, &l, 3, 3, &c));
        CHECK(c.latency_s == 1 && c.energy_j == 15); /* power_w defaults to 15 */
    }
    mixq_hw_free(hw);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *at = strstr(base, bad[i][0]);
        CHECK(at != NULL);
        if (!at) continue;
        sbuf b = {0};
        sb_add(&b, "%.*s%s%s", (int)(at - base), base, bad[i][1], at + strlen(bad[i][0]));
        hw = NULL;
        mixq_status st = mixq_hw_parse(b.s, b.n, "bad", NULL, &hw);
        CHECKF(st == MIXQ_ERR_FORMAT && !hw, "variant %zu accepted: %s", i, b.s);
        mixq_hw_free(hw);
        free(b.s);
    }
}

static int write_text(const char *path, const char *text) {
    return test_write_file(path, text, strlen(text));
}

static void test_load_by_name(void) {
    char cwd[4096], path[1024], empty[1024], notcpu[1024];
    if (!getcwd(cwd, sizeof cwd)) {
        CHECK(!"getcwd");
        return;
    }
    char *saved = test_env_swap("MIXQ_CPU_TABLE", NULL);
    variant v = {0};
    char *json = table_json(&v);
    snprintf(path, sizeof path, "%s/table.json", test_tmpdir());
    CHECK(write_text(path, json) == 0);
    mixq_hw *hw = NULL;
    /* from MIXQ_CPU_TABLE */
    setenv("MIXQ_CPU_TABLE", path, 1);
    CHECK_OK(mixq_hw_load("cpu", &hw));
    if (hw) {
        CHECK(!strcmp(mixq_hw_backend(hw), "cpu") && !strcmp(mixq_hw_text(hw), json));
        mixq_hw_layer l = layer_of(&CONV, "conv1");
        mixq_cost c;
        CHECK_OK(mixq_hw_cost(hw, &l, 2, 4, &c));
        CHECK(close_to(c.latency_s, 8e-4));
    }
    mixq_hw_free(hw);
    hw = NULL;
    /* MIXQ_CPU_TABLE naming a missing file */
    snprintf(notcpu, sizeof notcpu, "%s/nothing-here.json", test_tmpdir());
    setenv("MIXQ_CPU_TABLE", notcpu, 1);
    CHECK(mixq_hw_load("cpu", &hw) == MIXQ_ERR_NOTFOUND && !hw);
    CHECKF(strstr(mixq_last_error(), "nothing-here.json") && strstr(mixq_last_error(), "MIXQ_CPU_TABLE"),
           "%s", mixq_last_error());
    /* MIXQ_CPU_TABLE naming some other description */
    snprintf(notcpu, sizeof notcpu, "%s/bitops.json", test_tmpdir());
    CHECK(write_text(notcpu, "{\"mixq_hw\": 1, \"name\": \"b\", \"backend\": \"bitops\", \"batch\": 1, "
                             "\"freq_hz\": 1e9, \"bits\": {\"min\": 1, \"max\": 32}}") == 0);
    setenv("MIXQ_CPU_TABLE", notcpu, 1);
    CHECK(mixq_hw_load("cpu", &hw) == MIXQ_ERR_FORMAT && !hw);
    CHECKF(strstr(mixq_last_error(), "not a measured cpu table"), "%s", mixq_last_error());
    /* unset, an empty current directory: NOTFOUND with the hint */
    unsetenv("MIXQ_CPU_TABLE");
    snprintf(empty, sizeof empty, "%s/empty", test_tmpdir());
    mkdir(empty, 0755);
    if (chdir(empty) == 0) {
        CHECK(mixq_hw_load("cpu", &hw) == MIXQ_ERR_NOTFOUND && !hw);
        const char *e = mixq_last_error();
        CHECKF(strstr(e, "hardware 'cpu': no measured table at 'mixq-cpu.json'") &&
                   strstr(e, "mixq calibrate-cpu --model") && strstr(e, "MIXQ_CPU_TABLE"),
               "%s", e);
        /* an empty MIXQ_CPU_TABLE counts as unset */
        setenv("MIXQ_CPU_TABLE", "", 1);
        CHECK(mixq_hw_load("cpu", &hw) == MIXQ_ERR_NOTFOUND && !hw);
        unsetenv("MIXQ_CPU_TABLE");
        /* ./mixq-cpu.json */
        CHECK(write_text("mixq-cpu.json", json) == 0);
        CHECK_OK(mixq_hw_load("cpu", &hw));
        CHECK(hw && !strcmp(mixq_hw_backend(hw), "cpu"));
        mixq_hw_free(hw);
        hw = NULL;
        remove("mixq-cpu.json");
        CHECK(chdir(cwd) == 0);
    } else {
        CHECK(!"chdir to the empty directory");
    }
    /* the unknown-target hint names cpu */
    CHECK(mixq_hw_load("cpux", &hw) == MIXQ_ERR_NOTFOUND && !hw);
    CHECKF(strstr(mixq_last_error(), "calibrate-cpu"), "%s", mixq_last_error());
    /* cpu is not a preset (there is nothing to embed) */
    for (const char *const *p = mixq_hw_presets(); *p; p++) CHECK(strcmp(*p, "cpu"));
    free(test_env_swap("MIXQ_CPU_TABLE", saved));
    free(saved);
    free(json);
}

/* lenet5: a table from its own layers (as calibrate-cpu writes one), then every layer costs. */
static void test_lenet5(void) {
    mixq_model_config mc = {.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10,
                            .seed = 1};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&mc, &m));
    if (!m) return;
    int n = mixq_model_hw_layer_count(m);
    CHECK(n >= 4);
    sbuf b = {0};
    sb_add(&b,
           "{\"mixq_hw\": 1, \"name\": \"cpu\", \"backend\": \"cpu\", \"batch\": 1, \"freq_hz\": "
           "1e9, \"bits\": {\"min\": 1, \"max\": 8}, \"cpu\": {\"machine\": \"m\", \"threads\": 1, "
           "\"tier\": \"scalar\", \"layers\": [");
    int written = 0;
    shape *seen = calloc((size_t)n, sizeof *seen);
    if (!seen) abort();
    for (int i = 0; i < n; i++) {
        mixq_hw_layer l;
        CHECK_OK(mixq_model_hw_layer(m, i, &l, NULL));
        shape s = {l.fc, l.in_c, l.fc ? 1 : l.in_h, l.fc ? 1 : l.in_w, l.out_c,
                   l.fc ? 1 : l.kh, l.fc ? 1 : l.kw, l.fc || !l.stride ? 1 : l.stride,
                   l.fc ? 0 : l.pad, l.fc || !l.groups ? 1 : l.groups};
        int dup = 0;
        for (int j = 0; j < written; j++) dup |= !memcmp(&seen[j], &s, sizeof s);
        if (dup) continue;
        seen[written] = s;
        if (written++) sb_add(&b, ", ");
        /* times growing with the layer index, so every layer has its own numbers */
        double int8 = 1e-4 * (i + 1);
        sb_add(&b,
               "{\"name\": \"%s\", \"fc\": %d, \"in_c\": %d, \"in_h\": %d, \"in_w\": %d, "
               "\"out_c\": %d, \"kh\": %d, \"kw\": %d, \"stride\": %d, \"pad\": %d, \"groups\": "
               "%d, \"int8_s\": %.17g, \"fp32_s\": %.17g, \"bitserial_s\": [",
               l.name, s.fc, s.in_c, s.in_h, s.in_w, s.out_c, s.kh, s.kw, s.stride, s.pad,
               s.groups, int8, 2 * int8);
        for (int w = 1; w <= 8; w++) {
            sb_add(&b, "%s[", w > 1 ? ", " : "");
            for (int a = 1; a <= 8; a++)
                sb_add(&b, "%s%.17g", a > 1 ? ", " : "", int8 * w * a / 8.0);
            sb_add(&b, "]");
        }
        sb_add(&b, "]}");
    }
    sb_add(&b, "]}}");
    free(seen);
    mixq_hw *hw = NULL;
    CHECK_OK(mixq_hw_parse(b.s, b.n, "lenet5 table", NULL, &hw));
    if (hw) {
        for (int i = 0; i < n; i++) {
            mixq_hw_layer l;
            CHECK_OK(mixq_model_hw_layer(m, i, &l, NULL));
            double int8 = 1e-4 * (i + 1);
            for (int w = 1; w <= 8; w++)
                for (int a = 1; a <= 8; a++) {
                    mixq_cost c;
                    mixq_status st = mixq_hw_cost(hw, &l, w, a, &c);
                    CHECKF(st == MIXQ_OK, "layer %d (%s) w%d a%d: %s", i, l.name, w, a,
                           mixq_last_error());
                    if (st) continue;
                    /* first occurrence of each shape: its own numbers */
                    CHECK(c.latency_s <= int8 * (1 + 1e-12) && c.latency_s > 0 && c.macs > 0);
                }
            /* per-kernel: half the kernels at 2 bits, half at 4 */
            int *kb = malloc((size_t)l.out_c * sizeof *kb);
            if (!kb) abort();
            for (int k = 0; k < l.out_c; k++) kb[k] = k % 2 ? 4 : 2;
            mixq_cost c;
            CHECK_OK(mixq_hw_cost_kernels(hw, &l, kb, 4, &c));
            free(kb);
        }
        mixq_hw_free(hw);
    }
    free(b.s);
    mixq_model_free(m);
}

int main(void) {
    TEST_RUN(test_min_kernel);
    TEST_RUN(test_kernel_mix);
    TEST_RUN(test_refusals);
    TEST_RUN(test_malformed);
    TEST_RUN(test_load_by_name);
    TEST_RUN(test_lenet5);
    return test_summary();
}
