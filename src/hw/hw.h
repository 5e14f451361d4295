/* Hardware cost models: the internal side of mixq_hw (public API in include/mixq/mixq.h).
 *
 * A mixq_hw is built from a JSON description. hw.c parses the common fields, finds the
 * back-end by name and lets it parse its own object; it also owns the memo cache, per-kernel
 * grouping and the model -> layer mapping. Back-ends only answer "cost of this layer at (w, a)".
 * Not public API. */
#ifndef MIXQ_HW_HW_H
#define MIXQ_HW_HW_H

#include <pthread.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mixq/mixq.h"
#include "core/core.h"

/* A layer with every derived quantity filled in (see hw_layer_norm). */
typedef struct mq_hwl {
    const char *name;
    int index;
    int fc;
    int64_t B;             /* batch */
    int64_t C, H, W;       /* input channels, height, width */
    int64_t K;             /* output channels */
    int64_t Ho, Wo;        /* output height, width */
    int64_t R, S;          /* kernel height, width */
    int64_t stride, pad, g;
    int is_first;
} mq_hwl;

/* JSON reading with field paths in messages: "<origin>: field 'bismo.dm' ...". */
typedef struct mq_jctx {
    const char *origin;
    const char *dir; /* for relative paths; may be NULL */
} mq_jctx;

/* Each getter fails (MIXQ_ERR_FORMAT naming the field) if the key is missing, of the wrong
 * type or out of range; the _opt variants leave *out as it is when the key is absent. */
mixq_status mq_j_int(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                     long long lo, long long hi, long long *out);
mixq_status mq_j_int_opt(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                         long long lo, long long hi, long long *out);
/* The value v of field path.key as an integer in [lo, hi] (the one range-checked integer read from
 * JSON: a huge, fractional or non-numeric value is an error naming the value and the range, never
 * a cast of an out-of-range double). */
mixq_status mq_j_int_value(const mq_jctx *c, const cJSON *v, const char *path, const char *key,
                           long long lo, long long hi, long long *out);
/* The same check without a message: 1 and *out = v when v is an integer in [lo, hi], else 0
 * (for readers that fall back to a default, such as mixq report). */
int mq_j_int_in(const cJSON *v, long long lo, long long hi, long long *out);
mixq_status mq_j_num(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                     double lo, double hi, double *out);
mixq_status mq_j_num_opt(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                         double lo, double hi, double *out);
mixq_status mq_j_str(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                     const char **out);
mixq_status mq_j_str_opt(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                         const char **out);
mixq_status mq_j_bool_opt(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                          int *out);
/* The object under key (required). */
mixq_status mq_j_obj(const mq_jctx *c, const cJSON *o, const char *path, const char *key,
                     const cJSON **out);
/* Every key of o must be in the NULL-terminated list `allowed` (keys starting with '_' and
 * "comment" are always allowed: they are notes). */
mixq_status mq_j_keys(const mq_jctx *c, const cJSON *o, const char *path,
                      const char *const *allowed);

typedef struct mq_hw_backend {
    const char *name;
    /* Parse the back-end's own object(s) from root; store state in hw->impl. */
    mixq_status (*parse)(mixq_hw *hw, const mq_jctx *c, const cJSON *root);
    /* Cost of l at (w, a); w and a are within hw's bits range. Fill everything but macs,
     * bitops and size_bits (hw.c does those). latency_s: leave it 0 and hw.c derives it as
     * cycles / freq_hz; a back-end that measures time (cpu) sets it and derives cycles. */
    mixq_status (*cost)(const mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *out);
    void (*free_impl)(void *impl);
    int memoise; /* 1: answers are expensive, keep them */
    /* Optional: cost of l with per-kernel weight bits, nk[b] kernels at b bits (b in hw's bits
     * range, sum = l->K, at least two widths) and a-bit activations, for a back-end that runs
     * such a layer as one pass. Fills what cost() fills; hw.c adds macs, bitops, size_bits and
     * w_bits. NULL: hw.c's generic grouping (mixq_hw_cost_kernels). */
    mixq_status (*cost_kernels)(const mixq_hw *hw, const mq_hwl *l, const int *nk, int a,
                                mixq_cost *out);
    /* Optional: the kernels (weight rows) one tile of the machine holds, so that per-kernel
     * widths in groups of this many cost no padding (NULL: 1). See mq_hw_kernel_rows. */
    int (*kernel_rows)(const mixq_hw *hw);
} mq_hw_backend;

typedef struct mq_hw_cache_entry {
    uint64_t key[8];
    mixq_cost cost;
    int used;
} mq_hw_cache_entry;

struct mixq_hw {
    char name[MIXQ_NAME_MAX];
    char description[256];
    char *text;             /* the JSON */
    const mq_hw_backend *be;
    int batch;
    double freq_hz;
    int min_bits, max_bits;
    void *impl;             /* back-end state */
    /* memo cache: open addressing, power-of-two capacity */
    pthread_mutex_t lock;
    mq_hw_cache_entry *cache;
    size_t cache_cap, cache_used;
};

