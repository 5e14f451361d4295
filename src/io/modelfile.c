/* Model file (.mixq), little-endian:
 *
 *   char     magic[8]      "MIXQMODL"
 *   uint32   version       1
 *   char     arch[32]      zoo architecture, NUL-padded
 *   int32    in_c, in_h, in_w, classes
 *   float32  width
 *   uint64   seed
 *   (version 2 only) uint32 graph_len, char graph[graph_len]: the node list of a model that is
 *            not in the zoo (an ONNX import), see src/nn/graph.c; version 1 = a zoo model
 *   uint32   n_tensors
 *   n_tensors x {
 *     char    name[64]     NUL-padded ("layer1.0.conv1.weight")
 *     int32   ndim         1..4
 *     int32   shape[4]     unused dims are 1
 *     float32 data[numel]
 *   }
 *   uint32   n_sections    extra named blobs: "policy" (an embedded quantization policy, JSON),
 *                          "qstate" (its calibrated state), "preprocess" (the input transform,
 *                          JSON, see src/data/preprocess.c; absent in files that predate it),
 *                          "holdout" (the training images the model was trained without, JSON,
 *                          see mq_holdout_json; absent in files that predate it or record none)
 *   n_sections x { char tag[16]; uint64 length; uint8 bytes[length] }
 *   char     end[4]        "MQEN"
 *   uint32   crc32         zlib crc32 of every byte before it
 *
 * Loading rebuilds the architecture from the header through the zoo (or the graph) and then requires every
 * tensor of the file to match the model's tensor of the same position by name and shape; any
 * difference (missing, extra, renamed, reshaped tensor, NaN/Inf values, bad checksum) is an error
 * that says what differs.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/data.h"
#include "nn/model.h"
#include "quant/qmodel.h"

#define MODEL_MAGIC "MIXQMODL"
#define MODEL_VERSION 1u       /* zoo models */
#define MODEL_VERSION_GRAPH 2u /* models carrying their graph */
#define MODEL_END "MQEN"

typedef struct wctx {
    FILE *f;
    const char *path;
    uLong crc;
    mixq_status st;
} wctx;

static void wr(wctx *w, const void *p, size_t n) {
    if (w->st) return;
    w->st = mq_fwrite(p, n, w->f, w->path);
    if (!w->st) w->crc = crc32(w->crc, p, (uInt)n);
}

/* One named section: tag (NUL-padded to 16 bytes), length, bytes. */
static void wr_section(wctx *w, const char *tag, const void *p, size_t n) {
    char t[16] = {0};
    memcpy(t, tag, strlen(tag) < 16 ? strlen(tag) : 15);
    const uint64_t len = n;
    wr(w, t, 16);
    wr(w, &len, 8);
    wr(w, p, n);
}

static void wr_big(wctx *w, const float *p, size_t n) {
    /* crc32 takes uInt lengths: feed large tensors in chunks */
    const unsigned char *b = (const unsigned char *)p;
    size_t bytes = n * sizeof(float);
    while (bytes && !w->st) {
        size_t c = bytes > (1u << 30) ? (1u << 30) : bytes;
        wr(w, b, c);
        b += c;
        bytes -= c;
    }
}

