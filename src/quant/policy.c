/* Mixed-precision policy files (JSON, parsed with cJSON).
 *
 *   {
 *     "mixq_policy": 1,                                   required format version
 *     "default": {"w_bits": 8, "a_bits": 8, "granularity": "channel"},
 *     "rules": [
 *       {"op": "conv", "w_bits": 4},                      by op type: conv, depthwise, linear
 *       {"match": "layer3.*", "a_bits": 4},               by glob (fnmatch, '*' crosses dots)
 *       {"layer": "conv1", "w_bits": 8, "a_bits": 8}      by exact name
 *     ],
 *     "layers": {                                         exact names, as a map
 *       "fc": {"w_bits": 8},
 *       "layer1.0.conv1": {"w_bits": [4, 2, 8, ...], "granularity": "kernel"}
 *     }
 *   }
 *
 * "lsq" (both clips): learned step size — initialised by the MSE search, then trained with LSQ's
 * gradient during fine-tuning (weights: per scale; activations: instead of PACT's).
 * Setting keys: "w_bits" (1..8 or 32 = float; or an array with one entry per output channel,
 * which implies "granularity": "kernel"), "a_bits" (1..8 or 32: the layer's input
 * activations), "granularity" ("layer" | "channel" | "kernel": scale per layer, per output
 * channel, or per output channel with per-kernel bits), "w_clip" ("auto" | "max" | "mse" |
 * "kl"), "a_clip" ("auto" | "max" | "mse" | "kl" | "percentile"), "w_mode" ("linear" |
 * "kmeans": HAQ's model-size mode, 2^w_bits shared centroids per layer); "comment" is ignored
 * anywhere. "auto" follows HAQ's rule with the MSE search in place of its KL threshold (which
 * algorithms.md allows): the MSE-optimal clip below 5 bits, max |x| otherwise. "kl" is
 * TensorRT-style entropy calibration (on fewer than 4096 values it uses the MSE search).
 *
 * Precedence, lowest first, each key separately: built-in defaults (W8A8, per channel, auto
 * clips) < "default" < op rules < glob rules < exact rules ("rules" entries with "layer", then
 * "layers"); within a class, later entries win. Pinning the first and last layers is an exact
 * rule for each (`mixq info` lists the names).
 *
 * Errors name the entry and its line: unknown keys, wrong types, bits out of range, a
 * per-kernel array whose length is not the layer's output channels, and (when applied to a
 * model) a rule that matches no conv/linear layer.
 */
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nn/model.h"
#include "quant/policy.h"

#define POLICY_VERSION 1

/* ------------------------------------------------------------ parsing */

typedef struct parser {
    const char *text;
    const char *cursor;  /* keys are looked up from here on, in document order */
    const char *origin;
} parser;

static int line_at(const char *text, const char *p) {
    int line = 1;
    for (const char *c = text; c < p && *c; c++) line += *c == '\n';
    return line;
}

/* Line of the next occurrence of "key" at or after the cursor; advances the cursor unless
 * peek. */
static int key_line_at(parser *ps, const char *key, int peek) {
    char pat[MIXQ_NAME_MAX + 4];
    snprintf(pat, sizeof pat, "\"%.*s\"", MIXQ_NAME_MAX, key);
    const char *p = strstr(ps->cursor, pat);
    if (!p) p = strstr(ps->text, pat);
    if (!p) return 0;
    if (!peek) ps->cursor = p + 1;
    return line_at(ps->text, p);
}

static int key_line(parser *ps, const char *key) { return key_line_at(ps, key, 0); }

static mixq_status perr(parser *ps, int line, const char *fmt, const char *a, const char *b) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a, b);
    return mq_err(MIXQ_ERR_FORMAT, "policy '%s' line %d: %s", ps->origin, line, msg);
}

static mixq_status parse_bits(parser *ps, const cJSON *v, int line, const char *where, int *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return perr(ps, line, "%s must be an integer number of bits (1..8, or 32 for float)%s",
                    where, "");
    double d = v->valuedouble;
    if (!((d >= 1 && d <= 8) || d == 32)) {
        char num[32];
        snprintf(num, sizeof num, "%g", d);
        return perr(ps, line, "%s is %s bits; valid: 1..8, or 32 for float", where, num);
    }
    *out = (int)d;
    return MIXQ_OK;
}

