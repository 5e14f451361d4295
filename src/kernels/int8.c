/* int8 GEMM through oneDNN (see int8.h for shapes and the exactness condition). */
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kernels/int8.h"

int mq_i8_available(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
    }
    return cached;
#else
    return 0;
#endif
}

mixq_status mq_i8_gemm(const uint8_t *A, const int8_t *W, int M, int N, int K, int32_t *C,
                       int ldc) {
    if (!mq_i8_available())
        return mq_err(MIXQ_ERR_UNSUPPORTED, "int8 kernel: this CPU has no VNNI, so oneDNN's u8 x "
                      "s8 GEMM would saturate; hint: use the bitserial kernel");
    if (M < 1 || N < 1 || K < 1 || K > MQ_I8_MAX_K || ldc < N)
        return mq_err(MIXQ_ERR_ARG, "int8 kernel: bad sizes M=%d N=%d K=%d ldc=%d", M, N, K, ldc);
    const int32_t co = 0;
    dnnl_status_t s = dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.0f, A, K, 0, W, K, 0, 0.0f, C,
                                        ldc, &co);
    if (s != dnnl_success)
        return mq_err(MIXQ_ERR_UNSUPPORTED, "int8 kernel: oneDNN gemm_u8s8s32 failed (status %d) "
                      "for M=%d N=%d K=%d", (int)s, M, N, K);
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- matmul primitive */
static dnnl_engine_t i8_engine;

static mixq_status i8_fail(dnnl_status_t s, const char *what) {
    return mq_err(MIXQ_ERR_UNSUPPORTED, "int8 kernel: oneDNN %s failed (status %d)", what, (int)s);
}
#define I8(call, what)                                       \
    do {                                                     \
        dnnl_status_t s_ = (call);                           \
        if (s_ != dnnl_success) return i8_fail(s_, what);    \
    } while (0)

typedef struct i8_entry {
    int M;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t wmem;        /* weights in the primitive's layout */
    size_t scratch_bytes;
} i8_entry;

struct mq_i8_weights {
    int N, K;
    int8_t *W;                 /* [N][K] (conv: [N][R][S][C], OHWI) */
    int conv;                  /* a convolution: C, H, W, R, S, stride, pad, P, Q below */
    int C, H, W_, R, S, stride, pad, P, Q;
    int n;                     /* entries in use */
    i8_entry e[MQ_I8_CACHE];
};

struct mq_i8_thread {
    dnnl_stream_t stream;
    void *scratch;
    size_t cap;
};

static void entry_free(i8_entry *e) {
    if (e->wmem) dnnl_memory_destroy(e->wmem);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->pd) dnnl_primitive_desc_destroy(e->pd);
    memset(e, 0, sizeof *e);
}

void mq_i8_weights_free(mq_i8_weights *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) entry_free(&w->e[i]);
    free(w->W);
    free(w);
}

void mq_i8_thread_free(mq_i8_thread *t) {
    if (!t) return;
    if (t->stream) dnnl_stream_destroy(t->stream);
    free(t->scratch);
    free(t);
}

mixq_status mq_i8_weights_create(const int8_t *W, int N, int K, mq_i8_weights **out) {
    *out = NULL;
    if (!mq_i8_available())
        return mq_err(MIXQ_ERR_UNSUPPORTED, "int8 kernel: this CPU has no VNNI; hint: use the "
                      "bitserial kernel");
    if (!W || N < 1 || K < 1 || K > MQ_I8_MAX_K)
        return mq_err(MIXQ_ERR_ARG, "int8 kernel: bad weights N=%d K=%d", N, K);
    mixq_status st = MIXQ_OK;
#pragma omp critical(mq_i8_engine)
    if (!i8_engine && dnnl_engine_create(&i8_engine, dnnl_cpu, 0) != dnnl_success) {
        i8_engine = NULL;
        st = mq_err(MIXQ_ERR_UNSUPPORTED, "int8 kernel: no oneDNN CPU engine");
    }
    if (st) return st;
    mq_i8_weights *w = mq_calloc(1, sizeof *w, "int8 weights");
    if (!w) return MIXQ_ERR_NOMEM;
    w->W = mq_malloc((size_t)N * (size_t)K, 1, "int8 weights");
    if (!w->W) {
        free(w);
        return MIXQ_ERR_NOMEM;
    }
    memcpy(w->W, W, (size_t)N * (size_t)K);
    w->N = N;
    w->K = K;
    *out = w;
    return MIXQ_OK;
}

/* Memory descriptors: matmul src u8 [M][K], weights s8 K x N (user: W[N][K]), dst s32 [M][N];
 * conv (M images) src u8 NHWC, weights s8 OHWI, dst s32 NHWC (= [M*P*Q][N] row-major). */
