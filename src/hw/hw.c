/* Hardware targets: JSON descriptions, presets, the memo cache, per-kernel grouping and the
 * model -> layer mapping (see hw.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw.h"

#define HW_VERSION 1

/* ------------------------------------------------------------------ JSON helpers */

static mixq_status jerr(const mq_jctx *c, const char *path, const char *key, const char *what) {
    return mq_err(MIXQ_ERR_FORMAT, "%s: field '%s%s%s' %s", c->origin, path, *path ? "." : "", key,
                  what);
}

mixq_status mq_j_obj(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                     const cJSON **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return jerr(c, path, key, "is missing (expected an object)");
    if (!cJSON_IsObject(v)) return jerr(c, path, key, "must be an object");
    *out = v;
    return MIXQ_OK;
}

int mq_j_int_in(const cJSON *v, long long lo, long long hi, long long *out) {
    /* compared as doubles, so a huge, infinite or fractional value is never cast to an integer */
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        !(v->valuedouble >= (double)lo && v->valuedouble <= (double)hi))
        return 0;
    *out = (long long)v->valuedouble;
    return 1;
}

mixq_status mq_j_int_value(const mq_jctx *c, const cJSON *v, const char *path, const char *key, long long lo,
                           long long hi, long long *out) {
    char what[160];
    if (mq_j_int_in(v, lo, hi, out)) return MIXQ_OK;
    if (!cJSON_IsNumber(v)) snprintf(what, sizeof what, "must be an integer in [%lld, %lld]", lo, hi);
    else snprintf(what, sizeof what, "is %.15g; it must be an integer in [%lld, %lld]", v->valuedouble, lo, hi);
    return jerr(c, path, key, what);
}

static mixq_status j_int(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                         long long lo, long long hi, long long *out, int opt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return opt ? MIXQ_OK : jerr(c, path, key, "is missing (expected an integer)");
    return mq_j_int_value(c, v, path, key, lo, hi, out);
}
mixq_status mq_j_int(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                     long long lo, long long hi, long long *out) {
    return j_int(c, o, path, key, lo, hi, out, 0);
}
mixq_status mq_j_int_opt(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                         long long lo, long long hi, long long *out) {
    return j_int(c, o, path, key, lo, hi, out, 1);
}

static mixq_status j_num(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                         double lo, double hi, double *out, int opt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return opt ? MIXQ_OK : jerr(c, path, key, "is missing (expected a number)");
    char what[128];
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi) {
        snprintf(what, sizeof what, "must be a number in [%g, %g]", lo, hi);
        return jerr(c, path, key, what);
    }
    *out = v->valuedouble;
    return MIXQ_OK;
}
mixq_status mq_j_num(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                     double lo, double hi, double *out) {
    return j_num(c, o, path, key, lo, hi, out, 0);
}
mixq_status mq_j_num_opt(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                         double lo, double hi, double *out) {
    return j_num(c, o, path, key, lo, hi, out, 1);
}

static mixq_status j_str(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                         const char **out, int opt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return opt ? MIXQ_OK : jerr(c, path, key, "is missing (expected a string)");
    if (!cJSON_IsString(v)) return jerr(c, path, key, "must be a string");
    *out = v->valuestring;
    return MIXQ_OK;
}
mixq_status mq_j_str(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                     const char **out) {
    return j_str(c, o, path, key, out, 0);
}
mixq_status mq_j_str_opt(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                         const char **out) {
    return j_str(c, o, path, key, out, 1);
}

mixq_status mq_j_bool_opt(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                          int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return MIXQ_OK;
    if (!cJSON_IsBool(v)) return jerr(c, path, key, "must be true or false");
    *out = cJSON_IsTrue(v);
    return MIXQ_OK;
}