static mixq_status parse_enum(parser *ps, const cJSON *v, int line, const char *key,
                              const char *const *names, int n, int *out) {
    if (cJSON_IsString(v))
        for (int i = 0; i < n; i++)
            if (!strcmp(v->valuestring, names[i])) {
                *out = i;
                return MIXQ_OK;
            }
    char list[160] = "";
    for (int i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < n) strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    return perr(ps, line, "\"%s\" must be one of: %s", key, list);
}

static void spec_free(pol_spec *s) {
    free(s->kbits);
    s->kbits = NULL;
}

/* One name per mq_gran, in enum order. */
static const char *const gran_names[] = {"layer", "channel", "kernel"};
_Static_assert(MQ_COUNTOF(gran_names) == MQ_GRAN_COUNT, "gran_names: one name per mq_gran");
/* a_clip: "auto" (MQ_CLIP_AUTO), then one name per mq_clip in enum order. */
static const char *const aclip_names[] = {"auto", "max", "mse", "kl", "percentile", "lsq"};
_Static_assert(MQ_COUNTOF(aclip_names) == 1 + MQ_CLIP_COUNT,
               "aclip_names: auto + one name per mq_clip");
/* w_clip: the methods that apply to weights (no percentile), each with its value. */
static const char *const wclip_names[] = {"auto", "max", "mse", "kl", "lsq"};
static const int wclip_values[] = {MQ_CLIP_AUTO, MQ_CLIP_MAX, MQ_CLIP_MSE, MQ_CLIP_KL, MQ_CLIP_LSQ};
_Static_assert(MQ_COUNTOF(wclip_names) == MQ_COUNTOF(wclip_values),
               "wclip_names: one value per name");

/* Parse the setting keys of object o; `skip` names one selector key to leave alone. */
static mixq_status parse_spec(parser *ps, const cJSON *o, const char *where, const char *skip,
                              pol_spec *s) {
    memset(s, 0, sizeof *s);
    if (!cJSON_IsObject(o))
        return perr(ps, key_line(ps, where), "%s must be an object%s", where, "");
    for (const cJSON *it = o->child; it; it = it->next) {
        const char *k = it->string;
        int line = key_line(ps, k);
        mixq_status st = MIXQ_OK;
        char what[160];
        snprintf(what, sizeof what, "%s.%s", where, k);
        if (skip && !strcmp(k, skip)) continue;
        if (!strcmp(k, "comment")) continue;
        for (const cJSON *q = o->child; q != it; q = q->next)
            if (!strcmp(q->string, k)) return perr(ps, line, "%s is given twice%s", what, "");
        if (!strcmp(k, "w_bits")) {
            s->has_w = 1;
            if (cJSON_IsArray(it)) {
                int n = cJSON_GetArraySize(it);
                if (n < 1) return perr(ps, line, "%s is an empty array%s", what, "");
                s->kbits = mq_malloc((size_t)n, sizeof(int), "per-kernel bits");
                if (!s->kbits) return mq_err(MIXQ_ERR_NOMEM, "policy: out of memory");
                s->nk = n;
                int i = 0, mx = 0;
                for (const cJSON *e = it->child; e; e = e->next, i++) {
                    char ew[200];
                    snprintf(ew, sizeof ew, "%s[%d]", what, i);
                    if ((st = parse_bits(ps, e, line, ew, &s->kbits[i]))) return st;
                    if (s->kbits[i] > mx) mx = s->kbits[i];
                }
                s->w_bits = mx;
                if (!s->has_gran) {
                    s->has_gran = 1;
                    s->gran = MQ_GRAN_KERNEL;
                }
            } else {
                st = parse_bits(ps, it, line, what, &s->w_bits);
            }
        } else if (!strcmp(k, "a_bits")) {
            s->has_a = 1;
            st = parse_bits(ps, it, line, what, &s->a_bits);
        } else if (!strcmp(k, "granularity")) {
            int g = 0;
            s->has_gran = 1;
            st = parse_enum(ps, it, line, k, gran_names, (int)MQ_COUNTOF(gran_names), &g);
            s->gran = (mq_gran)g;
        } else if (!strcmp(k, "w_clip")) {
            s->has_wclip = 1;
            int i = 0;
            st = parse_enum(ps, it, line, k, wclip_names, (int)MQ_COUNTOF(wclip_names), &i);
            s->wclip = wclip_values[i];
        } else if (!strcmp(k, "w_mode")) {
            static const char *const modes[] = {"linear", "kmeans"};
            s->has_kmeans = 1;
            st = parse_enum(ps, it, line, k, modes, (int)MQ_COUNTOF(modes), &s->kmeans);
        } else if (!strcmp(k, "a_clip")) {
            s->has_aclip = 1;
            st = parse_enum(ps, it, line, k, aclip_names, (int)MQ_COUNTOF(aclip_names), &s->aclip);
            s->aclip -= 1; /* "auto" = MQ_CLIP_AUTO = -1, then mq_clip's values */
        } else {
            return perr(ps, line, "unknown key \"%s\" in %s (known: w_bits, a_bits, granularity, "
                        "w_clip, a_clip, w_mode, comment)", k, where);
        }
        if (st) return st;
    }
    if (s->kbits && s->gran != MQ_GRAN_KERNEL)
        return perr(ps, key_line(ps, "granularity"), "%s has per-kernel w_bits, which needs "
                    "\"granularity\": \"kernel\"%s", where, "");
    return MIXQ_OK;
}

