/* Input preprocessing: how raw 8-bit pixels become a model's input (mixq_preprocess in mixq.h).
 * Presets, custom transforms, the one JSON form (model file section "preprocess", ONNX
 * metadata_props "mixq.preprocess"), and resolving mixq's from_data default against a dataset.
 *
 * JSON form: {"name": "unit", "scale": 0.003921569, "mean": [0], "std": [1], "order": "rgb"}
 * or, for the from_data default, {"name": "dataset", "from_data": true}. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

typedef struct preset {
    const char *name;
    int channels;     /* 0: any */
    float scale, mean[3], std[3];
} preset;

#define U8 (1.0f / 255.0f)
static const preset presets[] = {
    {"dataset", 0, U8, {0}, {0}}, /* from_data */
    {"unit", 0, U8, {0, 0, 0}, {1, 1, 1}},
    {"signed", 0, U8, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}},
    {"raw", 0, 1.0f, {0, 0, 0}, {1, 1, 1}},
    {"imagenet", 3, U8, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}},
    {"torchvision-normalize", 3, U8, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}},
    {"mnist", 1, U8, {0.1307f}, {0.3081f}},
    {"fashion-mnist", 1, U8, {0.2860f}, {0.3530f}},
    {"cifar10", 3, U8, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}},
};
static const char *const preset_names[] = {"dataset", "unit", "signed", "raw", "imagenet",
                                           "torchvision-normalize", "mnist", "fashion-mnist",
                                           "cifar10", NULL};
_Static_assert(MQ_COUNTOF(preset_names) == MQ_COUNTOF(presets) + 1, "one name per preset");

const char *const *mixq_preprocess_presets(void) { return preset_names; }

mixq_status mixq_preprocess_preset(const char *name, int channels, mixq_preprocess *out) {
    if (!name || !out) return mq_err(MIXQ_ERR_ARG, "mixq_preprocess_preset: NULL argument");
    if (channels < 1 || channels > MIXQ_PP_MAX_CH)
        return mq_err(MIXQ_ERR_ARG, "preprocessing for %d input channels: mixq handles 1..%d",
                      channels, MIXQ_PP_MAX_CH);
    for (size_t i = 0; i < MQ_COUNTOF(presets); i++) {
        const preset *p = &presets[i];
        if (strcmp(p->name, name)) continue;
        if (p->channels && p->channels != channels)
            return mq_err(MIXQ_ERR_ARG, "preprocessing preset '%s' is for %d-channel images, the "
                          "model takes %d; hint: --mean/--std/--scale give any transform", name,
                          p->channels, channels);
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", name);
        out->from_data = i == 0;
        out->channels = channels;
        out->scale = p->scale;
        for (int c = 0; c < channels; c++) {
            out->mean[c] = p->mean[p->channels ? c : 0];
            out->std[c] = out->from_data ? 1.0f : p->std[p->channels ? c : 0];
        }
        return MIXQ_OK;
    }
    return mq_err(MIXQ_ERR_ARG, "unknown preprocessing '%s'; %shint: one of dataset, unit, signed, "
                  "raw, imagenet (torchvision-normalize), mnist, fashion-mnist, cifar10", name,
                  mq_did_you_mean(name, preset_names, (int)MQ_COUNTOF(presets)));
}

