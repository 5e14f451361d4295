/* BitFusion (Sharma et al., ISCA 2018) cost model: a re-statement of the released simulator's
 * algorithm (github.com/hsharma35/bitfusion, commit 04ec1c87, optimizer.py get_stats_fast and
 * _optimize_for_order), validated against its results/bitfusion-eyeriss-sim-sweep.csv row for
 * row in all ten counters (tests/test_hw_bitfusion.c).
 *
 * Machine: an N x M systolic array of fusion units (N rows along input channels, M columns
 * along output channels); an operand of b bits runs in the smallest brick mode >= b
 * (pmin..pmax in powers of two), so a fusion unit does pf(w, a) = floor(pmax/max(a,pmin)) *
 * floor(pmax/max(w,pmin)) MACs per cycle. Weight (WBUF), input (IBUF) and output (OBUF)
 * buffers are double-buffered: a tile may use half of each. DRAM moves the exact bit counts.
 *
 * Layer (BitFusion's own view): batch B, output O x O, kernel K x K, stride S, IC input
 * channels, OC output channels; the first layer (fed by the network input) runs as im2col.
 * The cost is the best of an exhaustive search over the 120 orders of the five tile loops
 * (B, OW, OH, IC, OC; K x K is never tiled) and power-of-two tile sizes:
 *   compute  = tiles x b*ceil(oc/M)*ow*oh*K*K*ceil(ic/(N*pf))   (im2col: ceil(K*K*ic/(N*pf)))
 *   DRAM     = tile footprints promoted outwards through the loop order while they fit in half
 *              a buffer, re-fetched on every iteration of the loops outside that point
 *   stall    = max(0, ceil(middle DRAM bits / if_width) - compute) + first load + last store
 *   cycles   = compute + stall; ties broken by energy, then by search order
 * Energy (nJ) = compute cycles x E_core + SRAM bits x CACTI-45nm pJ/bit + DRAM bits x 15 pJ/bit.
 *
 * Extensions (not in the original, documented): grouped/depthwise convolutions are costed as
 * `groups` independent convolutions of IC/g -> OC/g channels; non-square outputs and kernels tile
 * OW and OH with the same power-of-two index clipped to each side (identical to the original on
 * square layers); operands of pmax < b <= 2*pmax bits (16-bit) run temporally in
 * ceil(b/pmax) passes each when "temporal_16bit" is set. Per-kernel policies are costed by
 * hw.c as one convolution per group of kernels with equal bits, run one after another: a
 * spatial array cannot mix precisions inside one pass (AutoQ's remark on spatial accelerators).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw.h"

typedef struct bf_cfg {
    int64_t N, M, pmax, pmin;
    int64_t wbuf, ibuf, obuf;  /* bytes */
    int64_t if_width;          /* DRAM bits per cycle */
    int temporal;              /* 9..2*pmax bits in passes */
    int wider;                 /* cost = cheapest over wider bit widths (monotone) */
    /* energy, nJ per compute cycle / per bit (the simulator's units) */
    double e_core, e_wrd, e_wwr, e_ird, e_iwr, e_ord, e_owr, e_dram;
    int derived_energy;        /* energies from the CACTI/synthesis tables (exact Python values) */
    double area_mm2[4];        /* core, wbuf, ibuf, obuf (derived energy only) */
} bf_cfg;

int mq_bitfusion_perf_factor(int pmax, int pmin, int w, int a) {
    if (w > pmax || a > pmax || w < 1 || a < 1) return 0;
    int ia = a < pmin ? pmin : a, iw = w < pmin ? pmin : w;
    return (pmax / ia) * (pmax / iw);
}

/* Python's ceil_a_by_b: int(math.ceil(float(a) / b)). */
static int64_t cdiv(int64_t a, int64_t b) { return (int64_t)ceil((double)a / (double)b); }
/* int(math.ceil(log2(x))) + 1 with log2 = ln x / ln 2, as the original computes it. */
static int n_opts(double x) { return (int)ceil(log(x) / log(2.0)) + 1; }