void mixq_policy_free(mixq_policy *p) {
    if (!p) return;
    spec_free(&p->def);
    for (int i = 0; i < p->n_rules; i++) spec_free(&p->rules[i].spec);
    free(p->rules);
    free(p->text);
    free(p);
}

static mixq_status add_rule(mixq_policy *p, pol_kind kind, const char *pat, const pol_spec *s,
                            const char *where, int line) {
    pol_rule *r = mq_realloc(p->rules, (size_t)(p->n_rules + 1), sizeof *r, "policy rules");
    if (!r) return mq_err(MIXQ_ERR_NOMEM, "policy: out of memory");
    p->rules = r;
    r = &p->rules[p->n_rules++];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    snprintf(r->pattern, sizeof r->pattern, "%s", pat);
    r->spec = *s;
    if (line > 0) snprintf(r->where, sizeof r->where, "%s (line %d)", where, line);
    else snprintf(r->where, sizeof r->where, "%s", where); /* built, not parsed */
    return MIXQ_OK;
}

static mixq_status parse_all(parser *ps, const cJSON *root, mixq_policy *p) {
    if (!cJSON_IsObject(root)) return perr(ps, 1, "the top level must be a JSON object%s%s", "", "");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "mixq_policy");
    if (!ver)
        return perr(ps, 1, "missing \"mixq_policy\": %s (the format version)%s", "1", "");
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *k = it->string;
        int line = key_line(ps, k);
        mixq_status st;
        if (!strcmp(k, "mixq_policy")) {
            if (!cJSON_IsNumber(it) || it->valuedouble != POLICY_VERSION)
                return perr(ps, line, "unsupported policy version (this mixq reads version %s)%s",
                            "1", "");
        } else if (!strcmp(k, "comment")) {
        } else if (!strcmp(k, "default")) {
            spec_free(&p->def);
            if ((st = parse_spec(ps, it, "default", NULL, &p->def))) return st;
            if (p->def.kbits)
                return perr(ps, line, "\"default\" cannot hold per-kernel w_bits (layers differ in "
                            "output channels)%s%s", "", "");
        } else if (!strcmp(k, "rules")) {
            if (!cJSON_IsArray(it)) return perr(ps, line, "\"rules\" must be an array%s%s", "", "");
            int i = 0;
            for (const cJSON *r = it->child; r; r = r->next, i++) {
                char where[64];
                snprintf(where, sizeof where, "rules[%d]", i);
                int rl = r->child && r->child->string ? key_line_at(ps, r->child->string, 1) : line;
                const cJSON *op = cJSON_GetObjectItemCaseSensitive(r, "op");
                const cJSON *gl = cJSON_GetObjectItemCaseSensitive(r, "match");
                const cJSON *ex = cJSON_GetObjectItemCaseSensitive(r, "layer");
                int nsel = !!op + !!gl + !!ex;
                if (!cJSON_IsObject(r) || nsel != 1)
                    return perr(ps, rl, "%s needs exactly one of \"op\", \"match\" (glob) or "
                                "\"layer\" (exact name)%s", where, "");
                const cJSON *sel = op ? op : gl ? gl : ex;
                const char *selk = op ? "op" : gl ? "match" : "layer";
                if (!cJSON_IsString(sel) || !*sel->valuestring ||
                    strlen(sel->valuestring) >= MIXQ_NAME_MAX)
                    return perr(ps, rl, "%s: \"%s\" must be a non-empty name", where, selk);
                if (op && strcmp(op->valuestring, "conv") && strcmp(op->valuestring, "linear") &&
                    strcmp(op->valuestring, "depthwise"))
                    return perr(ps, key_line(ps, "op"), "%s: op \"%s\" is not quantizable "
                                "(conv, depthwise or linear)", where, op->valuestring);
                pol_spec s;
                st = parse_spec(ps, r, where, selk, &s);
                if (!st)
                    st = add_rule(p, op ? POL_OP : gl ? POL_GLOB : POL_EXACT, sel->valuestring, &s,
                                  where, rl);
                if (st) {
                    spec_free(&s);
                    return st;
                }
            }
        } else if (!strcmp(k, "layers")) {
            if (!cJSON_IsObject(it))
                return perr(ps, line, "\"layers\" must be an object mapping layer names to "
                            "settings%s%s", "", "");
            for (const cJSON *r = it->child; r; r = r->next) {
                char where[MIXQ_NAME_MAX + 16];
                snprintf(where, sizeof where, "layers.%s", r->string);
                int rl = key_line(ps, r->string);
                if (strlen(r->string) >= MIXQ_NAME_MAX)
                    return perr(ps, rl, "layer name '%s' is too long%s", r->string, "");
                pol_spec s;
                st = parse_spec(ps, r, where, NULL, &s);
                if (!st) st = add_rule(p, POL_EXACT, r->string, &s, where, rl);
                if (st) {
                    spec_free(&s);
                    return st;
                }
            }
        } else {
            return perr(ps, line, "unknown key \"%s\" at the top level (known: mixq_policy, "
                        "default, rules, layers, comment)%s", k, "");
        }
    }
    /* precedence order: op < glob < exact (stable within a class) */
    int n = 0;
    for (int kind = POL_OP; kind <= POL_EXACT; kind++)
        for (int i = n; i < p->n_rules; i++)
            if ((int)p->rules[i].kind == kind) {
                pol_rule t = p->rules[i];
                memmove(&p->rules[n + 1], &p->rules[n], sizeof t * (size_t)(i - n));
                p->rules[n++] = t;
            }
    return MIXQ_OK;
}

