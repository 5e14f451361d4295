/* mixq — mixed-precision quantization search and CPU runtime for CNNs.
 *
 * This header is the public contract: what is not declared here (or in the headers it includes)
 * is not API. Conventions:
 *   - Every fallible call returns a mixq_status (MIXQ_OK == 0). On failure a per-thread message
 *     says what went wrong, where, and a hint: mixq_last_error().
 *   - Objects are opaque handles. Whoever creates one frees it; every *_free(NULL) is a no-op.
 *   - The library never exits or aborts on input a user, flag or file can influence.
 *   - Tensors are float32, NCHW for activations and KCRS (out, in/groups, kh, kw) for weights.
 */
#ifndef MIXQ_MIXQ_H
#define MIXQ_MIXQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIXQ_VERSION_MAJOR 0
#define MIXQ_VERSION_MINOR 2
#define MIXQ_VERSION_PATCH 0
#define MIXQ_NAME_MAX 64

/* ---------------------------------------------------------------- status and errors */
typedef enum mixq_status {
    MIXQ_OK = 0,
    MIXQ_ERR_NOMEM,       /* an allocation failed */
    MIXQ_ERR_IO,          /* a file could not be opened, read or written */
    MIXQ_ERR_FORMAT,      /* a file is truncated, corrupt, or of the wrong kind/version */
    MIXQ_ERR_SHAPE,       /* tensor shapes do not agree */
    MIXQ_ERR_ARG,         /* an argument or flag is out of range or unknown */
    MIXQ_ERR_NOTFOUND,    /* a named thing (model, layer, dataset) does not exist */
    MIXQ_ERR_NUMERIC,     /* a NaN or Inf appeared (loss, weights, inputs) */
    MIXQ_ERR_UNSUPPORTED, /* valid request this build/back-end cannot do */
    MIXQ_ERR_STATE,       /* API used out of order (e.g. backward before forward) */
    MIXQ_STATUS_COUNT
} mixq_status;

/* Static English name of a status ("out of memory", ...). Never NULL. */
const char *mixq_status_str(mixq_status s);
/* The calling thread's message for its most recent failure ("" if none). Valid until the next
 * failing call on this thread. */
const char *mixq_last_error(void);
/* Clear this thread's message. */
void mixq_clear_error(void);

/* The library's version, "MAJOR.MINOR.PATCH" built from the MIXQ_VERSION_* macros above (a
 * program can compare it with the macros it was compiled against). Static; never NULL. */
const char *mixq_version(void);

/* ---------------------------------------------------------------- threads */
/* Number of worker threads for training/inference (default: all online CPUs). Results are
 * identical for every thread count. n outside 1..32 is MIXQ_ERR_ARG. */
mixq_status mixq_set_threads(int n);
int mixq_get_threads(void);

/* ---------------------------------------------------------------- names */
/* The entry of names[0..n) nearest to word by edit distance (a swap of two neighbours counts
 * once), if one is near enough to be a typo of it (1 edit for words under 4 characters, 2 under
 * 10, else 3), else NULL. Exact matches are skipped. For "did you mean 'fc3'?" hints. */
const char *mixq_closest_name(const char *word, const char *const *names, int n);

/* ---------------------------------------------------------------- datasets */
typedef struct mixq_dataset mixq_dataset;

typedef enum mixq_split {
    MIXQ_SPLIT_TRAIN = 0, /* training images (the validation part carved out, see below) */
    MIXQ_SPLIT_VAL,       /* validation images carved from the training file */
    MIXQ_SPLIT_TEST,      /* the test file; searches must never use it */
    MIXQ_SPLIT_COUNT
} mixq_split;

/* Load a dataset split.
 *   spec: "fashion-mnist" (Debian's dataset-fashion-mnist under /usr/share/datasets, or
 *         $MIXQ_DATA_DIR/fashion-mnist),
 *         a directory with MNIST-format IDX files (train/t10k-images-idx3-ubyte[.gz], ...),
 *         or a directory with CIFAR-10 binary batches (data_batch_{1..5}.bin, test_batch.bin).
 *   val_count: images taken from the end of a seeded permutation of the training file for the
 *         validation split, 0 <= val_count < training images (0 = no validation split; TRAIN
 *         then holds all training images, and VAL is an error: an empty split).
 *   seed: the permutation seed (TRAIN and VAL with the same seed and val_count are disjoint).
 * Images are normalised with the training file's per-channel mean and deviation, whatever the
 * split. */
mixq_status mixq_dataset_load(const char *spec, mixq_split split, int val_count, uint64_t seed,
                              mixq_dataset **out);
void mixq_dataset_free(mixq_dataset *d);
int mixq_dataset_count(const mixq_dataset *d);
/* Per-image shape (channels, height, width) and number of classes. */
void mixq_dataset_shape(const mixq_dataset *d, int *c, int *h, int *w, int *classes);
const char *mixq_dataset_name(const mixq_dataset *d);
/* Keep only the first n images (1 <= n <= count); for quick runs and search subsets. */
mixq_status mixq_dataset_truncate(mixq_dataset *d, int n);

/* Which training images a validation split holds: the last `count` entries of the seeded
 * permutation (seed) of a training file of `images` images, mixq_dataset_load's VAL split
 * (count 0: none). A model records the split it was trained without (mixq_model_holdout), so a
 * later validation split can be checked against the images the model trained on. */
typedef struct mixq_holdout {
    uint64_t seed;
    int count;
    int images;
} mixq_holdout;
/* The holdout a TRAIN or VAL split was carved with (a TEST split: MIXQ_ERR_ARG). Truncating a
 * split keeps the holdout it was carved with. */
mixq_status mixq_dataset_holdout(const mixq_dataset *d, mixq_holdout *out);
/* *seen: how many of `val`'s images lie outside `held`, i.e. how many of them a model trained
 * without `held` (and on the rest of the file) trained on. Both must be of the same training file
 * (equal `images`), else MIXQ_ERR_ARG. */
mixq_status mixq_holdout_seen(const mixq_holdout *held, const mixq_holdout *val, int *seen);

/* ---------------------------------------------------------------- input preprocessing */
/* How a model turns a raw image (8-bit pixels, channels in the dataset file's order) into its
 * input, per channel c:   x[c] = (pixel[src(c)] * scale - mean[c]) / std[c]
 * with src(c) = c, or C - 1 - c when bgr is set (a 3-channel model trained on BGR images).
 * A model carries its transform: training records the one it used, model files and ONNX exports
 * (metadata_props "mixq.preprocess") store it, and evaluation, calibration, fine-tuning, search
 * and the runtime all apply it. from_data is mixq's own default: scale 1/255 and the per-channel
 * mean and std of the dataset's training file, read from whichever dataset the model is run on
 * (training resolves it into numbers and records those). */
#define MIXQ_PP_MAX_CH 4
typedef struct mixq_preprocess {
    char name[32];          /* preset name ("unit", "imagenet", ...), "custom" or "dataset" */
    int from_data;          /* 1: mean/std are the dataset's own statistics (fields unused) */
    int channels;           /* 1..MIXQ_PP_MAX_CH (0 with from_data: any) */
    int bgr;                /* 1: channels reversed (RGB files, BGR model) */
    float scale;            /* pixel * scale: 1/255 maps 0..255 to [0, 1] */
    float mean[MIXQ_PP_MAX_CH], std[MIXQ_PP_MAX_CH];
} mixq_preprocess;