mixq_status mq_j_keys(const mq_jctx *c, const cJSON *o, const char *path,
                      const char *const *allowed) {
    for (const cJSON *it = o->child; it; it = it->next) {
        if (!it->string || it->string[0] == '_' || !strcmp(it->string, "comment")) continue;
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(*a, it->string);
        if (!ok) {
            char list[512] = "";
            for (const char *const *a = allowed; *a; a++) {
                size_t n = strlen(list);
                snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *a);
            }
            return mq_err(MIXQ_ERR_FORMAT, "%s: unknown field '%s%s%s'; hint: known fields here: %s",
                          c->origin, path, *path ? "." : "", it->string, list);
        }
    }
    return MIXQ_OK;
}

/* ------------------------------------------------------------------ layers */

mixq_status mq_hwl_from(const mixq_hw_layer *l, int default_batch, mq_hwl *o) {
    memset(o, 0, sizeof *o);
    const char *nm = l->name ? l->name : "(unnamed)";
    o->name = nm;
    o->index = l->index;
    o->fc = l->fc != 0;
    o->B = l->batch > 0 ? l->batch : default_batch;
    if (l->batch < 0 || o->B < 1)
        return mq_err(MIXQ_ERR_ARG, "layer '%s': batch %d must be positive", nm, l->batch);
    o->C = l->in_c, o->K = l->out_c;
    if (o->C < 1 || o->K < 1)
        return mq_err(MIXQ_ERR_SHAPE, "layer '%s': channels in %d, out %d must be positive", nm,
                      l->in_c, l->out_c);
    if (o->fc) {
        o->H = o->W = o->Ho = o->Wo = o->R = o->S = o->stride = o->g = 1;
        o->is_first = l->is_first;
        return MIXQ_OK;
    }
    o->H = l->in_h, o->W = l->in_w, o->R = l->kh, o->S = l->kw;
    o->stride = l->stride ? l->stride : 1;
    o->pad = l->pad;
    o->g = l->groups ? l->groups : 1;
    o->is_first = l->is_first;
    if (o->H < 1 || o->W < 1 || o->R < 1 || o->S < 1 || o->stride < 1 || o->pad < 0)
        return mq_err(MIXQ_ERR_SHAPE,
                      "layer '%s': input %dx%d, kernel %dx%d, stride %d, pad %d (sizes must be "
                      "positive)",
                      nm, l->in_h, l->in_w, l->kh, l->kw, l->stride, l->pad);
    if (o->g < 1 || o->C % o->g || o->K % o->g)
        return mq_err(MIXQ_ERR_SHAPE, "layer '%s': %d groups do not divide %d in / %d out channels",
                      nm, l->groups, l->in_c, l->out_c);
    o->Ho = l->out_h ? l->out_h : (o->H + 2 * o->pad - o->R) / o->stride + 1;
    o->Wo = l->out_w ? l->out_w : (o->W + 2 * o->pad - o->S) / o->stride + 1;
    if (o->Ho < 1 || o->Wo < 1 || l->out_h < 0 || l->out_w < 0)
        return mq_err(MIXQ_ERR_SHAPE, "layer '%s': output %lldx%lld is empty", nm,
                      (long long)o->Ho, (long long)o->Wo);
    return MIXQ_OK;
}

static void proxies(const mq_hwl *l, int w, int a, mixq_cost *c) {
    double weights = l->fc ? (double)l->C * (double)l->K
                           : (double)l->K * (double)(l->C / l->g) * (double)(l->R * l->S);
    double per_image = l->fc ? weights : weights * (double)(l->Ho * l->Wo);
    c->macs = per_image * (double)l->B;
    c->bitops = c->macs * w * a;
    c->size_bits = weights * w;
}

/* ------------------------------------------------------------------ proxies as back-ends */

static mixq_status proxy_parse(mixq_hw *hw, const mq_jctx *c, const cJSON *root) {
    (void)hw, (void)c, (void)root;
    return MIXQ_OK;
}
/* "cycles" of a proxy target are the proxy itself, so a budget on latency and one on size or
 * BitOps are expressed the same way. */
