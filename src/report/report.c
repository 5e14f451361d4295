/* Search reports: one self-contained HTML page (inline SVG + CSS, no script, no network) from
 * one or more search run directories (the files src/search/search.c writes).
 *
 * What each section reads:
 *   runs table      config.json (agent, budget, seed), summary.json (a finished run's results),
 *                   state.json (episodes done while a run is in progress)
 *   Pareto plots    evals.jsonl: every scored candidate, its accuracy and cost ratios (pareto.csv
 *                   only when evals.jsonl is missing: its candidates are then all there is);
 *                   fronts are computed here from the candidates, per agent; the chosen policy
 *                   is best_policy.json's (else the search's rule applied to the candidates);
 *                   uniform W_bA_b costs and W8A8's absolute cost come from the model and target
 *   over time       evals.jsonl's episode numbers
 *   bits per layer  best_policy.json resolved on the model (names, per-kernel bits, MACs)
 *   cost per layer  the model's conv/linear layers costed on the target at the chosen bits
 *   provenance      config.json, summary.json, commands.jsonl (the CLI's invocations)
 * Whatever is missing or malformed becomes a note on the page (and a call of cfg->note); the
 * page is always written. Output is deterministic: no clock, no addresses, file order only.
 * Every string from a file is escaped (and made valid UTF-8) before it reaches the page, and
 * the page is well-formed XML as well as HTML (tests parse it both ways). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/core.h"
#include "hw/hw.h"
#include "quant/policy.h"
#include "report/report.h"
#include "search/env.h"

/* ------------------------------------------------------------------ text buffer */

typedef struct sb {
    char *p;
    size_t n, cap;
    int bad; /* out of memory: everything after is dropped */
} sb;

static void sb_put(sb *b, const char *s, size_t n) {
    if (b->bad) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) {
            b->bad = 1;
            return;
        }
        b->p = q, b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sb *b, const char *s) { sb_put(b, s, strlen(s)); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sb *b, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof buf) {
        sb_put(b, buf, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->bad = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)n);
    free(big);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static int utf8_len(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    int n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    if (n == 3 && s[0] == 0xEF && s[1] == 0xBF && s[2] >= 0xBE) return 0; /* U+FFFE, U+FFFF */
    return n;
}

/* s as HTML/XML text or attribute value: markup characters escaped, control characters and
 * invalid UTF-8 replaced; at most max_chars characters (then an ellipsis; 0: no limit). */
static void sb_escn(sb *b, const char *s, int max_chars) {
    if (!s) return;
    const unsigned char *u = (const unsigned char *)s;
    int chars = 0;
    while (*u) {
        if (max_chars > 0 && chars == max_chars) {
            sb_str(b, "\xE2\x80\xA6"); /* … */
            return;
        }
        chars++;
        int n = utf8_len(u);
        if (n == 0) {
            sb_str(b, "\xEF\xBF\xBD"); /* U+FFFD */
            u++;
            continue;
        }
        if (n > 1) {
            sb_put(b, (const char *)u, (size_t)n);
            u += n;
            continue;
        }
        switch (*u) {
        case '&': sb_str(b, "&amp;"); break;
        case '<': sb_str(b, "&lt;"); break;
        case '>': sb_str(b, "&gt;"); break;
        case '"': sb_str(b, "&quot;"); break;
        case '\'': sb_str(b, "&#39;"); break;
        default:
            if (*u < 0x20 && *u != '\n' && *u != '\t') sb_put(b, "?", 1);
            else sb_put(b, (const char *)u, 1);
        }
        u++;
    }
}

static void sb_esc(sb *b, const char *s) { sb_escn(b, s, 0); }

/* Characters of s that sb_escn would count (for truncation decisions). */
static int text_chars(const char *s) {
    int n = 0;
    for (const unsigned char *u = (const unsigned char *)s; *u; n++) {
        int k = utf8_len(u);
        u += k ? k : 1;
    }
    return n;
}

/* ------------------------------------------------------------------ data */

#define NM MQ_NMETRIC
#define PI 3.14159265358979323846
#define NPAL 8
static const char *const palette[NPAL] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                         "#E69F00", "#56B4E9", "#7F5A00", "#555555"};
static const char *const metric_title[NM] = {"latency", "energy", "model size", "BitOps"};

typedef struct rrec {
    int episode;
    int *w, *a;              /* [L] */
    double acc, reward;      /* reward: NaN when absent */
    int fits;                /* -1: not recorded */
    double ratio[NM];        /* NaN when absent */
    int uw, ua;              /* uniform policy's bits (first/last layers at 8/8 allowed), else 0 */
} rrec;

typedef struct rrun {
    const char *dir;
    char base[128];          /* last path component, for labels */
    cJSON *config, *summary, *state, *pareto_json;
    char *cmds;              /* commands.jsonl text */
    char agent[64];
    rrec *ev;
    int n_ev, cap_ev, L;
    int from_csv;            /* candidates from pareto.csv (evals.jsonl missing) */
    sb notes;                /* <li> items, escaped */
    int n_notes;
    int series;
    double acc0;             /* FP32 accuracy on the scoring subset, NaN */
    double budget[NM];       /* budget / W8A8, 0: none */
    int metric;              /* primary metric */
    int accuracy_mode;
    double max_drop;
    int episodes_total, episodes_done, finished;
    int hw_batch, b_min, b_max, pin_ends;
    /* the model and target (borrowed from the context's caches) */
    const mixq_model *model;
    mixq_hw *hw;
    mq_env env;
    int has_env;
    /* the chosen policy */
    int chosen;              /* index into ev, -1 */
    int nl;                  /* its layers */
    char (*lname)[MIXQ_NAME_MAX];
    char (*lkind)[32];
    int *pw, *pa;            /* [nl] */
    int **kb;                /* [nl] per-kernel bits (NULL where all equal) */
    int *kn;                 /* [nl] kernels */
    double *macs;            /* [nl], -1 unknown */
    mixq_cost *cost;         /* [nl] on the target, NULL if not costed */
    mixq_cost cost8;         /* the same layers at W8A8 (cycles 0: unknown) */
} rrun;

typedef struct cache_ent {
    char *key;  /* a model's path or a target's name */
    void *obj;  /* mixq_model or mixq_hw */
} cache_ent;

typedef struct rctx {
    const mixq_report_config *cfg;
    rrun *runs;
    int n;
    int n_series;
    char (*slabel)[160];
    int *s_runs, *s_cands;
    cache_ent *models, *hws;
    int n_models, n_hws;
    const mixq_model *model0;
    mixq_hw *hw0;
    sb notes;                /* page-wide notes */
    int n_notes;
} rctx;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void note(rctx *c, rrun *r, const char *fmt, ...) {
    char buf[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sb *b = r ? &r->notes : &c->notes;
    sb_str(b, "<li>");
    sb_esc(b, buf);
    sb_str(b, "</li>\n");
    if (r) r->n_notes++;
    else c->n_notes++;
    if (c->cfg->note) c->cfg->note(r ? r->dir : "", buf, c->cfg->user);
}

static const cJSON *jget(const cJSON *o, const char *k) {
    return o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}
static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = jget(o, k);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
}
static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
/* An integer in [lo, hi], else def. */
static int jint(const cJSON *o, const char *k, int lo, int hi, int def) {
    long long v;
    return mq_j_int_in(jget(o, k), lo, hi, &v) ? (int)v : def;
}

static int int_array(const cJSON *v, int *out, int n, int lo, int hi) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n) return 0;
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        long long x;
        if (!mq_j_int_in(e, lo, hi, &x)) return 0;
        out[i] = (int)x;
    }
    return 1;
}

static void path_join(char *out, size_t n, const char *dir, const char *name) {
    size_t k = strlen(dir);
    snprintf(out, n, "%s%s%s", dir, k && dir[k - 1] == '/' ? "" : "/", name);
}

/* A run file's text, or NULL: missing (*missing = 1) or unreadable (a note). */
static char *read_run_file(rctx *c, rrun *r, const char *name, size_t *len, int *missing) {
    char path[1400];
    path_join(path, sizeof path, r->dir, name);
    char *t = NULL;
    int miss = 0;
    mixq_status st = mq_read_file(path, (size_t)1 << 30, "run file", &t, len, &miss);
    if (missing) *missing = st && miss;
    if (st) {
        if (!miss) note(c, r, "%s cannot be read: %s", name, mixq_last_error());
        mixq_clear_error();
        return NULL;
    }
    return t;
}

