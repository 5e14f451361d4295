// Run an ONNX model in ONNX Runtime (npm onnxruntime-node, installed by scripts/ort.sh) on inputs
// mixq wrote (`mixq eval --dump-inputs`), and compare with mixq's logits (`--dump-logits`).
//
//   node scripts/ort_run.js compare MODEL.onnx INPUTS.f32 MIXQ_LOGITS.f32 C H W CLASSES [all|disabled]
//       prints one line: images, predictions differing, max |logit difference|
//   node scripts/ort_run.js speed MODEL.onnx C H W BATCH REPS
//       prints images/s (median of REPS timed runs of 2000 images at BATCH, one thread)
//
// Files are raw little-endian float32, [N][C][H][W] and [N][CLASSES]. Optimization level: all
// (ORT's default) or disabled. One intra-op and one inter-op thread.
'use strict';
const path = require('path');
const fs = require('fs');
const ortDir = process.env.MIXQ_ORT_DIR || path.join(__dirname, '..', 'build', 'ort');
const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));

function f32(file) {
    const b = fs.readFileSync(file);
    return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

async function session(model, level) {
    return ort.InferenceSession.create(model, {
        graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1,
        executionMode: 'sequential',
    });
}

function argmax(a, off, k) {
    let b = 0;
    for (let j = 1; j < k; j++) if (a[off + j] > a[off + b]) b = j;
    return b;
}

async function compare(model, inFile, refFile, C, H, W, K, level) {
    const x = f32(inFile), ref = f32(refFile), per = C * H * W;
    const n = x.length / per;
    if (!Number.isInteger(n) || ref.length !== n * K) throw new Error('input/logit sizes do not match');
    const s = await session(model, level);
    const B = 500;
    let differ = 0, maxd = 0;
    for (let i = 0; i < n; i += B) {
        const b = Math.min(B, n - i);
        const t = new ort.Tensor('float32', x.subarray(i * per, (i + b) * per), [b, C, H, W]);
        const out = (await s.run({ [s.inputNames[0]]: t }))[s.outputNames[0]].data;
        for (let r = 0; r < b; r++) {
            if (argmax(out, r * K, K) !== argmax(ref, (i + r) * K, K)) differ++;
            for (let j = 0; j < K; j++) maxd = Math.max(maxd, Math.abs(out[r * K + j] - ref[(i + r) * K + j]));
        }
    }
    console.log(`images ${n} differing ${differ} max_logit_diff ${maxd.toPrecision(3)}`);
}

async function speed(model, C, H, W, B, reps) {
    const s = await session(model, 'all');
    const x = new Float32Array(B * C * H * W);
    for (let i = 0; i < x.length; i++) x[i] = ((i * 2654435761) >>> 24) / 128 - 1;
    const t = new ort.Tensor('float32', x, [B, C, H, W]);
    const feeds = { [s.inputNames[0]]: t };
    await s.run(feeds); // warm-up
    const iters = Math.max(1, Math.round(2000 / B)), rates = [];
    for (let r = 0; r < reps; r++) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < iters; i++) await s.run(feeds);
        const sec = Number(process.hrtime.bigint() - t0) / 1e9;
        rates.push(iters * B / sec);
    }
    rates.sort((a, b) => a - b);
    console.log(`images_per_s ${rates[Math.floor(reps / 2)].toFixed(0)}`);
}

(async () => {
    const a = process.argv.slice(2), num = (v) => parseInt(v, 10);
    if (a[0] === 'compare' && a.length >= 8)
        await compare(a[1], a[2], a[3], num(a[4]), num(a[5]), num(a[6]), num(a[7]), a[8] || 'all');
    else if (a[0] === 'speed' && a.length === 7)
        await speed(a[1], num(a[2]), num(a[3]), num(a[4]), num(a[5]), num(a[6]));
    else {
        console.error('usage: ort_run.js compare MODEL IN OUT C H W CLASSES [all|disabled] | speed MODEL C H W BATCH REPS');
        process.exit(2);
    }
})().catch((e) => { console.error('ort_run.js: ' + e.message); process.exit(1); });