mixq_status mixq_policy_parse(const char *text, size_t len, const char *origin, mixq_policy **out) {
    if (!out) return mq_err(MIXQ_ERR_ARG, "mixq_policy_parse: NULL output");
    *out = NULL;
    if (!text) return mq_err(MIXQ_ERR_ARG, "mixq_policy_parse: NULL text");
    mixq_policy *p = mq_calloc(1, sizeof *p, "policy");
    if (!p) return MIXQ_ERR_NOMEM;
    snprintf(p->origin, sizeof p->origin, "%s", origin ? origin : "(string)");
    p->text = mq_malloc(len + 1, 1, "policy text");
    if (!p->text) {
        free(p);
        return MIXQ_ERR_NOMEM;
    }
    memcpy(p->text, text, len);
    p->text[len] = 0;
    p->len = len;
    if (strlen(p->text) != len) {
        mixq_policy_free(p);
        return mq_err(MIXQ_ERR_FORMAT, "policy '%s' holds a NUL byte (not a text file)", origin);
    }
    const char *end = NULL;
    int oom;
    cJSON *root = mq_json_parse(p->text, len, &end, &oom);
    parser ps = {p->text, p->text, p->origin};
    if (oom) {
        mixq_policy_free(p);
        return MIXQ_ERR_NOMEM;
    }
    if (!root) {
        const char *at = end ? end : cJSON_GetErrorPtr();
        int line = at ? line_at(p->text, at) : 1;
        /* the text there, on one line: up to 20 characters from the first non-blank one */
        char near[24] = "";
        size_t k = 0;
        while (at && (*at == ' ' || *at == '\t' || *at == '\r' || *at == '\n')) at++;
        for (; at && *at && k < 20 && *at != '\n' && *at != '\r'; at++)
            near[k++] = (unsigned char)*at >= 32 && *at != 127 ? *at : '?';
        near[k] = 0;
        mixq_status st = mq_err(MIXQ_ERR_FORMAT, "policy '%s' line %d: malformed JSON %s%s%s; hint: "
                                "check the commas, quotes and brackets there (examples/policies/ "
                                "holds valid files)", p->origin, line,
                                k ? "near '" : "(it ends early: a '}' or ']' missing?)", near, k ? "'" : "");
        mixq_policy_free(p);
        return st;
    }
    mixq_status st = parse_all(&ps, root, p);
    cJSON_Delete(root);
    if (st) {
        mixq_policy_free(p);
        return st;
    }
    *out = p;
    return MIXQ_OK;
}