mixq_status mixq_model_save(const mixq_model *m, const char *path) {
    if (!m || !path) return mq_err(MIXQ_ERR_ARG, "mixq_model_save: NULL model or path");
    /* Write to a temporary file and rename, so an interrupted save never leaves a torn file. */
    FILE *f;
    char *tmp;
    mixq_status st0 = mq_fopen_tmp(path, &f, &tmp);
    if (st0) return st0;
    wctx w = {.f = f, .path = tmp, .crc = crc32(0L, Z_NULL, 0)};
    char arch[32] = {0};
    snprintf(arch, sizeof arch, "%s", m->arch);
    uint32_t ver = m->custom_graph ? MODEL_VERSION_GRAPH : MODEL_VERSION, nt = (uint32_t)m->n_tensors, nsec = 0;
    int32_t dims[4] = {m->cfg.in_c, m->cfg.in_h, m->cfg.in_w, m->cfg.classes};
    float width = m->cfg.width;
    uint64_t seed = m->cfg.seed;
    wr(&w, MODEL_MAGIC, 8);
    wr(&w, &ver, 4);
    wr(&w, arch, sizeof arch);
    wr(&w, dims, sizeof dims);
    wr(&w, &width, 4);
    wr(&w, &seed, 8);
    if (m->custom_graph) {
        char *g = mq_graph_text(m);
        if (!g) w.st = w.st ? w.st : MIXQ_ERR_NOMEM;
        uint32_t gl = g ? (uint32_t)strlen(g) : 0;
        wr(&w, &gl, 4);
        if (g) wr(&w, g, gl);
        free(g);
    }
    wr(&w, &nt, 4);
    for (int i = 0; i < m->n_tensors; i++) {
        const mq_tensor *t = &m->tensors[i];
        char name[MIXQ_NAME_MAX] = {0};
        memcpy(name, t->name, strlen(t->name));
        int32_t hdr[5] = {t->ndim, 1, 1, 1, 1};
        for (int k = 0; k < t->ndim; k++) hdr[1 + k] = t->shape[k];
        wr(&w, name, sizeof name);
        wr(&w, hdr, sizeof hdr);
        const float *data = (t->trainable ? m->params : m->buffers) + t->off;
        wr_big(&w, data, (size_t)t->numel);
    }
    /* a quantized model embeds its policy (JSON) and calibrated state */
    unsigned char *qs = NULL;
    size_t qlen = 0;
    if (!w.st && mixq_model_is_quantized(m)) w.st = mq_quant_state_save(m, &qs, &qlen);
    const char *ptext = mixq_model_is_quantized(m) ? mixq_policy_text(mixq_model_policy(m)) : NULL;
    if (!w.st && mixq_model_is_quantized(m) && !ptext) w.st = MIXQ_ERR_NOMEM;
    char *pptext = m->pp_recorded ? mq_pp_json(&m->pp) : NULL;
    if (!w.st && m->pp_recorded && !pptext) w.st = MIXQ_ERR_NOMEM;
    char *hotext = m->has_holdout ? mq_holdout_json(&m->holdout) : NULL;
    if (!w.st && m->has_holdout && !hotext) w.st = MIXQ_ERR_NOMEM;
    nsec = (mixq_model_is_quantized(m) ? 2 : 0) + (pptext ? 1 : 0) + (hotext ? 1 : 0);
    wr(&w, &nsec, 4);
    if (hotext) wr_section(&w, "holdout", hotext, strlen(hotext));
    if (pptext) wr_section(&w, "preprocess", pptext, strlen(pptext));
    if (mixq_model_is_quantized(m) && ptext) {
        wr_section(&w, "policy", ptext, strlen(ptext));
        wr_section(&w, "qstate", qs, qlen);
    }
    free(hotext);
    free(pptext);
    free(qs);
    wr(&w, MODEL_END, 4);
    uint32_t crc = (uint32_t)w.crc;
    if (!w.st) w.st = mq_fwrite(&crc, 4, f, tmp);
    return mq_fclose_tmp(f, tmp, path, w.st);
}

typedef struct rctx {
    FILE *f;
    const char *path;
    uLong crc;
} rctx;

static mixq_status rd(rctx *r, void *p, size_t n, const char *what) {
    mixq_status st = mq_fread(p, n, r->f, r->path, what);
    if (!st) r->crc = crc32(r->crc, p, (uInt)n);
    return st;
}

static void fmt_shape(char *buf, size_t n, int ndim, const int *shape) {
    int off = snprintf(buf, n, "[");
    for (int k = 0; k < ndim && off < (int)n; k++)
        off += snprintf(buf + off, n - (size_t)off, "%s%d", k ? ", " : "", shape[k]);
    if (off < (int)n) snprintf(buf + off, n - (size_t)off, "]");
}

/* Tensor i's header in the file (name, then ndim and four dims) against the model's tensor t. */
static mixq_status tensor_header_check(const char *path, const char *arch, int i, const mq_tensor *t,
                                       const char *name, const int32_t hdr[5]) {
    if (strcmp(name, t->name) != 0)
        return mq_err(MIXQ_ERR_FORMAT, "'%s': tensor %d is '%s' but architecture '%s' expects '%s' there", path,
                      i, name, arch, t->name);
    int same = hdr[0] == t->ndim;
    for (int k = 0; k < 4 && same; k++) same = hdr[1 + k] == (k < t->ndim ? t->shape[k] : 1);
    if (!same) {
        char want[64], got[64];
        fmt_shape(want, sizeof want, t->ndim, t->shape);
        fmt_shape(got, sizeof got, hdr[0] >= 1 && hdr[0] <= 4 ? hdr[0] : 4, hdr + 1);
        return mq_err(MIXQ_ERR_FORMAT, "'%s': tensor '%s' has shape %s, expected %s", path, name, got, want);
    }
    return MIXQ_OK;
}