/* Presets, for a model taking `channels` input channels:
 *   dataset        the dataset's own statistics (from_data), mixq's default
 *   unit           pixel/255 in [0, 1]: torchvision's ToTensor() with no Normalize
 *   signed         [-1, 1]: (pixel/255 - 0.5) / 0.5
 *   raw            the pixel values 0..255 as they are
 *   imagenet       (pixel/255 - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225), 3 channels
 *                  (alias torchvision-normalize)
 *   mnist          (pixel/255 - 0.1307) / 0.3081, 1 channel
 *   fashion-mnist  (pixel/255 - 0.2860) / 0.3530, 1 channel
 *   cifar10        (pixel/255 - (0.4914, 0.4822, 0.4465)) / (0.2470, 0.2435, 0.2616), 3 channels
 * An unknown name or a channel count the preset does not fit is MIXQ_ERR_ARG. */
mixq_status mixq_preprocess_preset(const char *name, int channels, mixq_preprocess *out);
/* The names above, NULL-terminated. */
const char *const *mixq_preprocess_presets(void);
/* A custom transform: nmean / nstd are 1 (the same for every channel) or `channels`. Scale, mean
 * and std must be finite, scale and std positive. */
mixq_status mixq_preprocess_custom(int channels, float scale, const float *mean, int nmean,
                                   const float *std, int nstd, int bgr, mixq_preprocess *out);
/* One line for people: "unit: x = pixel / 255", "custom: x = (pixel * 0.00392 - 0.5) / 0.25"... */
void mixq_preprocess_describe(const mixq_preprocess *pp, char *buf, size_t n);

/* The dataset's own statistics as numbers (what from_data means for d), named "dataset". */
mixq_status mixq_dataset_preprocess(const mixq_dataset *d, mixq_preprocess *out);
/* Images [start, start + n) as the model input pp describes (NULL: the dataset's own statistics,
 * as a from_data transform), x [n][c][h][w], and their labels (may be NULL). A transform for
 * another channel count than the dataset's is MIXQ_ERR_SHAPE. */
mixq_status mixq_dataset_batch(const mixq_dataset *d, const mixq_preprocess *pp, int start, int n,
                               float *x, int *labels);

/* ---------------------------------------------------------------- models */
typedef struct mixq_model mixq_model;

typedef enum mixq_op {
    MIXQ_OP_INPUT = 0,
    MIXQ_OP_CONV,      /* conv2d: stride, padding, groups (depthwise when groups == c_in) */
    MIXQ_OP_LINEAR,    /* fully connected on a flattened input */
    MIXQ_OP_BN,        /* batch norm over channels */
    MIXQ_OP_RELU,
    MIXQ_OP_RELU6,
    MIXQ_OP_MAXPOOL,
    MIXQ_OP_AVGPOOL,
    MIXQ_OP_GAP,       /* global average pool: C x H x W -> C x 1 x 1 */
    MIXQ_OP_ADD,       /* residual add of two inputs of equal shape */
    MIXQ_OP_FLATTEN,
    MIXQ_OP_CONCAT,    /* two inputs of equal height and width joined along the channels */
    MIXQ_OP_MUL,       /* element-wise product: equal shapes, or the second input C x 1 x 1
                          (one factor per channel: squeeze-and-excitation) */
    MIXQ_OP_SIGMOID,
    MIXQ_OP_HSIGMOID,  /* hard sigmoid clamp(alpha x + beta, 0, 1) (ONNX HardSigmoid) */
    MIXQ_OP_HSWISH,    /* hard swish x * clamp(x / 6 + 1/2, 0, 1) (ONNX HardSwish) */
    MIXQ_OP_COUNT
} mixq_op;

const char *mixq_op_name(mixq_op op);

typedef struct mixq_model_config {
    const char *arch;   /* "lenet5", "resnet20", "vgg11", "mobilenet_v1", "mobilenet_v2", "squeezenet" */
    int in_c, in_h, in_w;
    int classes;
    float width;        /* width multiplier (mobilenets, squeezenet; 1.0 elsewhere); 0 means 1.0 */
    uint64_t seed;      /* weight initialisation seed */
} mixq_model_config;

/* Architectures in the zoo, NULL-terminated. */
const char *const *mixq_model_archs(void);

mixq_status mixq_model_create(const mixq_model_config *cfg, mixq_model **out);
/* ONNX (src/io/onnx.c). Import a float CNN exported by PyTorch & co. (the supported operators and
 * what is folded are listed there and in README); a mixq QDQ export is read back quantized, with
 * its policy, scales and clips. Export writes the float model, or a quantized one as QDQ with
 * every layer's bits in metadata_props. mixq_model_load reads .onnx files through the import.
 * Export takes m non-const for the reason mixq_runtime_create does: a quantized model's cached
 * quantized weights are brought up to date first. */
mixq_status mixq_model_import_onnx(const char *path, mixq_model **out);
mixq_status mixq_model_export_onnx(mixq_model *m, const char *path);
/* The same; with embed_preprocess the graph starts with the model's input transform (Sub and Div
 * nodes, a Gather first for BGR), so it takes raw pixels 0..255 as floats. A from_data transform
 * must be set to numbers first (mixq_dataset_preprocess, mixq_model_set_preprocess). */
mixq_status mixq_model_export_onnx_ex(mixq_model *m, const char *path, int embed_preprocess);

/* Load a model file written by mixq_model_save; every tensor's name and shape is checked
 * against the architecture the file names. */
mixq_status mixq_model_load(const char *path, mixq_model **out);
mixq_status mixq_model_save(const mixq_model *m, const char *path);
/* An independent copy of m in memory: graph, weights, batch-norm statistics and, for a quantized
 * model, its policy, scales and clips (what saving and loading it would give, without a file).
 * A search scores each fine-tuned candidate on a clone of the float model. */
mixq_status mixq_model_clone(const mixq_model *m, mixq_model **out);
void mixq_model_free(mixq_model *m);

/* Description of one graph node, for `mixq info` and for quantization policies. */
typedef struct mixq_node_info {
    const char *name;        /* stable, e.g. "layer2.1.conv1" */
    mixq_op op;
    int n_inputs;
    int inputs[2];           /* node indices */
    int in_c, in_h, in_w;    /* shape of the first input (per image) */
    int out_c, out_h, out_w; /* output shape (per image) */
    int kh, kw, stride, pad, groups; /* conv/pool attributes, 0 where meaningless; stride is
                                        the vertical stride and pad the top padding */
    int stride_w, pad_left, pad_bottom, pad_right; /* the rest of the window: equal to stride
                                        and pad for a square, symmetric one */
    int64_t params;          /* trainable parameters of this node */
    int64_t macs;            /* multiply-accumulates per image (conv, linear) */
} mixq_node_info;

int mixq_model_node_count(const mixq_model *m);
mixq_status mixq_model_node(const mixq_model *m, int i, mixq_node_info *info);
const char *mixq_model_arch(const mixq_model *m);
void mixq_model_input_shape(const mixq_model *m, int *c, int *h, int *w, int *classes);
/* The model's input transform (see mixq_preprocess). Returns 1 when it was recorded (trained,
 * read from a file or an export that stores it, or set), 0 when the model was built fresh or
 * read from a file that predates recording (it then is the from_data default). */
int mixq_model_preprocess(const mixq_model *m, mixq_preprocess *out);
/* Set the transform (it is then recorded): its channel count must be the model's. */
mixq_status mixq_model_set_preprocess(mixq_model *m, const mixq_preprocess *pp);
/* The training images the model was trained without (see mixq_holdout). Returns 1 when it
 * records them: `mixq train` records its validation split in a new model, model files keep it,
 * and mixq_train keeps it while the model trains only outside it; training on any of those
 * images leaves count 0 (nothing known to be held out). An ONNX export carries it
 * (metadata_props "mixq.holdout") and its import reads it back. 0: no record (another producer's
 * import, a model built fresh, a file from before the record). */