static mixq_status size_cost(const mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *o) {
    (void)hw;
    proxies(l, w, a, o);
    o->cycles = o->compute_cycles = o->size_bits;
    return MIXQ_OK;
}
static mixq_status bitops_cost(const mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *o) {
    (void)hw;
    proxies(l, w, a, o);
    o->cycles = o->compute_cycles = o->bitops;
    return MIXQ_OK;
}
const mq_hw_backend mq_hw_size = {"size", proxy_parse, size_cost, NULL, 0, NULL, NULL};
const mq_hw_backend mq_hw_bitops = {"bitops", proxy_parse, bitops_cost, NULL, 0, NULL, NULL};

static const mq_hw_backend *const backends[] = {&mq_hw_bitfusion, &mq_hw_bismo, &mq_hw_stripes,
                                                &mq_hw_loom,      &mq_hw_dadn,  &mq_hw_table,
                                                &mq_hw_size,      &mq_hw_bitops, &mq_hw_cpu};

/* ------------------------------------------------------------------ create / free */

void mixq_hw_free(mixq_hw *hw) {
    if (!hw) return;
    if (hw->be && hw->be->free_impl) hw->be->free_impl(hw->impl);
    free(hw->text);
    free(hw->cache);
    pthread_mutex_destroy(&hw->lock);
    free(hw);
}

static mixq_hw *hw_new(void) {
    mixq_hw *hw = mq_calloc(1, sizeof *hw, "hardware target");
    if (hw) pthread_mutex_init(&hw->lock, NULL);
    return hw;
}

mixq_status mixq_hw_parse(const char *json, size_t len, const char *origin, const char *dir,
                          mixq_hw **out) {
    *out = NULL;
    if (!origin) origin = "hardware description";
    mq_jctx c = {origin, dir};
    int oom;
    cJSON *root = mq_json_parse(json, len, NULL, &oom);
    if (oom) return MIXQ_ERR_NOMEM;
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        int line = 1;
        if (e)
            for (const char *p = json; p < e && p < json + len; p++) line += *p == '\n';
        return mq_err(MIXQ_ERR_FORMAT, "%s: line %d: not valid JSON; hint: check commas and quotes",
                      origin, line);
    }
    mixq_hw *hw = hw_new();
    mixq_status st = hw ? MIXQ_OK : MIXQ_ERR_NOMEM;
    static const char *const keys[] = {"mixq_hw", "name",      "description", "backend",
                                       "batch",   "freq_hz",   "bits",        "bitfusion",
                                       "bismo",   "serial",    "table",       "energy",
                                       "cpu",     NULL};
    long long ver = 0, batch = 1, bmin = 1, bmax = 8;
    double freq = 0;
    const char *name = NULL, *desc = "", *bename = NULL;
    if (!st && !cJSON_IsObject(root))
        st = mq_err(MIXQ_ERR_FORMAT, "%s: the top level must be a JSON object", origin);
    if (!st) st = mq_j_keys(&c, root, "", keys);
    if (!st) st = mq_j_int(&c, root, "", "mixq_hw", 1, 1000, &ver);
    if (!st && ver != HW_VERSION)
        st = mq_err(MIXQ_ERR_FORMAT, "%s: \"mixq_hw\": %lld is not a version this build reads (%d)",
                    origin, ver, HW_VERSION);
    if (!st) st = mq_j_str(&c, root, "", "name", &name);
    if (!st) st = mq_j_str_opt(&c, root, "", "description", &desc);
    if (!st) st = mq_j_str(&c, root, "", "backend", &bename);
    if (!st) st = mq_j_int(&c, root, "", "batch", 1, 1 << 20, &batch);
    if (!st) st = mq_j_num(&c, root, "", "freq_hz", 1, 1e13, &freq);
    if (!st) {
        const cJSON *b = NULL;
        static const char *const bkeys[] = {"min", "max", NULL};
        st = mq_j_obj(&c, root, "", "bits", &b);
        if (!st) st = mq_j_keys(&c, b, "bits", bkeys);
        if (!st) st = mq_j_int(&c, b, "bits", "min", 1, 32, &bmin);
        if (!st) st = mq_j_int(&c, b, "bits", "max", 1, 32, &bmax);
        if (!st && bmin > bmax)
            st = mq_err(MIXQ_ERR_FORMAT, "%s: field 'bits': min %lld > max %lld", origin, bmin, bmax);
    }
    if (!st) {
        for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
            if (!strcmp(backends[i]->name, bename)) hw->be = backends[i];
        if (!hw->be)
            st = mq_err(MIXQ_ERR_FORMAT,
                        "%s: field 'backend': unknown back-end '%s'; hint: one of bitfusion, bismo, "
                        "stripes, loom, dadn, table, cpu, size, bitops",
                        origin, bename);
    }
    if (!st) {
        snprintf(hw->name, sizeof hw->name, "%s", name);
        snprintf(hw->description, sizeof hw->description, "%s", desc);
        hw->batch = (int)batch;
        hw->freq_hz = freq;
        hw->min_bits = (int)bmin, hw->max_bits = (int)bmax;
        st = hw->be->parse(hw, &c, root);
    }
    if (!st) {
        hw->text = mq_malloc(len + 1, 1, "hardware description text");
        if (!hw->text) st = MIXQ_ERR_NOMEM;
        else {
            memcpy(hw->text, json, len);
            hw->text[len] = 0;
        }
    }
    cJSON_Delete(root);
    if (st) {
        mixq_hw_free(hw);
        return st;
    }
    *out = hw;
    return MIXQ_OK;
}