/* ------------------------------------------------------------------ CACTI / synthesis data */
/* 45 nm CACTI rows shipped with the simulator (bitfusion/sram/cacti_sweep.csv; block 4 bytes):
 * bank size (bytes), read-write port, read nJ, write nJ per 32-bit access, bank area mm^2. */
static const struct { double bytes; int rw; double rd_nj, wr_nj, area; } cacti45[] = {
    {1024.0, 0, 0.00113324, 0.00329596, 0.00882362},
    {16384.0, 0, 0.009981700000000001, 0.0084209, 0.10857699999999999},
    {4096.0, 1, 0.00398324, 0.00505131, 0.0485739},
    {128.0, 0, 0.0006837010000000001, 0.000925317, 0.00149898},
    {2048.0, 0, 0.00190318, 0.00363853, 0.015132},
    {512.0, 1, 0.00106097, 0.00233869, 0.00760331},
    {4096.0, 0, 0.00342953, 0.00431011, 0.030060700000000003},
    {8192.0, 0, 0.00639163, 0.00556268, 0.0575061},
};
/* Synthesised 4x4 fusion-unit array, pmax 8 / pmin 2, 45 nm, 500 MHz
 * (results/systolic_array_synth.csv): dynamic power nW and area um^2, scaled by N*M/16. */
#define BF_SYN_POWER_NW 3673500.0
#define BF_SYN_AREA_UM2 27752.83558
#define BF_SYN_FREQ 500000000.0

int mq_bitfusion_cacti(int i, double *bytes, int *rw, double *rd_nj, double *wr_nj, double *area) {
    const int n = (int)(sizeof cacti45 / sizeof cacti45[0]);
    if (i >= 0 && i < n) {
        *bytes = cacti45[i].bytes, *rw = cacti45[i].rw;
        *rd_nj = cacti45[i].rd_nj, *wr_nj = cacti45[i].wr_nj, *area = cacti45[i].area;
    }
    return n;
}

static int cacti_find(double bytes, int rw) {
    for (size_t i = 0; i < sizeof cacti45 / sizeof cacti45[0]; i++)
        if (cacti45[i].bytes == bytes && cacti45[i].rw == rw) return (int)i;
    return -1;
}

/* The simulator's get_energy_cost(): per-bank word = pmax*pmax/pmin bits; banks N*M (WBUF), N
 * (IBUF), M (OBUF, one read-write port). */
static mixq_status derive_energy(const mq_jctx *c, bf_cfg *f) {
    int64_t wbits = f->pmax * f->pmax / f->pmin, obits = 32;
    int64_t sizes[3] = {f->wbuf * 8, f->ibuf * 8, f->obuf * 8};
    int64_t banks[3] = {f->N * f->M, f->N, f->M}, words[3] = {wbits, wbits, obits};
    int rw[3] = {0, 0, 1};
    const char *nm[3] = {"wbuf_bytes", "ibuf_bytes", "obuf_bytes"};
    double rd[3], wr[3];
    for (int i = 0; i < 3; i++) {
        int64_t word = cdiv(sizes[i], banks[i] * words[i]);
        int64_t bank_bits = word * words[i];
        int row = -1;
        if (bank_bits * banks[i] == sizes[i] && words[i] == 32) row = cacti_find((double)bank_bits / 8.0, rw[i]);
        if (row < 0)
            return mq_err(MIXQ_ERR_FORMAT,
                          "%s: field 'bitfusion.%s': a bank of %.0f bytes (%lld banks of %lld-bit "
                          "words) is not in the 45 nm CACTI table; hint: give the energies "
                          "explicitly in an \"energy\" object (core_pj_per_cycle, "
                          "wbuf_read_pj_per_bit, ...)",
                          c->origin, nm[i], (double)bank_bits / 8.0, (long long)banks[i],
                          (long long)words[i]);
        rd[i] = cacti45[row].rd_nj / (double)words[i];
        wr[i] = cacti45[row].wr_nj / (double)words[i];
        f->area_mm2[1 + i] = cacti45[row].area * (double)banks[i];
    }
    f->e_wrd = rd[0], f->e_wwr = wr[0], f->e_ird = rd[1], f->e_iwr = wr[1], f->e_ord = rd[2],
    f->e_owr = wr[2];
    f->e_core = BF_SYN_POWER_NW * (double)(f->N * f->M) / 16. / BF_SYN_FREQ;
    f->area_mm2[0] = BF_SYN_AREA_UM2 * 1.e-6 * (double)(f->N * f->M) / 16.;
    f->e_dram = 15.e-3;
    f->derived_energy = 1;
    return MIXQ_OK;
}