static cJSON *read_json(rctx *c, rrun *r, const char *name, int *missing) {
    char *t = read_run_file(c, r, name, NULL, missing);
    if (!t) return NULL;
    cJSON *j = cJSON_Parse(t);
    free(t);
    if (!j || !cJSON_IsObject(j)) {
        note(c, r, "%s is not a JSON object (a torn or foreign file): ignored", name);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static int rec_push(rrun *r, const rrec *x) {
    if (r->n_ev == r->cap_ev) {
        int nc = r->cap_ev ? r->cap_ev * 2 : 64;
        rrec *ne = realloc(r->ev, sizeof *ne * (size_t)nc);
        if (!ne) return 0;
        r->ev = ne, r->cap_ev = nc;
    }
    r->ev[r->n_ev++] = *x;
    return 1;
}

/* Uniform bits of a record: every layer alike, or the middle ones with 8/8 ends. */
static void rec_uniform(rrec *x, int L) {
    x->uw = x->ua = 0;
    int lo = 0, hi = L;
    if (L >= 3 && !(x->w[0] == x->w[1] && x->a[0] == x->a[1]) && x->w[0] == 8 && x->a[0] == 8 &&
        x->w[L - 1] == 8 && x->a[L - 1] == 8)
        lo = 1, hi = L - 1;
    for (int l = lo; l < hi; l++)
        if (x->w[l] != x->w[lo] || x->a[l] != x->a[lo]) return;
    if (lo == 1 && (x->w[L - 1] != 8 || x->a[L - 1] != 8)) return;
    x->uw = x->w[lo], x->ua = x->a[lo];
}

/* evals.jsonl: one record per line. A last line without its newline is being written (or was
 * torn by a kill) and is dropped, as a resumed search drops it; a malformed line elsewhere is
 * skipped; every drop is a note. */
static void load_evals(rctx *c, rrun *r, const char *t) {
    int line = 0, bad = 0, first_bad = 0, wrong_l = 0;
    int *tmp = NULL;
    for (const char *p = t; *p;) {
        const char *nl = strchr(p, '\n');
        line++;
        if (!nl) {
            note(c, r, "evals.jsonl: the last line (%d) has no newline: a write in progress or a torn line "
                 "from a killed run; dropped", line);
            break;
        }
        size_t len = (size_t)(nl - p);
        char *s = malloc(len + 1);
        if (!s) break;
        memcpy(s, p, len);
        s[len] = 0;
        p = nl + 1;
        int blank = 1;
        for (size_t i = 0; i < len; i++) blank &= s[i] == ' ' || s[i] == '\t' || s[i] == '\r';
        cJSON *j = blank ? NULL : cJSON_Parse(s);
        free(s);
        if (blank) continue;
        const cJSON *w = jget(j, "w"), *a = jget(j, "a");
        int L = cJSON_IsArray(w) ? cJSON_GetArraySize(w) : 0;
        double acc = jnum(j, "acc");
        int ep = jint(j, "episode", 0, INT_MAX / 2, -1);
        int ok = j && L > 0 && L <= 100000 && isfinite(acc) && ep >= 0, other_l = 0;
        if (ok && r->L && L != r->L) {
            wrong_l++;
            ok = 0, other_l = 1;
        } else if (ok) {
            free(tmp);
            tmp = malloc(sizeof(int) * 2 * (size_t)L);
            ok = tmp && int_array(w, tmp, L, 1, 32) && int_array(a, tmp + L, L, 1, 32);
        }
        if (ok) {
            rrec x;
            memset(&x, 0, sizeof x);
            x.episode = ep;
            x.acc = acc;
            x.reward = jnum(j, "reward");
            const cJSON *f = jget(j, "fits");
            x.fits = cJSON_IsBool(f) ? cJSON_IsTrue(f) : -1;
            for (int k = 0; k < NM; k++) {
                char key[32];
                snprintf(key, sizeof key, "%s_ratio", mq_metric_names[k]);
                x.ratio[k] = jnum(j, key);
            }
            x.w = tmp, x.a = tmp + L;
            tmp = NULL;
            if (!r->L) r->L = L;
            rec_uniform(&x, L);
            if (!rec_push(r, &x)) {
                free(x.w);
                cJSON_Delete(j);
                break;
            }
        } else if (!other_l && !bad++) first_bad = line;
        cJSON_Delete(j);
    }
    free(tmp);
    if (bad)
        note(c, r, "evals.jsonl: %d line%s not a scored candidate (first: line %d): skipped", bad,
             bad > 1 ? "s are" : " is", first_bad);
    if (wrong_l)
        note(c, r, "evals.jsonl: %d line%s a different number of layers than the first (%d): skipped", wrong_l,
             wrong_l > 1 ? "s have" : " has", r->L);
}

/* pareto.csv's rows as candidates (when evals.jsonl is missing), each (episode, bits) once. */
static void load_pareto_csv(rctx *c, rrun *r, char *t) {
    int line = 0, bad = 0;
    for (char *p = t, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        if (line++ == 0) continue; /* header */
        char *f[10];
        int nf = 0;
        for (char *q = p; nf < 10;) {
            f[nf++] = q;
            char *comma = strchr(q, ',');
            if (!comma) break;
            *comma = 0;
            q = comma + 1;
        }
        if (nf != 10) {
            bad += *p != 0;
            continue;
        }
        int L = 1;
        for (const char *q = f[8]; *q; q++) L += *q == ' ';
        if (r->L && L != r->L) {
            bad++;
            continue;
        }
        rrec x;
        memset(&x, 0, sizeof x);
        x.w = malloc(sizeof(int) * 2 * (size_t)L);
        if (!x.w) return;
        x.a = x.w + L;
        int ok = 1;
        for (int h = 0; h < 2 && ok; h++) {
            char *q = f[8 + h];
            for (int l = 0; l < L && ok; l++) {
                char *end;
                long v = strtol(q, &end, 10);
                ok = end != q && v >= 1 && v <= 32;
                (h ? x.a : x.w)[l] = (int)v;
                q = end;
            }
        }
        char *end;
        x.episode = (int)strtol(f[1], &end, 10);
        x.acc = strtod(f[2], NULL);
        for (int k = 0; k < NM; k++) x.ratio[k] = strtod(f[3 + k], NULL);
        x.fits = atoi(f[7]) != 0;
        x.reward = NAN;
        ok = ok && isfinite(x.acc) && x.episode >= 0;
        for (int i = 0; ok && i < r->n_ev; i++)
            ok = !(r->ev[i].episode == x.episode && !memcmp(r->ev[i].w, x.w, sizeof(int) * 2 * (size_t)L));
        if (!ok) {
            free(x.w);
            continue;
        }
        if (!r->L) r->L = L;
        rec_uniform(&x, L);
        if (!rec_push(r, &x)) {
            free(x.w);
            return;
        }
    }
    if (bad) note(c, r, "pareto.csv: %d malformed row%s skipped", bad, bad > 1 ? "s" : "");
}

/* ------------------------------------------------------------------ model and target */

/* FNV-1a of a file as config.json records it ("%016llx"), 0 if unreadable. */
static int file_fnv(const char *path, char out[20]) {
    uint64_t h;
    if (mq_fnv1a_file(path, &h)) return 0;
    snprintf(out, 20, "%016llx", (unsigned long long)h);
    return 1;
}

static int is_file(const char *p) {
    struct stat sb_;
    return !stat(p, &sb_) && S_ISREG(sb_.st_mode);
}

/* The model file of a run: cfg->model, else config.json's path as written, else that path
 * relative to the run directory and its parents, where the file has the recorded checksum. */
static int find_model(rctx *c, rrun *r, char *out, size_t n) {
    if (c->cfg->model) {
        snprintf(out, n, "%s", c->cfg->model);
        return 1;
    }
    const char *m = jstr(r->config, "model"), *want = jstr(r->config, "model_fnv64");
    if (!m || !*m) return 0;
    if (is_file(m)) {
        char h[20];
        if (want && file_fnv(m, h) && strcmp(h, want))
            note(c, r, "model '%s' is not the file this run searched (checksum %s, config.json has %s): its layers "
                 "are used anyway", m, h, want);
        snprintf(out, n, "%s", m);
        return 1;
    }
    if (m[0] == '/') return 0;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", r->dir);
    for (int up = 0; up < 8; up++) {
        size_t k = strlen(dir);
        while (k > 1 && dir[k - 1] == '/') dir[--k] = 0;
        char cand[2300], h[20];
        path_join(cand, sizeof cand, dir, m);
        if (is_file(cand) && (!want || (file_fnv(cand, h) && !strcmp(h, want)))) {
            snprintf(out, n, "%s", cand);
            return 1;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || !strcmp(dir, "/")) {
            if (!strcmp(dir, ".") || !strcmp(dir, "/")) break;
            snprintf(dir, sizeof dir, ".");
        } else if (slash == dir) dir[1] = 0;
        else *slash = 0;
    }
    return 0;
}

/* Models and targets are loaded once per page, however many runs name them. */
static void *cache_get(cache_ent **tab, int *n, const char *key, void *(*load)(const char *), void (*drop)(void *)) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*tab)[i].key, key)) return (*tab)[i].obj;
    void *obj = load(key);
    if (!obj) return NULL;
    cache_ent *nt = realloc(*tab, sizeof *nt * (size_t)(*n + 1));
    char *k = malloc(strlen(key) + 1);
    if (nt) *tab = nt;
    if (!nt || !k) {
        free(k);
        drop(obj);
        return NULL;
    }
    strcpy(k, key);
    (*tab)[*n].key = k;
    (*tab)[(*n)++].obj = obj;
    return obj;
}

static void *load_model(const char *path) {
    mixq_model *m = NULL;
    return mixq_model_load(path, &m) ? NULL : m;
}
static void drop_model(void *m) { mixq_model_free(m); }
static void *load_hw(const char *name) {
    mixq_hw *h = NULL;
    return mixq_hw_load(name, &h) ? NULL : h;
}
static void drop_hw(void *h) { mixq_hw_free(h); }

static void layer_kind(const mixq_hw_layer *l, char *buf, size_t n) {
    if (l->fc) snprintf(buf, n, "fc %d>%d", l->in_c, l->out_c);
    else if (l->groups > 1 && l->groups == l->in_c && l->groups == l->out_c)
        snprintf(buf, n, "dw%dx%d/%d", l->kh, l->kw, l->stride);
    else snprintf(buf, n, "conv%dx%d/%d", l->kh, l->kw, l->stride);
}

/* The run's model and target, checked against its layers; the environment (uniform and W8A8
 * costs). */
static void load_target(rctx *c, rrun *r, int first) {
    const char *hwname = c->cfg->hw ? c->cfg->hw : jstr(r->config, "hw");
    char mpath[2400];
    if (first && c->model0) r->model = c->model0;
    else if (!find_model(c, r, mpath, sizeof mpath)) {
        const char *m = jstr(r->config, "model");
        if (m) note(c, r, "the model '%s' is not found (from here, nor relative to the run directory): no layer "
                    "names, MACs or per-layer costs; hint: mixq report --model PATH", m);
        else if (r->config) note(c, r, "config.json names no model: no per-layer costs");
    } else if (!(r->model = cache_get(&c->models, &c->n_models, mpath, load_model, drop_model))) {
        note(c, r, "the model '%s' cannot be loaded (%s): no per-layer costs", mpath, mixq_last_error());
        mixq_clear_error();
    }
    if (r->model && r->L && mixq_model_hw_layer_count(r->model) != r->L) {
        note(c, r, "the model has %d conv/linear layers but the candidates have %d: it is not the model this run "
             "searched, and is not used", mixq_model_hw_layer_count(r->model), r->L);
        r->model = NULL;
    }
    if (first && c->hw0) r->hw = c->hw0;
    else if (hwname && r->model) {
        if (!(r->hw = cache_get(&c->hws, &c->n_hws, hwname, load_hw, drop_hw))) {
            note(c, r, "the hardware target '%s' cannot be loaded (%s): no per-layer costs; hint: mixq report "
                 "--hw TARGET", hwname, mixq_last_error());
            mixq_clear_error();
        } else {
            const char *want = jstr(r->config, "hw_fnv64");
            const char *text = mixq_hw_text(r->hw);
            char h[20];
            snprintf(h, sizeof h, "%016llx", (unsigned long long)mq_fnv1a(text, strlen(text), MQ_FNV_BASIS));
            if (want && strcmp(h, want))
                note(c, r, "the hardware target '%s' loaded here differs from the one this run searched on "
                     "(checksum %s, config.json has %s): per-layer costs are this one's", hwname, h, want);
        }
    }
    if (r->model && r->hw) {
        if (mq_env_create(r->model, r->hw, r->hw_batch, r->b_min, r->b_max, r->pin_ends, &r->env)) {
            note(c, r, "the layers cannot be costed on '%s': %s", mixq_hw_name(r->hw), mixq_last_error());
            mixq_clear_error();
        } else r->has_env = 1;
    }
}

/* The search's choice among the candidates (search.c's best_rec), when best_policy.json is
 * missing. */
static int best_by_rule(const rrun *r) {
    int b = -1, M = r->metric;
    for (int i = 0; i < r->n_ev; i++) {
        const rrec *x = &r->ev[i];
        if (x->fits == 0) continue;
        const rrec *y = b >= 0 ? &r->ev[b] : NULL;
        if (r->accuracy_mode) {
            if (!(r->acc0 - x->acc <= r->max_drop)) continue;
            if (!y || x->ratio[M] < y->ratio[M] || (x->ratio[M] == y->ratio[M] && x->acc > y->acc)) b = i;
        } else if (!y || x->acc > y->acc || (x->acc == y->acc && x->ratio[M] < y->ratio[M])) b = i;
    }
    return b;
}

static void free_layers(rrun *r) {
    for (int l = 0; r->kb && l < r->nl; l++) free(r->kb[l]);
    free(r->lname);
    free(r->lkind);
    free(r->pw);
    free(r->pa);
    free(r->kb);
    free(r->kn);
    free(r->macs);
    r->lname = NULL, r->lkind = NULL, r->pw = r->pa = r->kn = NULL, r->kb = NULL, r->macs = NULL;
    r->nl = 0;
}

/* Room for the chosen policy's nl layers (what an earlier attempt left is dropped). */
static int alloc_layers(rrun *r, int nl) {
    free_layers(r);
    r->nl = nl;
    r->lname = calloc((size_t)nl, sizeof *r->lname);
    r->lkind = calloc((size_t)nl, sizeof *r->lkind);
    r->pw = calloc((size_t)nl, sizeof *r->pw);
    r->pa = calloc((size_t)nl, sizeof *r->pa);
    r->kb = calloc((size_t)nl, sizeof *r->kb);
    r->kn = calloc((size_t)nl, sizeof *r->kn);
    r->macs = calloc((size_t)nl, sizeof *r->macs);
    if (!r->lname || !r->lkind || !r->pw || !r->pa || !r->kb || !r->kn || !r->macs) {
        free_layers(r);
        return 0;
    }
    for (int l = 0; l < nl; l++) r->macs[l] = -1, r->kn[l] = 1;
    return 1;
}

/* Per-kernel bits kept only where they differ. */
static void keep_kernels(rrun *r, int l, const int *kb, int K) {
    int differ = 0;
    for (int k = 1; k < K; k++) differ |= kb[k] != kb[0];
    r->kn[l] = K;
    if (!differ) return;
    r->kb[l] = malloc(sizeof(int) * (size_t)K);
    if (r->kb[l]) memcpy(r->kb[l], kb, sizeof(int) * (size_t)K);
}

/* best_policy.json without the model: its "default" and "layers" entries (what the search
 * writes). Returns the layers found, 0 if the file has none. */
static int policy_from_json(rctx *c, rrun *r, const char *text) {
    cJSON *j = cJSON_Parse(text);
    const cJSON *layers = jget(j, "layers"), *def = jget(j, "default");
    int nl = cJSON_IsObject(layers) ? cJSON_GetArraySize(layers) : 0;
    if (!j || nl < 1 || (r->L && nl != r->L) || !alloc_layers(r, nl)) {
        if (j && nl && r->L && nl != r->L)
            note(c, r, "best_policy.json names %d layers but the candidates have %d: ignored", nl, r->L);
        cJSON_Delete(j);
        return 0;
    }
    if (jget(j, "rules")) note(c, r, "best_policy.json has rules that only the model can resolve: its named layers shown");
    int dw = jint(def, "w_bits", 1, 32, 8), da = jint(def, "a_bits", 1, 32, 8), l = 0;
    for (const cJSON *e = layers->child; e; e = e->next, l++) {
        snprintf(r->lname[l], MIXQ_NAME_MAX, "%s", e->string ? e->string : "?");
        r->pw[l] = jint(e, "w_bits", 1, 32, dw);
        r->pa[l] = jint(e, "a_bits", 1, 32, da);
        const cJSON *wb = jget(e, "w_bits");
        int K = cJSON_IsArray(wb) ? cJSON_GetArraySize(wb) : 0;
        int *kb = K > 0 ? malloc(sizeof(int) * (size_t)K) : NULL;
        if (kb && int_array(wb, kb, K, 1, 32)) {
            int mx = 0;
            for (int k = 0; k < K; k++) mx = MQ_MAX(mx, kb[k]);
            r->pw[l] = mx;
            keep_kernels(r, l, kb, K);
        }
        free(kb);
    }
    cJSON_Delete(j);
    return nl;
}