int mixq_model_holdout(const mixq_model *m, mixq_holdout *out);
/* Record h (NULL: drop the record); 0 <= count <= images. */
mixq_status mixq_model_set_holdout(mixq_model *m, const mixq_holdout *h);
/* The seed of the validation split to use with m (the one rule every command follows):
 * split_seed when `given`, else the seed of the holdout m records (the split it was trained
 * without), else `seed` (a model with no record: the split follows the run's seed, as before
 * models recorded it). */
uint64_t mixq_model_split_seed(const mixq_model *m, int given, uint64_t split_seed, uint64_t seed);
int64_t mixq_model_param_count(const mixq_model *m);
int64_t mixq_model_macs(const mixq_model *m);

/* Named tensors (parameters and buffers such as BN running statistics). */
typedef struct mixq_tensor_info {
    const char *name;  /* "layer1.0.conv1.weight" */
    int ndim;
    int shape[4];
    int64_t numel;
    int trainable;     /* 0 for buffers (running mean/var) */
} mixq_tensor_info;
int mixq_model_tensor_count(const mixq_model *m);
mixq_status mixq_model_tensor(const mixq_model *m, int i, mixq_tensor_info *info);
/* Direct access to a tensor's data (numel floats, writable); NULL with an error if name is
 * unknown. Every call counts as a change of the weights: a quantized model re-quantizes them at
 * its next forward. */
float *mixq_model_tensor_data(mixq_model *m, const char *name);
/* Gradient of a trainable tensor after mixq_model_backward (NULL for buffers). */
float *mixq_model_tensor_grad(mixq_model *m, const char *name);

/* Low-level execution, for tests and tools. x: [n][c][h][w]; logits: [n][classes].
 * training != 0 uses batch statistics in BN (and updates running statistics). */
mixq_status mixq_model_forward(mixq_model *m, const float *x, int n, int training, float *logits);
/* Softmax cross-entropy of the last forward against labels (label smoothing eps in [0,1)),
 * then backward through the graph. Gradients are overwritten (not accumulated). */
mixq_status mixq_model_backward(mixq_model *m, const int *labels, float smoothing, float *loss);
/* Output of a node from the last forward ([n][c][h][w]); NULL if none. */
const float *mixq_model_node_output(const mixq_model *m, int node);

/* ---------------------------------------------------------------- training */
typedef enum mixq_optimizer { MIXQ_OPT_SGD = 0, MIXQ_OPT_ADAM } mixq_optimizer;
typedef enum mixq_schedule { MIXQ_SCHED_CONST = 0, MIXQ_SCHED_STEP, MIXQ_SCHED_COSINE } mixq_schedule;

typedef struct mixq_train_config {
    int epochs;
    int batch;              /* default 128 */
    mixq_optimizer optimizer;
    float lr;               /* initial learning rate */
    float momentum;         /* SGD momentum (default 0.9) */
    float weight_decay;     /* L2 on conv/linear weights (not on BN or biases) */
    float beta1, beta2, adam_eps; /* Adam */
    mixq_schedule schedule;
    int step_size;          /* epochs between steps (MIXQ_SCHED_STEP) */
    float gamma;            /* step factor (MIXQ_SCHED_STEP) */
    int warmup_epochs;      /* linear warm-up (0 = none) */
    float label_smoothing;
    int augment;            /* random crop (pad 4 for 32 px, 2 for 28 px) + horizontal flip */
    int max_steps;          /* stop after this many steps (0 = no limit); the learning-rate
                               schedule still spans `epochs` */
    uint64_t seed;          /* shuffling and augmentation */
    /* Knowledge distillation: a teacher model (NULL: none; e.g. the float model a quantized
     * one came from) runs in inference mode on each training batch, and the loss becomes
     * (1 - distill_weight) CE + distill_weight T^2 KL(softmax(teacher / T) || softmax(model /
     * T)), T = distill_temperature. The teacher must take the same input shape and classes;
     * it sees the batch through its own input transform. It is not changed. */
    mixq_model *teacher;
    float distill_weight;      /* in [0, 1] (default 0.5) */
    float distill_temperature; /* > 0 (default 1) */
    /* Checkpoints (NULL: none). After every epoch the whole training state is written to the
     * file `checkpoint` names, atomically: the parameters and batch-norm statistics, the
     * optimizer's moments and step count, a quantized model's clips and LSQ scales with their
     * moments, the epochs done, and what identifies the run (its settings, the data's size and
     * a hash of the weights, policy and clips it started from). With `resume` set, mixq_train
     * first reads that file and continues after its last epoch: the result is bit-identical to
     * a run never stopped (at any thread count). A checkpoint of other settings, another model,
     * other starting weights, policy or clips is an error, and nothing of the model is changed.
     * Models whose quantization is an EBS search's mixtures cannot be checkpointed. */
    const char *checkpoint;
    int resume;
} mixq_train_config;

/* Sensible defaults: 10 epochs, SGD momentum 0.9, lr 0.1 cosine, wd 5e-4, batch 128, Adam
 * betas 0.9/0.999 eps 1e-8, step schedule 30 epochs x 0.1, augment on, seed 1, no teacher
 * (distillation weight 0.5 and temperature 1 once one is set: LSQ's setting). */
void mixq_train_config_default(mixq_train_config *cfg);

typedef struct mixq_progress {
    int epoch, epochs;       /* 1-based epoch */
    int step, steps_per_epoch; /* 1-based step within the epoch */
    int64_t images_seen;
    float lr;
    float loss;              /* running mean over the epoch */
    float ce;                /* its cross-entropy part (distilling: loss = (1 - w) ce + w T^2 KL;
                                else loss = ce), running mean over the epoch */
    float accuracy;          /* running training accuracy over the epoch, 0..1 */
    double images_per_s;
    double elapsed_s, eta_s;
    int epoch_done;          /* 1 on the call made at the end of an epoch */
    float val_accuracy;      /* at epoch end if a validation set was given, else -1 */
} mixq_progress;
/* Progress callback: return non-zero to stop training early (not an error). */
typedef int (*mixq_progress_fn)(const mixq_progress *p, void *user);

mixq_status mixq_train(mixq_model *m, const mixq_dataset *train, const mixq_dataset *val,
                       const mixq_train_config *cfg, mixq_progress_fn fn, void *user);
/* What the training checkpoint at path (mixq_train_config.checkpoint) holds: the epochs done of
 * the run's epochs. Reads only its header: that it is of a given run is checked by mixq_train. */
mixq_status mixq_train_checkpoint_info(const char *path, int *epochs_done, int *epochs);
/* Whether training m on `train` (one epoch or more) keeps m's held-out record (mixq_model_holdout)
 * true: 1 when m records none, train is a test split, or train holds none of m's held-out images;
 * else 0, and mixq_train sets the record's count to 0. *seen (may be NULL): how many of m's
 * held-out images train holds, -1 when that cannot be told (a training file of another size, or
 * out of memory: treated as holding them). */
int mixq_train_keeps_holdout(const mixq_model *m, const mixq_dataset *train, int *seen);

/* Accuracy (0..1) and mean loss of a model on a dataset, inference mode. */
mixq_status mixq_evaluate(mixq_model *m, const mixq_dataset *d, int batch, float *accuracy,
                          float *loss);

/* ---------------------------------------------------------------- quantization */
#define MIXQ_FLOAT_BITS 32 /* a bit width of 32 means "keep float" */

