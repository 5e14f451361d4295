/* BISMO (Umuroglu et al., FPL 2018 / TRETS 2019): a bit-serial matrix-multiply overlay. Cost
 * model from the instruction generators of github.com/EECS-NTNU/bismo (v2 runtime), as a
 * three-stage roofline: fetch -> execute -> result run decoupled and overlapped.
 *
 * Machine: a Dm x Dn array of dot-product units; each does a Dk-bit AND + popcount per cycle
 * and shift-accumulates into 32 bits. LHS/RHS on-chip buffers hold Dm (Dn) BRAMs of
 * lhs_entries (rhs_entries) Dk-bit words; the memory port moves read_bytes_per_cycle in and
 * write_bytes_per_cycle out.
 *
 * Mapping (per group; a grouped / depthwise conv is `groups` matmuls, FC is M = batch):
 *   LHS = activations  M = batch*Ho*Wo rows x Kd = (C/g)*R*S, a bits (bit-serial planes)
 *   RHS = weights      Nd = K/g rows x Kd, w bits
 *   tiles  tm = ceil(M/Dm), tn = ceil(Nd/Dn), tk = ceil(Kd/Dk); padded Ma, Na, Ka
 *   exec   = tm*tn*tk*a*w cycles (+ exec_overhead_cycles per exec instruction, tm*tn*a*w of them)
 *   fetch  v2:             rhs_bytes + lhs_bytes * tn            (the v2 runtime's schedule)
 *          rhs_stationary: rhs_bytes + lhs_bytes * ceil(rhs_bytes / RHS buffer)
 *          with lhs_bytes = Ma*Ka*a/8, rhs_bytes = Na*Ka*w/8
 *   result = Ma*Na*4 bytes
 *   cycles = max(exec, fetch/read_bw, result/write_bw) + fill (first LHS+RHS stripe)
 *            + drain (last Dm x Dn result tile)
 * Energy (BISMO publishes none; MIXQ_COST_ESTIMATE): binary ops x binop_pj + on-chip buffer bits
 * x sram_pj_per_bit + DRAM bits x dram_pj_per_bit, constants from the preset's "energy"
 * (Horowitz 45 nm figures and BitFusion's DRAM constant; an FPGA spends more).
 * Per-kernel policies (hw.c): kernels of equal bits form one RHS matrix each, run one after
 * another, which is how a bit-serial overlay would run AutoQ's kernel-wise policies.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw.h"

typedef struct bismo_cfg {
    int64_t dm, dn, dk, lhs_entries, rhs_entries;
    double rd_bw, wr_bw;   /* bytes per cycle */
    int64_t overhead;      /* cycles per exec instruction */
    int rhs_stationary;
    double e_binop, e_sram, e_dram; /* pJ */
} bismo_cfg;