/* Before anything is allocated for the model a header declares (a 76-byte header can declare
 * gigabytes of tensors, issue 15), the tensors must fit in what follows the header in the file:
 * each is a name, ndim + four dims and its data; after them come at least the section count, the
 * end marker and the checksum. The tensor headers present are checked on the way (seeking over
 * the data), so a changed shape is still reported as such. A file that is not a regular file is
 * read as it comes. The stream is left where it was. */
static mixq_status check_declared(FILE *f, const char *path, const mixq_model *m, const char *arch,
                                  const int32_t dims[4], float width) {
    struct stat sb;
    off_t at = ftello(f);
    if (at < 0 || fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) return MIXQ_OK;
    uint64_t size = sb.st_size > 0 ? (uint64_t)sb.st_size : 0, off = (uint64_t)at, need = 12;
    mixq_status st = MIXQ_OK;
    for (int i = 0; i < m->n_tensors; i++) {
        const mq_tensor *t = &m->tensors[i];
        uint64_t data = (uint64_t)t->numel * sizeof(float);
        need += MIXQ_NAME_MAX + 5 * 4 + data;
        if (st || off + MIXQ_NAME_MAX + 5 * 4 > size) continue;
        char name[MIXQ_NAME_MAX + 1] = {0};
        int32_t hdr[5];
        if (fseeko(f, (off_t)off, SEEK_SET) || fread(name, 1, MIXQ_NAME_MAX, f) != MIXQ_NAME_MAX ||
            fread(hdr, sizeof hdr, 1, f) != 1)
            break;
        st = tensor_header_check(path, arch, i, t, name, hdr);
        off += MIXQ_NAME_MAX + 5 * 4 + data;
    }
    if (fseeko(f, at, SEEK_SET) && !st)
        st = mq_err(MIXQ_ERR_IO, "'%s': cannot seek (%s)", path, strerror(errno));
    uint64_t have = size - (uint64_t)at;
    if (!st && need > have)
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' is truncated or corrupt: its header declares '%s' (%dx%dx%d, %d classes, "
                    "width %g) whose %d tensors take %llu bytes, but %llu bytes follow the header; hint: the file "
                    "is incomplete, write it again (mixq train ... --out FILE)", path, arch, dims[0], dims[1],
                    dims[2], dims[3], (double)width, m->n_tensors, (unsigned long long)need,
                    (unsigned long long)have);
    return st;
}

#define RD(p, n, what)                      \
    do {                                    \
        if ((st = rd(&r, (p), (n), (what)))) goto fail; \
    } while (0)