typedef enum mixq_granularity {
    MIXQ_GRAN_LAYER = 0, /* one weight scale per layer */
    MIXQ_GRAN_CHANNEL,   /* one scale per output channel */
    MIXQ_GRAN_KERNEL,    /* one scale and one bit width per output channel (AutoQ) */
    MIXQ_GRAN_COUNT
} mixq_granularity;

/* A mixed-precision policy (JSON; format and precedence in src/quant/policy.c and README). */
typedef struct mixq_policy mixq_policy;
mixq_status mixq_policy_load(const char *path, mixq_policy **out);
/* Parse len bytes of JSON; origin names the source in messages. */
mixq_status mixq_policy_parse(const char *text, size_t len, const char *origin, mixq_policy **out);
/* The policy as JSON text (a file mixq_policy_parse reads back to the same policy); a built
 * policy's text is written when first asked for, and NULL if that runs out of memory. */
const char *mixq_policy_text(const mixq_policy *p);
void mixq_policy_free(mixq_policy *p);
/* Building a policy as data (a search's candidates): every conv/linear layer at w_bits/a_bits
 * (1..8 or 32), per channel, automatic clips, then layer settings by exact name, which replace
 * an earlier setting of the same layer and win over the default. A name that matches no
 * conv/linear layer is an error when the policy is applied (mixq_model_quantize). */
mixq_status mixq_policy_create(int w_bits, int a_bits, mixq_policy **out);
mixq_status mixq_policy_set_layer(mixq_policy *p, const char *layer, int w_bits, int a_bits);
/* Per-kernel weight bits: n values, one per output channel (granularity "kernel"). */
mixq_status mixq_policy_set_kernels(mixq_policy *p, const char *layer, const int *bits, int n,
                                    int a_bits);

/* Quantize every conv/linear layer of m (fake quantization of weights and input activations
 * in forward, straight-through gradients in backward) as policy p resolves for it. A rule that
 * matches no layer, a per-kernel array of the wrong length, etc. is an error and leaves m as it
 * was. Training a quantized model is quantization-aware training; evaluating it measures the
 * quantized accuracy. Activation clips must be calibrated before the first forward. */
mixq_status mixq_model_quantize(mixq_model *m, const mixq_policy *p);
int mixq_model_is_quantized(const mixq_model *m);
/* The model's policy (owned by the model), NULL for a float model. */
const mixq_policy *mixq_model_policy(const mixq_model *m);
/* Calibrate activation clips on `images` images of d spread evenly over it (inference mode,
 * quantized weights), with each layer's clip method. Deterministic. */
mixq_status mixq_model_calibrate(mixq_model *m, const mixq_dataset *d, int images);
/* The same for the layers not calibrated yet only (after mixq_model_quantize with a new policy,
 * the layers whose setting changed): the fast path for scoring many policies. */
mixq_status mixq_model_calibrate_new(mixq_model *m, const mixq_dataset *d, int images);

/* One quantized layer, resolved. */
typedef struct mixq_layer_quant {
    int node;                     /* graph node index */
    const char *name;
    mixq_op op;
    int w_bits;                   /* weight bits (per-kernel: the largest) */
    int a_bits;                   /* input activation bits */
    mixq_granularity granularity;
    int kernels;                  /* output channels */
    const int *kernel_bits;       /* [kernels] weight bits of each output channel */
    int a_signed;                 /* input may be negative (not after a ReLU) */
    float a_clip;                 /* calibrated / learned activation clip (0: not calibrated) */
    const char *w_clip_method, *a_clip_method; /* "max", "mse", "kl", "percentile", "lsq";
                                                  weights in k-means mode: "kmeans" */
    int64_t weights, macs;        /* per image */
    double weight_bits;           /* sum over weights of their bits */
    double size_bits;             /* weight_bits + 32 x (scales or k-means codebook + biases,
                                     a following BN's shift included, + the activation clip) */
    double fp32_size_bits;        /* the same layer in float */
    double bitops;                /* sum over kernels of MACs x w_bits x a_bits, per image */
} mixq_layer_quant;

/* Fold every batch norm that directly follows a conv/linear layer (and is its only consumer)
 * into that layer's weights: w_k *= gamma_k / sqrt(var_k + eps), and the BN keeps only the
 * shift, beta_k + (b_k - mean_k) gamma_k / sqrt(var_k + eps) (gamma 1, mean 0, var 1 - eps), so
 * inference outputs are unchanged and the graph keeps its names. For deployment: training a
 * folded model in train mode re-normalises. *folded (may be NULL) counts the folded BNs. */
mixq_status mixq_model_fold_bn(mixq_model *m, int *folded);

int mixq_model_quant_layers(const mixq_model *m); /* 0 for a float model */
mixq_status mixq_model_quant_layer(const mixq_model *m, int i, mixq_layer_quant *out);

typedef struct mixq_quant_totals {
    double size_bits, fp32_size_bits, weight_bits, bitops;
    int64_t macs, weights;
} mixq_quant_totals;
/* Sums of mixq_layer_quant's fields over the quantized layers; MIXQ_ERR_STATE for a float
 * model. */
mixq_status mixq_model_quant_totals(const mixq_model *m, mixq_quant_totals *t);


/* ---------------------------------------------------------------- hardware cost models */
/* A target (accelerator or proxy) is described by a JSON file: {"mixq_hw": 1, "name", "backend",
 * "batch", "freq_hz", "bits": {"min", "max"}, "<backend>": {...}, "energy": {...}}. The shipped
 * presets (mixq_hw_presets) are the files in hw/ of the source tree; every field is documented
 * there and in README. Back-ends: "bitfusion" (the ISCA'18 simulator's tiling search, validated
 * row for row), "bismo" (bit-serial FPGA overlay, exec/fetch/result roofline), "stripes",
 * "loom", "dadn" (bit-serial ASICs vs their 16-bit baseline), "table" (HAQ lookup tables, .npy
 * or CSV), "size" and "bitops" (proxies). */
typedef struct mixq_hw mixq_hw;

/* One layer as the cost models see it. */
typedef struct mixq_hw_layer {
    const char *name;        /* for messages; may be NULL */
    int index;               /* position among the network's costed layers (table back-end) */
    int fc;                  /* 1: fully connected, in_c inputs -> out_c outputs */
    int batch;               /* images per run; 0: the target's default batch */
    int in_c, in_h, in_w;
    int out_c;
    int out_h, out_w;        /* 0: computed from kernel, stride and padding */
    int kh, kw, stride, pad, groups; /* conv attributes (groups == in_c == out_c: depthwise) */
    int is_first;            /* fed by the network input (BitFusion runs it as im2col) */
} mixq_hw_layer;

#define MIXQ_COST_MEMBOUND 1u  /* memory traffic, not compute, sets the time */
#define MIXQ_COST_ROUNDED  2u  /* bits were rounded up to a mode the hardware has */
#define MIXQ_COST_ESTIMATE 4u  /* energy (or more) from generic constants, not a validated model */

/* Cost of one layer at one precision. Buffer counters are in bits (BitFusion's convention);
 * back-ends without a buffer model leave them 0. */
