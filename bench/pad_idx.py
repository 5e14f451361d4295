#!/usr/bin/env python3
"""Write a 32x32 copy of an MNIST-format dataset: each 28x28 image centred on a zero border of
2 px (as LeNet-5's paper fed MNIST), labels unchanged. Plain Python, no numpy.

    python3 bench/pad_idx.py SRC_DIR DST_DIR [PAD]

SRC_DIR holds train/t10k-images-idx3-ubyte and -labels-idx1-ubyte, plain or .gz (for Debian's
dataset-fashion-mnist: /usr/share/datasets/fashion-mnist). DST_DIR gets plain IDX files."""
import gzip, os, struct, sys

def read(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            with (gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")) as f:
                return f.read()
    sys.exit(f"pad_idx.py: no {path}[.gz]")

def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    pad = int(sys.argv[3]) if len(sys.argv) == 4 else 2
    os.makedirs(dst, exist_ok=True)
    for split in ("train", "t10k"):
        img = read(os.path.join(src, f"{split}-images-idx3-ubyte"))
        magic, n, h, w = struct.unpack(">IIII", img[:16])
        if magic != 0x803 or len(img) != 16 + n * h * w:
            sys.exit(f"pad_idx.py: {split} images: bad header or size")
        H, W = h + 2 * pad, w + 2 * pad
        out = bytearray(16 + n * H * W)
        out[:16] = struct.pack(">IIII", 0x803, n, H, W)
        for i in range(n):
            for r in range(h):
                s = 16 + (i * h + r) * w
                d = 16 + (i * H + r + pad) * W + pad
                out[d:d + w] = img[s:s + w]
        with open(os.path.join(dst, f"{split}-images-idx3-ubyte"), "wb") as f:
            f.write(out)
        lab = read(os.path.join(src, f"{split}-labels-idx1-ubyte"))
        with open(os.path.join(dst, f"{split}-labels-idx1-ubyte"), "wb") as f:
            f.write(lab)
        print(f"{split}: {n} images {h}x{w} -> {H}x{W}")

if __name__ == "__main__":
    main()
