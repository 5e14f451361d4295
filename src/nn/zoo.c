/* Model zoo, sized to the input shape. Node and tensor names follow PyTorch's module naming so
 * state_dict keys match (e.g. "layer2.0.downsample.0.weight").
 *
 *   lenet5       conv1 5x5 (pad so that a 28 px input keeps 28) + BN + ReLU + max pool 2,
 *                conv2 5x5 + BN + ReLU + max pool 2, fc1 120, fc2 84, fc3 classes.
 *                (LeNet-5 with ReLU, max pooling and batch norm after each conv.)
 *   resnet20     CIFAR ResNet-20 (He et al. 2016): conv1 3x3 16, three stages of three
 *                BasicBlocks (16/32/64 channels, stride 2 at the first block of stages 2 and 3),
 *                projection shortcuts (1x1 conv + BN) where the shape changes, global average
 *                pool, fc.
 *   vgg11        VGG-11 with BN, small-input variant: features as torchvision's vgg11_bn
 *                ("features.N" indices), a max pool is skipped when the map is already 1x1;
 *                classifier = one Linear(512 * h * w, classes).
 *   mobilenet_v1 MobileNet v1 (depthwise-separable, ReLU6), small-input variant: the stem has
 *                stride 1 when the input is smaller than 64 px; width multiplier scales channels.
 *   mobilenet_v2 MobileNet v2 (Sandler et al. 2018; torchvision's module names): inverted
 *                residuals (1x1 expand + ReLU6, 3x3 depthwise + ReLU6, 1x1 linear projection, BN
 *                after each conv, an identity shortcut where stride 1 keeps the channels), the
 *                (t, c, n, s) table of the paper, a 1x1 conv to 1280, global average pool, fc.
 *                Small-input variant: the stem has stride 1 when the input is smaller than 64 px
 *                (28 and 32 px inputs end at 2x2); the width multiplier scales channels,
 *                rounded to multiples of 8 as torchvision does.
 *   squeezenet   SqueezeNet 1.1 (Iandola et al. 2016; torchvision's module names), small-input
 *                variant: the stem is a 3x3 stride-1 conv and the pools are 2x2 stride 2 when the
 *                input is smaller than 64 px; batch norm after every conv (squeeze_bn,
 *                expand1x1_bn, expand3x3_bn) so that it trains from scratch without tricks; Fire
 *                modules concatenate their 1x1 and 3x3 expand branches; the classifier is a 1x1
 *                conv to the classes, then global average pool (no ReLU on the logits).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/model.h"

static const char *const archs[] = {"lenet5",       "resnet20",   "vgg11", "mobilenet_v1",
                                     "mobilenet_v2", "squeezenet", NULL};

const char *const *mixq_model_archs(void) { return archs; }

#define TRY(x)                 \
    do {                       \
        if ((x) < 0) return -1; \
    } while (0)

static int conv_bn_act(mixq_model *m, int x, const char *conv, const char *bn, const char *act,
                       mixq_op act_op, int k_out, int k, int stride, int pad, int groups) {
    TRY(x = mq_add_conv(m, conv, x, k_out, k, stride, pad, groups, 0));
    TRY(x = mq_add_bn(m, bn, x));
    if (act) TRY(x = mq_add_act(m, act, act_op, x));
    return x;
}

static int build_lenet5(mixq_model *m, int x) {
    int H = m->nodes[x].h;
    int pad = H < 32 ? (32 - H + 1) / 2 : 0;
    if (pad > 2) pad = 2;
    TRY(x = mq_add_conv(m, "conv1", x, 6, 5, 1, pad, 1, 1));
    TRY(x = mq_add_bn(m, "bn1", x));
    TRY(x = mq_add_act(m, "relu1", MIXQ_OP_RELU, x));
    TRY(x = mq_add_pool(m, "pool1", MIXQ_OP_MAXPOOL, x, 2, 2, 0));
    TRY(x = mq_add_conv(m, "conv2", x, 16, 5, 1, 0, 1, 1));
    TRY(x = mq_add_bn(m, "bn2", x));
    TRY(x = mq_add_act(m, "relu2", MIXQ_OP_RELU, x));
    if (m->nodes[x].h >= 2) TRY(x = mq_add_pool(m, "pool2", MIXQ_OP_MAXPOOL, x, 2, 2, 0));
    TRY(x = mq_add_flatten(m, "flatten", x));
    TRY(x = mq_add_linear(m, "fc1", x, 120, 1));
    TRY(x = mq_add_act(m, "relu3", MIXQ_OP_RELU, x));
    TRY(x = mq_add_linear(m, "fc2", x, 84, 1));
    TRY(x = mq_add_act(m, "relu4", MIXQ_OP_RELU, x));
    TRY(x = mq_add_linear(m, "fc3", x, m->cfg.classes, 1));
    return x;
}

static int basic_block(mixq_model *m, int x, const char *pfx, int planes, int stride) {
    char a[MIXQ_NAME_MAX], b[MIXQ_NAME_MAX], c[MIXQ_NAME_MAX];
    int in_c = m->nodes[x].c;
    int shortcut = x;
    snprintf(a, sizeof a, "%s.conv1", pfx);
    snprintf(b, sizeof b, "%s.bn1", pfx);
    snprintf(c, sizeof c, "%s.relu1", pfx);
    int y;
    TRY(y = conv_bn_act(m, x, a, b, c, MIXQ_OP_RELU, planes, 3, stride, 1, 1));
    snprintf(a, sizeof a, "%s.conv2", pfx);
    snprintf(b, sizeof b, "%s.bn2", pfx);
    TRY(y = conv_bn_act(m, y, a, b, NULL, MIXQ_OP_RELU, planes, 3, 1, 1, 1));
    if (stride != 1 || in_c != planes) {
        snprintf(a, sizeof a, "%s.downsample.0", pfx);
        snprintf(b, sizeof b, "%s.downsample.1", pfx);
        TRY(shortcut = conv_bn_act(m, x, a, b, NULL, MIXQ_OP_RELU, planes, 1, stride, 0, 1));
    }
    snprintf(a, sizeof a, "%s.add", pfx);
    snprintf(b, sizeof b, "%s.relu2", pfx);
    TRY(y = mq_add_add(m, a, y, shortcut));
    TRY(y = mq_add_act(m, b, MIXQ_OP_RELU, y));
    return y;
}

static int build_resnet20(mixq_model *m, int x) {
    TRY(x = conv_bn_act(m, x, "conv1", "bn1", "relu", MIXQ_OP_RELU, 16, 3, 1, 1, 1));
    static const int planes[3] = {16, 32, 64};
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < 3; b++) {
            char pfx[32];
            snprintf(pfx, sizeof pfx, "layer%d.%d", s + 1, b);
            TRY(x = basic_block(m, x, pfx, planes[s], (s > 0 && b == 0) ? 2 : 1));
        }
    TRY(x = mq_add_gap(m, "avgpool", x));
    TRY(x = mq_add_flatten(m, "flatten", x));
    TRY(x = mq_add_linear(m, "fc", x, m->cfg.classes, 1));
    return x;
}

static int build_vgg11(mixq_model *m, int x) {
    static const int cfg[] = {64, -1, 128, -1, 256, 256, -1, 512, 512, -1, 512, 512, -1};
    int idx = 0;
    char a[32], b[32], c[32];
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        if (cfg[i] < 0) {
            snprintf(a, sizeof a, "features.%d", idx++);
            if (m->nodes[x].h >= 2 && m->nodes[x].w >= 2)
                TRY(x = mq_add_pool(m, a, MIXQ_OP_MAXPOOL, x, 2, 2, 0));
            continue;
        }
        snprintf(a, sizeof a, "features.%d", idx);
        snprintf(b, sizeof b, "features.%d", idx + 1);
        snprintf(c, sizeof c, "features.%d", idx + 2);
        idx += 3;
        TRY(x = mq_add_conv(m, a, x, cfg[i], 3, 1, 1, 1, 1));
        TRY(x = mq_add_bn(m, b, x));
        TRY(x = mq_add_act(m, c, MIXQ_OP_RELU, x));
    }
    TRY(x = mq_add_flatten(m, "flatten", x));
    TRY(x = mq_add_linear(m, "classifier", x, m->cfg.classes, 1));
    return x;
}

static int build_mobilenet_v1(mixq_model *m, int x) {
    static const int cfg[][2] = {{64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1},
                                 {512, 2}, {512, 1}, {512, 1}, {512, 1}, {512, 1},
                                 {512, 1}, {1024, 2}, {1024, 1}};
    float wm = m->cfg.width;
    int stem = (int)lroundf(32 * wm);
    if (stem < 8) stem = 8;
    int stem_stride = m->nodes[x].h >= 64 ? 2 : 1;
    TRY(x = conv_bn_act(m, x, "conv1", "bn1", "relu1", MIXQ_OP_RELU6, stem, 3, stem_stride, 1, 1));
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        int out = (int)lroundf(cfg[i][0] * wm);
        if (out < 8) out = 8;
        int stride = cfg[i][1];
        if (m->nodes[x].h < 2) stride = 1; /* small inputs: stop downsampling at 1x1 */
        int in_c = m->nodes[x].c;
        char a[48], b[48], c[48];
        snprintf(a, sizeof a, "layers.%zu.conv_dw", i);
        snprintf(b, sizeof b, "layers.%zu.bn_dw", i);
        snprintf(c, sizeof c, "layers.%zu.relu_dw", i);
        TRY(x = conv_bn_act(m, x, a, b, c, MIXQ_OP_RELU6, in_c, 3, stride, 1, in_c));
        snprintf(a, sizeof a, "layers.%zu.conv_pw", i);
        snprintf(b, sizeof b, "layers.%zu.bn_pw", i);
        snprintf(c, sizeof c, "layers.%zu.relu_pw", i);
        TRY(x = conv_bn_act(m, x, a, b, c, MIXQ_OP_RELU6, out, 1, 1, 0, 1));
    }
    TRY(x = mq_add_gap(m, "avgpool", x));
    TRY(x = mq_add_flatten(m, "flatten", x));
    TRY(x = mq_add_linear(m, "fc", x, m->cfg.classes, 1));
    return x;
}