static mixq_status bf_parse(mixq_hw *hw, const mq_jctx *c, const cJSON *root) {
    static const char *const keys[] = {"rows", "cols", "pmax", "pmin", "wbuf_bytes", "ibuf_bytes",
                                       "obuf_bytes", "dram_bits_per_cycle", "temporal_16bit",
                                       "wider_modes", NULL};
    static const char *const ekeys[] = {"core_pj_per_cycle", "wbuf_read_pj_per_bit",
                                        "wbuf_write_pj_per_bit", "ibuf_read_pj_per_bit",
                                        "ibuf_write_pj_per_bit", "obuf_read_pj_per_bit",
                                        "obuf_write_pj_per_bit", "dram_pj_per_bit", NULL};
    const cJSON *o = NULL;
    mixq_status st = mq_j_obj(c, root, "", "bitfusion", &o);
    if (!st) st = mq_j_keys(c, o, "bitfusion", keys);
    if (st) return st;
    bf_cfg *f = mq_calloc(1, sizeof *f, "bitfusion config");
    if (!f) return MIXQ_ERR_NOMEM;
    hw->impl = f;
    long long v[8];
    const char *const *k = keys;
    static const long long lo[8] = {1, 1, 1, 1, 1, 1, 1, 1},
                           hi[8] = {4096, 4096, 64, 64, 1LL << 34, 1LL << 34, 1LL << 34, 1 << 20};
    for (int i = 0; i < 8 && !st; i++) st = mq_j_int(c, o, "bitfusion", k[i], lo[i], hi[i], &v[i]);
    int temporal = 0;
    if (!st) st = mq_j_bool_opt(c, o, "bitfusion", "temporal_16bit", &temporal);
    int wider = 0;
    if (!st) st = mq_j_bool_opt(c, o, "bitfusion", "wider_modes", &wider);
    if (st) return st;
    f->wider = wider;
    f->N = v[0], f->M = v[1], f->pmax = v[2], f->pmin = v[3], f->wbuf = v[4], f->ibuf = v[5],
    f->obuf = v[6], f->if_width = v[7], f->temporal = temporal;
    if (f->pmin > f->pmax || (f->pmax & (f->pmax - 1)) || (f->pmin & (f->pmin - 1)))
        return mq_err(MIXQ_ERR_FORMAT,
                      "%s: fields 'bitfusion.pmax' (%lld) and 'bitfusion.pmin' (%lld) must be powers "
                      "of two with pmin <= pmax",
                      c->origin, (long long)f->pmax, (long long)f->pmin);
    int maxb = (int)(f->temporal ? 2 * f->pmax : f->pmax);
    if (hw->max_bits > maxb)
        return mq_err(MIXQ_ERR_FORMAT,
                      "%s: field 'bits.max' is %d but this BitFusion runs at most %d bits; hint: "
                      "lower bits.max%s",
                      c->origin, hw->max_bits, maxb,
                      f->temporal ? "" : " or set bitfusion.temporal_16bit");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "energy");
    if (!e) return derive_energy(c, f);
    if (!cJSON_IsObject(e))
        return mq_err(MIXQ_ERR_FORMAT, "%s: field 'energy' must be an object", c->origin);
    if ((st = mq_j_keys(c, e, "energy", ekeys))) return st;
    double ev[8];
    for (int i = 0; i < 8 && !st; i++) st = mq_j_num(c, e, "energy", ekeys[i], 0, 1e9, &ev[i]);
    if (st) return st;
    f->e_core = ev[0] * 1e-3, f->e_wrd = ev[1] * 1e-3, f->e_wwr = ev[2] * 1e-3,
    f->e_ird = ev[3] * 1e-3, f->e_iwr = ev[4] * 1e-3, f->e_ord = ev[5] * 1e-3,
    f->e_owr = ev[6] * 1e-3, f->e_dram = ev[7] * 1e-3;
    return MIXQ_OK;
}