static mixq_status descs(const mq_i8_weights *w, int M, dnnl_memory_desc_t *smd,
                         dnnl_memory_desc_t *wany, dnnl_memory_desc_t *dmd, dnnl_memory_desc_t *wuser) {
    if (w->conv) {
        dnnl_dims_t sd = {M, w->C, w->H, w->W_}, wd = {w->N, w->C, w->R, w->S}, dd = {M, w->N, w->P, w->Q};
        I8(dnnl_memory_desc_init_by_tag(smd, 4, sd, dnnl_u8, dnnl_nhwc), "memory desc");
        I8(dnnl_memory_desc_init_by_tag(dmd, 4, dd, dnnl_s32, dnnl_nhwc), "memory desc");
        if (wany) I8(dnnl_memory_desc_init_by_tag(wany, 4, wd, dnnl_s8, dnnl_format_tag_any), "memory desc");
        if (wuser) I8(dnnl_memory_desc_init_by_tag(wuser, 4, wd, dnnl_s8, dnnl_ohwi), "memory desc");
        return MIXQ_OK;
    }
    dnnl_dims_t sd = {M, w->K}, wd = {w->K, w->N}, dd = {M, w->N};
    I8(dnnl_memory_desc_init_by_tag(smd, 2, sd, dnnl_u8, dnnl_ab), "memory desc");
    I8(dnnl_memory_desc_init_by_tag(dmd, 2, dd, dnnl_s32, dnnl_ab), "memory desc");
    if (wany) I8(dnnl_memory_desc_init_by_tag(wany, 2, wd, dnnl_s8, dnnl_format_tag_any), "memory desc");
    if (wuser) I8(dnnl_memory_desc_init_by_tag(wuser, 2, wd, dnnl_s8, dnnl_ba), "memory desc");
    return MIXQ_OK;
}

/* Primitive and reordered weights for M rows (conv: M images) (called under the cache lock). */
static mixq_status entry_build(const mq_i8_weights *w, int M, dnnl_stream_t s, i8_entry *e) {
    dnnl_memory_desc_t smd, wmd, dmd, wuser;
    mixq_status st = descs(w, M, &smd, &wmd, &dmd, &wuser);
    if (st) return st;
    dnnl_matmul_desc_t md;
    dnnl_convolution_desc_t cd;
    if (w->conv) {
        dnnl_dims_t strides = {w->stride, w->stride}, pad = {w->pad, w->pad};
        /* padding_r so that the output is exactly P x Q */
        dnnl_dims_t pad_r = {(w->P - 1) * w->stride + w->R - w->H - w->pad,
                             (w->Q - 1) * w->stride + w->S - w->W_ - w->pad};
        I8(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                              &smd, &wmd, NULL, &dmd, strides, pad, pad_r),
           "convolution desc");
    } else {
        I8(dnnl_matmul_desc_init(&md, &smd, &wmd, NULL, &dmd), "matmul desc");
    }
    dnnl_primitive_attr_t attr;
    I8(dnnl_primitive_attr_create(&attr), "attr");
    dnnl_status_t r = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (r == dnnl_success)
        r = dnnl_primitive_desc_create(&e->pd, w->conv ? (const_dnnl_op_desc_t)&cd
                                                        : (const_dnnl_op_desc_t)&md,
                                       attr, i8_engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    I8(r, "matmul primitive descriptor");
    I8(dnnl_primitive_create(&e->prim, e->pd), "matmul primitive");
    const dnnl_memory_desc_t *qw = dnnl_primitive_desc_query_md(e->pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *qs = dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0);
    e->scratch_bytes = qs ? dnnl_memory_desc_get_size(qs) : 0;
    I8(dnnl_memory_create(&e->wmem, qw, i8_engine, DNNL_MEMORY_ALLOCATE), "weights memory");
    dnnl_memory_t wu;
    I8(dnnl_memory_create(&wu, &wuser, i8_engine, w->W), "weights memory");
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t rp = NULL;
    r = dnnl_reorder_primitive_desc_create(&rpd, &wuser, i8_engine, qw, i8_engine, NULL);
    if (r == dnnl_success) {
        r = dnnl_primitive_create(&rp, rpd);
        dnnl_primitive_desc_destroy(rpd);
    }
    if (r == dnnl_success) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, wu}, {DNNL_ARG_TO, e->wmem}};
        r = dnnl_primitive_execute(rp, s, 2, a);
        if (r == dnnl_success) r = dnnl_stream_wait(s);
    }
    if (rp) dnnl_primitive_destroy(rp);
    dnnl_memory_destroy(wu);
    I8(r, "weights reorder");
    e->M = M;
    return MIXQ_OK;
}