typedef struct mixq_cost {
    double cycles;             /* compute + stall */
    double compute_cycles, stall_cycles;
    double latency_s;          /* cycles / clock */
    double energy_j;           /* e_compute_j + e_sram_j + e_dram_j */
    double e_compute_j, e_sram_j, e_dram_j;
    double dram_read_bits, dram_write_bits;
    double dram_bytes;         /* (read + write) / 8 */
    double wbuf_read_bits, wbuf_write_bits; /* weight buffer */
    double ibuf_read_bits, ibuf_write_bits; /* input (activation) buffer */
    double obuf_read_bits, obuf_write_bits; /* output (partial sum) buffer */
    double macs;               /* multiply-accumulates */
    double bitops;             /* MACs x w_bits x a_bits */
    double size_bits;          /* weights x w_bits */
    int w_bits, a_bits;        /* the bits charged (after rounding up to a supported mode) */
    unsigned flags;            /* MIXQ_COST_* */
} mixq_cost;

/* Names of the built-in presets, NULL-terminated ("bitfusion", "bismo_edge", ...). */
const char *const *mixq_hw_presets(void);
/* A preset by name; "cpu": this machine's measured table (mixq_cpu_calibrate), read from
 * $MIXQ_CPU_TABLE or else ./mixq-cpu.json; a JSON description by path; a .npy or .csv path is a
 * lookup table. */
mixq_status mixq_hw_load(const char *name_or_path, mixq_hw **out);
/* Parse a JSON description; origin names it in messages, dir resolves relative file paths
 * (table back-end; NULL: the current directory). */
mixq_status mixq_hw_parse(const char *json, size_t len, const char *origin, const char *dir,
                          mixq_hw **out);
void mixq_hw_free(mixq_hw *hw);
const char *mixq_hw_name(const mixq_hw *hw);
const char *mixq_hw_backend(const mixq_hw *hw);
const char *mixq_hw_description(const mixq_hw *hw);
const char *mixq_hw_text(const mixq_hw *hw); /* the JSON it was read from ("" for a bare table) */
int mixq_hw_batch(const mixq_hw *hw);
double mixq_hw_freq(const mixq_hw *hw);
/* Smallest and largest bit width the target runs (others are an error, never a silent 0). */
void mixq_hw_bits(const mixq_hw *hw, int *min_bits, int *max_bits);

/* Cost of layer l at (w_bits, a_bits). Thread-safe; expensive back-ends (bitfusion) memoise
 * every answer, so a search may ask again and again. */
mixq_status mixq_hw_cost(mixq_hw *hw, const mixq_hw_layer *l, int w_bits, int a_bits,
                         mixq_cost *out);
/* Per-kernel weight bits (kernel_bits[out_c]): kernels of equal bits are grouped and each group
 * costed as a layer of its own (run one after another); the table back-end, which only knows
 * whole layers, weighs its entries by the share of kernels instead. */
mixq_status mixq_hw_cost_kernels(mixq_hw *hw, const mixq_hw_layer *l, const int *kernel_bits,
                                 int a_bits, mixq_cost *out);
/* Sum b into a (cycles, energies, counters; flags or-ed; bits: the largest). */
void mixq_cost_add(mixq_cost *a, const mixq_cost *b);

/* The costed layers of a model (conv and linear nodes, in graph order). */
int mixq_model_hw_layer_count(const mixq_model *m);
mixq_status mixq_model_hw_layer(const mixq_model *m, int i, mixq_hw_layer *out, int *node);

/* ---------------------------------------------------------------- search */
/* Find per-layer weight and activation bits for a trained model under a hardware budget
 * (src/search/, README "Search"). The environment walks the conv/linear layers, two steps per
 * layer (weight bits, then activation bits) as HAQ does; after each episode a policy over budget
 * is brought within it by HAQ's sequential bit decrease (last layer to first, activation bits
 * then weight bits). Each candidate is quantized, calibrated, optionally fine-tuned on a training
 * subset and scored on the validation split (never the test set). */

/* A scored candidate, as the reward sees it. */
typedef struct mixq_eval_record {
    int layers;
    const int *w_bits, *a_bits;  /* [layers], in the order of mixq_model_hw_layer */
    double accuracy;             /* validation accuracy on the scoring subset, % */
    double fp32_accuracy;        /* the float model's, % */
    double ratio[4];             /* latency, energy, size, bitops / uniform W8A8's */
    double budget_ratio[4];      /* each metric's budget / W8A8's (0: no budget on it) */
    int metric;                  /* the primary metric (the first budget's; 0 latency without one) */
    int fits;                    /* every budget holds */
    int episode;                 /* 1-based, the episode that first scored it */
} mixq_eval_record;

/* Reward of a scored candidate. */
typedef double (*mixq_reward_fn)(const mixq_eval_record *r, void *user);