/* The chosen policy: best_policy.json (resolved on the model when there is one), else the
 * search's rule over the candidates; its record among the candidates; names, kinds, MACs. */
static void resolve_chosen(rctx *c, rrun *r) {
    r->chosen = -1;
    size_t len = 0;
    int missing = 0, got = 0;
    char *text = read_run_file(c, r, "best_policy.json", &len, &missing);
    if (text && r->model) {
        mixq_policy *p = NULL;
        const int nl = mixq_model_hw_layer_count(r->model);
        if (!mixq_policy_parse(text, len, "best_policy.json", &p) && alloc_layers(r, nl)) {
            got = 1;
            for (int l = 0; l < nl && got; l++) {
                mixq_hw_layer hl;
                int node = -1;
                mq_lq q;
                memset(&q, 0, sizeof q);
                if (mixq_model_hw_layer(r->model, l, &hl, &node) || mq_policy_resolve_node(p, r->model, node, &q)) {
                    got = 0;
                } else {
                    snprintf(r->lname[l], MIXQ_NAME_MAX, "%s", hl.name ? hl.name : "?");
                    r->pw[l] = q.w_bits, r->pa[l] = q.a_bits;
                    int mx = 0;
                    for (int k = 0; k < q.K; k++) mx = MQ_MAX(mx, q.kbits[k]);
                    if (q.K > 0) r->pw[l] = mx;
                    keep_kernels(r, l, q.kbits, q.K);
                }
                free(q.kbits);
            }
        }
        if (!got) {
            note(c, r, "best_policy.json does not resolve on the model (%s): its named layers shown",
                 mixq_last_error());
            mixq_clear_error();
            free_layers(r);
        }
        mixq_policy_free(p);
    }
    if (text && !got) got = policy_from_json(c, r, text) > 0;
    if (!text && missing && r->n_ev) note(c, r, "best_policy.json is missing: the chosen policy is the search's rule "
                                          "applied to the candidates");
    free(text);
    if (got) {
        for (int i = 0; i < r->n_ev && r->chosen < 0; i++)
            if (r->nl == r->L && !memcmp(r->ev[i].w, r->pw, sizeof(int) * (size_t)r->L) &&
                !memcmp(r->ev[i].a, r->pa, sizeof(int) * (size_t)r->L))
                r->chosen = i;
        if (r->chosen < 0 && r->n_ev) note(c, r, "best_policy.json is none of the scored candidates");
    } else {
        r->chosen = best_by_rule(r);
        if (r->chosen >= 0 && alloc_layers(r, r->L)) {
            memcpy(r->pw, r->ev[r->chosen].w, sizeof(int) * (size_t)r->L);
            memcpy(r->pa, r->ev[r->chosen].a, sizeof(int) * (size_t)r->L);
            for (int l = 0; l < r->L; l++) snprintf(r->lname[l], MIXQ_NAME_MAX, "layer %d", l + 1);
        } else if (r->n_ev) note(c, r, "no candidate fits the budget: no chosen policy");
    }
    /* names, kinds and MACs from the model */
    if (r->model && r->nl == mixq_model_hw_layer_count(r->model)) {
        for (int l = 0; l < r->nl; l++) {
            mixq_hw_layer hl;
            mixq_node_info ni;
            int node = -1;
            if (mixq_model_hw_layer(r->model, l, &hl, &node) || mixq_model_node(r->model, node, &ni)) {
                mixq_clear_error();
                continue;
            }
            snprintf(r->lname[l], MIXQ_NAME_MAX, "%s", hl.name ? hl.name : "?");
            layer_kind(&hl, r->lkind[l], sizeof r->lkind[l]);
            r->macs[l] = (double)ni.macs;
        }
    }
}

/* The chosen policy's cost per layer on the target (and the same layers at W8A8). */
static void cost_layers(rctx *c, rrun *r) {
    if (!r->model || !r->hw || !r->nl || r->nl != mixq_model_hw_layer_count(r->model)) return;
    r->cost = calloc((size_t)r->nl, sizeof *r->cost);
    if (!r->cost) return;
    memset(&r->cost8, 0, sizeof r->cost8);
    int ok8 = 1;
    for (int l = 0; l < r->nl; l++) {
        mixq_hw_layer hl;
        int node;
        mixq_cost c8;
        mixq_status st = mixq_model_hw_layer(r->model, l, &hl, &node);
        hl.batch = r->hw_batch;
        if (!st && r->kb[l] && r->kn[l] != hl.out_c)
            st = mq_err(MIXQ_ERR_SHAPE, "best_policy.json gives %d per-kernel bits, the layer has %d kernels", r->kn[l],
                        hl.out_c);
        if (!st) st = r->kb[l] ? mixq_hw_cost_kernels(r->hw, &hl, r->kb[l], r->pa[l], &r->cost[l])
                               : mixq_hw_cost(r->hw, &hl, r->pw[l], r->pa[l], &r->cost[l]);
        if (st) {
            note(c, r, "layer '%s' cannot be costed on '%s': %s", r->lname[l], mixq_hw_name(r->hw), mixq_last_error());
            mixq_clear_error();
            free(r->cost);
            r->cost = NULL;
            return;
        }
        if (ok8 && !mixq_hw_cost(r->hw, &hl, 8, 8, &c8)) mixq_cost_add(&r->cost8, &c8);
        else ok8 = 0;
    }
    if (!ok8) {
        mixq_clear_error();
        memset(&r->cost8, 0, sizeof r->cost8);
    }
}

static void load_run(rctx *c, rrun *r, int first) {
    const char *d = r->dir;
    size_t k = strlen(d);
    while (k > 1 && d[k - 1] == '/') k--;
    size_t s = k;
    while (s > 0 && d[s - 1] != '/') s--;
    snprintf(r->base, sizeof r->base, "%.*s", (int)(k - s), d + s);
    r->acc0 = NAN;
    r->chosen = -1;
    r->b_min = 2, r->b_max = 8, r->pin_ends = 1;
    int missing = 0;
    r->config = read_json(c, r, "config.json", &missing);
    if (missing) note(c, r, "config.json is missing: the agent, budget and target are unknown");
    r->summary = read_json(c, r, "summary.json", &missing);
    r->state = read_json(c, r, "state.json", &missing);
    r->pareto_json = read_json(c, r, "pareto.json", &missing);
    r->cmds = read_run_file(c, r, "commands.jsonl", NULL, NULL);
    const char *ag = jstr(r->config, "agent") ? jstr(r->config, "agent") : jstr(r->summary, "agent");
    snprintf(r->agent, sizeof r->agent, "%s", ag ? ag : "unknown agent");
    /* settings */
    r->accuracy_mode = jstr(r->config, "mode") && !strcmp(jstr(r->config, "mode"), "accuracy");
    r->max_drop = jnum(r->config, "max_drop");
    r->hw_batch = jint(r->config, "hw_batch", 0, 1 << 20, 0);
    const cJSON *bits = jget(r->config, "bits");
    int bb[2];
    if (int_array(bits, bb, 2, 1, 8) && bb[0] <= bb[1]) r->b_min = bb[0], r->b_max = bb[1];
    const cJSON *pin = jget(r->config, "pin_ends");
    if (cJSON_IsBool(pin)) r->pin_ends = cJSON_IsTrue(pin);
    const cJSON *br = jget(r->config, "budget_ratios");
    for (int m = 0; m < NM; m++) {
        double v = jnum(br, mq_metric_names[m]);
        r->budget[m] = v > 0 ? v : 0;
    }
    const char *budget = jstr(r->config, "budget");
    const char *bm = jstr(r->pareto_json, "budget_metric") ? jstr(r->pareto_json, "budget_metric")
                                                           : jstr(r->summary, "budget_metric");
    for (int m = 0; m < NM; m++) {
        size_t n = strlen(mq_metric_names[m]);
        if ((budget && !strncmp(budget, mq_metric_names[m], n) && budget[n] == '=') ||
            (!budget && bm && !strcmp(bm, mq_metric_names[m])))
            r->metric = m;
    }
    r->acc0 = jnum(r->pareto_json, "fp32_accuracy");
    if (!isfinite(r->acc0)) r->acc0 = jnum(r->summary, "fp32_val_accuracy");
    int episodic = !strcmp(r->agent, "haq") || !strcmp(r->agent, "random");
    r->episodes_total = episodic ? jint(r->config, "episodes", 1, INT_MAX / 2, 0) : 0;
    r->episodes_done = jint(r->state, "episode", 0, INT_MAX / 2, 0);
    r->finished = r->summary != NULL;
    /* candidates */
    char *t = read_run_file(c, r, "evals.jsonl", NULL, &missing);
    int evals_missing = missing;
    if (t) load_evals(c, r, t);
    free(t);
    t = read_run_file(c, r, "pareto.csv", NULL, &missing);
    if (evals_missing && t) {
        r->from_csv = 1;
        load_pareto_csv(c, r, t);
        note(c, r, "evals.jsonl is missing: only the %d Pareto candidates of pareto.csv are shown", r->n_ev);
    } else if (evals_missing) note(c, r, "evals.jsonl is missing: no candidates to show");
    else if (missing && r->n_ev) note(c, r, "pareto.csv is missing: the fronts are computed from evals.jsonl");
    free(t);
    for (int i = 0; i < r->n_ev; i++) r->episodes_done = MQ_MAX(r->episodes_done, r->ev[i].episode);
    if (r->n_ev && !isfinite(r->acc0)) note(c, r, "the FP32 accuracy is not recorded (pareto.json, summary.json)");
    if (!r->finished && r->n_ev)
        note(c, r, "summary.json is missing: the search is running or was stopped (%d episode%s done)",
             r->episodes_done, r->episodes_done == 1 ? "" : "s");
    load_target(c, r, first);
    resolve_chosen(c, r);
    cost_layers(c, r);
}

static void free_run(rrun *r) {
    for (int i = 0; i < r->n_ev; i++) free(r->ev[i].w);
    free(r->ev);
    cJSON_Delete(r->config);
    cJSON_Delete(r->summary);
    cJSON_Delete(r->state);
    cJSON_Delete(r->pareto_json);
    free(r->cmds);
    free(r->notes.p);
    if (r->has_env) mq_env_free(&r->env);
    free_layers(r);
    free(r->cost);
}

/* Series: one per distinct agent label. The label adds whichever of budget, target, model and
 * mode differ between the runs, so runs only share a colour when they searched the same thing. */
static int make_series(rctx *c) {
    static const char *const keys[] = {"budget", "hw", "model", "mode"};
    int differ[4] = {0};
    for (int k = 0; k < 4; k++)
        for (int i = 1; i < c->n; i++) {
            const char *a = jstr(c->runs[0].config, keys[k]), *b = jstr(c->runs[i].config, keys[k]);
            if ((a == NULL) != (b == NULL) || (a && strcmp(a, b))) differ[k] = 1;
        }
    if (differ[1] || differ[2])
        note(c, NULL, "the runs searched different %s: the W8A8 cost in the axis labels and the uniform policies' "
             "costs on the top edges are the first run's with a model and target", differ[2] ? "models" : "targets");
    c->slabel = calloc((size_t)c->n, sizeof *c->slabel);
    c->s_runs = calloc((size_t)c->n, sizeof *c->s_runs);
    c->s_cands = calloc((size_t)c->n, sizeof *c->s_cands);
    if (!c->slabel || !c->s_runs || !c->s_cands) return 0;
    for (int i = 0; i < c->n; i++) {
        rrun *r = &c->runs[i];
        char lab[160];
        size_t n = (size_t)snprintf(lab, sizeof lab, "%s", r->agent);
        for (int k = 0; k < 4 && n < sizeof lab; k++) {
            if (!differ[k]) continue;
            const char *v = jstr(r->config, keys[k]);
            if (k == 2 && v && strrchr(v, '/')) v = strrchr(v, '/') + 1;
            n += (size_t)snprintf(lab + n, sizeof lab - n, " \xC2\xB7 %s", v ? v : "?");
        }
        int s = 0;
        while (s < c->n_series && strcmp(c->slabel[s], lab)) s++;
        if (s == c->n_series) snprintf(c->slabel[c->n_series++], sizeof c->slabel[0], "%s", lab);
        r->series = s;
        c->s_runs[s]++;
        c->s_cands[s] += r->n_ev;
    }
    return 1;
}

/* ------------------------------------------------------------------ plots */

typedef struct plot {
    double W, H, l, r, t, b; /* size and margins (SVG user units) */
    double x0, x1, y0, y1;   /* data range */
} plot;

static double px(const plot *p, double x) { return p->l + (x - p->x0) / (p->x1 - p->x0) * (p->W - p->l - p->r); }
static double py(const plot *p, double y) { return p->H - p->b - (y - p->y0) / (p->y1 - p->y0) * (p->H - p->t - p->b); }

static double nice_step(double span, int target) {
    double raw = span / (target > 0 ? target : 1);
    if (!(raw > 0)) return 1;
    double e = pow(10, floor(log10(raw))), f = raw / e;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * e;
}