mixq_status mixq_policy_load(const char *path, mixq_policy **out) {
    if (!out) return mq_err(MIXQ_ERR_ARG, "mixq_policy_load: NULL output");
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    mixq_status st = mq_read_file(path, (size_t)16 << 20, "policy", &buf, &len, NULL);
    if (!st) st = mixq_policy_parse(buf ? buf : "", len, path, out);
    free(buf);
    return st;
}

/* ------------------------------------------------------------ building policies as data */

/* Appends printf output to a growing buffer; *ok becomes 0 on allocation failure. */
static void buf_printf(char **t, size_t *n, size_t *cap, int *ok, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void buf_printf(char **t, size_t *n, size_t *cap, int *ok, const char *fmt, ...) {
    if (!*ok) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(*t ? *t + *n : NULL, *t ? *cap - *n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            *ok = 0;
            return;
        }
        if (*t && *n + (size_t)k < *cap) {
            *n += (size_t)k;
            return;
        }
        size_t nc = (*cap ? *cap * 2 : 1024) + (size_t)k;
        char *b = mq_realloc(*t, nc, 1, "policy text");
        if (!b) {
            *ok = 0;
            return;
        }
        *t = b, *cap = nc;
    }
}

/* The JSON of a setting: only the keys it sets. */
static void spec_json(char **t, size_t *n, size_t *cap, int *ok, const pol_spec *sp) {
    const char *sep = "";
    buf_printf(t, n, cap, ok, "{");
    if (sp->has_w && sp->kbits) {
        buf_printf(t, n, cap, ok, "\"w_bits\": [");
        for (int k = 0; k < sp->nk; k++) buf_printf(t, n, cap, ok, "%s%d", k ? ", " : "", sp->kbits[k]);
        buf_printf(t, n, cap, ok, "]");
        sep = ", ";
    } else if (sp->has_w) {
        buf_printf(t, n, cap, ok, "\"w_bits\": %d", sp->w_bits);
        sep = ", ";
    }
    if (sp->has_a) buf_printf(t, n, cap, ok, "%s\"a_bits\": %d", sep, sp->a_bits), sep = ", ";
    if (sp->has_gran) buf_printf(t, n, cap, ok, "%s\"granularity\": \"%s\"", sep, gran_names[sp->gran]), sep = ", ";
    if (sp->has_wclip)
        for (size_t i = 0; i < MQ_COUNTOF(wclip_values); i++)
            if (wclip_values[i] == sp->wclip) buf_printf(t, n, cap, ok, "%s\"w_clip\": \"%s\"", sep, wclip_names[i]), sep = ", ";
    if (sp->has_aclip) buf_printf(t, n, cap, ok, "%s\"a_clip\": \"%s\"", sep, aclip_names[sp->aclip + 1]), sep = ", ";
    if (sp->has_kmeans) buf_printf(t, n, cap, ok, "%s\"w_mode\": \"%s\"", sep, sp->kmeans ? "kmeans" : "linear");
    buf_printf(t, n, cap, ok, "}");
}

/* A built policy's text: the default and its exact rules (all a builder makes), in the file
 * format, so that mixq_policy_parse of it gives the same policy. */
static mixq_status render(mixq_policy *p) {
    char *t = NULL;
    size_t n = 0, cap = 0;
    int ok = 1;
    buf_printf(&t, &n, &cap, &ok, "{\n  \"mixq_policy\": %d,\n  \"default\": ", POLICY_VERSION);
    spec_json(&t, &n, &cap, &ok, &p->def);
    buf_printf(&t, &n, &cap, &ok, ",\n  \"layers\": {");
    for (int i = 0; i < p->n_rules; i++) {
        buf_printf(&t, &n, &cap, &ok, "%s\n    \"%s\": ", i ? "," : "", p->rules[i].pattern);
        spec_json(&t, &n, &cap, &ok, &p->rules[i].spec);
    }
    buf_printf(&t, &n, &cap, &ok, "\n  }\n}\n");
    if (!ok) {
        free(t);
        return mq_err(MIXQ_ERR_NOMEM, "policy: out of memory writing its text");
    }
    free(p->text);
    p->text = t;
    p->len = n;
    return MIXQ_OK;
}