/* ------------------------------------------------------------------ the search */

enum { L_B, L_OW, L_OH, L_IC, L_OC };
/* tile_deps: which tensors each tile loop indexes: bit 0 act, 1 wgt, 2 out */
static const int deps[5] = {1 | 4, 1 | 4, 1 | 4, 1 | 2, 2 | 4};

/* The 120 orders in itertools.permutations order of [B, OW, OH, IC, OC]. */
static int orders[120][5];
static pthread_once_t orders_once = PTHREAD_ONCE_INIT;
static void make_orders(void) {
    int n = 0, p[5] = {0, 1, 2, 3, 4};
    for (;;) {
        memcpy(orders[n++], p, sizeof p);
        /* next lexicographic permutation of p (indices are the list positions) */
        int i = 3;
        while (i >= 0 && p[i] > p[i + 1]) i--;
        if (i < 0) break;
        int j = 4;
        while (p[j] < p[i]) j--;
        int t = p[i]; p[i] = p[j]; p[j] = t;
        for (int a = i + 1, b = 4; a < b; a++, b--) t = p[a], p[a] = p[b], p[b] = t;
    }
}

typedef struct bf_layer {
    int64_t Kh, Kw, Oh, Ow, S, IC, OC, B;
    int a, w;       /* exact bits (traffic) */
    int pa, pw;     /* temporal passes per operand (1 unless > pmax) */
    int im2col;
} bf_layer;

typedef struct bf_stats {
    int64_t cycles, stall, compute, mem;
    int64_t rd_wgt, wr_wgt, rd_act, wr_act, rd_out, wr_out, rd_dram, wr_dram;
    double energy_nj;
} bf_stats;

static double energy_of(const bf_cfg *f, const bf_stats *s) {
    double e = (double)(s->cycles - s->stall) * f->e_core;
    e += (double)s->rd_wgt * f->e_wrd;
    e += (double)s->wr_wgt * f->e_wwr;
    e += (double)s->rd_act * f->e_ird;
    e += (double)s->wr_act * f->e_iwr;
    e += (double)s->rd_out * f->e_ord;
    e += (double)s->wr_out * f->e_owr;
    e += (double)s->rd_dram * f->e_dram;
    e += (double)s->wr_dram * f->e_dram;
    return e;
}

