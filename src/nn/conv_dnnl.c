/* oneDNN direct-convolution back-end (FP32) for conv layers with more than one input channel
 * per group.
 *
 * Buffers (same as conv.c): x [N][C][H][W] NCHW, w [K][C/G][R][S] KCRS (oneDNN goihw with
 * G > 1), b [K], y / dy [N][K][P][Q], dx like x, dw like w, db like b. All FP32.
 *
 * Why: oneDNN's brgconv/jit kernels on blocked layouts (nChw16c) run at 230-310 GFLOP/s per
 * core on the development machine (an AVX-512 Cascade Lake Xeon), against ~110 for im2col +
 * sgemm, on the 7 reference layers listed in bench/bench_layers.c (ResNet-20-style 3x3 convs).
 *
 * Determinism: the batch is cut into chunks of g images, g from the shape only (never from
 * the thread count). Every chunk is computed by ONE thread with oneDNN running
 * single-threaded inside our OpenMP region (each worker sets its own nthreads-var to 1 before
 * creating or running a primitive), so each output has a fixed reduction order. Weight and
 * bias gradients are produced per chunk into private partials (KCRS), summed in chunk order by
 * the caller. Hence identical results at any thread count. Where a layer has few weight-gradient
 * chunks, each chunk's weight gradient is further cut into ns slices of output channels (ns from
 * the shape only), each its own task writing its own rows of the chunk's partials, so that
 * more threads find work.
 *
 * Primitives, their reorders (NCHW <-> blocked, KCRS <-> blocked) and scratch buffers are
 * cached per worker thread and per (shape, chunk size, direction); they live until
 * mq_conv_dnnl_release() or process exit (reachable from a static table).
 */
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_dnnl.h"

#define MAX_THREADS 256
#define NPORT 3

enum { KIND_FWD = 0, KIND_BWD_DATA, KIND_BWD_W };

/* One tensor argument: user layout (NCHW / KCRS), the primitive's layout, and a reorder
 * between them when they differ (user->prim for inputs, prim->user for outputs). */
typedef struct port {
    int arg, out;                   /* DNNL_ARG_*, 1 for outputs */
    dnnl_memory_desc_t user_md;
    const dnnl_memory_desc_t *md;   /* owned by the primitive desc */
    dnnl_memory_t user_mem, mem;
    dnnl_primitive_t reorder;       /* NULL: same layout, the user buffer is used directly */
    size_t bytes;                   /* size in the primitive's layout */
    int buf;                        /* thread buffer index for the blocked copy */
} port;

typedef struct prim {
    int key[17];                    /* the shape; key[15] is the kind, key[16] dy's channels */
    dnnl_primitive_desc_t hint, pd;
    dnnl_primitive_t p;
    port port[NPORT];
    dnnl_memory_t bias_mem, scratch_mem;
    size_t scratch_bytes;
    struct prim *next;
} prim;

/* What a thread buffer holds: the blocked copy of user data `src` (layout `md`) made during
 * call `tok`. Inputs reordered into a buffer are reused while all three match: the weights by
 * every chunk of a call, dy by the backward-weights primitive after backward-data. */
typedef struct held {
    const void *src;
    const dnnl_memory_desc_t *md;
    unsigned long tok;
} held;

#define NBUF 7
typedef struct tstate {
    dnnl_stream_t stream;
    prim *list;
    /* 0 src in, 1 weights in, 2 activations out, 3 diff_dst in, 4 accumulate tmp, 5 scratchpad,
       6 diff weights out */
    void *buf[NBUF];
    size_t cap[NBUF];
    held held[NBUF];
} tstate;

static dnnl_engine_t engine;
static tstate *states[MAX_THREADS];

static mixq_status dnnl_fail(dnnl_status_t s, const char *what) {
    return mq_err(MIXQ_ERR_UNSUPPORTED, "oneDNN: %s failed (status %d); hint: MIXQ_CONV=gemm "
                  "selects the im2col + sgemm convolution", what, (int)s);
}

#define DN(call, what)                                          \
    do {                                                        \
        dnnl_status_t s_ = (call);                              \
        if (s_ != dnnl_success) return dnnl_fail(s_, what);     \
    } while (0)