static const char *preset_names[65];
static pthread_once_t preset_once = PTHREAD_ONCE_INIT;
static void init_preset_names(void) {
    int n = mq_hw_preset_count < 64 ? mq_hw_preset_count : 64;
    for (int i = 0; i < n; i++) preset_names[i] = mq_hw_preset_list[i].name;
    preset_names[n] = NULL;
}
const char *const *mixq_hw_presets(void) {
    pthread_once(&preset_once, init_preset_names);
    return preset_names;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

mixq_status mq_hw_table_from_file(const char *path, mixq_hw **out);

/* A JSON description from a file; relative paths in it resolve against its directory. With
 * missing != NULL, *missing says whether the file does not exist. */
static mixq_status load_json_file(const char *path, mixq_hw **out, int *missing) {
    size_t len = 0;
    char *text = NULL;
    mixq_status rst = mq_read_file(path, (size_t)64 << 20, "hardware description", &text, &len,
                                   missing);
    if (rst) return rst;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    mixq_status st = mixq_hw_parse(text, len, path, dir, out);
    free(text);
    return st;
}

/* `cpu`: this machine's measured table (src/hw/cpu.c), written by `mixq calibrate-cpu`, from
 * $MIXQ_CPU_TABLE or ./mixq-cpu.json. Not a preset: there is nothing to embed. */
static mixq_status load_measured_cpu(mixq_hw **out) {
    const char *env = getenv("MIXQ_CPU_TABLE");
    const char *path = env && *env ? env : "mixq-cpu.json";
    int missing = 0;
    mixq_status st = load_json_file(path, out, &missing);
    if (st && missing)
        return mq_err(MIXQ_ERR_NOTFOUND,
                      "hardware 'cpu': no measured table at '%s'%s; hint: run `mixq calibrate-cpu "
                      "--model M.mixq` first (it writes mixq-cpu.json), or set MIXQ_CPU_TABLE",
                      path, env && *env ? " (from MIXQ_CPU_TABLE)" : "");
    if (st) return st;
    if ((*out)->be != &mq_hw_cpu) {
        mixq_status e = mq_err(MIXQ_ERR_FORMAT,
                               "hardware 'cpu': '%s' is a '%s' description, not a measured cpu "
                               "table; hint: point MIXQ_CPU_TABLE at the file `mixq calibrate-cpu` "
                               "wrote",
                               path, (*out)->be->name);
        mixq_hw_free(*out);
        *out = NULL;
        return e;
    }
    return MIXQ_OK;
}

mixq_status mixq_hw_load(const char *spec, mixq_hw **out) {
    *out = NULL;
    if (!spec || !*spec) return mq_err(MIXQ_ERR_ARG, "no hardware target given");
    for (int i = 0; i < mq_hw_preset_count; i++)
        if (!strcmp(mq_hw_preset_list[i].name, spec)) {
            char origin[96];
            snprintf(origin, sizeof origin, "preset '%s'", spec);
            return mixq_hw_parse(mq_hw_preset_list[i].json, strlen(mq_hw_preset_list[i].json),
                                 origin, NULL, out);
        }
    if (!strcmp(spec, "cpu")) return load_measured_cpu(out);
    if (ends_with(spec, ".npy") || ends_with(spec, ".csv")) return mq_hw_table_from_file(spec, out);
    if (!strchr(spec, '/') && !ends_with(spec, ".json")) {
        char list[1024] = "";
        const char *names[64];
        int k = 0;
        for (int i = 0; i < mq_hw_preset_count; i++) {
            size_t n = strlen(list);
            snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", mq_hw_preset_list[i].name);
            if (k < 63) names[k++] = mq_hw_preset_list[i].name;
        }
        names[k++] = "cpu";
        return mq_err(MIXQ_ERR_NOTFOUND,
                      "unknown hardware target '%s'; %shint: a preset (%s), cpu (this machine, "
                      "measured by `mixq calibrate-cpu`), a .json description, or a .npy/.csv "
                      "lookup table",
                      spec, mq_did_you_mean(spec, names, k), list);
    }
    return load_json_file(spec, out, NULL);
}

const char *mixq_hw_name(const mixq_hw *hw) { return hw->name; }
const char *mixq_hw_backend(const mixq_hw *hw) { return hw->be->name; }
const char *mixq_hw_description(const mixq_hw *hw) { return hw->description; }
const char *mixq_hw_text(const mixq_hw *hw) { return hw->text ? hw->text : ""; }
int mixq_hw_batch(const mixq_hw *hw) { return hw->batch; }
double mixq_hw_freq(const mixq_hw *hw) { return hw->freq_hz; }
void mixq_hw_bits(const mixq_hw *hw, int *lo, int *hi) {
    if (lo) *lo = hw->min_bits;
    if (hi) *hi = hw->max_bits;
}

/* ------------------------------------------------------------------ cost, memoised */

static void cache_key(const mq_hwl *l, int w, int a, int variant, uint64_t k[8]) {
    k[0] = (uint64_t)l->B << 32 | (uint64_t)(uint32_t)l->index;
    k[1] = (uint64_t)l->C << 32 | (uint64_t)l->K;
    k[2] = (uint64_t)l->H << 32 | (uint64_t)l->W;
    k[3] = (uint64_t)l->Ho << 32 | (uint64_t)l->Wo;
    k[4] = (uint64_t)l->R << 32 | (uint64_t)l->S;
    k[5] = (uint64_t)l->stride << 32 | (uint64_t)l->pad;
    k[6] = (uint64_t)l->g << 32 | (uint64_t)(l->fc | l->is_first << 1 | variant << 2);
    k[7] = (uint64_t)w << 32 | (uint64_t)a;
}

static size_t key_hash(const uint64_t k[8]) {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 8; i++) {
        h ^= k[i];
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    return (size_t)h;
}

static int cache_find(mixq_hw *hw, const uint64_t k[8], mixq_cost *out) {
    if (!hw->cache) return 0;
    size_t mask = hw->cache_cap - 1;
    for (size_t i = key_hash(k) & mask;; i = (i + 1) & mask) {
        mq_hw_cache_entry *e = &hw->cache[i];
        if (!e->used) return 0;
        if (!memcmp(e->key, k, sizeof e->key)) {
            *out = e->cost;
            return 1;
        }
    }
}

static void cache_put(mixq_hw *hw, const uint64_t k[8], const mixq_cost *c) {
    if ((hw->cache_used + 1) * 2 > hw->cache_cap) {
        size_t ncap = hw->cache_cap ? hw->cache_cap * 2 : 1024;
        mq_hw_cache_entry *nc = calloc(ncap, sizeof *nc);
        if (!nc) return; /* memoising is an optimisation: without memory, just recompute */
        for (size_t i = 0; i < hw->cache_cap; i++) {
            if (!hw->cache[i].used) continue;
            size_t j = key_hash(hw->cache[i].key) & (ncap - 1);
            while (nc[j].used) j = (j + 1) & (ncap - 1);
            nc[j] = hw->cache[i];
        }
        free(hw->cache);
        hw->cache = nc, hw->cache_cap = ncap;
    }
    size_t mask = hw->cache_cap - 1, i = key_hash(k) & mask;
    while (hw->cache[i].used) {
        if (!memcmp(hw->cache[i].key, k, sizeof hw->cache[i].key)) return;
        i = (i + 1) & mask;
    }
    memcpy(hw->cache[i].key, k, sizeof hw->cache[i].key);
    hw->cache[i].cost = *c;
    hw->cache[i].used = 1;
    hw->cache_used++;
}

mixq_status mq_hw_memo(const mixq_hw *chw, const mq_hwl *l, int w, int a, int variant,
                       mq_cost_fn fn, mixq_cost *out) {
    /* the cache is the mutable part of a target (every mixq_hw is allocated non-const) */
    mixq_hw *hw = (mixq_hw *)(uintptr_t)chw;
    uint64_t k[8];
    cache_key(l, w, a, variant, k);
    pthread_mutex_lock(&hw->lock);
    int hit = cache_find(hw, k, out);
    pthread_mutex_unlock(&hw->lock);
    if (hit) return MIXQ_OK;
    memset(out, 0, sizeof *out);
    out->w_bits = w, out->a_bits = a;
    mixq_status st = fn(chw, l, w, a, out);
    if (st) return st;
    pthread_mutex_lock(&hw->lock);
    cache_put(hw, k, out);
    pthread_mutex_unlock(&hw->lock);
    return MIXQ_OK;
}

/* Derived fields: latency from cycles (unless the back-end measured it), DRAM bytes. */
static void cost_finish(const mixq_hw *hw, mixq_cost *out) {
    if (out->latency_s == 0) out->latency_s = out->cycles / hw->freq_hz;
    out->dram_bytes = (out->dram_read_bits + out->dram_write_bits) / 8.0;
}

static mixq_status bits_check(const mixq_hw *hw, const mq_hwl *l, int w, int a) {
    if (w < hw->min_bits || w > hw->max_bits || a < hw->min_bits || a > hw->max_bits)
        return mq_err(MIXQ_ERR_UNSUPPORTED,
                      "layer '%s': %s runs %d..%d-bit operands, not w%d/a%d; hint: pin the layer to "
                      "a supported width in the policy",
                      l->name, hw->name, hw->min_bits, hw->max_bits, w, a);
    return MIXQ_OK;
}

static mixq_status cost_norm(mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *out) {
    memset(out, 0, sizeof *out);
    mixq_status st = bits_check(hw, l, w, a);
    if (st) return st;
    if (hw->be->memoise) {
        st = mq_hw_memo(hw, l, w, a, 0, hw->be->cost, out);
    } else {
        out->w_bits = w, out->a_bits = a;
        st = hw->be->cost(hw, l, w, a, out);
    }
    if (st) return st;
    proxies(l, w, a, out);
    cost_finish(hw, out);
    return MIXQ_OK;
}

mixq_status mixq_hw_cost(mixq_hw *hw, const mixq_hw_layer *layer, int w, int a, mixq_cost *out) {
    if (!hw || !layer || !out) return mq_err(MIXQ_ERR_ARG, "mixq_hw_cost: NULL argument");
    mq_hwl l;
    mixq_status st = mq_hwl_from(layer, hw->batch, &l);
    if (st) return st;
    return cost_norm(hw, &l, w, a, out);
}

void mixq_cost_add(mixq_cost *a, const mixq_cost *b) {
    a->cycles += b->cycles;
    a->compute_cycles += b->compute_cycles;
    a->stall_cycles += b->stall_cycles;
    a->latency_s += b->latency_s;
    a->energy_j += b->energy_j;
    a->e_compute_j += b->e_compute_j;
    a->e_sram_j += b->e_sram_j;
    a->e_dram_j += b->e_dram_j;
    a->dram_read_bits += b->dram_read_bits;
    a->dram_write_bits += b->dram_write_bits;
    a->dram_bytes += b->dram_bytes;
    a->wbuf_read_bits += b->wbuf_read_bits;
    a->wbuf_write_bits += b->wbuf_write_bits;
    a->ibuf_read_bits += b->ibuf_read_bits;
    a->ibuf_write_bits += b->ibuf_write_bits;
    a->obuf_read_bits += b->obuf_read_bits;
    a->obuf_write_bits += b->obuf_write_bits;
    a->macs += b->macs;
    a->bitops += b->bitops;
    a->size_bits += b->size_bits;
    a->w_bits = MQ_MAX(a->w_bits, b->w_bits);
    a->a_bits = MQ_MAX(a->a_bits, b->a_bits);
    a->flags |= b->flags;
}

static void cost_scale(mixq_cost *c, double s) {
    double *f[] = {&c->cycles, &c->compute_cycles, &c->stall_cycles, &c->latency_s, &c->energy_j,
                   &c->e_compute_j, &c->e_sram_j, &c->e_dram_j, &c->dram_read_bits,
                   &c->dram_write_bits, &c->dram_bytes, &c->wbuf_read_bits, &c->wbuf_write_bits,
                   &c->ibuf_read_bits, &c->ibuf_write_bits, &c->obuf_read_bits,
                   &c->obuf_write_bits, &c->macs, &c->bitops, &c->size_bits};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] *= s;
}

