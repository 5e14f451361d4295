/* HAQ lookup-table back-end: spec T8 on the shipped MobileNetV2 cloud table (read from
 * tests/fixtures/hw/; a missing file skips, and fails under CI=true) and bad .npy files. */

#include "hw/table.h"
#include "test.h"

#define HAQ_TABLE TEST_FIXTURES "hw/qmobilenetv2_imagenet100_batch16_latency_table.npy"

static void test_t8_mobilenetv2(void) {
    if (!test_need_file(HAQ_TABLE)) return;
    mq_cost_table t;
    CHECK_OK(mq_table_load_npy(HAQ_TABLE, &t));
    if (!t.v) return;
    CHECK(t.layers == 53);
    CHECK(mq_table_at(&t, 0, 8, 8) == 1620752);
    CHECK(mq_table_at(&t, 0, 8, 7) == 1419328); /* the first-layer quirk's value */
    CHECK(mq_table_at(&t, 52, 1, 1) == 5000);
    int64_t s88 = 0, s44 = 0, s22 = 0;
    for (int l = 0; l < t.layers; l++) {
        s88 += mq_table_at(&t, l, 8, 8);
        s44 += mq_table_at(&t, l, 4, 4);
        s22 += mq_table_at(&t, l, 2, 2);
    }
    CHECK(s88 == 39624933);
    CHECKF(fabs((double)s44 / s88 - 0.39662) < 5e-6, "W4A4 ratio %.6f", (double)s44 / s88);
    CHECKF(fabs((double)s22 / s88 - 0.17826) < 5e-6, "W2A2 ratio %.6f", (double)s22 / s88);
    mq_table_free(&t);
}

static void expect_bad(const char *name, const void *bytes, size_t n, const char *needle) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", test_tmpdir(), name);
    CHECK(test_write_file(p, bytes, n) == 0);
    mq_cost_table t;
    mixq_status st = mq_table_load_npy(p, &t);
    CHECKF(st == MIXQ_ERR_FORMAT && t.v == NULL, "%s: status %d", name, st);
    CHECKF(strstr(mixq_last_error(), needle) != NULL, "%s: '%s' lacks '%s'", name, mixq_last_error(), needle);
}

static size_t npy(unsigned char *buf, const char *dict, int layers, int values) {
    size_t hl = strlen(dict);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hl & 255);
    buf[9] = (unsigned char)(hl >> 8);
    memcpy(buf + 10, dict, hl);
    size_t n = 10 + hl;
    for (int i = 0; i < values; i++) {
        int64_t v = i + layers;
        memcpy(buf + n, &v, 8);
        n += 8;
    }
    return n;
}

static void test_bad_npy(void) {
    static unsigned char b[8192];
    const char *ok = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 8, 8), }\n";
    size_t n = npy(b, ok, 2, 128);
    char p[1024];
    snprintf(p, sizeof p, "%s/good.npy", test_tmpdir());
    CHECK(test_write_file(p, b, n) == 0);
    mq_cost_table t;
    CHECK_OK(mq_table_load_npy(p, &t));
    CHECK(t.layers == 2 && mq_table_at(&t, 1, 8, 8) == 2 + 127 && mq_table_at(&t, 0, 1, 2) == 3);
    mq_table_free(&t);
    mq_table_free(&t); /* harmless twice */
    expect_bad("trunc.npy", b, n - 5, "truncated");
    n = npy(b, ok, 2, 129);
    expect_bad("extra.npy", b, n, "bytes after");
    n = npy(b, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 8, 8), }\n", 2, 128);
    expect_bad("float.npy", b, n, "'<i8'");
    n = npy(b, "{'descr': '<i8', 'fortran_order': True, 'shape': (2, 8, 8), }\n", 2, 128);
    expect_bad("fortran.npy", b, n, "Fortran");
    n = npy(b, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 8, 7), }\n", 2, 112);
    expect_bad("shape.npy", b, n, "(layers, 8, 8)");
    expect_bad("magic.npy", "PK\3\4 not numpy at all", 22, "not a .npy");
    n = npy(b, ok, 2, 128);
    int64_t neg = -5;
    memcpy(b + n - 8, &neg, 8);
    expect_bad("negative.npy", b, n, "negative cost");
}

int main(void) {
    TEST_RUN(test_t8_mobilenetv2);
    TEST_RUN(test_bad_npy);
    return test_summary();
}