/* torchvision's _make_divisible: the nearest multiple of 8 at least 8, never 10% below v */
static int divisible8(float v) {
    int n = (int)(v + 4.0f) / 8 * 8;
    if (n < 8) n = 8;
    if ((float)n < 0.9f * v) n += 8;
    return n;
}

static int build_mobilenet_v2(mixq_model *m, int x) {
    static const int cfg[][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                 {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};
    float wm = m->cfg.width > 0 ? m->cfg.width : 1.0f;
    int stem_stride = m->nodes[x].h >= 64 ? 2 : 1;
    TRY(x = conv_bn_act(m, x, "features.0.0", "features.0.1", "features.0.2", MIXQ_OP_RELU6,
                        divisible8(32 * wm), 3, stem_stride, 1, 1));
    int idx = 1;
    char a[64], b[64], c[64];
    for (size_t s = 0; s < sizeof cfg / sizeof cfg[0]; s++) {
        int out = divisible8(cfg[s][1] * wm);
        for (int r = 0; r < cfg[s][2]; r++, idx++) {
            int stride = r == 0 ? cfg[s][3] : 1;
            if (m->nodes[x].h < 2) stride = 1; /* small inputs: stop downsampling at 1x1 */
            int in_c = m->nodes[x].c, hid = in_c * cfg[s][0], y = x, k = 0;
            if (cfg[s][0] != 1) { /* conv.0: 1x1 expansion */
                snprintf(a, sizeof a, "features.%d.conv.0.0", idx);
                snprintf(b, sizeof b, "features.%d.conv.0.1", idx);
                snprintf(c, sizeof c, "features.%d.conv.0.2", idx);
                TRY(y = conv_bn_act(m, y, a, b, c, MIXQ_OP_RELU6, hid, 1, 1, 0, 1));
                k = 1;
            }
            snprintf(a, sizeof a, "features.%d.conv.%d.0", idx, k);
            snprintf(b, sizeof b, "features.%d.conv.%d.1", idx, k);
            snprintf(c, sizeof c, "features.%d.conv.%d.2", idx, k);
            TRY(y = conv_bn_act(m, y, a, b, c, MIXQ_OP_RELU6, hid, 3, stride, 1, hid));
            snprintf(a, sizeof a, "features.%d.conv.%d", idx, k + 1);
            snprintf(b, sizeof b, "features.%d.conv.%d", idx, k + 2);
            TRY(y = conv_bn_act(m, y, a, b, NULL, MIXQ_OP_RELU, out, 1, 1, 0, 1));
            if (stride == 1 && in_c == out) {
                snprintf(a, sizeof a, "features.%d.add", idx);
                TRY(y = mq_add_add(m, a, x, y));
            }
            x = y;
        }
    }
    snprintf(a, sizeof a, "features.%d.0", idx);
    snprintf(b, sizeof b, "features.%d.1", idx);
    snprintf(c, sizeof c, "features.%d.2", idx);
    TRY(x = conv_bn_act(m, x, a, b, c, MIXQ_OP_RELU6, divisible8(1280 * (wm > 1 ? wm : 1)), 1, 1,
                        0, 1));
    TRY(x = mq_add_gap(m, "avgpool", x));
    TRY(x = mq_add_flatten(m, "flatten", x));
    TRY(x = mq_add_linear(m, "classifier.1", x, m->cfg.classes, 1));
    return x;
}

static int fire(mixq_model *m, int x, int idx, int squeeze, int expand) {
    char a[64], b[64], c[64];
    snprintf(a, sizeof a, "features.%d.squeeze", idx);
    snprintf(b, sizeof b, "features.%d.squeeze_bn", idx);
    snprintf(c, sizeof c, "features.%d.squeeze_activation", idx);
    TRY(x = conv_bn_act(m, x, a, b, c, MIXQ_OP_RELU, squeeze, 1, 1, 0, 1));
    int e1, e3;
    snprintf(a, sizeof a, "features.%d.expand1x1", idx);
    snprintf(b, sizeof b, "features.%d.expand1x1_bn", idx);
    snprintf(c, sizeof c, "features.%d.expand1x1_activation", idx);
    TRY(e1 = conv_bn_act(m, x, a, b, c, MIXQ_OP_RELU, expand, 1, 1, 0, 1));
    snprintf(a, sizeof a, "features.%d.expand3x3", idx);
    snprintf(b, sizeof b, "features.%d.expand3x3_bn", idx);
    snprintf(c, sizeof c, "features.%d.expand3x3_activation", idx);
    TRY(e3 = conv_bn_act(m, x, a, b, c, MIXQ_OP_RELU, expand, 3, 1, 1, 1));
    snprintf(a, sizeof a, "features.%d.cat", idx);
    return mq_add_concat(m, a, e1, e3);
}

static int build_squeezenet(mixq_model *m, int x) {
    int small = m->nodes[x].h < 64;
    float wm = m->cfg.width > 0 ? m->cfg.width : 1.0f;
#define SQ(v) divisible8((v) * wm)
    TRY(x = conv_bn_act(m, x, "features.0", "features.0_bn", "features.1", MIXQ_OP_RELU, SQ(64),
                        3, small ? 1 : 2, small ? 1 : 0, 1));
    int pk = small ? 2 : 3;
    if (m->nodes[x].h >= pk) TRY(x = mq_add_pool(m, "features.2", MIXQ_OP_MAXPOOL, x, pk, 2, 0));
    TRY(x = fire(m, x, 3, SQ(16), SQ(64)));
    TRY(x = fire(m, x, 4, SQ(16), SQ(64)));
    if (m->nodes[x].h >= pk) TRY(x = mq_add_pool(m, "features.5", MIXQ_OP_MAXPOOL, x, pk, 2, 0));
    TRY(x = fire(m, x, 6, SQ(32), SQ(128)));
    TRY(x = fire(m, x, 7, SQ(32), SQ(128)));
    if (m->nodes[x].h >= pk) TRY(x = mq_add_pool(m, "features.8", MIXQ_OP_MAXPOOL, x, pk, 2, 0));
    TRY(x = fire(m, x, 9, SQ(48), SQ(192)));
    TRY(x = fire(m, x, 10, SQ(48), SQ(192)));
    TRY(x = fire(m, x, 11, SQ(64), SQ(256)));
    TRY(x = fire(m, x, 12, SQ(64), SQ(256)));
#undef SQ
    TRY(x = mq_add_conv(m, "classifier.1", x, m->cfg.classes, 1, 1, 0, 1, 1));
    TRY(x = mq_add_gap(m, "classifier.3", x));
    TRY(x = mq_add_flatten(m, "flatten", x));
    return x;
}

static mixq_status zoo_build(const mixq_model_config *cfg, int alloc, mixq_model **out) {
    *out = NULL;
    if (!cfg || !cfg->arch) return mq_err(MIXQ_ERR_ARG, "no model architecture given");
    int (*const builders[])(mixq_model *, int) = {build_lenet5, build_resnet20, build_vgg11,
                                                  build_mobilenet_v1, build_mobilenet_v2,
                                                  build_squeezenet}; /* archs' order */
    const int n_arch = (int)(sizeof builders / sizeof builders[0]);
    int (*build)(mixq_model *, int) = NULL;
    for (int i = 0; i < n_arch; i++)
        if (strcmp(cfg->arch, archs[i]) == 0) build = builders[i];
    if (!build)
        return mq_err(MIXQ_ERR_NOTFOUND,
                      "unknown model '%s'; %shint: choose one of lenet5, resnet20, vgg11, "
                      "mobilenet_v1, mobilenet_v2, squeezenet",
                      cfg->arch, mq_did_you_mean(cfg->arch, archs, n_arch));
    if (cfg->in_c < 1 || cfg->in_c > 64 || cfg->in_h < 4 || cfg->in_w < 4 || cfg->in_h > 1024 ||
        cfg->in_w > 1024)
        return mq_err(MIXQ_ERR_ARG, "input shape %dx%dx%d unsupported for '%s' (need 1..64 "
                      "channels, 4..1024 px)", cfg->in_c, cfg->in_h, cfg->in_w, cfg->arch);
    if (cfg->classes < 2 || cfg->classes > 100000)
        return mq_err(MIXQ_ERR_ARG, "class count %d out of range [2, 100000]", cfg->classes);
    if (!(cfg->width == 0 || (cfg->width >= 0.125f && cfg->width <= 4.0f)))
        return mq_err(MIXQ_ERR_ARG, "width multiplier %g out of range [0.125, 4]",
                      (double)cfg->width);
    if (cfg->width != 0 && cfg->width != 1.0f && strcmp(cfg->arch, "mobilenet_v1") != 0 &&
        strcmp(cfg->arch, "mobilenet_v2") != 0 && strcmp(cfg->arch, "squeezenet") != 0)
        return mq_err(MIXQ_ERR_ARG, "width multiplier applies to mobilenet_v1, mobilenet_v2 and "
                      "squeezenet only");
    mixq_model *m = mq_model_new(cfg);
    if (!m) return MIXQ_ERR_NOMEM;
    int x = mq_add_input(m, cfg->in_c, cfg->in_h, cfg->in_w);
    if (x < 0 || build(m, x) < 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", mixq_last_error());
        mixq_status why = mq_last_status() == MIXQ_ERR_NOMEM ? MIXQ_ERR_NOMEM : MIXQ_ERR_SHAPE;
        mixq_model_free(m);
        return mq_err(why, "cannot build '%s' for input %dx%dx%d: %s", cfg->arch,
                      cfg->in_c, cfg->in_h, cfg->in_w, msg);
    }
    mixq_status st = alloc ? mq_model_finalize(m) : mq_model_layout(m);
    if (st) {
        mixq_model_free(m);
        return st;
    }
    *out = m;
    return MIXQ_OK;
}

mixq_status mq_zoo_build(const mixq_model_config *cfg, mixq_model **out) { return zoo_build(cfg, 1, out); }
mixq_status mq_zoo_plan(const mixq_model_config *cfg, mixq_model **out) { return zoo_build(cfg, 0, out); }