typedef struct mixq_search_config {
    const char *agent;     /* "haq" (DDPG), "random", "uniform" (every weight width's widest
                              fitting activation width, all layers alike), "greedy" (per-layer
                              sensitivities, then one policy: 2 x layers + 1 candidates), "hawq"
                              (Hessian-trace sensitivities, then an integer programme per
                              budget: 1 candidate, or `sweep`), "releq" (ReLeQ's PPO over
                              weight widths, below), "autoq" (AutoQ's hierarchical DDPG
                              over per-kernel weight widths, below) */
    const char *hw;        /* hardware target: preset, JSON file or lookup table */
    const char *budget;    /* "latency=0.5", "energy=0.5", "size=0.25", "bitops=0.3": fraction of
                              uniform W8A8; absolute with a unit: "latency=2ms", "energy=300uJ",
                              "size=64KiB", "bitops=1e9ops"; several at once, comma-separated
                              ("latency=0.5,energy=0.55": every one must hold; the first is the
                              primary metric); may be empty in accuracy mode, and for releq
                              (NULL, "" or "none": no budget) */
    int accuracy_mode;     /* 0: most accuracy within the budget; 1: least cost with a drop <= max_drop */
    double max_drop;       /* accuracy-guaranteed mode: allowed drop, points of % (default 1.0) */
    int episodes;          /* candidates haq, random and releq propose (HAQ: 600, ReLeQ: 1500;
                              default 60); uniform and greedy score the candidates they define,
                              however many */
    int warmup;            /* HAQ: episodes of random actions before learning (default 20) */
    int b_min, b_max;      /* bit range of the actions (default 2..8) */
    int pin_ends;          /* first and last layer at 8/8 (default 1) */
    int calib_images;      /* activation-clip calibration images per candidate (default 512) */
    int finetune_images;   /* training images of the per-candidate fine-tune (0: calibration only) */
    int eval_images;       /* validation images a candidate is scored on (default 2000) */
    int val_images;        /* validation split carved from the training set (default 5000; `mixq
                              search` defaults to the count the model records it held out, and
                              warns when this split takes images the model trained on:
                              mixq_holdout_seen) */
    int batch;             /* fine-tune batch (default 128) */
    float lr;              /* per-candidate fine-tune learning rate (default 0.01) */
    float final_epochs;    /* QAT epochs of the best policy on the whole training split
                              (default 1; fractions allowed; 0: calibration only) */
    float final_lr;        /* (default 0.01, cosine) */
    float distill;         /* the fine-tunes (per candidate and the final one) distilled from the
                              float model with this weight, mixq_train_config's distillation
                              (0: none, the default; (0, 1]) */
    float distill_temperature; /* its temperature (default 1) */
    int hw_batch;          /* images per run on the target (0: the target's default) */
    uint64_t seed;         /* agent and data order (default 1) */
    int split_seed_set;    /* 1: the validation split's seed is split_seed; 0 (default): the
                              model's recorded holdout, else seed (mixq_model_split_seed) */
    uint64_t split_seed;
    /* DDPG (agent "haq"); 0 = HAQ's value: hidden 300, actor lr 1e-4, critic lr 1e-3, tau 0.01,
     * gamma 1, batch 64, replay 128 x layers transitions (64 episodes), noise sigma 0.5
     * decaying by 0.99 per episode over 580 learning episodes (a shorter search decays faster to
     * the same end point: 0.99^(580 / (episodes - warmup))) */
    int rl_hidden, rl_batch, rl_replay;
    float rl_actor_lr, rl_critic_lr, rl_tau, rl_gamma, rl_sigma, rl_sigma_decay;
    /* HAQ's exploration (haq; -1 = default, 0 = off, HAQ's own behaviour):
     *   rl_sigma_min  noise floor on sigma, in action units (default half a bit's slice of the
     *                 action range, 0.5 / (b_max - b_min + 1));
     *   rl_penalty    subtracted from the agent's reward per bit the wall had to cut, as a
     *                 fraction of all bits it could cut (default 1: the reward of a request the
     *                 wall cut entirely is 1 lower);
     *   rl_redraw     when the (walled) policy was already scored in an earlier episode, draw the
     *                 episode's actions again, at most this many times (default 8; random too);
     *   rl_store_post 1: the replay buffer gets the actions of the bits actually scored (after
     *                 the wall), 0: the agent's requests (HAQ). Default 1. */
    float rl_sigma_min, rl_penalty;
    int rl_redraw, rl_store_post;
    /* HAWQ (agent "hawq"): per-layer Hessian traces by Hutchinson's estimator (finite differences
     * of gradients, Rademacher probes, stopping when every layer's running mean moves by < 1e-3
     * relative, at least 10 probes) on the first hessian_images training images (default 256),
     * at most hessian_probes probes (default 100); then GLPK's integer programme per budget.
     *   sweep       solve this many budgets on the primary metric, evenly from sweep_from to the
     *               budget, the other budgets held, and score each (0: one, at the budget; in
     *               accuracy mode 10, up to the budget or W8A8's cost);
     *   sweep_from  the lowest budget of a sweep as a fraction of W8A8 (0: the cheapest
     *               reachable policy's cost). */
    int hessian_images, hessian_probes;
    int sweep;
    double sweep_from;
    /* kernel_wise (hawq): per-kernel weight widths. Each budget's layer-wise programme fixes
     * the activation widths; then a second programme gives each group of a layer's kernels its
     * own width (groups of the target's weight-tile rows: bismo Dn, loom filters x tiles, cpu
     * 16; kernels ordered by their quantization error, so alike kernels share a group), with
     * costs linear in the group's share of the layer and the exact per-kernel cost checked
     * after. Targets that keep weights bit-parallel (stripes, dadn) gain nothing: refused. */
    int kernel_wise;
    /* ReLeQ (agent "releq"): PPO with an LSTM(ppo_hidden) trunk picks each layer's weight width
     * from bit_set; weights only: the searched layers' activations at a_bits, the first layer
     * (and the last with pin_ends) at 8/8. The budget is optional (NULL, "" or "none": without
     * one the reward alone drives the bits and the best record is the highest-reward one; with
     * one a policy over budget is lowered down the bit set, last layer first). The reward (when
     * `reward` is NULL) is ReLeQ's shaped one: with x = sum(w_bits) / (8 layers) - bit_set's
     * lowest / highest and y = accuracy / fp32_accuracy, -1 if y < reward_margin, else
     * 2 ((1 - x^reward_a) y^(reward_b / y) - 0.5); reward_hw = h in (0, 1] blends the target's
     * cost into x: x = (1 - h) x + h (primary metric's ratio - the cheapest proposal's ratio).
     * Defaults (mixq_search_config_default): bit_set {2, 3, 4, 5, 8}, a_bits 8, margin 0.8,
     * a 0.6, b 3, hw 0; PPO clip 0.3, value coefficient 1, entropy 0.01, Adam lr 1e-4, gamma
     * 0.9, GAE lambda 1, 1 epoch (one update per episode), hidden 128, softmax temperature 0.5. */
    int bit_set[8], n_bit_set; /* ascending widths in 1..8, 2 to 8 of them */
    int a_bits;                /* 1..8 (other agents: must stay 8) */
    double reward_margin, reward_a, reward_b, reward_hw;
    int ppo_hidden, ppo_epochs;
    double ppo_temp, ppo_clip, ppo_vf, ppo_ent, ppo_lr, ppo_gamma, ppo_lambda;
    /* AutoQ (agent "autoq"): a high-level DDPG agent picks each layer's goal (mean kernel weight
     * width) and activation width, a low-level one each kernel's width; the kernel-wise wall
     * holds the budget (README "AutoQ"). Negative (or 0 for the sizes) = the default:
     *   autoq_psi_*   exponents of the extrinsic reward psi_acc ln(acc / acc_fp32) - psi_lat
     *                 ln(latency ratio) - psi_e ln(energy ratio): resource mode 10, 0, 0;
     *                 accuracy mode 10, 0.5, 0.5 (and 1 + 0.1 x the excess lost beyond max_drop);
     *   autoq_zeta0/1 the low-level reward's mix -(1 - zeta) |goal - mean width| / (b_max - b_min)
     *                 + zeta x extrinsic, zeta linear from zeta0 (0.1) after the warm-up to
     *                 zeta1 (0.9) at the last episode;
     *   autoq_llc_hidden  the low-level agent's hidden units (128); autoq_llc_updates its
     *                 updates per episode (64); autoq_relabel 1: HIRO goal relabelling (default),
     *                 0: none. The high-level agent takes the DDPG settings (rl_*) as haq. */
    double autoq_psi_acc, autoq_psi_lat, autoq_psi_e, autoq_zeta0, autoq_zeta1;
    int autoq_llc_hidden, autoq_llc_updates, autoq_relabel;
    /* EBS (agent "ebs"): a differentiable search over the widths of bit_set for weights and
     * activations, with every layer's float weights shared by all its candidate widths and
     * learned strengths over them (README "EBS"). 0 (or negative) = the default:
     *   ebs_epochs   search epochs over the weights' half of the training split (1);
     *   ebs_gumbel   1: Gumbel-softmax with a straight-through one-hot; 0: softmax mixing (0);
     *   ebs_tau0/1   the Gumbel temperature, geometric from tau0 (5) to tau1 (0.5);
     *   ebs_lambda   weight of the cost hinge lambda sum_k max(0, E[cost_k] / W8A8_k - budget_k)
     *                over the budgets, E under the strengths (2);
     *   ebs_lr       Adam learning rate of the strengths (0.01);
     *   ebs_images   training images the search uses, a seeded sample (0: the whole split).
     * The weights train with SGD at `lr` on one half of the training split, the strengths on the
     * other; the argmax policy is walled to the budget and scored like any candidate. sweep and
     * sweep_from as hawq's: one search per budget. The candidate widths are bit_set; with
     * n_bit_set 0, ebs's own default {2, 3, 4, 5, 6, 8} (what the CLI gives without --bit-set).
     * a_bit_set (n_a_bit_set > 0): the activations' own candidate widths (ascending, 2 to 8 in
     * b_min..b_max), e.g. 1-bit weights allowed with activations of at least 2 bits; the budget
     * wall then lowers activations no further than a_bit_set's lowest. 0: bit_set's. The hawq
     * agent takes it too (1 to 8 widths): its programme then picks activations among them. */
    int ebs_epochs, ebs_gumbel, ebs_images;
    int a_bit_set[8], n_a_bit_set;
    double ebs_tau0, ebs_tau1, ebs_lambda, ebs_lr;
    mixq_reward_fn reward; /* NULL: HAQ's 0.1 (acc - acc_fp32) in resource mode; in accuracy
                              mode 1 - (primary metric's ratio) within max_drop, else -1 - 0.1 x
                              the excess; releq: its shaped reward (above) */
    void *reward_user;
    /* Batches and MPI (mpirun -np N mixq search; src/search/mpi.c): the agent proposes
     * `parallel` candidates per round (0: one per rank), scored at once over the ranks, rank 0
     * included; random, uniform, greedy and hawq propose what they would anyway, haq acts k
     * episodes with their own noise before its updates. The files depend on `parallel`, never
     * on the number of ranks. A worker rank silent for worker_timeout seconds on one candidate
     * (0: wait for ever; default 0) is dropped and its candidate scored by another. */
    int parallel;
    double worker_timeout;
    int report_every;      /* RUN_DIR/report.html (mixq_report_write) after every this many
                              episodes and when the search ends (default 10; 0: only at the end;
                              negative: never). Not part of config.json: a resumed run may change
                              it. A report that cannot be written never stops the search: the
                              progress callback gets phase "report" once, mixq_last_error() says
                              why */
} mixq_search_config;
void mixq_search_config_default(mixq_search_config *c);