mixq_status mixq_preprocess_custom(int channels, float scale, const float *mean, int nmean,
                                   const float *std, int nstd, int bgr, mixq_preprocess *out) {
    if (!out || !mean || !std) return mq_err(MIXQ_ERR_ARG, "mixq_preprocess_custom: NULL argument");
    if (channels < 1 || channels > MIXQ_PP_MAX_CH)
        return mq_err(MIXQ_ERR_ARG, "preprocessing for %d input channels: mixq handles 1..%d",
                      channels, MIXQ_PP_MAX_CH);
    if ((nmean != 1 && nmean != channels) || (nstd != 1 && nstd != channels))
        return mq_err(MIXQ_ERR_ARG, "preprocessing: %d mean and %d std values for a %d-channel "
                      "model; hint: give one value for every channel, or %d", nmean, nstd,
                      channels, channels);
    if (!isfinite(scale) || !(scale > 0))
        return mq_err(MIXQ_ERR_ARG, "preprocessing: scale %g must be positive and finite "
                      "(1/255 = 0.00392157 maps pixels to [0, 1])", (double)scale);
    if (bgr && channels != 3)
        return mq_err(MIXQ_ERR_ARG, "preprocessing: BGR channel order needs 3 channels, the model "
                      "takes %d", channels);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "custom");
    out->channels = channels;
    out->scale = scale;
    out->bgr = bgr != 0;
    for (int c = 0; c < channels; c++) {
        float m = mean[nmean == 1 ? 0 : c], s = std[nstd == 1 ? 0 : c];
        if (!isfinite(m) || !isfinite(s) || !(s > 0))
            return mq_err(MIXQ_ERR_ARG, "preprocessing: channel %d has mean %g and std %g; the "
                          "mean must be finite and the std positive and finite", c, (double)m,
                          (double)s);
        out->mean[c] = m, out->std[c] = s;
    }
    return MIXQ_OK;
}

static void fmt_list(char *buf, size_t n, const float *v, int k) {
    size_t off = 0;
    if (k > 1) off += (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < k && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%.4g", i ? ", " : "", (double)v[i]);
    if (k > 1 && off < n) snprintf(buf + off, n - off, ")");
}

void mixq_preprocess_describe(const mixq_preprocess *pp, char *buf, size_t n) {
    if (!buf || !n) return;
    if (!pp) {
        snprintf(buf, n, "(none)");
        return;
    }
    if (pp->from_data) {
        snprintf(buf, n, "%s: x = (pixel / 255 - mean) / std, with the dataset's own per-channel "
                 "mean and std", pp->name);
        return;
    }
    int k = pp->channels < 1 ? 1 : pp->channels > MIXQ_PP_MAX_CH ? MIXQ_PP_MAX_CH : pp->channels;
    int zero = 1, one = 1;
    for (int c = 0; c < k; c++) zero &= pp->mean[c] == 0, one &= pp->std[c] == 1;
    char sc[48], mu[96], sd[96];
    if (fabsf(pp->scale * 255.0f - 1.0f) < 1e-6f) snprintf(sc, sizeof sc, "pixel / 255");
    else if (pp->scale == 1.0f) snprintf(sc, sizeof sc, "pixel");
    else snprintf(sc, sizeof sc, "pixel * %.6g", (double)pp->scale);
    fmt_list(mu, sizeof mu, pp->mean, k);
    fmt_list(sd, sizeof sd, pp->std, k);
    const char *order = pp->bgr ? ", channels reversed (BGR)" : "";
    if (zero && one) snprintf(buf, n, "%s: x = %s%s", pp->name, sc, order);
    else snprintf(buf, n, "%s: x = (%s - %s) / %s%s", pp->name, sc, mu, sd, order);
}

mixq_status mixq_dataset_preprocess(const mixq_dataset *d, mixq_preprocess *out) {
    if (!d || !out) return mq_err(MIXQ_ERR_ARG, "mixq_dataset_preprocess: NULL argument");
    mixq_status st = mixq_preprocess_custom(d->c, 1.0f / 255.0f, d->mean, d->c, d->std, d->c, 0, out);
    if (!st) snprintf(out->name, sizeof out->name, "dataset");
    return st;
}

mixq_status mq_pp_resolve(const mixq_preprocess *pp, const mixq_dataset *d, mixq_preprocess *out) {
    if (!pp || pp->from_data) return mixq_dataset_preprocess(d, out);
    if (pp->channels != d->c)
        return mq_err(MIXQ_ERR_SHAPE, "the input transform '%s' is for %d-channel images, but '%s' "
                      "has %d channels", pp->name, pp->channels, d->name, d->c);
    *out = *pp;
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- JSON form */

char *mq_pp_json(const mixq_preprocess *pp) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = cJSON_AddStringToObject(o, "name", pp->name) != NULL;
    if (pp->from_data) {
        ok = ok && cJSON_AddTrueToObject(o, "from_data");
    } else {
        cJSON *mu = cJSON_AddArrayToObject(o, "mean"), *sd = NULL;
        ok = ok && cJSON_AddNumberToObject(o, "scale", pp->scale) && mu;
        ok = ok && (sd = cJSON_AddArrayToObject(o, "std")) != NULL;
        for (int c = 0; ok && c < pp->channels; c++) {
            cJSON *a = cJSON_CreateNumber(pp->mean[c]), *b = cJSON_CreateNumber(pp->std[c]);
            if (a) cJSON_AddItemToArray(mu, a);
            if (b) cJSON_AddItemToArray(sd, b);
            ok = a && b;
        }
        ok = ok && cJSON_AddStringToObject(o, "order", pp->bgr ? "bgr" : "rgb");
    }
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

static int floats_of(const cJSON *a, float *v, int max) {
    if (!cJSON_IsArray(a)) return -1;
    int n = cJSON_GetArraySize(a);
    if (n < 1 || n > max) return -1;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(e)) return -1;
        v[i] = (float)e->valuedouble;
    }
    return n;
}