mixq_status mq_conv_dnnl_init(void) {
    mixq_status st = MIXQ_OK;
#pragma omp critical(mq_dnnl_engine)
    if (!engine && dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) {
        engine = NULL;
        st = mq_err(MIXQ_ERR_UNSUPPORTED, "oneDNN: no CPU engine");
    }
    return st;
}

static void *tbuf(tstate *ts, int i, size_t bytes) {
    if (ts->cap[i] >= bytes) return ts->buf[i];
    free(ts->buf[i]);
    ts->held[i].src = NULL; /* the copy it held is gone */
    ts->buf[i] = mq_alloc_aligned(bytes ? bytes : 64, "oneDNN scratch buffer");
    ts->cap[i] = ts->buf[i] ? bytes : 0;
    return ts->buf[i];
}

static void prim_free(prim *p) {
    if (!p) return;
    for (int i = 0; i < NPORT; i++) {
        if (p->port[i].reorder) dnnl_primitive_destroy(p->port[i].reorder);
        if (p->port[i].user_mem) dnnl_memory_destroy(p->port[i].user_mem);
        if (p->port[i].mem) dnnl_memory_destroy(p->port[i].mem);
    }
    if (p->bias_mem) dnnl_memory_destroy(p->bias_mem);
    if (p->scratch_mem) dnnl_memory_destroy(p->scratch_mem);
    if (p->p) dnnl_primitive_destroy(p->p);
    if (p->pd) dnnl_primitive_desc_destroy(p->pd);
    if (p->hint) dnnl_primitive_desc_destroy(p->hint);
    free(p);
}

void mq_conv_dnnl_release(void) {
    for (int t = 0; t < MAX_THREADS; t++) {
        tstate *ts = states[t];
        if (!ts) continue;
        for (prim *p = ts->list, *n; p; p = n) {
            n = p->next;
            prim_free(p);
        }
        for (int i = 0; i < NBUF; i++) free(ts->buf[i]);
        if (ts->stream) dnnl_stream_destroy(ts->stream);
        free(ts);
        states[t] = NULL;
    }
}