static int step_decimals(double step) {
    int d = 0;
    while (d < 6 && fabs(step * pow(10, d) - floor(step * pow(10, d) + 0.5)) > 1e-6) d++;
    return d;
}

/* Widen [lo, hi] by pad of its span (a flat range gets a span of its own). */
static void pad_range(double *lo, double *hi, double pad) {
    if (!(*hi > *lo)) {
        double d = fabs(*lo) > 0 ? 0.05 * fabs(*lo) : 1;
        *lo -= d, *hi += d;
        return;
    }
    double s = *hi - *lo;
    *lo -= pad * s, *hi += pad * s;
}

static void svg_open(sb *o, const plot *p, const char *cls, const char *label, const char *extra) {
    sb_printf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"%s\" viewBox=\"0 0 %.0f %.0f\" role=\"img\"%s "
              "aria-label=\"", cls, p->W, p->H, extra ? extra : "");
    sb_esc(o, label);
    sb_str(o, "\">\n");
}

/* Grid, ticks, tick labels and axis labels. ylabel2 (may be NULL) labels a right axis. */
static void svg_axes(sb *o, const plot *p, const char *xlabel, const char *ylabel, int xint) {
    const double L = p->l, R = p->W - p->r, T = p->t, B = p->H - p->b;
    sb_str(o, "<g class=\"ax\">\n");
    double ys = nice_step(p->y1 - p->y0, 5);
    int yd = step_decimals(ys);
    for (long i = (long)ceil(p->y0 / ys - 1e-9); i * ys <= p->y1 + 1e-9 * fabs(p->y1) && i < (long)ceil(p->y0 / ys) + 50; i++) {
        double v = (double)i * ys, y = py(p, v);
        sb_printf(o, "<line class=\"gl\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", L, R, y, y);
        sb_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n", L - 5, y + 3.5, yd, v == 0 ? 0.0 : v);
    }
    double xs = nice_step(p->x1 - p->x0, 6);
    if (xint && xs < 1) xs = 1;
    int xd = step_decimals(xs);
    for (long i = (long)ceil(p->x0 / xs - 1e-9); i * xs <= p->x1 + 1e-9 * fabs(p->x1) && i < (long)ceil(p->x0 / xs) + 50; i++) {
        double v = (double)i * xs, x = px(p, v);
        sb_printf(o, "<line class=\"gl\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", x, x, T, B);
        sb_printf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", x, x, B, B + 4);
        sb_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.*f</text>\n", x, B + 15, xd, v == 0 ? 0.0 : v);
    }
    sb_printf(o, "<path class=\"frame\" d=\"M%.1f %.1fV%.1fH%.1f\"/>\n", L, T, B, R);
    sb_printf(o, "<text class=\"al\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (L + R) / 2, p->H - 6);
    sb_esc(o, xlabel);
    sb_printf(o, "</text>\n<text class=\"al\" transform=\"translate(13 %.1f) rotate(-90)\" text-anchor=\"middle\">",
              (T + B) / 2);
    sb_esc(o, ylabel);
    sb_str(o, "</text>\n</g>\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A low tail of accuracies (collapsed candidates) would squash the interesting top: the axis
 * starts at hi - 6 x (hi - median) (or the lowest value, if higher), and points below sit on its
 * bottom edge as triangles (counted in the caption). v is sorted in place. */
static double floor_of(double *v, int n, double hi, double min_spread) {
    if (n < 1) return hi - 1;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double med = v[n / 2], spread = fmax(hi - med, min_spread);
    return fmax(v[0], hi - 6 * spread);
}

typedef struct pref {
    int run, idx;
    double x, y;
} pref;

static int cmp_pref(const void *a, const void *b) {
    const pref *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    if (p->y != q->y) return p->y > q->y ? -1 : 1;
    if (p->run != q->run) return p->run - q->run;
    return p->idx - q->idx;
}

static void bits_text(sb *o, const rrec *x, int L) {
    sb_str(o, "; W");
    for (int l = 0; l < L; l++) sb_printf(o, " %d", x->w[l]);
    sb_str(o, " / A");
    for (int l = 0; l < L; l++) sb_printf(o, " %d", x->a[l]);
}

/* A star of radius rad at (x, y). */
static void star_path(sb *o, double x, double y, double rad) {
    sb_str(o, "M");
    for (int i = 0; i < 10; i++) {
        double ang = -PI / 2 + i * PI / 5, rr = i % 2 ? rad * 0.45 : rad;
        sb_printf(o, "%s%.1f %.1f", i ? "L" : "", x + rr * cos(ang), y + rr * sin(ang));
    }
    sb_str(o, "Z");
}


/* Accuracy against metric m: every candidate, each series' front, the chosen policies, FP32,
 * budgets, W8A8 and uniform references. */
static void pareto_plot(rctx *c, sb *o, int m) {
    int n = 0;
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->runs[i].n_ev; j++) n += isfinite(c->runs[i].ev[j].ratio[m]);
    pref *P = n ? calloc((size_t)n, sizeof *P) : NULL;
    double *accs = n ? calloc((size_t)n, sizeof *accs) : NULL;
    if (n && (!P || !accs)) {
        free(P);
        free(accs);
        return;
    }
    int k = 0;
    double x0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->runs[i].n_ev; j++) {
            const rrec *x = &c->runs[i].ev[j];
            if (!isfinite(x->ratio[m])) continue;
            P[k].run = i, P[k].idx = j, P[k].x = x->ratio[m], P[k].y = x->acc;
            accs[k++] = x->acc;
            x0 = fmin(x0, x->ratio[m]), x1 = fmax(x1, x->ratio[m]), y1 = fmax(y1, x->acc);
        }
    /* references: FP32, budgets, W8A8, uniform costs (from the first run with a target) */
    double acc0 = NAN;
    const rrun *tr = NULL;
    for (int i = 0; i < c->n; i++) {
        if (!isfinite(acc0)) acc0 = c->runs[i].acc0;
        if (!tr && c->runs[i].has_env) tr = &c->runs[i];
    }
    for (int i = 0; i < c->n; i++)
        if (c->runs[i].budget[m] > 0 && n) x0 = fmin(x0, c->runs[i].budget[m]), x1 = fmax(x1, c->runs[i].budget[m]);
    if (isfinite(acc0) && n) y1 = fmax(y1, acc0);
    if (!n) x0 = 0, x1 = 1, y1 = 100;
    int show8 = n && 1.0 > x1 && (1.0 - x0) <= 3 * (x1 - x0 > 0 ? x1 - x0 : 0.05);
    if (show8) x1 = 1.0;
    double y0 = n ? floor_of(accs, n, y1, 0.5) : 0;
    plot p = {.W = 560, .H = 350, .l = 52, .r = 14, .t = 26, .b = 42, .x0 = x0, .x1 = x1, .y0 = y0, .y1 = y1};
    pad_range(&p.x0, &p.x1, 0.04);
    pad_range(&p.y0, &p.y1, 0.05);
    free(accs);
    /* the figure */
    const char *unit_cpu = tr && !strcmp(mixq_hw_backend(tr->hw), "cpu") && m == MQ_M_LATENCY ? "measured CPU " : "";
    char xlabel[200], w8[48] = "";
    if (tr && tr->env.w8a8[m] > 0) {
        char cost[32];
        mq_env_fmt_cost(m, tr->env.w8a8[m], cost, sizeof cost);
        size_t cl = strlen(cost); /* the budget units, with a micro sign for reading */
        if (cl > 3 && (!strcmp(cost + cl - 3, " us") || !strcmp(cost + cl - 3, " uJ")) && cl + 2 < sizeof cost) {
            char u = cost[cl - 1];
            snprintf(cost + cl - 2, sizeof cost - (cl - 2), "\xC2\xB5%c", u);
        }
        snprintf(w8, sizeof w8, "; W8A8 = %s", cost);
    }
    snprintf(xlabel, sizeof xlabel, "%s%s, \xC3\x97 uniform W8A8%s", unit_cpu, metric_title[m], w8);
    sb_printf(o, "<div class=\"fig\"><div class=\"ft\">Accuracy against %s%s</div>\n", unit_cpu, metric_title[m]);
    char extra[64];
    snprintf(extra, sizeof extra, " data-metric=\"%s\" data-points=\"%d\"", mq_metric_names[m], n);
    char label[128];
    snprintf(label, sizeof label, "validation accuracy against %s", metric_title[m]);
    svg_open(o, &p, "plot pareto", label, extra);
    svg_axes(o, &p, xlabel, "validation accuracy (%)", 0);
    const double T = p.t, B = p.H - p.b, Lx = p.l, R = p.W - p.r;
    /* reference lines */
    if (isfinite(acc0) && acc0 >= p.y0 && acc0 <= p.y1)
        sb_printf(o, "<line class=\"ref\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/><text class=\"rl\" x=\"%.1f\" "
                  "y=\"%.1f\">FP32 %.2f %%</text>\n",
                  Lx, R, py(&p, acc0), py(&p, acc0), Lx + 4, py(&p, acc0) - 4, acc0);
    double drawn_budget[64];
    int nb = 0;
    for (int i = 0; i < c->n && nb < 64; i++) {
        double b = c->runs[i].budget[m];
        int seen = 0;
        for (int j = 0; j < nb; j++) seen |= drawn_budget[j] == b;
        if (!(b > 0) || seen || b < p.x0 || b > p.x1) continue;
        drawn_budget[nb++] = b;
        sb_printf(o, "<line class=\"bud\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/><text class=\"bl\" x=\"%.1f\" "
                  "y=\"%.1f\" text-anchor=\"end\">budget %.3g\xC3\x97</text>\n",
                  px(&p, b), px(&p, b), T, B, px(&p, b) - 3, B - 12 - 11 * (nb - 1), b);
    }
    if (show8)
        sb_printf(o, "<line class=\"w8\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/><text class=\"rl\" x=\"%.1f\" "
                  "y=\"%.1f\" text-anchor=\"end\">W8A8</text>\n", px(&p, 1), px(&p, 1), T, B, px(&p, 1) - 3, B - 6);
    /* uniform policies' costs (unscored references) along the top edge */
    char off[400] = "";
    size_t no = 0;
    if (tr) {
        double lastx = -1e9;
        int *w = malloc(sizeof(int) * 2 * (size_t)tr->env.L);
        for (int b = 8; w && b >= tr->b_min; b--) {
            int *a = w + tr->env.L;
            for (int l = 0; l < tr->env.L; l++) w[l] = a[l] = b;
            mq_env_pin(&tr->env, w, a);
            double v = tr->env.w8a8[m] > 0 ? mq_env_cost(&tr->env, w, a, m) / tr->env.w8a8[m] : NAN;
            if (!isfinite(v)) continue;
            if (v < p.x0 || v > p.x1) {
                if (b < 8 && no < sizeof off)
                    no += (size_t)snprintf(off + no, sizeof off - no, "%sW%dA%d %.3g\xC3\x97", no ? ", " : "", b, b, v);
                continue;
            }
            double x = px(&p, v);
            sb_printf(o, "<path class=\"uref\" d=\"M%.1f %.1fl-4 -7h8z\"><title>uniform W%dA%d%s: %.3f\xC3\x97 W8A8 "
                      "(cost only)</title></path>", x, T, b, b, tr->pin_ends ? " (first and last layers 8/8)" : "", v);
            if (fabs(x - lastx) > 30) {
                sb_printf(o, "<text class=\"ul\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">W%dA%d</text>", x, T - 9, b, b);
                lastx = x;
            }
            sb_str(o, "\n");
        }
        free(w);
    }
    /* candidates not on a front first, then the fronts, then front points and chosen ones */
    unsigned char *onf = n ? calloc((size_t)n, 1) : NULL;
    if (n) qsort(P, (size_t)n, sizeof *P, cmp_pref);
    for (int s = 0; s < c->n_series && onf; s++) {
        double best = -INFINITY;
        sb_printf(o, "<path class=\"front f%d\" d=\"", s % NPAL);
        int first = 1;
        for (int i = 0; i < n; i++) {
            if (c->runs[P[i].run].series != s || !(P[i].y > best)) continue;
            double x = px(&p, P[i].x), y = py(&p, fmax(P[i].y, p.y0));
            if (first) sb_printf(o, "M%.1f %.1f", x, y);
            else sb_printf(o, "H%.1fV%.1f", x, y);
            first = 0;
            best = P[i].y;
            onf[i] = 1;
        }
        if (!first) sb_printf(o, "H%.1f", R);
        sb_str(o, "\"/>\n");
    }
    int low = 0;
    enum { MAXLAB = 96 };
    double lab_x[MAXLAB], lab_y[MAXLAB]; /* uniform labels placed: once per policy, never overlapping */
    int lab_w[MAXLAB], lab_a[MAXLAB], nlab = 0;
    for (int pass = 0; pass < 2 && onf; pass++)
        for (int i = 0; i < n; i++) {
            if (onf[i] != pass) continue;
            const rrun *r = &c->runs[P[i].run];
            const rrec *x = &r->ev[P[i].idx];
            double X = px(&p, P[i].x), Y = py(&p, P[i].y);
            int below = P[i].y < p.y0;
            low += below;
            const char *over = x->fits == 0 ? " o" : "";
            if (below) sb_printf(o, "<path class=\"pt lo s%d%s\" d=\"M%.1f %.1fl-3.5 -6h7z\">", r->series % NPAL, over, X, B);
            else if (x->uw)
                sb_printf(o, "<rect class=\"pt u s%d%s%s\" x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\">", r->series % NPAL,
                          over, pass ? " fr" : "", X - 3.5, Y - 3.5);
            else sb_printf(o, "<circle class=\"pt s%d%s%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%s\">", r->series % NPAL, over,
                           pass ? " fr" : "", X, Y, pass ? "3.4" : "2.7");
            sb_str(o, "<title>");
            sb_esc(o, r->base);
            sb_printf(o, ", episode %d: %.2f %%, %s %.3f\xC3\x97 W8A8%s", x->episode, x->acc, metric_title[m], P[i].x,
                      x->fits == 0 ? ", over budget" : "");
            if (x->uw) sb_printf(o, "; uniform W%dA%d", x->uw, x->ua);
            if (pass || x->uw) bits_text(o, x, r->L);
            sb_str(o, "</title>");
            sb_str(o, below ? "</path>\n" : x->uw ? "</rect>\n" : "</circle>\n");
            if (x->uw && !below && nlab < MAXLAB) {
                const int left = X + 40 > R; /* near the right edge: the label goes left of the point */
                const double lx = left ? X - 6 : X + 6, ly = Y - 5, x0l = left ? lx - 30 : lx;
                int clash = 0;
                for (int q = 0; q < nlab && !clash; q++)
                    clash = (lab_w[q] == x->uw && lab_a[q] == x->ua) ||
                            (fabs(lab_x[q] - x0l) < 32 && fabs(lab_y[q] - ly) < 11);
                if (!clash) {
                    sb_printf(o, "<text class=\"ul\" x=\"%.1f\" y=\"%.1f\"%s>W%dA%d</text>\n", lx, ly,
                              left ? " text-anchor=\"end\"" : "", x->uw, x->ua);
                    lab_x[nlab] = x0l, lab_y[nlab] = ly, lab_w[nlab] = x->uw, lab_a[nlab++] = x->ua;
                }
            }
        }
    for (int i = 0; i < c->n; i++) {
        const rrun *r = &c->runs[i];
        if (r->chosen < 0 || !isfinite(r->ev[r->chosen].ratio[m])) continue;
        const rrec *x = &r->ev[r->chosen];
        sb_printf(o, "<path class=\"chosen s%d\" d=\"", r->series % NPAL);
        star_path(o, px(&p, x->ratio[m]), py(&p, fmax(x->acc, p.y0)), 8);
        sb_str(o, "\"><title>chosen policy of ");
        sb_esc(o, r->base);
        sb_printf(o, ": episode %d, %.2f %%, %.3f\xC3\x97 W8A8", x->episode, x->acc, x->ratio[m]);
        bits_text(o, x, r->L);
        sb_str(o, "</title></path>\n");
    }
    if (!n)
        sb_printf(o, "<text class=\"empty\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no scored candidates</text>\n",
                  (Lx + R) / 2, (T + B) / 2);
    sb_str(o, "</svg>\n<div class=\"cap\">");
    sb_printf(o, "%d candidate%s", n, n == 1 ? "" : "s");
    if (low) sb_printf(o, "; %d below %.1f %% drawn as \xE2\x96\xBC on the bottom edge", low, p.y0);
    if (show8 || no) sb_str(o, ". ");
    if (no) {
        sb_str(o, "Uniform policies off the scale: ");
        sb_esc(o, off);
    }
    if (!show8 && n && 1.0 > p.x1) sb_printf(o, "%sW8A8 = 1\xC3\x97 is off the right edge", no ? "; " : "");
    sb_str(o, "</div></div>\n");
    free(onf);
    free(P);
}

/* Estimated width of a legend text at 11 px (the page's sans-serif averages about 6 px). */
static double text_w(const char *s) { return 5.7 * text_chars(s); }

/* The series legend and the symbol key, as one SVG strip. */
static void legend(rctx *c, sb *o) {
    static const char *const key[] = {"candidate (filled: fits every budget; hollow: over a budget)", "uniform policy",
                                      "Pareto front", "chosen policy", "uniform cost (not scored)", "budget", "FP32"};
    const double rowh = 20, width = 1100;
    char lab[64][240];
    int nlab = c->n_series < 64 ? c->n_series : 64;
    for (int s = 0; s < nlab; s++)
        snprintf(lab[s], sizeof lab[s], "%s (%d run%s, %d candidates)", c->slabel[s], c->s_runs[s],
                 c->s_runs[s] == 1 ? "" : "s", c->s_cands[s]);
    int rows = 1;
    double x = 8;
    for (int s = 0; s < nlab; s++) {
        double w = 34 + text_w(lab[s]) + 22;
        if (x + w > width && x > 8) x = 8, rows++;
        x += w;
    }
    x = 8;
    for (int k = 0; k < 7; k++) {
        double w = 24 + text_w(key[k]) + 18;
        if (x + w > width && x > 8) x = 8, rows++;
        x += w;
    }
    plot p = {.W = width, .H = rowh * (rows + 1) + 4};
    svg_open(o, &p, "legend", "legend", NULL);
    x = 8;
    double y = 14;
    for (int s = 0; s < nlab; s++) {
        double w = 34 + text_w(lab[s]) + 22;
        if (x + w > width && x > 8) x = 8, y += rowh;
        sb_printf(o, "<circle class=\"pt fr s%d\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\"/><line class=\"front f%d\" x1=\"%.1f\" "
                  "x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", s % NPAL, x + 5, y - 4, s % NPAL, x + 12, x + 26, y - 4, y - 4);
        sb_printf(o, "<text x=\"%.1f\" y=\"%.1f\">", x + 32, y);
        sb_esc(o, lab[s]);
        sb_str(o, "</text>\n");
        x += w;
    }
    y += rowh + 4;
    x = 8;
    for (int k = 0; k < 7; k++) {
        double w = 24 + text_w(key[k]) + 18;
        if (x + w > width && x > 8) x = 8, y += rowh;
        const double cx = x + 8, cy = y - 4;
        switch (k) {
        case 0: sb_printf(o, "<circle class=\"pt s7\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.4\"/>", cx, cy); break;
        case 1: sb_printf(o, "<rect class=\"pt u s7\" x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\"/>", cx - 3.5, cy - 3.5); break;
        case 2: sb_printf(o, "<path class=\"front f7\" d=\"M%.1f %.1fH%.1fV%.1fH%.1f\"/>", cx - 8, cy + 4, cx, cy - 4, cx + 8); break;
        case 3:
            sb_str(o, "<path class=\"chosen s7\" d=\"");
            star_path(o, cx, cy, 7);
            sb_str(o, "\"/>");
            break;
        case 4: sb_printf(o, "<path class=\"uref\" d=\"M%.1f %.1fl-4 -7h8z\"/>", cx, cy + 4); break;
        case 5: sb_printf(o, "<line class=\"bud\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", cx, cx, cy - 7, cy + 6); break;
        default: sb_printf(o, "<line class=\"ref\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", cx - 8, cx + 8, cy, cy);
        }
        sb_printf(o, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 24, y, key[k]);
        x += w;
    }
    sb_str(o, "</svg>\n");
}

/* ------------------------------------------------------------------ the search over time */

typedef enum { T_ACC = 0, T_COST, T_REWARD, T_DISTINCT } tkind;

static void time_plot(rctx *c, sb *o, tkind kind) {
    int n = 0, emax = 1, M = c->n ? c->runs[0].metric : 0;
    double y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < c->n; i++) {
        const rrun *r = &c->runs[i];
        emax = MQ_MAX(emax, r->episodes_total);
        emax = MQ_MAX(emax, r->episodes_done);
        for (int j = 0; j < r->n_ev; j++) {
            const rrec *x = &r->ev[j];
            emax = MQ_MAX(emax, x->episode);
            double v = kind == T_ACC ? x->acc : kind == T_COST ? x->ratio[r->metric] : kind == T_REWARD ? x->reward : j + 1;
            if (!isfinite(v)) continue;
            n += kind != T_DISTINCT;
            y0 = fmin(y0, v), y1 = fmax(y1, v);
        }
        if (kind == T_COST && r->budget[r->metric] > 0) y0 = fmin(y0, r->budget[r->metric]), y1 = fmax(y1, r->budget[r->metric]);
        if (kind == T_DISTINCT) y0 = 0;
    }
    if (!(y1 >= y0)) y0 = 0, y1 = 1;
    if ((kind == T_ACC || kind == T_REWARD) && n) { /* collapsed candidates on the bottom edge, as above */
        double *v = malloc(sizeof(double) * (size_t)n);
        int k = 0;
        for (int i = 0; v && i < c->n; i++)
            for (int j = 0; j < c->runs[i].n_ev; j++) {
                double x = kind == T_ACC ? c->runs[i].ev[j].acc : c->runs[i].ev[j].reward;
                if (isfinite(x)) v[k++] = x;
            }
        if (v) y0 = floor_of(v, k, y1, kind == T_ACC ? 0.5 : 1e-9);
        free(v);
    }
    if (kind == T_DISTINCT) y1 = fmax(y1, 1);
    plot p = {.W = 560, .H = 300, .l = 52, .r = 14, .t = 14, .b = 42, .x0 = 0, .x1 = emax, .y0 = y0, .y1 = y1};
    pad_range(&p.y0, &p.y1, 0.05);
    if (kind == T_DISTINCT) p.y0 = 0;
    p.x1 += 0.5;
    static const char *const titles[] = {"Accuracy per episode", "Cost per episode", "Reward per episode",
                                         "Distinct candidates scored"};
    static const char *const ylabels[] = {"validation accuracy (%)", "", "reward", "distinct candidates"};
    char ylab[96];
    snprintf(ylab, sizeof ylab, "%s", ylabels[kind]);
    if (kind == T_COST) snprintf(ylab, sizeof ylab, "%s, \xC3\x97 uniform W8A8", metric_title[M]);
    sb_printf(o, "<div class=\"fig\"><div class=\"ft\">%s</div>\n", titles[kind]);
    char extra[48];
    snprintf(extra, sizeof extra, " data-points=\"%d\"", n);
    svg_open(o, &p, kind == T_DISTINCT ? "plot time distinct" : "plot time", titles[kind], extra);
    svg_axes(o, &p, "episode", ylab, 1);
    const double B = p.H - p.b;
    if (kind == T_DISTINCT) { /* one new candidate per episode, for reference */
        double e = fmin(emax, p.y1);
        sb_printf(o, "<line class=\"ref\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"><title>one new candidate per "
                  "episode</title></line>\n", px(&p, 0), py(&p, 0), px(&p, e), py(&p, e));
    }
    if (kind == T_COST)
        for (int i = 0; i < c->n; i++)
            if (c->runs[i].budget[c->runs[i].metric] > 0) {
                double y = py(&p, c->runs[i].budget[c->runs[i].metric]);
                sb_printf(o, "<line class=\"bud\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>\n", p.l, p.W - p.r, y, y);
            }
    if (kind == T_ACC) {
        double acc0 = NAN;
        for (int i = 0; i < c->n && !isfinite(acc0); i++) acc0 = c->runs[i].acc0;
        if (isfinite(acc0) && acc0 <= p.y1 && acc0 >= p.y0)
            sb_printf(o, "<line class=\"ref\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>\n", p.l, p.W - p.r,
                      py(&p, acc0), py(&p, acc0));
    }
    for (int i = 0; i < c->n; i++) {
        const rrun *r = &c->runs[i];
        const int s = r->series % NPAL;
        if (kind == T_DISTINCT) { /* candidates scored up to each episode (records in episode order) */
            sb_printf(o, "<path class=\"bs f%d\" d=\"M%.1f %.1f", s, px(&p, 0), py(&p, 0));
            for (int j = 0; j < r->n_ev; j++) {
                if (j + 1 < r->n_ev && r->ev[j + 1].episode == r->ev[j].episode) continue;
                sb_printf(o, "H%.1fV%.1f", px(&p, r->ev[j].episode), py(&p, j + 1));
            }
            int last = MQ_MAX(r->episodes_done, r->n_ev ? r->ev[r->n_ev - 1].episode : 0);
            sb_printf(o, "H%.1f\"><title>", px(&p, last));
            sb_esc(o, r->base);
            sb_printf(o, ": %d distinct candidates</title></path>\n", r->n_ev);
            continue;
        }
        for (int j = 0; j < r->n_ev; j++) {
            const rrec *x = &r->ev[j];
            double v = kind == T_ACC ? x->acc : kind == T_COST ? x->ratio[r->metric] : x->reward;
            if (!isfinite(v)) continue;
            double X = px(&p, x->episode), Y = py(&p, v);
            if (v < p.y0) sb_printf(o, "<path class=\"tp lo s%d%s\" d=\"M%.1f %.1fl-3 -5h6z\">", s, x->fits == 0 ? " o" : "", X, B);
            else sb_printf(o, "<circle class=\"tp s%d%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\">", s, x->fits == 0 ? " o" : "", X, Y);
            sb_str(o, "<title>");
            sb_esc(o, r->base);
            sb_printf(o, ", episode %d: %.4g</title>%s\n", x->episode, v, v < p.y0 ? "</path>" : "</circle>");
        }
        if (kind == T_ACC) { /* best fitting accuracy so far */
            double best = -INFINITY;
            int first = 1;
            sb_printf(o, "<path class=\"bs f%d\" d=\"", s);
            for (int j = 0; j < r->n_ev; j++) {
                const rrec *x = &r->ev[j];
                if (x->fits == 0 || !(x->acc > best)) continue;
                best = x->acc;
                double X = px(&p, x->episode), Y = py(&p, fmax(best, p.y0));
                if (first) sb_printf(o, "M%.1f %.1f", X, Y);
                else sb_printf(o, "H%.1fV%.1f", X, Y);
                first = 0;
            }
            if (!first) {
                int last = MQ_MAX(r->episodes_done, r->ev[r->n_ev - 1].episode);
                sb_printf(o, "H%.1f", px(&p, last));
            }
            sb_str(o, "\"><title>best fitting accuracy so far: ");
            sb_esc(o, r->base);
            sb_str(o, "</title></path>\n");
        }
    }
    sb_str(o, "</svg>\n<div class=\"cap\">");
    if (kind == T_ACC) sb_str(o, "Points: each episode's new candidate; line: the best accuracy within the budget so far; "
                                 "gray: FP32.");
    else if (kind == T_COST) sb_str(o, "The primary metric of each new candidate; dashed: the budget.");
    else if (kind == T_REWARD) sb_str(o, "The reward the agent received for each new candidate.");
    else sb_str(o, "Candidates no earlier episode had scored; dashed: one per episode.");
    sb_str(o, "</div></div>\n");
}

/* ------------------------------------------------------------------ per layer */

static void layer_labels(sb *o, const rrun *r, const plot *p, double gw) {
    const double B = p->H - p->b;
    for (int l = 0; l < r->nl; l++) {
        double x = p->l + gw * (l + 0.5);
        sb_printf(o, "<text class=\"ln\" transform=\"translate(%.1f %.1f) rotate(-40)\" text-anchor=\"end\">", x + 3, B + 10);
        sb_escn(o, r->lname[l], 18);
        if (text_chars(r->lname[l]) > 18) {
            sb_str(o, "<title>");
            sb_esc(o, r->lname[l]);
            sb_str(o, "</title>");
        }
        sb_str(o, "</text>\n");
    }
}

static double label_bottom(const rrun *r) {
    int mx = 4;
    for (int l = 0; l < r->nl; l++) mx = MQ_MAX(mx, MQ_MIN(19, text_chars(r->lname[l])));
    return 24 + mx * 5.8 * 0.66 + 8;
}

/* Weight and activation bits per layer, MACs as gray bars on a second axis. */
static void bits_plot(sb *o, const rrun *r, int half) {
    int bmax = 8;
    double mmax = 0;
    for (int l = 0; l < r->nl; l++) bmax = MQ_MAX(bmax, MQ_MAX(r->pw[l], r->pa[l])), mmax = fmax(mmax, r->macs[l]);
    plot p = {.W = half ? 560 : MQ_MAX(1120, 120 + 34 * r->nl), .H = 250 + label_bottom(r), .l = 46, .r = 62, .t = 16,
              .b = label_bottom(r), .x0 = 0, .x1 = r->nl, .y0 = 0, .y1 = bmax};
    char extra[64];
    snprintf(extra, sizeof extra, " data-layers=\"%d\"", r->nl);
    svg_open(o, &p, "plot bits", "bits per layer", extra);
    /* left axis: bits (integer ticks) */
    const double L = p.l, R = p.W - p.r, T = p.t, B = p.H - p.b, gw = (R - L) / (r->nl ? r->nl : 1);
    sb_str(o, "<g class=\"ax\">\n");
    int ystep = bmax > 8 ? 4 : 1;
    for (int b = 0; b <= bmax; b += ystep) {
        double y = py(&p, b);
        sb_printf(o, "<line class=\"gl\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" "
                  "text-anchor=\"end\">%d</text>\n", L, R, y, y, L - 5, y + 3.5, b);
    }
    sb_printf(o, "<path class=\"frame\" d=\"M%.1f %.1fV%.1fH%.1fV%.1f\"/>\n", L, T, B, R, T);
    sb_printf(o, "<text class=\"al\" transform=\"translate(13 %.1f) rotate(-90)\" text-anchor=\"middle\">bits</text>\n",
              (T + B) / 2);
    if (mmax > 0) { /* right axis: MACs */
        double ms = nice_step(mmax / 1e6, 5);
        int md = step_decimals(ms);
        for (long i = 0; i * ms <= mmax / 1e6 * 1.0001 && i < 60; i++) {
            double y = B - i * ms * 1e6 / mmax * (B - T);
            sb_printf(o, "<text class=\"mx\" x=\"%.1f\" y=\"%.1f\">%.*f</text>", R + 5, y + 3.5, md, i * ms);
        }
        sb_printf(o, "\n<text class=\"al mx\" transform=\"translate(%.1f %.1f) rotate(90)\" text-anchor=\"middle\">MACs per "
                  "image (millions, gray)</text>\n", p.W - 18, (T + B) / 2);
    }
    sb_str(o, "</g>\n");
    for (int l = 0; l < r->nl; l++) {
        double x = L + gw * l;
        if (mmax > 0 && r->macs[l] >= 0) {
            double h = r->macs[l] / mmax * (B - T);
            sb_printf(o, "<rect class=\"macs\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>", x + gw * 0.04,
                      B - h, gw * 0.92, h);
            sb_esc(o, r->lname[l]);
            sb_printf(o, ": %.4g MACs per image</title></rect>\n", r->macs[l]);
        }
        for (int h = 0; h < 2; h++) {
            int v = h ? r->pa[l] : r->pw[l];
            double bx = x + gw * (h ? 0.5 : 0.14), bw = gw * 0.36, y = py(&p, v);
            sb_printf(o, "<rect class=\"bar-%c\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>", h ? 'a' : 'w',
                      bx, y, bw, B - y);
            sb_esc(o, r->lname[l]);
            sb_printf(o, ": %s %d bits%s</title></rect>", h ? "activations" : "weights", v,
                      !h && r->kb[l] ? " (per kernel: the widest)" : "");
            if (gw >= 14) sb_printf(o, "<text class=\"bv\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>", bx + bw / 2,
                                    y - 3, v);
            sb_str(o, "\n");
        }
    }
    layer_labels(o, r, &p, gw);
    sb_str(o, "</svg>\n");
}

static const char *const heat[9] = {"#ffffff", "#440154", "#46327e", "#365c8d", "#277f8e",
                                    "#1fa187", "#4ac16d", "#a0da39", "#fde725"};

static const char *heat_color(int b) { return b >= 1 && b <= 8 ? heat[b] : "#bbbbbb"; }

/* Per-kernel weight bits: layers as rows, each layer's kernels (output channels) as columns
 * across the full width; runs of equal bits are one cell. */
static void heat_plot(sb *o, const rrun *r, int half) {
    const double rowh = 16, namew = half ? 96 : 150;
    plot p = {.W = half ? 560 : 1120, .H = 10 + rowh * r->nl + 44, .l = namew, .r = 78, .t = 8, .b = 44};
    char extra[48];
    snprintf(extra, sizeof extra, " data-layers=\"%d\"", r->nl);
    svg_open(o, &p, "plot heat", "per-kernel weight bits", extra);
    const double pw = p.W - p.l - p.r;
    for (int l = 0; l < r->nl; l++) {
        double y = p.t + rowh * l;
        const double cw = pw / (r->kn[l] > 0 ? r->kn[l] : 1);
        sb_printf(o, "<text class=\"ln\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", p.l - 6, y + 11);
        sb_escn(o, r->lname[l], half ? 14 : 22);
        sb_str(o, "</text>");
        for (int k = 0; k < r->kn[l];) {
            int v = r->kb[l] ? r->kb[l][k] : r->pw[l], e = k + 1;
            while (e < r->kn[l] && (r->kb[l] ? r->kb[l][e] : r->pw[l]) == v) e++;
            sb_printf(o, "<rect class=\"hm\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.0f\" fill=\"%s\"><title>",
                      p.l + cw * k, y, cw * (e - k), rowh - 2, heat_color(v));
            sb_esc(o, r->lname[l]);
            sb_printf(o, " kernels %d-%d of %d: %d bits</title></rect>", k, e - 1, r->kn[l], v);
            k = e;
        }
        sb_printf(o, "<text class=\"ln\" x=\"%.1f\" y=\"%.1f\">%d kernel%s</text>\n", p.l + pw + 6, y + 11, r->kn[l],
                  r->kn[l] == 1 ? "" : "s");
    }
    double y = p.t + rowh * r->nl + 14;
    sb_printf(o, "<text x=\"%.1f\" y=\"%.1f\">each row: the layer's kernels, first to last; weight bits</text>", p.l,
              y + 10);
    for (int b = 1; b <= 8; b++)
        sb_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"20\" height=\"13\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\" "
                  "text-anchor=\"middle\" class=\"hk%s\">%d</text>", p.l + 290 + 21.0 * b, y, heat[b], p.l + 300 + 21.0 * b,
                  y + 10, b >= 6 ? " dk" : "", b);
    sb_str(o, "\n</svg>\n");
}