mixq_status mixq_hw_cost_kernels(mixq_hw *hw, const mixq_hw_layer *layer, const int *kbits,
                                 int a, mixq_cost *out) {
    if (!hw || !layer || !kbits || !out) return mq_err(MIXQ_ERR_ARG, "mixq_hw_cost_kernels: NULL argument");
    mq_hwl l;
    mixq_status st = mq_hwl_from(layer, hw->batch, &l);
    if (st) return st;
    memset(out, 0, sizeof *out);
    /* distinct bit widths, in increasing order */
    int seen[33] = {0};
    for (int64_t k = 0; k < l.K; k++) {
        if (kbits[k] < 1 || kbits[k] > 32)
            return mq_err(MIXQ_ERR_ARG, "layer '%s': kernel %lld has %d bits (expected 1..32)",
                          l.name, (long long)k, kbits[k]);
        seen[kbits[k]]++;
    }
    int widths = 0, hi = 1;
    for (int b = 1; b <= 32; b++)
        if (seen[b]) widths++, hi = b;
    /* Stripes and DaDianNao keep weights bit-parallel at pe_width bits: kernel bits cost nothing,
     * so the layer runs whole, charged at its widest kernel */
    if (hw->be == &mq_hw_stripes || hw->be == &mq_hw_dadn) return cost_norm(hw, &l, hi, a, out);
    /* a back-end that runs mixed widths as one pass (cpu: one bit-serial GEMM whose panels
     * each run at their own width) costs the mix itself */
    if (hw->be->cost_kernels && widths > 1) {
        for (int b = 1; b <= 32; b++)
            if (seen[b] && (st = bits_check(hw, &l, b, a))) return st;
        out->w_bits = hi, out->a_bits = a;
        if ((st = hw->be->cost_kernels(hw, &l, seen, a, out))) {
            memset(out, 0, sizeof *out);
            return st;
        }
        out->macs = out->bitops = out->size_bits = 0;
        for (int b = 1; b <= 32; b++) {
            if (!seen[b]) continue;
            mixq_cost p;
            memset(&p, 0, sizeof p);
            proxies(&l, b, a, &p);
            double share = (double)seen[b] / (double)l.K;
            out->macs += p.macs * share, out->bitops += p.bitops * share;
            out->size_bits += p.size_bits * share;
        }
        out->w_bits = hi, out->a_bits = a;
        cost_finish(hw, out);
        return MIXQ_OK;
    }
    int depthwise = !l.fc && l.g == l.C && l.g == l.K;
    int split = hw->be != &mq_hw_table && (l.g == 1 || depthwise);
    for (int b = 1; b <= 32; b++) {
        if (!seen[b]) continue;
        mixq_cost c;
        if (seen[b] == l.K) return cost_norm(hw, &l, b, a, out);
        if (split) {
            mq_hwl s = l;
            s.K = seen[b];
            if (depthwise) s.C = s.g = seen[b];
            st = cost_norm(hw, &s, b, a, &c);
        } else {
            /* whole-layer entries weighed by the share of kernels at b bits */
            st = cost_norm(hw, &l, b, a, &c);
            if (!st) cost_scale(&c, (double)seen[b] / (double)l.K);
        }
        if (st) return st;
        mixq_cost_add(out, &c);
    }
    return MIXQ_OK;
}