typedef mixq_status (*mq_cost_fn)(const mixq_hw *hw, const mq_hwl *l, int w, int a, mixq_cost *out);
/* Memoised fn(hw, l, w, a): answers are kept in hw's cache under (layer, w, a, variant);
 * thread-safe. hw.c memoises back-end answers as variant 0; a back-end may keep its own
 * intermediate answers under other variants. */
mixq_status mq_hw_memo(const mixq_hw *hw, const mq_hwl *l, int w, int a, int variant,
                       mq_cost_fn fn, mixq_cost *out);

extern const mq_hw_backend mq_hw_bitfusion, mq_hw_bismo, mq_hw_stripes, mq_hw_loom, mq_hw_dadn,
    mq_hw_table, mq_hw_size, mq_hw_bitops, mq_hw_cpu;

/* Fill derived fields; checks the shape (positive sizes, groups dividing channels). */
mixq_status mq_hwl_from(const mixq_hw_layer *l, int default_batch, mq_hwl *out);

/* Embedded presets (generated from the hw directory's JSON files at build time). */
typedef struct mq_hw_preset { const char *name; const char *json; } mq_hw_preset;
extern const mq_hw_preset mq_hw_preset_list[];
extern const int mq_hw_preset_count;

/* ---- BitFusion internals exposed for tests (src/hw/bitfusion.c) */
/* Throughput factor of a fusion unit at (w, a): floor(pmax/max(a,pmin)) * floor(pmax/max(w,pmin));
 * 0 when either operand is wider than pmax (the original simulator's limit). */
int mq_bitfusion_perf_factor(int pmax, int pmin, int w, int a);
/* The original simulator's per-layer counters for its own layer tuple (K kernel size, O output
 * size, S stride, IC/OC channels, B batch, a/w bits, im2col: fed by the graph input): out[10] =
 * cycles, stall, weight-buffer reads, writes, output-buffer reads, writes, input-buffer reads,
 * writes, DRAM reads, writes; *energy_nj (may be NULL) its energy. hw must be a bitfusion
 * target. */
mixq_status mq_bitfusion_raw(const mixq_hw *hw, int K, int O, int S, int IC, int OC, int B, int a,
                             int w, int im2col, int64_t out[10], double *energy_nj);
/* hw's energy constants e[8], nJ: core per compute cycle, then per bit weight-buffer read, write,
 * input-buffer read, write, output-buffer read, write, DRAM; area_mm2[4]: core, weight, input,
 * output buffers (derived-energy configurations only). */
/* Row i of the embedded 45 nm CACTI table (the simulator's bitfusion/sram/cacti_sweep.csv):
 * bank bytes, read-write port, read and write nJ per access, bank area mm^2. Returns the number
 * of rows; fills nothing when i is out of range. */
int mq_bitfusion_cacti(int i, double *bytes, int *rw, double *rd_nj, double *wr_nj, double *area);
mixq_status mq_bitfusion_constants(const mixq_hw *hw, double e[8], double area_mm2[4]);

/* ---- BISMO internals exposed for tests (src/hw/bismo.c) */
/* One matmul M x Kd by Nd x Kd at (a, w) bits: its cost, and the execute-stage instructions,
 * bytes fetched and bytes of results (each may be NULL). */
void mq_bismo_matmul(const mixq_hw *hw, int64_t M, int64_t Kd, int64_t Nd, int a, int w,
                     mixq_cost *o, double *exec, double *fetch_bytes, double *result_bytes);
/* Peak binary operations per second, 2*Dm*Dn*Dk*f, and the v2 resource model: LUTs
 * Dm*Dn*(1.17*Dk + 44.1 + 120.1) and BRAM36 (Dk/32)*(Dm*ceil(Bm/1024) + Dn*ceil(Bn/1024)). */
void mq_bismo_peak(const mixq_hw *hw, double *binops_per_s, double *luts, double *bram36);

/* ---- cpu back-end (src/hw/cpu.c), for the runtime's kernel choice: the measured times of layer l
 * with per-kernel weight bits kbits[out_c] (1..8) and a-bit activations: the int8 kernel
 * (HUGE_VAL where the table says this CPU has none) and the bit-serial GEMM with its panels at
 * their own widths (sum_b n_b / out_c x bitserial_s[b-1][a-1]). hw must be a `cpu` target;
 * a shape it lacks is MIXQ_ERR_NOTFOUND, another batch MIXQ_ERR_ARG, as for mixq_hw_cost. */
mixq_status mq_hw_cpu_times(const mixq_hw *hw, const mixq_hw_layer *l, const int *kbits, int a,
                            double *int8_s, double *bitserial_s);

/* The kernels one weight tile of hw holds (bismo: Dn, loom: filters x tiles, cpu: the
 * bit-serial GEMM's 16-row panels; 1 where a kernel costs alone), or 0 where per-kernel weight
 * widths gain nothing (stripes and dadn keep weights bit-parallel). A kernel-wise search groups
 * kernels in multiples of it. */
int mq_hw_kernel_rows(const mixq_hw *hw);

/* HAQ lookup table (src/hw/table.c). */
#include "hw/table.h"

#endif