/* Latency per layer (memory-bound layers marked) and energy split per layer. */
static void cost_plots(sb *o, const rrun *r, int half) {
    double lmax = 0, emax = 0;
    for (int l = 0; l < r->nl; l++) lmax = fmax(lmax, r->cost[l].latency_s), emax = fmax(emax, r->cost[l].energy_j);
    for (int kind = 0; kind < 2; kind++) {
        double vmax = kind ? emax : lmax;
        if (!(vmax > 0)) continue;
        double scale = kind ? 1e6 : 1e6; /* uJ, us */
        plot p = {.W = half ? 560 : 1120, .H = 230 + label_bottom(r), .l = 58, .r = 14, .t = 30, .b = label_bottom(r), .x0 = 0,
                  .x1 = r->nl, .y0 = 0, .y1 = vmax * scale};
        pad_range(&p.y0, &p.y1, 0.04);
        p.y0 = 0;
        sb_printf(o, "<div class=\"fig\"><div class=\"ft\">%s</div>\n",
                  kind ? "Energy per layer: compute, buffers, DRAM" : "Latency per layer");
        svg_open(o, &p, kind ? "plot energy" : "plot latency", kind ? "energy per layer" : "latency per layer", NULL);
        /* axes without x ticks: layers are categories */
        const double L = p.l, R = p.W - p.r, T = p.t, B = p.H - p.b, gw = (R - L) / r->nl;
        double ys = nice_step(p.y1, 5);
        int yd = step_decimals(ys);
        sb_str(o, "<g class=\"ax\">\n");
        for (long i = 0; i * ys <= p.y1 && i < 60; i++) {
            double y = py(&p, i * ys);
            sb_printf(o, "<line class=\"gl\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" "
                      "text-anchor=\"end\">%.*f</text>\n", L, R, y, y, L - 5, y + 3.5, yd, i * ys);
        }
        sb_printf(o, "<path class=\"frame\" d=\"M%.1f %.1fV%.1fH%.1f\"/>\n", L, T, B, R);
        sb_printf(o, "<text class=\"al\" transform=\"translate(13 %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n</g>\n",
                  (T + B) / 2, kind ? "energy per run (\xC2\xB5J)" : "latency per run (\xC2\xB5s)");
        for (int l = 0; l < r->nl; l++) {
            const mixq_cost *cc = &r->cost[l];
            double x = L + gw * (l + 0.18), w = gw * 0.64;
            if (!kind) {
                int mem = (cc->flags & MIXQ_COST_MEMBOUND) != 0;
                double y = py(&p, cc->latency_s * scale);
                sb_printf(o, "<rect class=\"bar-lat%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>", mem ? " mem" : "",
                          x, y, w, B - y);
                sb_esc(o, r->lname[l]);
                sb_printf(o, ": %.4g \xC2\xB5s, %.0f cycles, %s-bound</title></rect>", cc->latency_s * 1e6, cc->cycles,
                          mem ? "memory" : "compute");
                if (mem) sb_printf(o, "<text class=\"mb\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">M</text>", x + w / 2, y - 3);
                sb_str(o, "\n");
            } else {
                const double part[3] = {cc->e_compute_j, cc->e_sram_j, cc->e_dram_j};
                static const char *const pn[3] = {"compute", "buffers", "DRAM"};
                double base = 0;
                for (int q = 0; q < 3; q++) {
                    double y_top = py(&p, (base + part[q]) * scale), y_bot = py(&p, base * scale);
                    sb_printf(o, "<rect class=\"bar-e e%d\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>", q, x,
                              y_top, w, y_bot - y_top);
                    sb_esc(o, r->lname[l]);
                    sb_printf(o, ": %s %.4g \xC2\xB5J of %.4g</title></rect>", pn[q], part[q] * 1e6, cc->energy_j * 1e6);
                    base += part[q];
                }
                sb_str(o, "\n");
            }
        }
        layer_labels(o, r, &p, gw);
        /* key */
        if (!kind)
            sb_printf(o, "<rect class=\"k-lat\" x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\"/><text x=\"%.1f\" y=\"%.1f\">"
                      "compute-bound</text><rect class=\"k-lat mem\" x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\"/><text "
                      "x=\"%.1f\" y=\"%.1f\">memory-bound (M)</text>\n", R - 250, T - 24, R - 236, T - 15, R - 140, T - 24,
                      R - 126, T - 15);
        else
            for (int q = 0; q < 3; q++)
                sb_printf(o, "<rect class=\"e%d\" x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\"/><text x=\"%.1f\" y=\"%.1f\">%s"
                          "</text>", q, R - 230 + 80.0 * q, T - 24, R - 216 + 80.0 * q, T - 15,
                          q == 0 ? "compute" : q == 1 ? "buffers" : "DRAM");
        sb_str(o, "</svg></div>\n");
    }
}

static void cost_table(sb *o, const rrun *r) {
    sb_str(o, "<table class=\"num\"><tr><th>layer</th><th>op</th><th>w/a bits</th><th>MACs</th><th>cycles</th>"
              "<th>latency \xC2\xB5s</th><th>energy \xC2\xB5J</th><th>compute</th><th>buffers</th><th>DRAM</th>"
              "<th>DRAM KiB</th><th>bound</th></tr>\n");
    mixq_cost tot;
    memset(&tot, 0, sizeof tot);
    int nmem = 0;
    for (int l = 0; l <= r->nl; l++) {
        const mixq_cost *cc = l < r->nl ? &r->cost[l] : &tot;
        if (l < r->nl) mixq_cost_add(&tot, cc), nmem += (cc->flags & MIXQ_COST_MEMBOUND) != 0;
        sb_str(o, l < r->nl ? "<tr><td>" : "<tr class=\"tot\"><td>");
        sb_esc(o, l < r->nl ? r->lname[l] : "total");
        sb_str(o, "</td><td>");
        if (l < r->nl) sb_esc(o, r->lkind[l]);
        sb_str(o, "</td><td>");
        if (l < r->nl) sb_printf(o, "%s%d/%d", r->kb[l] ? "k" : "", r->pw[l], r->pa[l]);
        sb_printf(o, "</td><td>%.4g</td><td>%.0f</td><td>%.3f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td>"
                  "<td>%.1f</td><td>%s</td></tr>\n", cc->macs, cc->cycles, cc->latency_s * 1e6, cc->energy_j * 1e6,
                  cc->e_compute_j * 1e6, cc->e_sram_j * 1e6, cc->e_dram_j * 1e6, cc->dram_bytes / 1024.0,
                  l == r->nl ? "" : cc->flags & MIXQ_COST_MEMBOUND ? "<b>memory</b>" : "compute");
    }
    sb_str(o, "</table>\n<p class=\"cap\">");
    sb_printf(o, "%d of %d layers memory-bound", nmem, r->nl);
    if (r->cost8.latency_s > 0) {
        sb_printf(o, "; against uniform W8A8 on the same target: latency %.3f\xC3\x97", tot.latency_s / r->cost8.latency_s);
        if (r->cost8.energy_j > 0) sb_printf(o, ", energy %.3f\xC3\x97", tot.energy_j / r->cost8.energy_j);
        if (r->cost8.dram_bytes > 0) sb_printf(o, ", DRAM traffic %.3f\xC3\x97", tot.dram_bytes / r->cost8.dram_bytes);
    }
    if (tot.flags & MIXQ_COST_ESTIMATE) sb_str(o, ". The energy is an estimate from generic constants");
    if (tot.flags & MIXQ_COST_ROUNDED) sb_str(o, ". Some bits run rounded up to a mode the hardware has");
    sb_str(o, ".</p>\n");
}

/* ------------------------------------------------------------------ tables */

static void td_num(sb *o, double v, const char *fmt) {
    sb_str(o, "<td class=\"n\">");
    if (isfinite(v)) sb_printf(o, fmt, v);
    else sb_str(o, "\xE2\x80\x93");
    sb_str(o, "</td>");
}

static void swatch(sb *o, int s) {
    sb_printf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sw\" viewBox=\"0 0 12 12\" width=\"12\" height=\"12\">"
              "<circle class=\"pt fr s%d\" cx=\"6\" cy=\"6\" r=\"5\"/></svg>", s % NPAL);
}