static mixq_status i8_run(mq_i8_weights *w, const uint8_t *A, int M, int32_t *C, mq_i8_thread **tp) {
    if (!w || !A || !C || !tp || M < 1)
        return mq_err(MIXQ_ERR_ARG, "int8 kernel: bad arguments (M=%d)", M);
    mq_i8_thread *t = *tp;
    if (!t) {
        t = mq_calloc(1, sizeof *t, "int8 thread state");
        if (!t) return MIXQ_ERR_NOMEM;
        if (dnnl_stream_create(&t->stream, i8_engine, dnnl_stream_default_flags) != dnnl_success) {
            free(t);
            return mq_err(MIXQ_ERR_UNSUPPORTED, "int8 kernel: cannot create a oneDNN stream");
        }
        *tp = t;
    }
    /* cached entries never move (no eviction), so e stays valid outside the lock; when the
     * cache is full a private entry is built for this call and freed after it */
    i8_entry *e = NULL, local;
    memset(&local, 0, sizeof local);
    mixq_status st = MIXQ_OK;
#pragma omp critical(mq_i8_cache)
    {
        for (int i = 0; i < w->n && !e; i++)
            if (w->e[i].M == M) e = &w->e[i];
        if (!e && w->n < MQ_I8_CACHE) {
            st = entry_build(w, M, t->stream, &w->e[w->n]);
            if (st) entry_free(&w->e[w->n]);
            else e = &w->e[w->n++];
        }
    }
    if (st) return st;
    if (!e) {
        if ((st = entry_build(w, M, t->stream, &local))) {
            entry_free(&local);
            return st;
        }
        e = &local;
    }
    if (e->scratch_bytes > t->cap) {
        free(t->scratch);
        t->scratch = mq_alloc_aligned(e->scratch_bytes, "int8 scratchpad");
        t->cap = t->scratch ? e->scratch_bytes : 0;
        if (!t->scratch) {
            if (e == &local) entry_free(&local);
            return MIXQ_ERR_NOMEM;
        }
    }
    dnnl_memory_desc_t smd, dmd;
    if ((st = descs(w, M, &smd, NULL, &dmd, NULL))) {
        if (e == &local) entry_free(&local);
        return st;
    }
    dnnl_memory_t sm = NULL, dm = NULL, scm = NULL;
    dnnl_status_t r = dnnl_memory_create(&sm, &smd, i8_engine, (void *)A);
    if (r == dnnl_success) r = dnnl_memory_create(&dm, &dmd, i8_engine, C);
    if (r == dnnl_success && e->scratch_bytes)
        r = dnnl_memory_create(&scm, dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0),
                               i8_engine, t->scratch);
    if (r == dnnl_success) {
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, e->wmem}, {DNNL_ARG_DST, dm},
                                {DNNL_ARG_SCRATCHPAD, scm}};
        r = dnnl_primitive_execute(e->prim, t->stream, scm ? 4 : 3, a);
        if (r == dnnl_success) r = dnnl_stream_wait(t->stream);
    }
    if (sm) dnnl_memory_destroy(sm);
    if (dm) dnnl_memory_destroy(dm);
    if (scm) dnnl_memory_destroy(scm);
    if (e == &local) entry_free(&local);
    I8(r, "matmul");
    return MIXQ_OK;
}

mixq_status mq_i8_matmul(mq_i8_weights *w, const uint8_t *A, int M, int32_t *C, mq_i8_thread **tp) {
    if (w && w->conv) return mq_err(MIXQ_ERR_ARG, "int8 matmul: these are convolution weights");
    return i8_run(w, A, M, C, tp);
}

mixq_status mq_i8_conv_weights_create(const int8_t *W, int K, int C, int H, int Wd, int R, int S,
                                      int stride, int pad, mq_i8_weights **out) {
    *out = NULL;
    const int P = (H + 2 * pad - R) / stride + 1, Q = (Wd + 2 * pad - S) / stride + 1;
    if (K < 1 || C < 1 || H < 1 || Wd < 1 || R < 1 || S < 1 || stride < 1 || pad < 0 || P < 1 ||
        Q < 1 || (int64_t)C * R * S > MQ_I8_MAX_K)
        return mq_err(MIXQ_ERR_ARG, "int8 conv: bad shape K=%d C=%d %dx%d R=%d S=%d stride %d pad %d",
                      K, C, H, Wd, R, S, stride, pad);
    mixq_status st = mq_i8_weights_create(W, K, C * R * S, out);
    if (st) return st;
    mq_i8_weights *w = *out;
    w->conv = 1;
    w->C = C;
    w->H = H;
    w->W_ = Wd;
    w->R = R;
    w->S = S;
    w->stride = stride;
    w->pad = pad;
    w->P = P;
    w->Q = Q;
    return MIXQ_OK;
}

mixq_status mq_i8_conv(mq_i8_weights *w, const uint8_t *x, int n, int32_t *acc, mq_i8_thread **t) {
    if (!w || !w->conv) return mq_err(MIXQ_ERR_ARG, "int8 conv: not convolution weights");
    return i8_run(w, x, n, acc, t); /* M = images: the descriptors make it a convolution */
}
