/* IDX (MNIST format) reader, plain or gzip-compressed (zlib's gz* functions read both).
 * Images: magic 0x00000803, dims n, h, w (big-endian int32), then n*h*w bytes.
 * Labels: magic 0x00000801, dim n, then n bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/data.h"

static mixq_status gz_exact(gzFile f, void *dst, size_t n, const char *path, const char *what) {
    unsigned char *p = dst;
    while (n) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got < 0) {
            int err;
            const char *msg = gzerror(f, &err);
            return mq_err(MIXQ_ERR_FORMAT, "'%s' is corrupt while reading %s: %s", path, what,
                          msg ? msg : "gzip error");
        }
        if (got == 0)
            return mq_err(MIXQ_ERR_FORMAT, "'%s' is truncated: it ends inside the %s; hint: "
                          "re-download or reinstall the dataset", path, what);
        p += got;
        n -= (size_t)got;
    }
    return MIXQ_OK;
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static gzFile open_gz(const char *path) {
    gzFile f = gzopen(path, "rb");
    if (!f)
        mq_err(MIXQ_ERR_IO, "cannot open '%s': %s", path, errno ? strerror(errno) : "gzopen failed");
    return f;
}

static mixq_status expect_end(gzFile f, const char *path) {
    unsigned char extra;
    int got = gzread(f, &extra, 1);
    if (got != 0)
        return mq_err(MIXQ_ERR_FORMAT, "'%s' has data after the last item the header announces",
                      path);
    return MIXQ_OK;
}

mixq_status mq_idx_read_images(const char *path, int *n, int *h, int *w, uint8_t **images) {
    *images = NULL;
    gzFile f = open_gz(path);
    if (!f) return MIXQ_ERR_IO;
    unsigned char hdr[16];
    mixq_status st = gz_exact(f, hdr, 16, path, "IDX image header");
    if (!st && be32(hdr) != 0x00000803u)
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' is not an IDX image file (magic 0x%08x, expected "
                    "0x00000803)", path, be32(hdr));
    uint32_t cn = be32(hdr + 4), ch = be32(hdr + 8), cw = be32(hdr + 12);
    if (!st && (cn < 1 || cn > 10000000 || ch < 1 || ch > 4096 || cw < 1 || cw > 4096))
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' declares %u images of %ux%u pixels (out of range)", path,
                    cn, ch, cw);
    uint8_t *buf = NULL;
    if (!st) {
        buf = mq_malloc((size_t)cn * ch * cw, 1, path);
        if (!buf) st = MIXQ_ERR_NOMEM;
    }
    if (!st) st = gz_exact(f, buf, (size_t)cn * ch * cw, path, "image data");
    if (!st) st = expect_end(f, path);
    gzclose(f);
    if (st) {
        free(buf);
        return st;
    }
    *n = (int)cn;
    *h = (int)ch;
    *w = (int)cw;
    *images = buf;
    return MIXQ_OK;
}

mixq_status mq_idx_read_labels(const char *path, int *n, uint8_t **labels) {
    *labels = NULL;
    gzFile f = open_gz(path);
    if (!f) return MIXQ_ERR_IO;
    unsigned char hdr[8];
    mixq_status st = gz_exact(f, hdr, 8, path, "IDX label header");
    if (!st && be32(hdr) != 0x00000801u)
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' is not an IDX label file (magic 0x%08x, expected "
                    "0x00000801)", path, be32(hdr));
    uint32_t cn = be32(hdr + 4);
    if (!st && (cn < 1 || cn > 10000000))
        st = mq_err(MIXQ_ERR_FORMAT, "'%s' declares %u labels (out of range)", path, cn);
    uint8_t *buf = NULL;
    if (!st) {
        buf = mq_malloc(cn, 1, path);
        if (!buf) st = MIXQ_ERR_NOMEM;
    }
    if (!st) st = gz_exact(f, buf, cn, path, "label data");
    if (!st) st = expect_end(f, path);
    gzclose(f);
    if (st) {
        free(buf);
        return st;
    }
    *n = (int)cn;
    *labels = buf;
    return MIXQ_OK;
}