/* open, the run's colour, sep, its directory. */
static void run_title(sb *o, const char *open, const rrun *r, const char *sep) {
    sb_str(o, open);
    swatch(o, r->series);
    sb_str(o, sep);
    sb_esc(o, r->dir);
}

static void runs_table(rctx *c, sb *o) {
    sb_str(o, "<table class=\"runs\"><tr><th></th><th>run</th><th>agent</th><th>status</th><th>seed</th><th>budget</th>"
              "<th>candidates</th><th>chosen: val %</th><th>cost \xC3\x97 W8A8</th><th>fits</th><th>final val %</th>"
              "<th>test %</th><th>search s</th><th>final s</th></tr>\n");
    for (int i = 0; i < c->n; i++) {
        const rrun *r = &c->runs[i];
        run_title(o, "<tr><td>", r, "</td><td>");
        sb_str(o, "</td><td>");
        sb_esc(o, r->agent);
        sb_str(o, "</td><td>");
        if (r->finished) sb_str(o, "finished");
        else if (r->episodes_total) sb_printf(o, "episode %d of %d", r->episodes_done, r->episodes_total);
        else if (r->n_ev) sb_str(o, "in progress or stopped");
        else sb_str(o, "no candidates");
        sb_str(o, "</td>");
        td_num(o, jnum(r->config, "seed"), "%.0f");
        sb_str(o, "<td>");
        sb_esc(o, jstr(r->config, "budget") ? jstr(r->config, "budget") : "");
        sb_printf(o, "</td><td class=\"n\">%d</td>", r->n_ev);
        const rrec *x = r->chosen >= 0 ? &r->ev[r->chosen] : NULL;
        td_num(o, x ? x->acc : NAN, "%.2f");
        td_num(o, x ? x->ratio[r->metric] : NAN, "%.3f");
        sb_printf(o, "<td>%s</td>", !x || x->fits < 0 ? "" : x->fits ? "yes" : "<b>no</b>");
        double fv = jnum(r->summary, "final_val_accuracy"), ft = jnum(r->summary, "final_test_accuracy");
        td_num(o, fv >= 0 ? fv : NAN, "%.2f");
        td_num(o, ft >= 0 ? ft : NAN, "%.2f");
        td_num(o, jnum(r->summary, "search_s"), "%.1f");
        td_num(o, jnum(r->summary, "final_s"), "%.1f");
        sb_str(o, "</tr>\n");
    }
    sb_str(o, "</table>\n");
}