const char *mixq_policy_text(const mixq_policy *p) {
    if (!p) return "";
    /* a built policy renders its text when first asked (a cache: the policy is logically const) */
    if (!p->text && render((mixq_policy *)p)) return NULL;
    return p->text;
}

mixq_status mixq_policy_create(int w_bits, int a_bits, mixq_policy **out) {
    if (!out) return mq_err(MIXQ_ERR_ARG, "mixq_policy_create: NULL output");
    *out = NULL;
    if (!mq_bits_valid(w_bits) || !mq_bits_valid(a_bits))
        return mq_err(MIXQ_ERR_ARG, "policy: default bits %d/%d; expected 1..8 or 32", w_bits, a_bits);
    mixq_policy *p = mq_calloc(1, sizeof *p, "policy");
    if (!p) return MIXQ_ERR_NOMEM;
    snprintf(p->origin, sizeof p->origin, "(built policy)");
    p->def.has_w = p->def.has_a = 1;
    p->def.w_bits = w_bits, p->def.a_bits = a_bits;
    *out = p;
    return MIXQ_OK;
}

/* The builder's exact rule for layer, created last (exact rules come last in precedence). */
static mixq_status exact_rule(mixq_policy *p, const char *layer, pol_spec **out) {
    if (!layer || !*layer || strlen(layer) >= MIXQ_NAME_MAX)
        return mq_err(MIXQ_ERR_ARG, "policy: layer name '%s' is empty or too long", layer ? layer : "(null)");
    for (int i = 0; i < p->n_rules; i++)
        if (p->rules[i].kind == POL_EXACT && !strcmp(p->rules[i].pattern, layer)) {
            spec_free(&p->rules[i].spec);
            memset(&p->rules[i].spec, 0, sizeof p->rules[i].spec);
            *out = &p->rules[i].spec;
            return MIXQ_OK;
        }
    pol_spec empty;
    memset(&empty, 0, sizeof empty);
    char where[MIXQ_NAME_MAX + 16];
    snprintf(where, sizeof where, "layers.%s", layer);
    mixq_status st = add_rule(p, POL_EXACT, layer, &empty, where, 0);
    if (st) return st;
    *out = &p->rules[p->n_rules - 1].spec;
    return MIXQ_OK;
}

mixq_status mixq_policy_set_layer(mixq_policy *p, const char *layer, int w_bits, int a_bits) {
    if (!p) return mq_err(MIXQ_ERR_ARG, "mixq_policy_set_layer: NULL policy");
    if (!mq_bits_valid(w_bits) || !mq_bits_valid(a_bits))
        return mq_err(MIXQ_ERR_ARG, "policy: layer '%s' bits %d/%d; expected 1..8 or 32", layer ? layer : "",
                      w_bits, a_bits);
    pol_spec *sp;
    mixq_status st = exact_rule(p, layer, &sp);
    if (st) return st;
    sp->has_w = sp->has_a = 1;
    sp->w_bits = w_bits, sp->a_bits = a_bits;
    free(p->text);
    p->text = NULL;
    return MIXQ_OK;
}

mixq_status mixq_policy_set_kernels(mixq_policy *p, const char *layer, const int *bits, int n, int a_bits) {
    if (!p || !bits || n < 1) return mq_err(MIXQ_ERR_ARG, "mixq_policy_set_kernels: NULL policy or no bits");
    int mx = 0;
    for (int k = 0; k < n; k++) {
        if (!mq_bits_valid(bits[k]))
            return mq_err(MIXQ_ERR_ARG, "policy: layer '%s' kernel %d: %d bits; expected 1..8 or 32",
                          layer ? layer : "", k, bits[k]);
        mx = bits[k] > mx ? bits[k] : mx;
    }
    if (!mq_bits_valid(a_bits))
        return mq_err(MIXQ_ERR_ARG, "policy: layer '%s' a_bits %d; expected 1..8 or 32", layer ? layer : "", a_bits);
    int *kb = mq_malloc((size_t)n, sizeof(int), "per-kernel bits");
    if (!kb) return MIXQ_ERR_NOMEM;
    pol_spec *sp;
    mixq_status st = exact_rule(p, layer, &sp);
    if (st) {
        free(kb);
        return st;
    }
    memcpy(kb, bits, sizeof(int) * (size_t)n);
    sp->has_w = sp->has_a = sp->has_gran = 1;
    sp->kbits = kb, sp->nk = n, sp->w_bits = mx;
    sp->a_bits = a_bits;
    sp->gran = MQ_GRAN_KERNEL;
    free(p->text);
    p->text = NULL;
    return MIXQ_OK;
}