/* MPI (built with Open MPI: make MPI=1, the default where mpicc is found). A program run by
 * mpirun calls mixq_mpi_init first (it starts MPI only under a launcher, and returns the number
 * of ranks: 1 otherwise, or in a build without MPI) and mixq_mpi_finalize last. mixq_search
 * then runs on every rank: rank 0 is the search, the others score its candidates and return
 * MIXQ_OK with a zeroed result. */
int mixq_mpi_init(int *argc, char ***argv);
void mixq_mpi_finalize(void);
int mixq_mpi_rank(void);
int mixq_mpi_size(void);
/* 1 if this library was built with MPI. */
int mixq_mpi_available(void);

typedef struct mixq_search_progress {
    const char *phase;     /* "fp32", "hessian" (hawq: probe `episode` of at most `episodes`;
                              the last call has episode == episodes), "ebs" (a step of an ebs
                              search: `episode` of `episodes` steps, the strengths' argmax
                              policy's mean bits and cost_ratio, best_cost_ratio = the expected
                              cost ratio, scored / cache_hits = this search / the sweep's
                              searches), "search", "final" (the best policy's fine-tune:
                              first with episode 0 of `episodes` training steps, then at about
                              every 10 % of them, eta_s its own);
                              "report": report.html could not be written (once per search;
                              mixq_last_error() says why; the search goes on) */
    int episode, episodes; /* 1-based */
    double mean_w_bits, mean_a_bits;
    double cost_ratio;     /* this candidate's budget metric / W8A8 */
    double accuracy;       /* this candidate's validation accuracy, % */
    double best_accuracy;  /* best fitting candidate so far, % */
    double best_cost_ratio;
    int cached;            /* the score came from the run's cache */
    int scored;            /* distinct candidates scored so far (the run's, resumes included) */
    int cache_hits;        /* episodes whose candidate came from the cache */
    double elapsed_s, eta_s;
    double budget_ratio;   /* the budget / uniform W8A8's cost (0: no budget); >= 1 constrains nothing */
    double agent_s, score_s; /* seconds this process spent in the agent (acting, the wall,
                              updates) and scoring candidates; agent_s < 0: the agent does not
                              time itself (autoq does) */
} mixq_search_progress;
typedef void (*mixq_search_progress_fn)(const mixq_search_progress *p, void *user);

typedef struct mixq_search_result {
    int layers;
    int candidates;           /* distinct candidates scored by the run (resumes included) */
    int episodes;             /* episodes run (haq, random: cfg->episodes) */
    int cache_hits;           /* episodes whose candidate came from the cache */
    double fp32_val_accuracy; /* % on the scoring subset */
    double best_val_accuracy; /* the best policy's score, % */
    double final_val_accuracy, final_test_accuracy; /* best.mixq's (after the final fine-tune
                                 when it ran and was kept), %: the search's only use of the test
                                 split; -1 when the search failed before */
    double ratio[4];          /* best policy / W8A8: latency, energy, size, bitops */
    double budget_ratio;      /* the primary budget as a fraction of W8A8 (0 in accuracy mode) */
    double budget_ratios[4];  /* every metric's budget / W8A8 (0: none) */
    int fits;                 /* the best policy meets every budget */
    double search_s, final_s; /* wall times */
    int val_trained_on;       /* of the validation split (val_images), how many images the float
                                 model trained on (mixq_holdout_seen against its record): 0 when it
                                 kept to its record's split; -1 when that cannot be told (the model
                                 records no split, or one of another training file). Scores on such
                                 images overstate; `mixq search` warns before it starts */
} mixq_search_result;

/* Run (or with resume=1 continue) a search. run_dir (created if missing) receives:
 *   config.json       the resolved configuration, the agent's settings included;
 *   evals.jsonl       one line per scored policy, flushed before the agent learns from it (the
 *                     cache a resumed run replays);
 *   state.json        the last finished episode, the cache hits so far and, for an agent with
 *                     state beyond the cache (haq), the checkpoint that belongs to them;
 *   agent-<e>.ckpt    that agent's state after episode e (haq: the DDPG agent), written before
 *                     state.json points at it; the previous one is deleted then;
 *   best_policy.json  the best policy so far (a policy file), and pareto.json, pareto.csv;
 *   best.mixq         the best policy on the float model, calibrated, then fine-tuned
 *                     final_epochs on the training split, the fine-tune kept only if it does not
 *                     lower the validation accuracy;
 *   summary.json      the result.
 * A killed run loses at most the episode in flight, and resuming it gives the files an
 * uninterrupted run gives (a score depends on the policy and the settings alone). Without resume a
 * directory that already holds a search is refused (MIXQ_ERR_STATE), and so is resuming one whose
 * configuration differs. */
mixq_status mixq_search(const char *model_path, const char *data, const mixq_search_config *cfg,
                        const char *run_dir, int resume, mixq_search_progress_fn fn, void *user,
                        mixq_search_result *res);

/* ---------------------------------------------------------------- reports */
/* One self-contained HTML page about one or more search run directories (src/report/report.c,
 * README "Reports"): inline SVG and CSS, no script, nothing fetched. It shows accuracy against
 * every cost metric (every scored candidate a point, each agent's Pareto front a line, the chosen
 * policy marked, uniform policies and W8A8 as references; several runs overlaid, one colour per
 * agent), the search over episodes (accuracy, cost, reward, best so far, distinct candidates),
 * the chosen policy's bits per layer with MACs (a heat map for per-kernel bits), its cost per
 * layer on the target (latency, energy split into compute / buffers / DRAM, memory-bound
 * layers), and each run's configuration and provenance. A run directory with missing, torn or
 * malformed files gives a page of what is there, with a note saying what is missing: only an
 * argument error (n < 1, a path that is not a directory) or a page that cannot be written is a
 * failure. The model and the target named by config.json are loaded to cost layers (a missing
 * model: a note, and no per-layer cost). The same directories give the same bytes. The page is
 * written to out_path.tmp, then renamed. */
typedef void (*mixq_report_note_fn)(const char *run_dir, const char *note, void *user);
typedef struct mixq_report_config {
    const char *title;        /* page title (NULL: "mixq search report") */
    const char *model;        /* the float model the runs searched (NULL: each run's config.json
                                 "model", as written, else found relative to the run directory
                                 and its parents with the recorded checksum) */
    const char *hw;           /* the hardware target (NULL: each run's config.json "hw") */
    mixq_report_note_fn note; /* called for each note the page carries (NULL: none) */
    void *user;
} mixq_report_config;
void mixq_report_config_default(mixq_report_config *c);
/* cfg may be NULL (defaults). */
mixq_status mixq_report_write(const char *const *run_dirs, int n, const char *out_path,
                              const mixq_report_config *cfg);