/* A JSON value as compact text (strings without quotes). */
static void json_value(sb *o, const cJSON *v) {
    if (cJSON_IsString(v)) {
        sb_esc(o, v->valuestring);
        return;
    }
    if (cJSON_IsObject(v)) {
        for (const cJSON *e = v->child; e; e = e->next) {
            sb_str(o, e == v->child ? "" : ", ");
            sb_esc(o, e->string ? e->string : "");
            sb_str(o, "=");
            if (cJSON_IsObject(e)) sb_str(o, "{...}");
            else json_value(o, e);
        }
        return;
    }
    char *t = cJSON_PrintUnformatted(v);
    if (t) sb_escn(o, t, 600);
    cJSON_free(t);
}

static void kv_table(sb *o, const cJSON *j) {
    sb_str(o, "<table class=\"kv\">\n");
    for (const cJSON *e = j ? j->child : NULL; e; e = e->next) {
        sb_str(o, "<tr><th>");
        sb_esc(o, e->string ? e->string : "");
        sb_str(o, "</th><td>");
        json_value(o, e);
        sb_str(o, "</td></tr>\n");
    }
    sb_str(o, "</table>\n");
}

static void provenance(rctx *c, sb *o, const rrun *r) {
    (void)c;
    run_title(o, "<div class=\"prov\"><h3>", r, " ");
    sb_str(o, "</h3>\n");
    int nc = 0;
    if (r->cmds) {
        sb_str(o, "<p class=\"lbl\">Commands that ran this search (commands.jsonl):</p>\n<ul class=\"cmds\">\n");
        const char *p = r->cmds;
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            char *line = malloc(len + 1);
            if (!line) break;
            memcpy(line, p, len);
            line[len] = 0;
            cJSON *j = cJSON_Parse(line);
            free(line);
            if (j) {
                sb_str(o, "<li><span class=\"when\">");
                sb_esc(o, jstr(j, "time") ? jstr(j, "time") : "");
                sb_str(o, "</span> mixq ");
                sb_esc(o, jstr(j, "mixq") ? jstr(j, "mixq") : "?");
                sb_str(o, ": <code>");
                sb_esc(o, jstr(j, "command") ? jstr(j, "command") : "");
                sb_str(o, "</code></li>\n");
                nc++;
            }
            cJSON_Delete(j);
            if (!nl) break;
            p = nl + 1;
        }
        sb_str(o, "</ul>\n");
    }
    if (!nc) sb_str(o, "<p class=\"lbl\">The command line was not recorded (commands.jsonl is written by the mixq CLI).</p>\n");
    /* the essentials in one line */
    sb_str(o, "<p class=\"hl\">");
    static const char *const keys[] = {"agent", "seed", "data", "hw", "budget", "episodes"};
    for (int k = 0; k < 6; k++) {
        const cJSON *v = jget(r->config, keys[k]);
        if (!v) continue;
        sb_printf(o, "<span>%s <b>", keys[k]);
        json_value(o, v);
        sb_str(o, "</b></span> ");
    }
    double ss = jnum(r->summary, "search_s"), fs = jnum(r->summary, "final_s");
    if (isfinite(ss)) sb_printf(o, "<span>search <b>%.1f s</b></span> ", ss);
    if (isfinite(fs)) sb_printf(o, "<span>final fine-tune and test <b>%.1f s</b></span> ", fs);
    sb_str(o, "</p>\n");
    sb_str(o, "<div class=\"kvs\"><div><p class=\"lbl\">config.json</p>\n");
    if (r->config) kv_table(o, r->config);
    else sb_str(o, "<p>missing</p>\n");
    sb_str(o, "</div><div><p class=\"lbl\">summary.json</p>\n");
    if (r->summary) kv_table(o, r->summary);
    else sb_str(o, "<p>not written yet (the search has not finished)</p>\n");
    if (r->state) {
        sb_str(o, "<p class=\"lbl\">state.json</p>\n");
        kv_table(o, r->state);
    }
    if (r->hw) {
        sb_str(o, "<p class=\"lbl\">hardware target</p><table class=\"kv\"><tr><th>name</th><td>");
        sb_esc(o, mixq_hw_name(r->hw));
        sb_str(o, "</td></tr><tr><th>back-end</th><td>");
        sb_esc(o, mixq_hw_backend(r->hw));
        sb_printf(o, "</td></tr><tr><th>batch</th><td>%d</td></tr><tr><th>description</th><td>",
                  r->hw_batch ? r->hw_batch : mixq_hw_batch(r->hw));
        sb_esc(o, mixq_hw_description(r->hw));
        sb_str(o, "</td></tr></table>\n");
    }
    sb_str(o, "</div></div></div>\n");
}

/* ------------------------------------------------------------------ the page */