mixq_status mixq_model_load(const char *path, mixq_model **out) {
    if (!out || !path) return mq_err(MIXQ_ERR_ARG, "mixq_model_load: NULL argument");
    *out = NULL;
    size_t pl = strlen(path);
    if (pl > 5 && !strcmp(path + pl - 5, ".onnx")) return mixq_model_import_onnx(path, out);
    FILE *f = mq_fopen(path, "rb");
    if (!f && access(path, F_OK) != 0 && errno == ENOENT) {
        /* name the architecture when the file is named after one (runs/resnet20.mixq) */
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path, *arch = "ARCH";
        for (const char *const *a = mixq_model_archs(); *a; a++)
            if (!strncmp(base, *a, strlen(*a))) arch = *a;
        return mq_err(MIXQ_ERR_IO, "model file '%s' does not exist; hint: train it first: mixq train "
                      "--model %s --data fashion-mnist --out %s", path, arch, path);
    }
    if (!f) return MIXQ_ERR_IO;
    rctx r = {.f = f, .path = path, .crc = crc32(0L, Z_NULL, 0)};
    mixq_model *m = NULL;
    mixq_status st;
    char magic[8];
    uint32_t ver, nt, nsec;
    char arch[33] = {0};
    int32_t dims[4];
    float width;
    uint64_t seed;
    unsigned char *policy_text = NULL, *qstate = NULL;
    char *graph = NULL;
    size_t policy_len = 0, qstate_len = 0;
    RD(magic, 8, "magic");
    if (memcmp(magic, MODEL_MAGIC, 8) != 0) {
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' is not a mixq model file (bad magic); hint: create one "
                    "with `mixq train ... --out FILE`", path);
        goto fail;
    }
    RD(&ver, 4, "version");
    if (ver != MODEL_VERSION && ver != MODEL_VERSION_GRAPH) {
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' is model format version %u; this mixq reads versions %u and %u",
                    path, ver, MODEL_VERSION, MODEL_VERSION_GRAPH);
        goto fail;
    }
    RD(arch, 32, "architecture");
    RD(dims, sizeof dims, "input shape");
    RD(&width, 4, "width");
    RD(&seed, 8, "seed");
    if (ver == MODEL_VERSION_GRAPH) {
        uint32_t gl;
        RD(&gl, 4, "graph length");
        if (gl < 12 || gl > (1u << 24)) {
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': graph description of %u bytes (corrupt)", path, gl);
            goto fail;
        }
        if (!(graph = mq_malloc((size_t)gl + 1, 1, "graph description"))) {
            st = MIXQ_ERR_NOMEM;
            goto fail;
        }
        RD(graph, gl, "graph description");
        graph[gl] = 0;
    }
    RD(&nt, 4, "tensor count");
    if (memchr(arch, 0, 32) == NULL) {
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': architecture name is not terminated (corrupt header)",
                    path);
        goto fail;
    }
    mixq_model_config cfg = {.arch = arch, .in_c = dims[0], .in_h = dims[1], .in_w = dims[2],
                             .classes = dims[3], .width = width, .seed = seed};
    /* laid out, not allocated: what the header declares is checked against the file first */
    st = graph ? mq_graph_plan(graph, &cfg, path, &m) : mq_zoo_plan(&cfg, &m);
    if (st) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", mixq_last_error());
        st = st == MIXQ_ERR_NOMEM ? mq_err(st, "'%s': %s", path, msg)
                                  : mq_err(MIXQ_ERR_FORMAT, "'%s': header describes a model mixq cannot build: %s", path, msg);
        goto fail;
    }
    if ((int)nt != m->n_tensors) {
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' holds %u tensors but architecture '%s' (%dx%dx%d, %d "
                    "classes) has %d", path, nt, arch, dims[0], dims[1], dims[2], dims[3],
                    m->n_tensors);
        goto fail;
    }
    if ((st = check_declared(f, path, m, arch, dims, width))) goto fail;
    if ((st = mq_model_alloc(m))) goto fail;
    for (int i = 0; i < m->n_tensors; i++) {
        const mq_tensor *t = &m->tensors[i];
        char name[MIXQ_NAME_MAX + 1] = {0};
        int32_t hdr[5];
        RD(name, MIXQ_NAME_MAX, "tensor name");
        RD(hdr, sizeof hdr, "tensor shape");
        if ((st = tensor_header_check(path, arch, i, t, name, hdr))) goto fail;
        float *data = mq_tensor_ptr(m, i);
        RD(data, (size_t)t->numel * sizeof(float), t->name);
        for (int64_t k = 0; k < t->numel; k++)
            if (!isfinite(data[k])) {
                st = mq_err(MIXQ_ERR_NUMERIC, "'%s': tensor '%s' holds a non-finite value at "
                            "index %lld", path, name, (long long)k);
                goto fail;
            }
    }
    RD(&nsec, 4, "section count");
    if (nsec > 64) {
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': %u sections (corrupt)", path, nsec);
        goto fail;
    }
    for (uint32_t s = 0; s < nsec; s++) {
        char tag[17] = {0};
        uint64_t len;
        RD(tag, 16, "section tag");
        RD(&len, 8, "section length");
        if (len > ((uint64_t)1 << 28)) {
            st = mq_err(MIXQ_ERR_FORMAT, "'%s': section %u claims %llu bytes (corrupt)", path, s,
                        (unsigned long long)len);
            goto fail;
        }
        unsigned char *buf = mq_malloc((size_t)len + 1, 1, "model file section");
        if (!buf) {
            st = MIXQ_ERR_NOMEM;
            goto fail;
        }
        if ((st = rd(&r, buf, (size_t)len, "section data"))) {
            free(buf);
            goto fail;
        }
        if (!strcmp(tag, "policy") && !policy_text) {
            policy_text = buf;
            policy_len = (size_t)len;
        } else if (!strcmp(tag, "qstate") && !qstate) {
            qstate = buf;
            qstate_len = (size_t)len;
        } else if (!strcmp(tag, "preprocess")) {
            char origin[4200];
            snprintf(origin, sizeof origin, "'%s' (input preprocessing)", path);
            st = mq_pp_parse_json((const char *)buf, (size_t)len, origin, &m->pp);
            if (!st) st = mixq_model_set_preprocess(m, &m->pp);
            free(buf);
            if (st) goto fail;
        } else if (!strcmp(tag, "holdout")) {
            char origin[4200];
            snprintf(origin, sizeof origin, "'%s' (held-out split)", path);
            mixq_holdout h;
            st = mq_holdout_parse_json((const char *)buf, (size_t)len, origin, &h);
            if (!st) st = mixq_model_set_holdout(m, &h);
            free(buf);
            if (st) goto fail;
        } else {
            free(buf); /* unknown sections are skipped (forward compatibility) */
        }
    }
    char end[4];
    RD(end, 4, "end marker");
    if (memcmp(end, MODEL_END, 4) != 0) {
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': end marker missing (corrupt or from another version)",
                    path);
        goto fail;
    }
    uint32_t want_crc = (uint32_t)r.crc, crc;
    if ((st = mq_fread(&crc, 4, f, path, "checksum"))) goto fail;
    if (crc != want_crc) {
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': checksum mismatch (file corrupt)", path);
        goto fail;
    }
    if (fgetc(f) != EOF) {
        st = mq_err(MIXQ_ERR_FORMAT, "'%s': unexpected bytes after the end of the model", path);
        goto fail;
    }
    if (policy_text) {
        mixq_policy *p = NULL;
        char origin[4200];
        snprintf(origin, sizeof origin, "%s (embedded policy)", path);
        if (!(st = mixq_policy_parse((const char *)policy_text, policy_len, origin, &p)))
            st = mixq_model_quantize(m, p);
        mixq_policy_free(p);
        if (!st && qstate) st = mq_quant_state_load(m, qstate, qstate_len, path);
        if (st) goto fail;
    }
    free(policy_text);
    free(qstate);
    free(graph);
    fclose(f);
    *out = m;
    return MIXQ_OK;