/* Search; returns 0 when no tiling fits the buffers. */
static int bf_search(const bf_cfg *f, const bf_layer *L, bf_stats *best) {
    pthread_once(&orders_once, make_orders);
    const int64_t N = f->N, M = f->M;
    int pf = mq_bitfusion_perf_factor((int)f->pmax, (int)f->pmin, L->w > f->pmax ? (int)f->pmax : L->w,
                                      L->a > f->pmax ? (int)f->pmax : L->a);
    const int64_t Npf = N * pf, passes = (int64_t)L->pa * L->pw;
    const int64_t cap[3] = {f->ibuf * 8 / 2, f->wbuf * 8 / 2, f->obuf * 8 / 2}; /* act, wgt, out */
    const int64_t KK = L->Kh * L->Kw;
    int nB = n_opts((double)L->B);
    int nO = MQ_MAX(n_opts((double)L->Oh), n_opts((double)L->Ow));
    int nIC = n_opts((double)L->IC);
    int nOC = L->im2col ? n_opts((double)L->OC) : n_opts(ceil((double)L->OC / (double)M));
    int found = 0, best_order = 0;
    long best_tiling = 0, tiling = -1;
    memset(best, 0, sizeof *best);
    for (int ib = 0; ib < nB; ib++) {
        int64_t b = MQ_MIN((int64_t)1 << ib, L->B), num_b = cdiv(L->B, b);
        for (int io = 0; io < nO; io++) {
            int64_t ow = MQ_MIN((int64_t)1 << io, L->Ow), oh = MQ_MIN((int64_t)1 << io, L->Oh);
            int64_t num_ow = cdiv(L->Ow, ow), num_oh = cdiv(L->Oh, oh);
            for (int iic = 0; iic < nIC; iic++) {
                int64_t ic = MQ_MIN((int64_t)1 << iic, L->IC), num_ic = cdiv(L->IC, ic);
                for (int ioc = 0; ioc < nOC; ioc++) {
                    tiling++;
                    int64_t oc = L->im2col ? MQ_MIN((int64_t)1 << ioc, L->OC)
                                           : MQ_MIN(((int64_t)1 << ioc) * M, L->OC);
                    int64_t num_oc = cdiv(L->OC, oc);
                    /* tile footprints in bits */
                    int64_t wgt0 = cdiv(KK * ic, Npf) * Npf * oc * L->w;
                    int64_t act0 = L->im2col ? ow * oh * KK * ic * b * L->a
                                             : (L->Kw + (ow - 1) * L->S) * (L->Kh + (oh - 1) * L->S) *
                                                   ic * b * L->a;
                    int64_t out0 = ow * oh * cdiv(oc, M) * M * b * 32;
                    if (wgt0 > cap[1] || act0 > cap[0] || out0 > cap[2]) continue;
                    /* order-independent parts: inner-loop SRAM traffic and compute */
                    int64_t T = num_b * num_ow * num_oh * num_ic * num_oc;
                    int64_t is_loop = cdiv(oc, M) * M;
                    int64_t os_loop = L->im2col ? cdiv(ic * KK, Npf) * Npf : cdiv(ic, Npf) * Npf * KK;
                    int64_t ws_loop = b * oh * ow;
                    int64_t e_is = (os_loop * ws_loop) * (L->a + is_loop * (L->w + 32));
                    int64_t e_os = (is_loop * ws_loop) * (32 + os_loop * (L->a + L->w));
                    int64_t e_ws = (os_loop * is_loop) * (L->w + ws_loop * (L->a + 32));
                    int64_t emin = MQ_MIN(e_is, MQ_MIN(e_ws, e_os));
                    int64_t in_act, in_out, in_wgt, mac_t = KK * ic * oh * ow * b;
                    if (e_is == emin) {
                        in_act = T * mac_t * L->a;
                        in_out = T * mac_t * oc * 32;
                        in_wgt = T * mac_t * oc * L->w;
                    } else if (e_os == emin) {
                        in_act = T * (oc * oh * ow * b) * KK * ic * L->a;
                        in_out = T * (oc * oh * ow * b) * 32;
                        in_wgt = T * (oc * oh * ow * b) * KK * ic * L->w;
                    } else {
                        in_act = T * (KK * ic * oc) * (b * ow * oh) * L->a;
                        in_out = T * (KK * ic * oc) * (b * ow * oh) * 32;
                        in_wgt = T * (KK * ic * oc) * L->w;
                    }
                    int64_t tile_cyc = L->im2col ? b * oh * ow * cdiv(oc, M) * cdiv(KK * ic, Npf)
                                                 : b * cdiv(oc, M) * ow * oh * KK * cdiv(ic, Npf);
                    int64_t compute = T * tile_cyc * passes;
                    const int64_t num[5] = {num_b, num_ow, num_oh, num_ic, num_oc};
                    for (int oi = 0; oi < 120; oi++) {
                        const int *ord = orders[oi];
                        int64_t sz[3] = {act0, wgt0, out0}, mx[3] = {act0, wgt0, out0};
                        int prom[3] = {1, 1, 1};
                        for (int li = 4; li >= 0; li--) {
                            int loop = ord[li];
                            for (int t = 0; t < 3; t++) {
                                if (prom[t]) {
                                    if (deps[loop] >> t & 1) {
                                        sz[t] *= num[loop];
                                        if (sz[t] > cap[t]) prom[t] = 0;
                                        else mx[t] = sz[t];
                                    }
                                } else {
                                    sz[t] *= num[loop];
                                }
                            }
                        }
                        bf_stats s;
                        s.wr_act = sz[0], s.wr_wgt = sz[1];
                        s.wr_out = sz[2] + in_out;
                        s.rd_out = sz[2] + in_out;
                        s.rd_act = in_act, s.rd_wgt = in_wgt;
                        s.rd_dram = sz[0] + sz[1] + sz[2];
                        s.wr_dram = sz[2];
                        int64_t initial = mx[0] + mx[1] + mx[2], final = mx[2];
                        int64_t latency = cdiv(initial, f->if_width) + cdiv(final, f->if_width);
                        int64_t middle = s.rd_dram + s.wr_dram - initial - final;
                        int64_t mem = cdiv(middle, f->if_width);
                        s.compute = compute;
                        s.mem = mem;
                        s.stall = MQ_MAX(0, mem - compute) + latency;
                        s.cycles = compute + s.stall;
                        s.energy_nj = energy_of(f, &s);
                        int better = !found || s.cycles < best->cycles ||
                                     (s.cycles == best->cycles &&
                                      (s.energy_nj < best->energy_nj ||
                                       (s.energy_nj == best->energy_nj &&
                                        (oi < best_order || (oi == best_order && tiling < best_tiling)))));
                        if (better) {
                            *best = s;
                            best_order = oi;
                            best_tiling = tiling;
                            found = 1;
                        }
                    }
                }
            }
        }
    }
    return found;
}