static mixq_status spec_copy(pol_spec *d, const pol_spec *s) {
    *d = *s;
    d->kbits = NULL;
    if (s->kbits) {
        if (!(d->kbits = mq_malloc((size_t)s->nk, sizeof(int), "per-kernel bits"))) return MIXQ_ERR_NOMEM;
        memcpy(d->kbits, s->kbits, sizeof(int) * (size_t)s->nk);
    }
    return MIXQ_OK;
}

mixq_status mq_policy_copy(const mixq_policy *p, mixq_policy **out) {
    *out = NULL;
    mixq_policy *c = mq_calloc(1, sizeof *c, "policy");
    if (!c) return MIXQ_ERR_NOMEM;
    memcpy(c->origin, p->origin, sizeof c->origin);
    mixq_status st = spec_copy(&c->def, &p->def);
    if (!st && p->text) {
        if (!(c->text = mq_malloc(p->len + 1, 1, "policy text"))) st = MIXQ_ERR_NOMEM;
        else memcpy(c->text, p->text, p->len + 1), c->len = p->len;
    }
    if (!st && p->n_rules && !(c->rules = mq_calloc((size_t)p->n_rules, sizeof *c->rules, "policy rules")))
        st = MIXQ_ERR_NOMEM;
    for (int i = 0; !st && i < p->n_rules; i++) {
        c->rules[i] = p->rules[i];
        c->rules[i].spec.kbits = NULL;
        c->n_rules = i + 1;
        st = spec_copy(&c->rules[i].spec, &p->rules[i].spec);
    }
    if (st) {
        mixq_policy_free(c);
        return st;
    }
    *out = c;
    return MIXQ_OK;
}

/* ------------------------------------------------------------ resolution */

int mq_node_quantizable(const mixq_model *m, int node) {
    mixq_op op = m->nodes[node].op;
    return op == MIXQ_OP_CONV || op == MIXQ_OP_LINEAR;
}

static int rule_matches(const pol_rule *r, const mixq_model *m, int node) {
    const mq_node *n = &m->nodes[node];
    switch (r->kind) {
    case POL_OP:
        if (!strcmp(r->pattern, "linear")) return n->op == MIXQ_OP_LINEAR;
        if (!strcmp(r->pattern, "conv")) return n->op == MIXQ_OP_CONV;
        return n->op == MIXQ_OP_CONV && n->groups > 1 && n->groups == m->nodes[n->in[0]].c;
    case POL_GLOB:
        return fnmatch(r->pattern, n->name, 0) == 0;
    case POL_EXACT:
        return !strcmp(r->pattern, n->name);
    }
    return 0;
}

static void merge(pol_spec *acc, const pol_spec *s) {
    if (s->has_w) {
        acc->has_w = 1;
        acc->w_bits = s->w_bits;
        acc->kbits = s->kbits; /* borrowed */
        acc->nk = s->nk;
    }
    if (s->has_a) {
        acc->has_a = 1;
        acc->a_bits = s->a_bits;
    }
    if (s->has_gran) {
        acc->has_gran = 1;
        acc->gran = s->gran;
    }
    if (s->has_wclip) {
        acc->has_wclip = 1;
        acc->wclip = s->wclip;
    }
    if (s->has_aclip) {
        acc->has_aclip = 1;
        acc->aclip = s->aclip;
    }
    if (s->has_kmeans) {
        acc->has_kmeans = 1;
        acc->kmeans = s->kmeans;
    }
}

mq_clip mq_clip_auto(int c, int bits) {
    if (c != MQ_CLIP_AUTO) return (mq_clip)c;
    return bits < 5 ? MQ_CLIP_MSE : MQ_CLIP_MAX;
}