/* ---------------------------------------------------------------- CPU runtime */
/* Runs a quantized model on this CPU with integer kernels (src/kernels/rt.c, README "Runtime").
 * Every conv/linear layer quantizes its input to the layer's a-bit codes (the same rounding as
 * the fake quantization), runs an integer GEMM on the codes and the weights' integer codes, and
 * rescales in a fused epilogue (weight and activation scales, bias, the batch norm that follows,
 * ReLU/ReLU6). Kernels:
 *   bitserial  binary decomposition: AND + popcount over bit planes, any (w, a) in 1..8 and
 *              per-kernel weight bits (src/kernels/bitserial.h);
 *   int8       u8 x s8 -> s32 GEMM (oneDNN's VNNI kernels; exact only with VNNI, so it is
 *              unavailable on CPUs without it);
 *   fp32       the fake-quantized values in float (layers kept at 32 bits, k-means codebooks).
 * The integer kernels are exact, so the runtime differs from the fake-quantized model only by
 * float summation order inside each layer. Threads: batches are cut into per-thread image
 * chunks; one image runs its layers on all threads. Results never depend on the thread count.
 * A runtime holds its own work buffers: one forward at a time per runtime. */
typedef struct mixq_runtime mixq_runtime;

typedef enum mixq_kernel {
    MIXQ_KERNEL_AUTO = 0,  /* per layer: the measured table, else the built-in rule */
    MIXQ_KERNEL_BITSERIAL,
    MIXQ_KERNEL_INT8,
    MIXQ_KERNEL_FP32,
    MIXQ_KERNEL_COUNT
} mixq_kernel;
const char *mixq_kernel_name(mixq_kernel k); /* "auto", "bitserial", "int8", "fp32" */
/* Parse a kernel name; MIXQ_ERR_ARG for an unknown one. */
mixq_status mixq_kernel_parse(const char *name, mixq_kernel *out);
/* 1 if this CPU (and build) can run the kernel exactly. */
int mixq_kernel_available(mixq_kernel k);

typedef struct mixq_runtime_config {
    mixq_kernel kernel;    /* AUTO (default), or BITSERIAL or INT8 for every integer layer (FP32
                              cannot be forced; float layers always run fp32) */
    const char *cpu_table; /* measured table (mixq_cpu_calibrate, or "cpu") for AUTO; NULL: the
                              built-in rule (bitserial where w_bits x a_bits <= 2 or the CPU
                              lacks VNNI, else int8) */
} mixq_runtime_config;
void mixq_runtime_config_default(mixq_runtime_config *c);

/* Compile a quantized, calibrated model (its current weights, scales and clips) into a runtime.
 * The runtime owns copies of everything it needs and never refers to m again (m may be freed).
 * m is not const because the model's cached weight quantization is brought up to date first, as
 * a forward would do it: for every layer whose weights changed since they were last quantized
 * (or never were), the weight scales (fixed from then on for mse/kl/lsq clips) and the
 * fake-quantized weights are computed and stored in m's quantization state. Nothing else in m
 * changes and its outputs stay the same, but the call is not safe concurrently with any other
 * call on m (another mixq_runtime_create included). A float model, an uncalibrated layer, or a
 * forced kernel this CPU lacks is an error. */
mixq_status mixq_runtime_create(mixq_model *m, const mixq_runtime_config *cfg, mixq_runtime **out);
void mixq_runtime_free(mixq_runtime *rt);
/* Logits [n][classes] for x [n][c][h][w] (normalised as the model's inputs). Threads
 * (mixq_set_threads, at most the count when the runtime was created): a batch runs as one chunk
 * of whole images per thread, each through the whole network; a single image splits its
 * bit-serial layers across them. The logits do not depend on the thread count. */
mixq_status mixq_runtime_forward(mixq_runtime *rt, const float *x, int n, float *logits);

typedef struct mixq_runtime_layer_info {
    const char *name;
    int node;
    mixq_kernel kernel;    /* the kernel this layer runs */
    int w_bits, a_bits;    /* weight bits (per-kernel: the largest), activation code bits */
    int mixed;             /* per-kernel weight bits differ within the layer */
    const char *fused;     /* what the epilogue absorbed: "", "bn", "relu", "bn+relu", ... */
    int64_t macs;          /* per image */
    double seconds;        /* time spent in this layer by forwards so far (wall time: with
                              several threads, the slowest thread's share of each forward) */
    int64_t images;        /* images run so far */
} mixq_runtime_layer_info;
int mixq_runtime_layer_count(const mixq_runtime *rt);
/* Zero every layer's time and image counters. */
void mixq_runtime_reset_times(mixq_runtime *rt);

typedef struct mixq_runtime_eval {
    int images;
    double accuracy;        /* runtime top-1, 0..1 */
    double ref_accuracy;    /* the fake-quantized model's (ref given), else -1 */
    int disagree;           /* images whose predicted class differs from ref's */
    int disagree_ties;      /* of those, the ones where ref's logits for the two classes are
                               equal to float rounding (1e-5 relative): a tie broken the other
                               way, as logits on one integer grid (quantized biases, 1-bit
                               layers) can tie exactly */
    double max_logit_diff;  /* largest |runtime logit - ref logit| */
    double seconds;         /* runtime forwards only (not data loading, not ref, not the one
                               untimed warm-up forward of the first batch) */
    double images_per_s;
} mixq_runtime_eval;
/* Run every image of d through the runtime in batches of `batch`; with ref (the fake-quantized
 * model the runtime was built from) also through it, comparing predictions image by image. */
mixq_status mixq_runtime_evaluate(mixq_runtime *rt, mixq_model *ref, const mixq_dataset *d,
                                  int batch, mixq_runtime_eval *out);
mixq_status mixq_runtime_layer(const mixq_runtime *rt, int i, mixq_runtime_layer_info *out);

/* Time every conv/linear layer shape of model m (its architecture and input size; weights and
 * policy do not matter) on this machine at every (w, a) in 1..8 with the bit-serial kernel and
 * once with the int8 and fp32 kernels, each including its input quantization, packing and
 * epilogue; median of `reps` timed runs of `batch` images. Writes a hardware description with
 * back-end "cpu" (README "Hardware") to out_path: `--hw out_path` (or `--hw cpu`, which reads
 * $MIXQ_CPU_TABLE or ./mixq-cpu.json) then costs layers by this machine's measured latency, and
 * mixq_runtime_create (mixq_runtime_config.cpu_table) reads it to pick each layer's fastest
 * kernel. */
typedef struct mixq_cpu_calib_config {
    int batch;             /* images per timed run (default 1) */
    int reps;              /* timed runs per entry, median taken (default 7) */
    double min_run_s;      /* each timed run repeats the layer until this long (default 2e-3) */
    int threads;           /* threads while timing (0: the current setting) */
} mixq_cpu_calib_config;
void mixq_cpu_calib_config_default(mixq_cpu_calib_config *c);
/* Progress: shape i of n done (name: its first layer). */
typedef void (*mixq_cpu_calib_progress_fn)(int i, int n, const char *name, double elapsed_s,
                                          void *user);
mixq_status mixq_cpu_calibrate(const mixq_model *m, const mixq_cpu_calib_config *c,
                               const char *out_path, mixq_cpu_calib_progress_fn fn, void *user);

#ifdef __cplusplus
}
#endif
#endif