/* The simulator's cost of l at exactly (w, a) bits. */
static mixq_status bf_sim(const mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *out) {
    const bf_cfg *f = hw->impl;
    bf_layer L;
    memset(&L, 0, sizeof L);
    L.B = l->B;
    if (l->fc) {
        L.Kh = L.Kw = L.Oh = L.Ow = L.S = 1;
        L.IC = l->C, L.OC = l->K, L.im2col = 0;
    } else {
        L.Kh = l->R, L.Kw = l->S, L.Oh = l->Ho, L.Ow = l->Wo, L.S = l->stride;
        L.IC = l->C / l->g, L.OC = l->K / l->g, L.im2col = l->is_first;
    }
    L.w = w, L.a = a;
    L.pw = (int)((w + f->pmax - 1) / f->pmax), L.pa = (int)((a + f->pmax - 1) / f->pmax);
    bf_stats s;
    if (!bf_search(f, &L, &s))
        return mq_err(MIXQ_ERR_UNSUPPORTED,
                      "bitfusion: layer '%s' does not fit the buffers even with the smallest tile "
                      "(a %lldx%lld kernel, %d-bit weights); hint: larger bitfusion.wbuf_bytes / "
                      "ibuf_bytes / obuf_bytes",
                      l->name ? l->name : "?", (long long)L.Kh, (long long)L.Kw, w);
    double g = l->fc ? 1.0 : (double)l->g;
    out->cycles = g * (double)s.cycles;
    out->compute_cycles = g * (double)s.compute;
    out->stall_cycles = g * (double)s.stall;
    out->wbuf_read_bits = g * (double)s.rd_wgt, out->wbuf_write_bits = g * (double)s.wr_wgt;
    out->ibuf_read_bits = g * (double)s.rd_act, out->ibuf_write_bits = g * (double)s.wr_act;
    out->obuf_read_bits = g * (double)s.rd_out, out->obuf_write_bits = g * (double)s.wr_out;
    out->dram_read_bits = g * (double)s.rd_dram, out->dram_write_bits = g * (double)s.wr_dram;
    out->e_compute_j = g * (double)s.compute * f->e_core * 1e-9;
    out->e_sram_j = g * 1e-9 *
                    ((double)s.rd_wgt * f->e_wrd + (double)s.wr_wgt * f->e_wwr +
                     (double)s.rd_act * f->e_ird + (double)s.wr_act * f->e_iwr +
                     (double)s.rd_out * f->e_ord + (double)s.wr_out * f->e_owr);
    out->e_dram_j = g * 1e-9 * ((double)s.rd_dram + (double)s.wr_dram) * f->e_dram;
    out->energy_j = g * s.energy_nj * 1e-9;
    /* memory-bound: streaming the middle traffic took longer than computing */
    if (s.mem > s.compute) out->flags |= MIXQ_COST_MEMBOUND;
    /* the brick mode used: next power of two >= bits, at least pmin (temporal: the bits) */
    int rw = (int)f->pmin, ra = (int)f->pmin;
    while (rw < w && rw < f->pmax) rw <<= 1;
    while (ra < a && ra < f->pmax) ra <<= 1;
    if (w > f->pmax) rw = w;
    if (a > f->pmax) ra = a;
    if (rw != w || ra != a) out->flags |= MIXQ_COST_ROUNDED;
    out->w_bits = rw, out->a_bits = ra;
    return MIXQ_OK;
}