mixq_status mq_policy_resolve_node(const mixq_policy *p, const mixq_model *m, int node, mq_lq *out) {
    memset(out, 0, sizeof *out);
    const mq_node *n = &m->nodes[node];
    pol_spec acc = {.has_w = 1, .w_bits = 8, .has_a = 1, .a_bits = 8, .has_gran = 1,
                    .gran = MQ_GRAN_CHANNEL, .has_wclip = 1, .wclip = MQ_CLIP_AUTO,
                    .has_aclip = 1, .aclip = MQ_CLIP_AUTO};
    const char *wsrc = "the built-in default";
    merge(&acc, &p->def);
    for (int i = 0; i < p->n_rules; i++)
        if (rule_matches(&p->rules[i], m, node)) {
            merge(&acc, &p->rules[i].spec);
            if (p->rules[i].spec.has_w) wsrc = p->rules[i].where;
        }
    const int K = n->c; /* output channels (conv) or features (linear) */
    if (acc.kbits && acc.nk != K)
        return mq_err(MIXQ_ERR_ARG, "policy '%s': %s gives %d per-kernel w_bits but layer '%s' has "
                      "%d output channels", p->origin, wsrc, acc.nk, n->name, K);
    if (acc.kbits && acc.gran != MQ_GRAN_KERNEL)
        return mq_err(MIXQ_ERR_ARG, "policy '%s': layer '%s' gets per-kernel w_bits from %s but "
                      "granularity '%s'; hint: set \"granularity\": \"kernel\"", p->origin, n->name,
                      wsrc, gran_names[acc.gran]);
    out->kbits = mq_malloc((size_t)K, sizeof(int), "per-kernel bits");
    if (!out->kbits) return MIXQ_ERR_NOMEM;
    out->K = K;
    for (int k = 0; k < K; k++) out->kbits[k] = acc.kbits ? acc.kbits[k] : acc.w_bits;
    out->w_bits = acc.w_bits;
    out->a_bits = acc.a_bits;
    out->gran = acc.gran;
    out->wclip = mq_clip_auto(acc.wclip, acc.w_bits);
    for (int k = 1; k < K && acc.wclip == MQ_CLIP_AUTO && acc.gran == MQ_GRAN_KERNEL; k++)
        out->wclip_rows |= out->kbits[k] != out->kbits[0];
    out->kmeans = acc.kmeans && acc.w_bits != MQ_FLOAT_BITS;
    if (out->kmeans && acc.kbits)
        return mq_err(MIXQ_ERR_ARG, "policy '%s': layer '%s': k-means (\"w_mode\": \"kmeans\") "
                      "uses one codebook per layer and cannot take per-kernel w_bits", p->origin,
                      n->name);
    out->aclip = mq_clip_auto(acc.aclip, acc.a_bits);
    return MIXQ_OK;
}

mixq_status mq_policy_check_coverage(const mixq_policy *p, const mixq_model *m) {
    for (int i = 0; i < p->n_rules; i++) {
        const pol_rule *r = &p->rules[i];
        int hits = 0;
        for (int j = 0; j < m->n_nodes; j++) {
            if (!rule_matches(r, m, j)) continue;
            if (!mq_node_quantizable(m, j)) {
                if (r->kind == POL_EXACT)
                    return mq_err(MIXQ_ERR_ARG, "policy '%s': %s names '%s', a %s layer; only "
                                  "conv and linear layers are quantized", p->origin, r->where,
                                  m->nodes[j].name, mixq_op_name(m->nodes[j].op));
                continue; /* a glob may cover other layers too */
            }
            hits++;
        }
        if (!hits) {
            /* an exact name may be a typo of a conv/linear layer's name */
            const char **names = r->kind == POL_EXACT ? mq_malloc((size_t)m->n_nodes, sizeof *names, "layer names") : NULL;
            int k = 0;
            for (int j = 0; names && j < m->n_nodes; j++)
                if (mq_node_quantizable(m, j)) names[k++] = m->nodes[j].name;
            mixq_status st = mq_err(MIXQ_ERR_NOTFOUND, "policy '%s': %s (%s \"%s\") matches no layer of this "
                                    "%s; %shint: `mixq info MODEL` lists the layer names", p->origin, r->where,
                                    r->kind == POL_OP ? "op" : r->kind == POL_GLOB ? "glob" : "layer",
                                    r->pattern, m->arch, mq_did_you_mean(r->pattern, names, k));
            free(names);
            return st;
        }
    }
    return MIXQ_OK;
}