mixq_status mq_pp_parse_json(const char *text, size_t len, const char *origin, mixq_preprocess *out) {
    int oom;
    cJSON *o = mq_json_parse(text, len, NULL, &oom);
    mixq_status st = MIXQ_OK;
    if (oom) return MIXQ_ERR_NOMEM;
    if (!o || !cJSON_IsObject(o)) {
        st = mq_err(MIXQ_ERR_FORMAT, "%s: the input preprocessing record is not a JSON object; "
                    "hint: it is written as {\"name\": ..., \"scale\": ..., \"mean\": [...], "
                    "\"std\": [...], \"order\": \"rgb\"}", origin);
        goto out;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const char *nm = cJSON_IsString(name) && name->valuestring ? name->valuestring : "custom";
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "from_data"))) {
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", nm);
        out->from_data = 1;
        goto out;
    }
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(o, "scale");
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(o, "order");
    float mean[MIXQ_PP_MAX_CH], std[MIXQ_PP_MAX_CH];
    int nm_ = floats_of(cJSON_GetObjectItemCaseSensitive(o, "mean"), mean, MIXQ_PP_MAX_CH);
    int ns = floats_of(cJSON_GetObjectItemCaseSensitive(o, "std"), std, MIXQ_PP_MAX_CH);
    int bgr = cJSON_IsString(order) && order->valuestring && !strcmp(order->valuestring, "bgr");
    if (!cJSON_IsNumber(sc) || nm_ < 1 || ns != nm_ ||
        (order && !(cJSON_IsString(order) && (bgr || !strcmp(order->valuestring, "rgb"))))) {
        st = mq_err(MIXQ_ERR_FORMAT, "%s: the input preprocessing record needs a number \"scale\", "
                    "\"mean\" and \"std\" lists of 1..%d equal-length numbers, and \"order\" rgb or "
                    "bgr", origin, MIXQ_PP_MAX_CH);
        goto out;
    }
    if ((st = mixq_preprocess_custom(nm_, (float)sc->valuedouble, mean, nm_, std, ns, bgr, out))) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", mixq_last_error());
        st = mq_err(MIXQ_ERR_FORMAT, "%s: %s", origin, msg);
        goto out;
    }
    memset(out->name, 0, sizeof out->name);
    snprintf(out->name, sizeof out->name, "%s", nm);
out:
    cJSON_Delete(o);
    return st;
}