int mq_hw_kernel_rows(const mixq_hw *hw) {
    if (hw->be == &mq_hw_stripes || hw->be == &mq_hw_dadn) return 0;
    const int r = hw->be->kernel_rows ? hw->be->kernel_rows(hw) : 1;
    return r > 0 ? r : 1;
}

/* ------------------------------------------------------------------ model layers */

int mixq_model_hw_layer_count(const mixq_model *m) {
    int n = 0, count = mixq_model_node_count(m);
    for (int i = 0; i < count; i++) {
        mixq_node_info ni;
        if (!mixq_model_node(m, i, &ni) && (ni.op == MIXQ_OP_CONV || ni.op == MIXQ_OP_LINEAR)) n++;
    }
    return n;
}

mixq_status mixq_model_hw_layer(const mixq_model *m, int idx, mixq_hw_layer *out, int *node) {
    int n = 0, count = mixq_model_node_count(m);
    for (int i = 0; i < count; i++) {
        mixq_node_info ni;
        mixq_status st = mixq_model_node(m, i, &ni);
        if (st) return st;
        if (ni.op != MIXQ_OP_CONV && ni.op != MIXQ_OP_LINEAR) continue;
        if (n++ != idx) continue;
        memset(out, 0, sizeof *out);
        out->name = ni.name;
        out->index = idx;
        mixq_node_info src;
        st = mixq_model_node(m, ni.inputs[0], &src);
        if (st) return st;
        out->is_first = src.op == MIXQ_OP_INPUT;
        if (ni.op == MIXQ_OP_LINEAR) {
            out->fc = 1;
            out->in_c = ni.in_c * ni.in_h * ni.in_w;
            out->out_c = ni.out_c;
        } else {
            out->in_c = ni.in_c, out->in_h = ni.in_h, out->in_w = ni.in_w;
            out->out_c = ni.out_c, out->out_h = ni.out_h, out->out_w = ni.out_w;
            out->kh = ni.kh, out->kw = ni.kw, out->stride = ni.stride, out->pad = ni.pad;
            out->groups = ni.groups;
        }
        if (node) *node = i;
        return MIXQ_OK;
    }
    return mq_err(MIXQ_ERR_ARG, "costed layer %d out of range [0, %d)", idx, n);
}