static mixq_status port_init(port *pt, int arg, int out, const dnnl_memory_desc_t *user,
                             const dnnl_memory_desc_t *md, int buf) {
    pt->arg = arg;
    pt->out = out;
    pt->user_md = *user;
    pt->md = md;
    pt->buf = buf;
    pt->bytes = dnnl_memory_desc_get_size(md);
    DN(dnnl_memory_create(&pt->mem, md, engine, DNNL_MEMORY_NONE), "memory");
    if (dnnl_memory_desc_equal(md, user)) return MIXQ_OK;
    DN(dnnl_memory_create(&pt->user_mem, user, engine, DNNL_MEMORY_NONE), "memory");
    dnnl_primitive_desc_t rpd;
    if (out) DN(dnnl_reorder_primitive_desc_create(&rpd, md, engine, user, engine, NULL), "reorder");
    else DN(dnnl_reorder_primitive_desc_create(&rpd, user, engine, md, engine, NULL), "reorder");
    dnnl_status_t s = dnnl_primitive_create(&pt->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    DN(s, "reorder primitive");
    return MIXQ_OK;
}

/* kd: the channels of the user's y / dy tensor, of which the primitive's s->K are the first
 * (kd > s->K: a slice of output channels, dy read through its NCHW strides). */
static mixq_status prim_build(prim *pr, const mq_conv_shape *s, int gn, int bias, int kind, int kd) {
    const int G = s->groups;
    dnnl_memory_desc_t u_src, u_dst, u_wei, u_bias, a_src, a_dst, a_wei;
    dnnl_dims_t sd = {gn, s->C, s->H, s->W}, dd = {gn, s->K, s->P, s->Q};
    dnnl_dims_t wd5 = {G, s->K / G, s->C / G, s->R, s->S}, wd4 = {s->K, s->C, s->R, s->S};
    dnnl_dims_t bd = {s->K};
    dnnl_dims_t strides = {s->sh, s->sw}, pad = {s->pt, s->pl}, pad_r = {s->pb, s->pr};
    const dnnl_dim_t pq = (dnnl_dim_t)s->P * s->Q;
    dnnl_dims_t dst_strides = {kd * pq, pq, s->Q, 1};
    DN(dnnl_memory_desc_init_by_tag(&u_src, 4, sd, dnnl_f32, dnnl_nchw), "memory desc");
    DN(dnnl_memory_desc_init_by_strides(&u_dst, 4, dd, dnnl_f32, dst_strides), "memory desc");
    if (G > 1) DN(dnnl_memory_desc_init_by_tag(&u_wei, 5, wd5, dnnl_f32, dnnl_goihw), "memory desc");
    else DN(dnnl_memory_desc_init_by_tag(&u_wei, 4, wd4, dnnl_f32, dnnl_oihw), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&u_bias, 1, bd, dnnl_f32, dnnl_x), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&a_src, 4, sd, dnnl_f32, dnnl_format_tag_any), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&a_dst, 4, dd, dnnl_f32, dnnl_format_tag_any), "memory desc");
    if (G > 1) DN(dnnl_memory_desc_init_by_tag(&a_wei, 5, wd5, dnnl_f32, dnnl_format_tag_any), "memory desc");
    else DN(dnnl_memory_desc_init_by_tag(&a_wei, 4, wd4, dnnl_f32, dnnl_format_tag_any), "memory desc");

    dnnl_primitive_attr_t attr;
    DN(dnnl_primitive_attr_create(&attr), "attr");
    dnnl_status_t as = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (as != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return dnnl_fail(as, "scratchpad mode");
    }
    /* The forward desc is needed as a hint by both backward primitives. */
    dnnl_convolution_desc_t fd, bd_;
    dnnl_status_t e = dnnl_convolution_forward_desc_init(
        &fd, dnnl_forward_training, dnnl_convolution_direct, &a_src, &a_wei,
        (kind == KIND_FWD && bias) || (kind == KIND_BWD_W && bias) ? &u_bias : NULL, &a_dst,
        strides, pad, pad_r);
    if (e == dnnl_success) {
        if (kind == KIND_FWD) {
            e = dnnl_primitive_desc_create(&pr->pd, &fd, attr, engine, NULL);
        } else {
            e = dnnl_primitive_desc_create(&pr->hint, &fd, NULL, engine, NULL);
            if (e == dnnl_success && kind == KIND_BWD_DATA)
                e = dnnl_convolution_backward_data_desc_init(&bd_, dnnl_convolution_direct, &a_src,
                                                             &a_wei, &a_dst, strides, pad, pad_r);
            else if (e == dnnl_success)
                e = dnnl_convolution_backward_weights_desc_init(
                    &bd_, dnnl_convolution_direct, &a_src, &a_wei, bias ? &u_bias : NULL, &a_dst,
                    strides, pad, pad_r);
            if (e == dnnl_success)
                e = dnnl_primitive_desc_create(&pr->pd, &bd_, attr, engine, pr->hint);
        }
    }
    dnnl_primitive_attr_destroy(attr);
    DN(e, "convolution primitive descriptor");
    DN(dnnl_primitive_create(&pr->p, pr->pd), "convolution primitive");
    const dnnl_memory_desc_t *q_src = dnnl_primitive_desc_query_md(
        pr->pd, kind == KIND_BWD_DATA ? dnnl_query_diff_src_md : dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *q_wei = dnnl_primitive_desc_query_md(
        pr->pd, kind == KIND_BWD_W ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *q_dst = dnnl_primitive_desc_query_md(
        pr->pd, kind == KIND_FWD ? dnnl_query_dst_md : dnnl_query_diff_dst_md, 0);
    mixq_status st;
    /* ports: 0 = activations in, 1 = weights, 2 = the other activation tensor */
    if (kind == KIND_FWD) {
        if ((st = port_init(&pr->port[0], DNNL_ARG_SRC, 0, &u_src, q_src, 0))) return st;
        if ((st = port_init(&pr->port[1], DNNL_ARG_WEIGHTS, 0, &u_wei, q_wei, 1))) return st;
        if ((st = port_init(&pr->port[2], DNNL_ARG_DST, 1, &u_dst, q_dst, 2))) return st;
    } else if (kind == KIND_BWD_DATA) {
        if ((st = port_init(&pr->port[0], DNNL_ARG_DIFF_DST, 0, &u_dst, q_dst, 3))) return st;
        if ((st = port_init(&pr->port[1], DNNL_ARG_WEIGHTS, 0, &u_wei, q_wei, 1))) return st;
        if ((st = port_init(&pr->port[2], DNNL_ARG_DIFF_SRC, 1, &u_src, q_src, 2))) return st;
    } else {
        if ((st = port_init(&pr->port[0], DNNL_ARG_SRC, 0, &u_src, q_src, 0))) return st;
        if ((st = port_init(&pr->port[1], DNNL_ARG_DIFF_WEIGHTS, 1, &u_wei, q_wei, 6))) return st;
        if ((st = port_init(&pr->port[2], DNNL_ARG_DIFF_DST, 0, &u_dst, q_dst, 3))) return st;
    }
    if (bias && kind != KIND_BWD_DATA) {
        const dnnl_memory_desc_t *q_b = dnnl_primitive_desc_query_md(
            pr->pd, kind == KIND_FWD ? dnnl_query_weights_md : dnnl_query_diff_weights_md, 1);
        if (!q_b || !dnnl_memory_desc_equal(q_b, &u_bias))
            return mq_err(MIXQ_ERR_UNSUPPORTED, "oneDNN: unexpected bias layout");
        DN(dnnl_memory_create(&pr->bias_mem, q_b, engine, DNNL_MEMORY_NONE), "memory");
    }
    const dnnl_memory_desc_t *q_s = dnnl_primitive_desc_query_md(pr->pd, dnnl_query_scratchpad_md, 0);
    pr->scratch_bytes = q_s ? dnnl_memory_desc_get_size(q_s) : 0;
    if (pr->scratch_bytes)
        DN(dnnl_memory_create(&pr->scratch_mem, q_s, engine, DNNL_MEMORY_NONE), "memory");
    return MIXQ_OK;
}

/* Called inside the parallel region by worker t (kd as for prim_build). */
static mixq_status get_prim(int t, const mq_conv_shape *s, int gn, int bias, int kind, int kd,
                            prim **out, tstate **tso) {
    if (t >= MAX_THREADS) return mq_err(MIXQ_ERR_ARG, "oneDNN conv: more than %d threads", MAX_THREADS);
    tstate *ts = states[t];
    if (!ts) {
        ts = mq_calloc(1, sizeof *ts, "oneDNN thread state");
        if (!ts) return MIXQ_ERR_NOMEM;
        if (dnnl_stream_create(&ts->stream, engine, dnnl_stream_default_flags) != dnnl_success) {
            free(ts);
            return mq_err(MIXQ_ERR_UNSUPPORTED, "oneDNN: cannot create a stream");
        }
        states[t] = ts;
    }
    *tso = ts;
    int key[17] = {gn, s->C, s->H, s->W, s->K, s->R, s->S, s->sh, s->sw, s->pt, s->pl, s->pb, s->pr, s->groups, bias, kind, kd};
    for (prim *p = ts->list; p; p = p->next)
        if (!memcmp(p->key, key, sizeof key)) {
            *out = p;
            return MIXQ_OK;
        }
    prim *p = mq_calloc(1, sizeof *p, "oneDNN primitive");
    if (!p) return MIXQ_ERR_NOMEM;
    memcpy(p->key, key, sizeof key);
    mixq_status st = prim_build(p, s, gn, bias, kind, kd);
    if (st) {
        prim_free(p);
        return st;
    }
    p->next = ts->list;
    ts->list = p;
    *out = p;
    return MIXQ_OK;
}

static mixq_status reorder(tstate *ts, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    DN(dnnl_primitive_execute(r, ts->stream, 2, a), "reorder");
    return MIXQ_OK;
}

/* Run primitive pr on user buffers ptr[0..2] (+ bias). Inputs are reordered into thread
 * buffers when their layout differs (unless the buffer already holds that copy for this call,
 * see `held`); outputs are written to a thread buffer and reordered to the user buffer. */
static mixq_status run(tstate *ts, prim *pr, void *const ptr[NPORT], void *bias, unsigned long tok) {
    dnnl_exec_arg_t args[6];
    int na = 0;
    mixq_status st;
    for (int i = 0; i < NPORT; i++) {
        port *pt = &pr->port[i];
        if (pt->reorder) {
            void *b = tbuf(ts, pt->buf, pt->bytes);
            if (!b) return MIXQ_ERR_NOMEM;
            DN(dnnl_memory_set_data_handle(pt->mem, b), "memory handle");
            DN(dnnl_memory_set_data_handle(pt->user_mem, ptr[i]), "memory handle");
            held *h = &ts->held[pt->buf];
            if (pt->out) {
                h->src = NULL;
            } else if (!(h->src == ptr[i] && h->tok == tok && dnnl_memory_desc_equal(h->md, pt->md))) {
                if ((st = reorder(ts, pt->reorder, pt->user_mem, pt->mem))) return st;
                *h = (held){ptr[i], pt->md, tok};
            }
        } else {
            DN(dnnl_memory_set_data_handle(pt->mem, ptr[i]), "memory handle");
        }
        args[na].arg = pt->arg;
        args[na++].memory = pt->mem;
    }
    if (pr->bias_mem) {
        DN(dnnl_memory_set_data_handle(pr->bias_mem, bias), "memory handle");
        args[na].arg = pr->key[15] == KIND_FWD ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS;
        args[na++].memory = pr->bias_mem;
    }
    if (pr->scratch_mem) {
        void *b = tbuf(ts, 5, pr->scratch_bytes);
        if (!b) return MIXQ_ERR_NOMEM;
        DN(dnnl_memory_set_data_handle(pr->scratch_mem, b), "memory handle");
        args[na].arg = DNNL_ARG_SCRATCHPAD;
        args[na++].memory = pr->scratch_mem;
    }
    DN(dnnl_primitive_execute(pr->p, ts->stream, na, args), "convolution");
    for (int i = 0; i < NPORT; i++) {
        port *pt = &pr->port[i];
        if (pt->out && pt->reorder)
            if ((st = reorder(ts, pt->reorder, pt->mem, pt->user_mem))) return st;
    }
    DN(dnnl_stream_wait(ts->stream), "stream wait");
    return MIXQ_OK;
}

static unsigned long next_token(void) {
    static unsigned long token;
    unsigned long t;
#pragma omp atomic capture
    t = ++token;
    return t;
}

/* Arguments of one forward or backward call, shared by its chunks. */
typedef struct call {
    const mq_conv_shape *s;
    int g, ns;                      /* images per chunk; slices of output channels per chunk */
    const float *x, *w, *b, *dy;
    float *y, *dx, *partials;
    int accumulate, want_dw, want_db;
    size_t xs, ys, part;
    unsigned long tok;
} call;

/* One task: chunk ch (images n0 .. n0 + gn), slice sl of its output channels. */
typedef mixq_status (*chunk_fn)(const call *c, int t, int n0, int gn, int ch, int sl);

static mixq_status fwd_chunk(const call *c, int t, int n0, int gn, int ch, int sl) {
    (void)ch, (void)sl;
    prim *pr;
    tstate *ts;
    mixq_status e = get_prim(t, c->s, gn, c->b != NULL, KIND_FWD, c->s->K, &pr, &ts);
    if (e) return e;
    void *ptr[NPORT] = {(void *)(c->x + (size_t)n0 * c->xs), (void *)c->w, c->y + (size_t)n0 * c->ys};
    return run(ts, pr, ptr, (void *)c->b, c->tok);
}

static mixq_status bwd_chunk(const call *c, int t, int n0, int gn, int ch, int sl) {
    prim *pr;
    tstate *ts;
    mixq_status e;
    void *dyp = (void *)(c->dy + (size_t)n0 * c->ys);
    if (c->dx) {
        if ((e = get_prim(t, c->s, gn, 0, KIND_BWD_DATA, c->s->K, &pr, &ts))) return e;
        float *dst = c->dx + (size_t)n0 * c->xs, *tmp = NULL;
        const size_t n = c->xs * (size_t)gn;
        if (c->accumulate && !(tmp = tbuf(ts, 4, sizeof(float) * n))) return MIXQ_ERR_NOMEM;
        void *ptr[NPORT] = {dyp, (void *)c->w, c->accumulate ? tmp : dst};
        if ((e = run(ts, pr, ptr, NULL, c->tok))) return e;
        if (c->accumulate)
            for (size_t i = 0; i < n; i++) dst[i] += tmp[i];
    }
    if (c->want_dw || c->want_db) {
        /* slice sl: output channels k0 .. k0 + ks, their rows of dw and db, their planes of dy */
        mq_conv_shape sk = *c->s;
        const int K = c->s->K, ks = K / c->ns, k0 = sl * ks;
        const size_t kc = (c->part - (size_t)K) / (size_t)K; /* dw values per output channel */
        sk.K = ks;
        if ((e = get_prim(t, &sk, gn, c->want_db, KIND_BWD_W, K, &pr, &ts))) return e;
        float *pw = c->partials + c->part * (size_t)ch;
        void *ptr[NPORT] = {(void *)(c->x + (size_t)n0 * c->xs), pw + (size_t)k0 * kc,
                            (char *)dyp + sizeof(float) * (size_t)k0 * c->s->P * c->s->Q};
        if ((e = run(ts, pr, ptr, pw + (c->part - (size_t)K) + k0, c->tok))) return e;
    }
    return MIXQ_OK;
}

/* Run fn on every chunk of g images (and every slice of its output channels: c->ns, 0 for
 * 1), tasks split statically over the threads, with oneDNN single-threaded inside each worker.
 * Returns the first error. */
static mixq_status for_chunks(call *c, chunk_fn fn) {
    mixq_status st = mq_conv_dnnl_init();
    if (st) return st;
    const mq_conv_shape *s = c->s;
    if (c->ns < 1) c->ns = 1;
    const int nch = (s->N + c->g - 1) / c->g, ntask = nch * c->ns;
    c->xs = (size_t)s->C * s->H * s->W;
    c->ys = (size_t)s->K * s->P * s->Q;
    c->part = (size_t)s->K * (s->C / s->groups) * s->R * s->S + (size_t)s->K;
    c->tok = next_token();
    mixq_status err = MIXQ_OK;
    char msg[512] = ""; /* the failing worker's message, carried to this thread */
#pragma omp parallel
    {
        omp_set_num_threads(1); /* this worker's nthreads-var: oneDNN runs single-threaded */
        const int t = omp_get_thread_num();
#pragma omp for schedule(static)
        for (int i = 0; i < ntask; i++) {
            int bad;
#pragma omp atomic read
            bad = err;
            if (bad) continue;
            const int ch = i / c->ns, n0 = ch * c->g;
            mixq_status e = fn(c, t, n0, MQ_MIN(c->g, s->N - n0), ch, i % c->ns);
            if (e) {
#pragma omp critical(mq_dnnl_err)
                if (!err) err = e, snprintf(msg, sizeof msg, "%s", mixq_last_error());
            }
        }
    }
    return err ? mq_err(err, "%s", msg[0] ? msg : "oneDNN conv: a worker thread failed") : MIXQ_OK;
}

mixq_status mq_conv_dnnl_forward(const mq_conv_shape *s, int g, const float *x, const float *w,
                                 const float *b, float *y) {
    call c = {.s = s, .g = g, .x = x, .w = w, .b = b, .y = y};
    return for_chunks(&c, fwd_chunk);
}

mixq_status mq_conv_dnnl_backward(const mq_conv_shape *s, int g, int gw, int ns, const float *x,
                                  const float *w, const float *dy, float *dx, int accumulate,
                                  float *partials, int want_dw, int want_db) {
    if (ns < 1 || s->K % ns || (ns > 1 && s->groups > 1))
        return mq_err(MIXQ_ERR_ARG, "oneDNN conv: %d slices of %d output channels (%d groups)", ns,
                      s->K, s->groups);
    call c = {.s = s, .g = g, .x = x, .w = w, .dy = dy, .dx = dx, .partials = partials,
              .accumulate = accumulate, .want_dw = want_dw, .want_db = want_db, .ns = 1};
    if ((gw == g && ns == 1) || !(want_dw || want_db)) return for_chunks(&c, bwd_chunk);
    /* weight gradients over their own chunks and slices: a pass for dx, then one for dw / db */
    mixq_status st;
    if (dx) {
        c.want_dw = c.want_db = 0;
        if ((st = for_chunks(&c, bwd_chunk))) return st;
    }
    call cw = {.s = s, .g = gw, .x = x, .w = w, .dy = dy, .partials = partials,
               .want_dw = want_dw, .want_db = want_db, .ns = ns};
    return for_chunks(&cw, bwd_chunk);
}