/* wider_modes: w-bit data may always be stored and run as w'-bit data for any w' >= w (up to
 * pmax), so the cost at (w, a) is the cheapest simulated cost over (w', a') >= (w, a): monotone
 * in both bits by construction. Every simulated point is memoised (variant 1), so a full 8x8
 * grid still costs 64 searches per layer. */
static mixq_status bf_cost(const mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *out) {
    const bf_cfg *f = hw->impl;
    if (!f->wider || w > f->pmax || a > f->pmax) return bf_sim(hw, l, w, a, out);
    int found = 0;
    for (int ww = w; ww <= f->pmax; ww++)
        for (int aa = a; aa <= f->pmax; aa++) {
            mixq_cost c;
            mixq_status st = mq_hw_memo(hw, l, ww, aa, 1, bf_sim, &c);
            if (st == MIXQ_ERR_UNSUPPORTED) continue; /* a wider tile may not fit */
            if (st) return st;
            if (!found || c.cycles < out->cycles || (c.cycles == out->cycles && c.energy_j < out->energy_j)) {
                *out = c;
                found = 1;
            }
        }
    if (!found) return bf_sim(hw, l, w, a, out); /* reports why */
    if (out->w_bits != w || out->a_bits != a) out->flags |= MIXQ_COST_ROUNDED;
    return MIXQ_OK;
}

const mq_hw_backend mq_hw_bitfusion = {"bitfusion", bf_parse, bf_cost, free, 1, NULL, NULL};

/* For tests (declared in hw.h): the per-layer counters of the original simulator on its own layer
 * tuple, and the energy constants / area (derived configurations). */
mixq_status mq_bitfusion_raw(const mixq_hw *hw, int K, int O, int S, int IC, int OC, int B, int a,
                             int w, int im2col, int64_t out[10], double *energy_nj) {
    if (!hw || hw->be != &mq_hw_bitfusion) return mq_err(MIXQ_ERR_ARG, "not a bitfusion target");
    const bf_cfg *f = hw->impl;
    bf_layer L = {K, K, O, O, S, IC, OC, B, a, w, 1, 1, im2col};
    bf_stats s;
    if (!bf_search(f, &L, &s)) return mq_err(MIXQ_ERR_UNSUPPORTED, "no tiling fits");
    int64_t v[10] = {s.cycles, s.stall, s.rd_wgt, s.wr_wgt, s.rd_out, s.wr_out,
                     s.rd_act, s.wr_act, s.rd_dram, s.wr_dram};
    memcpy(out, v, sizeof v);
    if (energy_nj) *energy_nj = s.energy_nj;
    return MIXQ_OK;
}

mixq_status mq_bitfusion_constants(const mixq_hw *hw, double e[8], double area_mm2[4]) {
    if (!hw || hw->be != &mq_hw_bitfusion) return mq_err(MIXQ_ERR_ARG, "not a bitfusion target");
    const bf_cfg *f = hw->impl;
    double v[8] = {f->e_core, f->e_wrd, f->e_wwr, f->e_ird, f->e_iwr, f->e_ord, f->e_owr, f->e_dram};
    memcpy(e, v, sizeof v);
    memcpy(area_mm2, f->area_mm2, sizeof f->area_mm2);
    return MIXQ_OK;
}
