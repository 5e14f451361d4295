/* The vpopcnt tier's target attributes and popcount helpers, shared by its GEMM micro-kernel
 * (bitserial_vpopcnt.c) and its direct convolution (bitserial_dir.c). Include only on x86-64
 * with GCC or clang, after <immintrin.h>. */
#ifndef MIXQ_KERNELS_BITSERIAL_VP_H
#define MIXQ_KERNELS_BITSERIAL_VP_H

#if defined(MQ_BS_EMULATE_VPOPCNT)
/* Development-only build flag (never set by the Makefile): vpopcntq is replaced by an exact
 * AVX-512BW sequence and bitserial.c then reports the tier on any AVX-512BW CPU, so this file's
 * control flow (Horner combine, sign plane, stores) can be tested where VPOPCNTDQ is missing. */
#define VP_TARGET "avx512f,avx512bw,avx512vl,avx512dq,popcnt"
#else
#define VP_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,popcnt"
#endif
#define TGT __attribute__((target(VP_TARGET)))
#define TGT_INLINE static inline __attribute__((always_inline, target(VP_TARGET)))

#if defined(MQ_BS_EMULATE_VPOPCNT)
/* Per-byte popcount (nibble table). */
TGT_INLINE __m512i popcnt8(__m512i x) {
    const __m512i lut = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i lo = _mm512_and_si512(x, m4), hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
    return _mm512_add_epi8(_mm512_shuffle_epi8(lut, lo), _mm512_shuffle_epi8(lut, hi));
}
#endif

/* Per-64-bit-lane popcount. */
TGT_INLINE __m512i popcnt64(__m512i x) {
#if defined(MQ_BS_EMULATE_VPOPCNT)
    return _mm512_sad_epu8(popcnt8(x), _mm512_setzero_si512());
#else
    return _mm512_popcnt_epi64(x);
#endif
}

/* Per-32-bit-lane popcount. */
TGT_INLINE __m512i popcnt32(__m512i x) {
#if defined(MQ_BS_EMULATE_VPOPCNT)
    return _mm512_madd_epi16(_mm512_maddubs_epi16(popcnt8(x), _mm512_set1_epi8(1)), _mm512_set1_epi16(1));
#else
    return _mm512_popcnt_epi32(x);
#endif
}

#endif
