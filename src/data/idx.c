/* IDX (MNIST format) reader, plain or gzip-compressed (zlib's gz* functions read both).
 * Images: magic 0x00000803, dims n, h, w (big-endian int32), then n*h*w bytes.
 * Labels: magic 0x00000801, dim n, then n bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* The n data bytes a header announces (`items`: "60000 images of 28x28 pixels"), read into a
 * malloc'ed buffer. Nothing is allocated for more than the file can hold (issue 15: a 16-byte
 * header can announce 1.6e14 bytes): a plain file must hold them after its header; a gzip file
 * cannot expand more than deflate's 1032:1, and its buffer (and that of a plain stream that is not
 * a regular file) grows as the data arrives, so a short stream fails as truncated having
 * allocated about twice what it held. */
static mixq_status read_declared(gzFile f, const char *path, size_t hdr, size_t n, const char *items,
                                 const char *what, uint8_t **out) {
    *out = NULL;
    struct stat sb;
    int plain = gzdirect(f), known = 0; /* known: a plain regular file found to hold the n bytes */
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        uint64_t size = sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
        uint64_t body = size > hdr ? size - hdr : 0;
        if (plain && n > body)
            return mq_err(MIXQ_ERR_FORMAT, "'%s' is truncated or corrupt: its header announces %s (%zu bytes) "
                          "but the file holds %llu bytes after the header; hint: re-download or reinstall "
                          "the dataset", path, items, n, (unsigned long long)body);
        if (!plain && n / 1032 > size)
            return mq_err(MIXQ_ERR_FORMAT, "'%s' is truncated or corrupt: its header announces %s (%zu bytes), "
                          "more than a gzip file of %llu bytes can hold (deflate expands at most 1032:1); hint: "
                          "re-download or reinstall the dataset", path, items, n, (unsigned long long)size);
        known = plain;
    }
    size_t cap = known || n < ((size_t)1 << 20) ? n : (size_t)1 << 20, got = 0;
    uint8_t *buf = mq_malloc(cap, 1, path);
    if (!buf) return MIXQ_ERR_NOMEM;
    for (;;) {
        mixq_status st = gz_exact(f, buf + got, cap - got, path, what);
        if (st) {
            free(buf);
            return st;
        }
        got = cap;
        if (got == n) break;
        cap = cap > n / 2 ? n : 2 * cap;
        uint8_t *g = realloc(buf, cap);
        if (!g) {
            free(buf);
            return mq_err(MIXQ_ERR_NOMEM, "out of memory reading '%s' (%zu bytes)", path, cap);
        }
        buf = g;
    }
    *out = buf;
    return MIXQ_OK;
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
        char items[96];
        snprintf(items, sizeof items, "%u images of %ux%u pixels", cn, ch, cw);
        st = read_declared(f, path, 16, (size_t)cn * ch * cw, items, "image data", &buf);
    }
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
        char items[64];
        snprintf(items, sizeof items, "%u labels", cn);
        st = read_declared(f, path, 8, cn, items, "label data", &buf);
    }
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