fail:
    free(policy_text);
    free(qstate);
    free(graph);
    fclose(f);
    mixq_model_free(m);
    return st;
}

/* ------------------------------------------------------------------ in-memory copy */

mixq_status mixq_model_clone(const mixq_model *src, mixq_model **out) {
    if (!src || !out) return mq_err(MIXQ_ERR_ARG, "mixq_model_clone: NULL argument");
    *out = NULL;
    mixq_model_config cfg = src->cfg;
    cfg.arch = src->arch;
    mixq_model *m = NULL;
    char *graph = NULL;
    mixq_status st = MIXQ_OK;
    if (src->custom_graph && !(graph = mq_graph_text(src))) st = MIXQ_ERR_NOMEM;
    if (!st) st = graph ? mq_graph_build(graph, &cfg, src->arch, &m) : mq_zoo_build(&cfg, &m);
    free(graph);
    if (!st && (m->n_params != src->n_params || m->n_buffers != src->n_buffers))
        st = mq_err(MIXQ_ERR_STATE, "mixq_model_clone: '%s' rebuilt with another layout", src->arch);
    if (!st) {
        memcpy(m->params, src->params, sizeof(float) * src->n_params);
        memcpy(m->buffers, src->buffers, sizeof(float) * src->n_buffers);
        m->params_version++;
        m->pp = src->pp;
        m->pp_recorded = src->pp_recorded;
        m->holdout = src->holdout;
        m->has_holdout = src->has_holdout;
    }
    if (!st && mixq_model_is_quantized(src)) { /* the same policy, scales and clips, as a save and load would give */
        unsigned char *qs = NULL;
        size_t qlen = 0;
        st = mixq_model_quantize(m, mixq_model_policy(src));
        if (!st) st = mq_quant_state_save(src, &qs, &qlen);
        if (!st && qs) st = mq_quant_state_load(m, qs, qlen, src->arch);
        free(qs);
    }
    if (st) {
        mixq_model_free(m);
        return st;
    }
    *out = m;
    return MIXQ_OK;
}