static mixq_status bismo_parse(mixq_hw *hw, const mq_jctx *c, const cJSON *root) {
    static const char *const keys[] = {"dm", "dn", "dk", "lhs_entries", "rhs_entries",
                                       "read_bytes_per_cycle", "write_bytes_per_cycle",
                                       "fetch_policy", "exec_overhead_cycles", NULL};
    static const char *const ekeys[] = {"binop_pj", "sram_pj_per_bit", "dram_pj_per_bit", NULL};
    const cJSON *o = NULL, *e = NULL;
    mixq_status st = mq_j_obj(c, root, "", "bismo", &o);
    if (!st) st = mq_j_keys(c, o, "bismo", keys);
    if (st) return st;
    bismo_cfg *f = mq_calloc(1, sizeof *f, "bismo config");
    if (!f) return MIXQ_ERR_NOMEM;
    hw->impl = f;
    long long v[5], ov = 0;
    for (int i = 0; i < 5 && !st; i++) st = mq_j_int(c, o, "bismo", keys[i], 1, 1 << 20, &v[i]);
    if (!st) st = mq_j_num(c, o, "bismo", "read_bytes_per_cycle", 1e-3, 1e6, &f->rd_bw);
    if (!st) st = mq_j_num(c, o, "bismo", "write_bytes_per_cycle", 1e-3, 1e6, &f->wr_bw);
    if (!st) st = mq_j_int_opt(c, o, "bismo", "exec_overhead_cycles", 0, 1000, &ov);
    const char *pol = "v2";
    if (!st) st = mq_j_str_opt(c, o, "bismo", "fetch_policy", &pol);
    if (!st && strcmp(pol, "v2") && strcmp(pol, "rhs_stationary"))
        st = mq_err(MIXQ_ERR_FORMAT,
                    "%s: field 'bismo.fetch_policy': '%s' is not v2 or rhs_stationary", c->origin, pol);
    if (!st) st = mq_j_obj(c, root, "", "energy", &e);
    if (!st) st = mq_j_keys(c, e, "energy", ekeys);
    if (!st) st = mq_j_num(c, e, "energy", "binop_pj", 0, 1e6, &f->e_binop);
    if (!st) st = mq_j_num(c, e, "energy", "sram_pj_per_bit", 0, 1e6, &f->e_sram);
    if (!st) st = mq_j_num(c, e, "energy", "dram_pj_per_bit", 0, 1e6, &f->e_dram);
    if (st) return st;
    if (v[2] % 8)
        return mq_err(MIXQ_ERR_FORMAT, "%s: field 'bismo.dk': %lld is not a multiple of 8 bits",
                      c->origin, v[2]);
    if (hw->max_bits > 8)
        return mq_err(MIXQ_ERR_FORMAT, "%s: field 'bits.max': BISMO's API runs at most 8-bit operands",
                      c->origin);
    f->dm = v[0], f->dn = v[1], f->dk = v[2], f->lhs_entries = v[3], f->rhs_entries = v[4];
    f->overhead = ov;
    f->rhs_stationary = !strcmp(pol, "rhs_stationary");
    return MIXQ_OK;
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* One matmul M x Kd by Nd x Kd at (a, w). Exposed for tests (T7; declared in hw.h). */
void mq_bismo_matmul(const mixq_hw *hw, int64_t M, int64_t Kd, int64_t Nd, int a, int w,
                     mixq_cost *o, double *exec_out, double *fetch_out, double *result_out) {
    const bismo_cfg *f = hw->impl;
    int64_t tm = cdiv(M, f->dm), tn = cdiv(Nd, f->dn), tk = cdiv(Kd, f->dk);
    int64_t Ma = tm * f->dm, Na = tn * f->dn, Ka = tk * f->dk;
    double instr = (double)tm * (double)tn * a * w;
    double exec = instr * (double)tk + instr * (double)f->overhead;
    double lhs = (double)Ma * (double)Ka * a / 8.0, rhs = (double)Na * (double)Ka * w / 8.0;
    double rhs_buf = (double)f->dn * (double)f->rhs_entries * (double)f->dk / 8.0;
    double lhs_passes = f->rhs_stationary ? ceil(rhs / rhs_buf) : (double)tn;
    double fetch = rhs + lhs * lhs_passes;
    double result = (double)Ma * (double)Na * 4.0;
    double fetch_c = ceil(fetch / f->rd_bw), result_c = ceil(result / f->wr_bw);
    double fill = ceil(((double)f->dm * (double)Ka * a + (double)f->dn * (double)Ka * w) / 8.0 / f->rd_bw);
    double drain = ceil((double)f->dm * (double)f->dn * 4.0 / f->wr_bw);
    double body = fmax(exec, fmax(fetch_c, result_c));
    o->compute_cycles = exec;
    o->cycles = body + fill + drain;
    o->stall_cycles = o->cycles - exec;
    if (fmax(fetch_c, result_c) > exec) o->flags |= MIXQ_COST_MEMBOUND;
    o->dram_read_bits = fetch * 8.0;
    o->dram_write_bits = result * 8.0;
    /* on-chip: each exec cycle reads one Dk-bit word from each of Dm LHS and Dn RHS BRAMs */
    o->ibuf_read_bits = exec * (double)f->dm * (double)f->dk;
    o->wbuf_read_bits = exec * (double)f->dn * (double)f->dk;
    o->ibuf_write_bits = lhs * lhs_passes * 8.0;
    o->wbuf_write_bits = rhs * 8.0;
    o->obuf_write_bits = o->obuf_read_bits = result * 8.0;
    double binops = 2.0 * (double)Ma * (double)Na * (double)Ka * a * w;
    o->e_compute_j = binops * f->e_binop * 1e-12;
    o->e_sram_j = (o->ibuf_read_bits + o->wbuf_read_bits + o->ibuf_write_bits + o->wbuf_write_bits +
                   o->obuf_write_bits + o->obuf_read_bits) *
                  f->e_sram * 1e-12;
    o->e_dram_j = (o->dram_read_bits + o->dram_write_bits) * f->e_dram * 1e-12;
    o->energy_j = o->e_compute_j + o->e_sram_j + o->e_dram_j;
    o->flags |= MIXQ_COST_ESTIMATE;
    if (exec_out) *exec_out = exec;
    if (fetch_out) *fetch_out = fetch;
    if (result_out) *result_out = result;
}

static mixq_status bismo_cost(const mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *o) {
    int64_t M = l->fc ? l->B : l->B * l->Ho * l->Wo;
    int64_t Kd = l->fc ? l->C : (l->C / l->g) * l->R * l->S;
    int64_t Nd = l->fc ? l->K : l->K / l->g;
    double g = l->fc ? 1.0 : (double)l->g;
    mixq_cost one;
    memset(&one, 0, sizeof one);
    mq_bismo_matmul(hw, M, Kd, Nd, a, w, &one, NULL, NULL, NULL);
    double *src[] = {&one.cycles, &one.compute_cycles, &one.stall_cycles, &one.energy_j,
                     &one.e_compute_j, &one.e_sram_j, &one.e_dram_j, &one.dram_read_bits,
                     &one.dram_write_bits, &one.wbuf_read_bits, &one.wbuf_write_bits,
                     &one.ibuf_read_bits, &one.ibuf_write_bits, &one.obuf_read_bits,
                     &one.obuf_write_bits};
    double *dst[] = {&o->cycles, &o->compute_cycles, &o->stall_cycles, &o->energy_j,
                     &o->e_compute_j, &o->e_sram_j, &o->e_dram_j, &o->dram_read_bits,
                     &o->dram_write_bits, &o->wbuf_read_bits, &o->wbuf_write_bits,
                     &o->ibuf_read_bits, &o->ibuf_write_bits, &o->obuf_read_bits,
                     &o->obuf_write_bits};
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) *dst[i] = *src[i] * g;
    o->flags |= one.flags;
    return MIXQ_OK;
}

static int bismo_kernel_rows(const mixq_hw *hw) {
    const bismo_cfg *f = hw->impl;
    return f->dn < INT32_MAX ? (int)f->dn : 1;
}

const mq_hw_backend mq_hw_bismo = {"bismo", bismo_parse, bismo_cost, free, 0, NULL, bismo_kernel_rows};

/* Peak binary operations per second, 2*Dm*Dn*Dk*f, and the v2 resource model: LUTs
 * Dm*Dn*(1.17*Dk + 44.1 + 120.1) and BRAM36 (Dk/32)*(Dm*ceil(Bm/1024) + Dn*ceil(Bn/1024)). */
void mq_bismo_peak(const mixq_hw *hw, double *binops_per_s, double *luts, double *bram36) {
    const bismo_cfg *f = hw->impl;
    *binops_per_s = 2.0 * (double)f->dm * (double)f->dn * (double)f->dk * hw->freq_hz;
    *luts = (double)(f->dm * f->dn) * (1.17 * (double)f->dk + 44.1 + 120.1);
    *bram36 = (double)(f->dk / 32) * (double)(f->dm * cdiv(f->lhs_entries, 1024) +
                                              f->dn * cdiv(f->rhs_entries, 1024));
}
