/* Bit-serial ASICs of the Moshovos group and their bit-parallel baseline, as analytic models
 * with ideal memory (the DNNsim tile parameters; spec: docs hardware_models.md section 6).
 *
 * DaDianNao (dadn): `tiles` tiles of `filters` filters x `lanes` input-channel lanes of
 *   pe_width-bit MACs (16 x 16 x 16 = 4096 MACs/cycle). Per image:
 *     conv  Ho*Wo * ceil(K/(filters*tiles)) * R*S * ceil(C/lanes)       (per group)
 *     FC    ceil(K/(filters*tiles)) * ceil(C/lanes)
 *   Operands are pe_width bits whatever the policy says (charged bits = 16).
 * Stripes: the same tile with `windows` columns, each taking one activation bit per cycle
 *   (weights stay bit-parallel 16-bit):
 *     conv  ceil(Ho*Wo/windows) * ceil(K/(filters*tiles)) * R*S * ceil(C/lanes) * p_a
 *     FC    ceil(K/(filters*tiles)) * ceil(C/lanes) * ceil(p_a/16)   (windows pipelined)
 *   so conv speeds up ~16/p_a over DaDN and FC not at all; weight bits do not matter.
 * Loom: both operands serial; `loom_parallel` (16) times the bit-serial lanes of Stripes in the
 *   same area, activations act_bits_per_cycle (PSB) bits per cycle:
 *     conv  ceil(Stripes-conv(p_a -> ceil(p_a/PSB)) * p_w / loom_parallel)
 *     FC    ceil(ceil(K/(filters*tiles)) * ceil(C/lanes) * p_w / loom_parallel)
 *   i.e. the ideal ratios 256/(p_a*p_w) (conv) and 16/p_w (FC) over DaDN.
 * Batch multiplies every count. Energy: relative, from the baseline's power (MIXQ_COST_ESTIMATE):
 *   E = cycles / f * baseline_power_w * power_ratio, power_ratio = published speed-up / energy
 *   efficiency (Stripes 1.92/1.57 = 1.22, Loom 4.38/3.54 = 1.24, DaDN 1).
 * DRAM bytes report the compulsory traffic (weights once at the charged weight bits, inputs and
 *   outputs once at the activation bits); ideal memory means it never stalls.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw.h"

typedef enum { K_DADN, K_STRIPES, K_LOOM } serial_kind;

typedef struct serial_cfg {
    serial_kind kind;
    int64_t tiles, filters, lanes, windows, pe_width, psb, loom_parallel;
    double power_w, power_ratio;
} serial_cfg;

static mixq_status serial_parse_kind(mixq_hw *hw, const mq_jctx *c, const cJSON *root,
                                     serial_kind kind) {
    static const char *const keys[] = {"tiles", "filters", "lanes", "windows", "pe_width",
                                       "act_bits_per_cycle", "loom_parallel", NULL};
    static const char *const ekeys[] = {"baseline_power_w", "power_ratio", NULL};
    const cJSON *o = NULL, *e = NULL;
    mixq_status st = mq_j_obj(c, root, "", "serial", &o);
    if (!st) st = mq_j_keys(c, o, "serial", keys);
    if (!st) st = mq_j_obj(c, root, "", "energy", &e);
    if (!st) st = mq_j_keys(c, e, "energy", ekeys);
    if (st) return st;
    serial_cfg *f = mq_calloc(1, sizeof *f, "serial config");
    if (!f) return MIXQ_ERR_NOMEM;
    hw->impl = f;
    f->kind = kind;
    long long v[5];
    for (int i = 0; i < 5 && !st; i++) st = mq_j_int(c, o, "serial", keys[i], 1, 1 << 16, &v[i]);
    long long psb = 1, lp = 16;
    if (!st) st = mq_j_int_opt(c, o, "serial", "act_bits_per_cycle", 1, 16, &psb);
    if (!st && kind == K_LOOM) st = mq_j_int(c, o, "serial", "loom_parallel", 1, 1024, &lp);
    if (!st) st = mq_j_num(c, e, "energy", "baseline_power_w", 0, 1e6, &f->power_w);
    if (!st) st = mq_j_num(c, e, "energy", "power_ratio", 0, 1e3, &f->power_ratio);
    if (st) return st;
    f->tiles = v[0], f->filters = v[1], f->lanes = v[2], f->windows = v[3], f->pe_width = v[4];
    f->psb = psb, f->loom_parallel = lp;
    if (hw->max_bits > f->pe_width)
        return mq_err(MIXQ_ERR_FORMAT, "%s: field 'bits.max' (%d) exceeds serial.pe_width (%lld)",
                      c->origin, hw->max_bits, (long long)f->pe_width);
    return MIXQ_OK;
}

static mixq_status dadn_parse(mixq_hw *hw, const mq_jctx *c, const cJSON *r) {
    return serial_parse_kind(hw, c, r, K_DADN);
}
static mixq_status stripes_parse(mixq_hw *hw, const mq_jctx *c, const cJSON *r) {
    return serial_parse_kind(hw, c, r, K_STRIPES);
}
static mixq_status loom_parse(mixq_hw *hw, const mq_jctx *c, const cJSON *r) {
    return serial_parse_kind(hw, c, r, K_LOOM);
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static mixq_status serial_cost(const mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *o) {
    const serial_cfg *f = hw->impl;
    int64_t fil = f->filters * f->tiles;
    int64_t pa = a, pw = w;
    if (f->kind == K_DADN) pa = pw = f->pe_width;
    if (f->kind == K_STRIPES) pw = f->pe_width;
    double per_image;
    int64_t C = l->C / l->g, K = l->K / l->g;
    if (l->fc) {
        double base = (double)cdiv(l->K, fil) * (double)cdiv(l->C, f->lanes);
        if (f->kind == K_DADN) per_image = base;
        else if (f->kind == K_STRIPES) per_image = base * (double)cdiv(pa, 16);
        else per_image = ceil(base * (double)pw / (double)f->loom_parallel);
    } else {
        double taps = (double)(l->R * l->S) * (double)cdiv(K, fil) * (double)cdiv(C, f->lanes);
        double pix = (double)(l->Ho * l->Wo);
        if (f->kind == K_DADN) per_image = pix * taps;
        else {
            double str = (double)cdiv(l->Ho * l->Wo, f->windows) * taps;
            if (f->kind == K_STRIPES) per_image = str * (double)pa;
            else per_image = ceil(str * (double)cdiv(pa, f->psb) * (double)pw / (double)f->loom_parallel);
        }
        per_image *= (double)l->g;
    }
    o->cycles = o->compute_cycles = per_image * (double)l->B;
    o->stall_cycles = 0;
    double weights = l->fc ? (double)l->C * (double)l->K : (double)l->K * (double)(C * l->R * l->S);
    double in = l->fc ? (double)l->C : (double)(l->C * l->H * l->W);
    double out = l->fc ? (double)l->K : (double)(l->K * l->Ho * l->Wo);
    o->dram_read_bits = weights * (double)pw + in * (double)l->B * (double)pa;
    o->dram_write_bits = out * (double)l->B * (double)pa;
    o->e_compute_j = o->cycles / hw->freq_hz * f->power_w * f->power_ratio;
    o->energy_j = o->e_compute_j;
    o->flags |= MIXQ_COST_ESTIMATE;
    if (pw != w || pa != a) o->flags |= MIXQ_COST_ROUNDED;
    o->w_bits = (int)pw, o->a_bits = (int)pa;
    return MIXQ_OK;
}

const mq_hw_backend mq_hw_dadn = {"dadn", dadn_parse, serial_cost, free, 0, NULL, NULL};
const mq_hw_backend mq_hw_stripes = {"stripes", stripes_parse, serial_cost, free, 0, NULL, NULL};
static int loom_kernel_rows(const mixq_hw *hw) {
    const serial_cfg *f = hw->impl;
    const int64_t r = f->filters * f->tiles;
    return r > 0 && r < INT32_MAX ? (int)r : 1;
}

const mq_hw_backend mq_hw_loom = {"loom", loom_parse, serial_cost, free, 0, NULL, loom_kernel_rows};