static const char css[] =
    "body{font:14px/1.45 'Liberation Sans',Arial,Helvetica,sans-serif;color:#222;margin:20px auto;max-width:1200px;"
    "padding:0 16px;background:#fff}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:3px;margin:28px 0 10px}"
    "h3{font-size:15px;margin:18px 0 6px}\n"
    ".sub{color:#555;margin:0 0 10px}.nav a{margin-right:14px;color:#0b62a4}\n"
    ".grid{display:grid;grid-template-columns:1fr 1fr;gap:14px}\n"
    ".fig{border:1px solid #e2e2e2;border-radius:6px;padding:8px 10px 6px;margin:0 0 14px;break-inside:avoid;"
    "page-break-inside:avoid;background:#fff}\n"
    ".grid .fig{margin:0}.ft{font-weight:bold;font-size:13.5px;margin-bottom:2px}.cap{font-size:12px;color:#555;margin:4px 0}\n"
    "svg{display:block;width:100%;height:auto}svg.sw{display:inline-block;width:12px;height:12px;vertical-align:-1px}\n"
    "svg text{font-size:11px;fill:#333;font-family:'Liberation Sans',Arial,Helvetica,sans-serif}\n"
    "svg .al{font-size:12px;fill:#222}svg .ln{font-size:10.5px}svg .rl,svg .bl,svg .ul{font-size:10px}\n"
    ".ax line{stroke:#999;stroke-width:1}.ax .gl{stroke:#ececec}.ax .frame{fill:none;stroke:#888;stroke-width:1}\n"
    ".pt,.tp{stroke-width:.8;fill-opacity:.42}.pt.fr{fill-opacity:.95;stroke:#fff;stroke-width:.6}.pt.o,.tp.o{fill-opacity:0}"
    ".pt.fr.o{fill:#fff;fill-opacity:1;stroke-width:1.2}\n"
    ".pt.lo,.tp.lo{fill-opacity:.7}.chosen{stroke:#111;stroke-width:1.2;fill-opacity:1}\n"
    ".front{fill:none;stroke-width:1.8;stroke-opacity:.85}.bs{fill:none;stroke-width:1.6}\n"
    ".ref{stroke:#888;stroke-width:1;stroke-dasharray:5 3;fill:none}.rl{fill:#666}\n"
    ".bud{stroke:#c62828;stroke-width:1.2;stroke-dasharray:6 3}.bl{fill:#c62828}\n"
    ".w8{stroke:#555;stroke-width:1;stroke-dasharray:2 3}.uref{fill:#777}.ul{fill:#555}\n"
    ".empty{fill:#999;font-size:14px}\n"
    ".bar-w{fill:#2f5f98}.bar-a{fill:#e8964a}.macs{fill:#e8e8e8}.bv{font-size:9px;fill:#333}.mx{fill:#777}\n"
    ".bar-lat,.k-lat{fill:#4c78a8}.bar-lat.mem,.k-lat.mem{fill:#e45756}.mb{font-size:10px;fill:#b71c1c;font-weight:bold}\n"
    ".e0{fill:#4c78a8}.e1{fill:#72b7b2}.e2{fill:#f58518}.hk{font-size:9px;fill:#fff}.hk.dk{fill:#222}\n"
    "table{border-collapse:collapse;font-size:12.5px;margin:6px 0}th,td{border-bottom:1px solid #eee;padding:3px 7px;"
    "text-align:left;vertical-align:top}th{background:#f6f6f6}td.n,table.num td{text-align:right;"
    "font-variant-numeric:tabular-nums}table.num td:first-child,table.num td:nth-child(2){text-align:left}\n"
    "tr.tot td{font-weight:bold;border-top:1px solid #ccc}table.kv th{background:none;font-weight:normal;color:#555}\n"
    "table.kv td{word-break:break-all;max-width:560px}.kvs{display:grid;grid-template-columns:1fr 1fr;gap:18px}\n"
    ".hl span{margin-right:14px;white-space:nowrap}.hl{font-size:13px;margin:4px 0}\n"
    ".lbl{font-size:12px;color:#555;margin:8px 0 2px}code{font-size:12px;word-break:break-all}.when{color:#777}\n"
    ".notes{background:#fff8e1;border:1px solid #f0d58c;border-radius:6px;padding:6px 12px;margin:10px 0;font-size:13px}"
    ".notes ul{margin:4px 0;padding-left:20px}.wide{overflow-x:auto}\n"
    ".footer{margin:30px 0 10px;color:#888;font-size:12px}\n"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}\n"
    "@media print{body{max-width:none;margin:0;padding:0;font-size:11px}.nav{display:none}.grid{gap:8px}"
    "h2{break-after:avoid;page-break-after:avoid}.prov{break-inside:avoid}.wide{overflow:visible}@page{margin:12mm}}\n";

static void page_css(sb *o) {
    sb_str(o, css);
    for (int s = 0; s < NPAL; s++)
        sb_printf(o, ".s%d{fill:%s;stroke:%s}.f%d{stroke:%s}\n", s, palette[s], palette[s], s, palette[s]);
}

static void section_runs_notes(rctx *c, sb *o) {
    int total = 0;
    for (int i = 0; i < c->n; i++) total += c->runs[i].n_notes;
    if (!total && !c->n_notes) return;
    sb_str(o, "<div class=\"notes\"><b>Notes</b>\n");
    if (c->n_notes) {
        sb_str(o, "<ul>\n");
        sb_put(o, c->notes.p, c->notes.n);
        sb_str(o, "</ul>\n");
    }
    for (int i = 0; i < c->n; i++) {
        const rrun *r = &c->runs[i];
        if (!r->n_notes) continue;
        sb_str(o, "<div>");
        sb_esc(o, r->dir);
        sb_str(o, ":</div><ul>\n");
        sb_put(o, r->notes.p, r->notes.n);
        sb_str(o, "</ul>\n");
    }
    sb_str(o, "</div>\n");
}

static void build_page(rctx *c, sb *o) {
    const char *title = c->cfg->title && *c->cfg->title ? c->cfg->title : "mixq search report";
    int cands = 0;
    for (int i = 0; i < c->n; i++) cands += c->runs[i].n_ev;
    sb_str(o, "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>");
    sb_esc(o, title);
    sb_str(o, "</title>\n<style>\n");
    page_css(o);
    sb_str(o, "</style>\n</head>\n<body>\n<h1>");
    sb_esc(o, title);
    sb_printf(o, "</h1>\n<p class=\"sub\">%d run%s, %d scored candidates", c->n, c->n == 1 ? "" : "s", cands);
    static const char *const head[4][2] = {{"model", "; model "}, {"hw", " on "}, {"budget", ", budget "},
                                           {"data", ", data "}};
    for (int k = 0; k < 4 && c->n; k++) { /* the first run's, as the page's subtitle */
        const char *v = jstr(c->runs[0].config, head[k][0]);
        if (!v) continue;
        sb_str(o, head[k][1]);
        sb_esc(o, v);
    }
    sb_str(o, "</p>\n<p class=\"nav\"><a href=\"#runs\">Runs</a><a href=\"#pareto\">Accuracy against cost</a>"
              "<a href=\"#time\">Over time</a><a href=\"#bits\">Bits per layer</a><a href=\"#cost\">Cost per layer</a>"
              "<a href=\"#config\">Configuration</a></p>\n");
    section_runs_notes(c, o);
    sb_str(o, "<h2 id=\"runs\">Runs</h2>\n<div class=\"wide\">");
    runs_table(c, o);
    sb_str(o, "</div>\n");
    legend(c, o);
    sb_str(o, "<h2 id=\"pareto\">Accuracy against cost</h2>\n<p class=\"cap\">Validation accuracy on the scoring subset "
              "against each cost metric as a fraction of the same model at uniform W8A8 on the target. Hover a point for "
              "its episode and bits.</p>\n<div class=\"grid\">\n");
    for (int m = 0; m < NM; m++) pareto_plot(c, o, m);
    sb_str(o, "</div>\n<h2 id=\"time\">The search over time</h2>\n<div class=\"grid\">\n");
    for (int k = 0; k < 4; k++) time_plot(c, o, (tkind)k);
    sb_str(o, "</div>\n<h2 id=\"bits\">Bits per layer of the chosen policy</h2>\n");
    int maxl = 0;
    for (int i = 0; i < c->n; i++) maxl = MQ_MAX(maxl, c->runs[i].nl);
    const int half = maxl <= 32;
    if (half) sb_str(o, "<div class=\"grid\">\n");
    for (int i = 0; i < c->n; i++) {
        const rrun *r = &c->runs[i];
        run_title(o, "<div class=\"fig\"><div class=\"ft\">", r, " ");
        if (r->chosen >= 0)
            sb_printf(o, ": episode %d, %.2f %%, %.3f\xC3\x97 W8A8 %s", r->ev[r->chosen].episode, r->ev[r->chosen].acc,
                      r->ev[r->chosen].ratio[r->metric], mq_metric_names[r->metric]);
        sb_str(o, "</div>\n");
        if (!r->nl) {
            sb_str(o, "<p class=\"cap\">No chosen policy.</p></div>\n");
            continue;
        }
        sb_str(o, "<div class=\"wide\">");
        bits_plot(o, r, half);
        sb_str(o, "</div><div class=\"cap\">Blue: weight bits, orange: activation bits (the layer's input)");
        int any_kb = 0;
        for (int l = 0; l < r->nl; l++) any_kb |= r->kb[l] != NULL;
        if (r->model) sb_str(o, "; gray: MACs per image (right axis)");
        else sb_str(o, "; no MACs: the model is not loaded");
        if (any_kb) sb_str(o, ". Per-kernel weight bits below (the bars show each layer's widest).");
        sb_str(o, "</div>\n");
        if (any_kb) heat_plot(o, r, half);
        sb_str(o, "</div>\n");
    }
    if (half) sb_str(o, "</div>\n");
    sb_str(o, "<h2 id=\"cost\">Cost per layer on the target</h2>\n");
    for (int i = 0; i < c->n; i++) {
        const rrun *r = &c->runs[i];
        run_title(o, "<h3>", r, " ");
        if (r->hw) {
            sb_str(o, " on ");
            sb_esc(o, mixq_hw_name(r->hw));
            sb_printf(o, ", batch %d", r->hw_batch ? r->hw_batch : mixq_hw_batch(r->hw));
        }
        sb_str(o, "</h3>\n");
        if (!r->cost) {
            sb_str(o, "<p class=\"cap\">Not costed: ");
            sb_str(o, !r->nl ? "no chosen policy." : !r->model ? "the model is not loaded (see the notes)."
                                                    : "the target is not loaded (see the notes).");
            sb_str(o, "</p>\n");
            continue;
        }
        if (half) sb_str(o, "<div class=\"grid\">\n");
        cost_plots(o, r, half);
        if (half) sb_str(o, "</div>\n");
        sb_str(o, "<div class=\"wide\">");
        cost_table(o, r);
        sb_str(o, "</div>\n");
    }
    sb_str(o, "<h2 id=\"config\">Configuration and provenance</h2>\n");
    for (int i = 0; i < c->n; i++) provenance(c, o, &c->runs[i]);
    sb_printf(o, "<div class=\"footer\">Written by mixq %s (<code>mixq report</code>) from the run directories' files.</div>\n"
                 "</body>\n</html>\n", mixq_version());
}

/* ------------------------------------------------------------------ entry points */

void mixq_report_config_default(mixq_report_config *c) {
    if (c) memset(c, 0, sizeof *c);
}


mixq_status mq_report_write(const char *const *run_dirs, int n, const char *out_path, const mixq_report_config *cfg,
                            const mixq_model *model0, mixq_hw *hw0) {
    if (!run_dirs || n < 1 || !out_path)
        return mq_err(MIXQ_ERR_ARG, "mixq_report_write: give at least one run directory and an output path");
    for (int i = 0; i < n; i++) {
        struct stat st_;
        if (!run_dirs[i] || stat(run_dirs[i], &st_) || !S_ISDIR(st_.st_mode))
            return mq_err(MIXQ_ERR_NOTFOUND, "'%s' is not a directory; hint: a run directory `mixq search --out` wrote",
                          run_dirs[i] ? run_dirs[i] : "(null)");
    }
    mixq_report_config def;
    mixq_report_config_default(&def);
    rctx c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg ? cfg : &def;
    c.model0 = model0, c.hw0 = hw0;
    c.n = n;
    c.runs = mq_calloc((size_t)n, sizeof *c.runs, "report runs");
    if (!c.runs) return MIXQ_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        c.runs[i].dir = run_dirs[i];
        load_run(&c, &c.runs[i], i == 0);
    }
    mixq_status st = MIXQ_OK;
    sb o = {0};
    if (!make_series(&c)) st = mq_err(MIXQ_ERR_NOMEM, "out of memory for the report");
    for (int i = 0; !st && i < n; i++)
        if (c.runs[i].notes.bad) st = mq_err(MIXQ_ERR_NOMEM, "out of memory for the report");
    if (!st) build_page(&c, &o);
    if (!st && (o.bad || c.notes.bad)) st = mq_err(MIXQ_ERR_NOMEM, "out of memory for the report page");
    if (!st) st = mq_write_atomic(out_path, o.p, o.n);
    free(o.p);
    for (int i = 0; i < n; i++) free_run(&c.runs[i]);
    free(c.runs);
    free(c.notes.p);
    free(c.slabel);
    free(c.s_runs);
    free(c.s_cands);
    for (int i = 0; i < c.n_models; i++) free(c.models[i].key), mixq_model_free(c.models[i].obj);
    for (int i = 0; i < c.n_hws; i++) free(c.hws[i].key), mixq_hw_free(c.hws[i].obj);
    free(c.models);
    free(c.hws);
    return st;
}

mixq_status mixq_report_write(const char *const *run_dirs, int n, const char *out_path, const mixq_report_config *cfg) {
    return mq_report_write(run_dirs, n, out_path, cfg, NULL, NULL);
}
