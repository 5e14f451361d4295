/* Carry-save (Harley-Seal) building blocks of the AVX-512BW bit-serial tier, shared by the
 * kernel (bitserial_avx512.c) and the peak loop of bench/bench_layers.c. Included after the
 * includer has defined TGT_INLINE with an AVX-512F/BW target attribute and <immintrin.h>.
 *   MQ_BS_CSA(h, l, a, b): full adder on 512-bit bit vectors, l <- l ^ a ^ b (vpternlogq 0x96),
 *                          h <- majority(l, a, b) (0xe8); two µops remove one vector of three.
 *   mq_bs_popb(v, lut, m4): per-byte popcount (0..8) by the nibble table (lut = popcounts of
 *                          0..15 in every 128-bit lane, m4 = 0x0f bytes). */
#ifndef MIXQ_KERNELS_BITSERIAL_CSA_H
#define MIXQ_KERNELS_BITSERIAL_CSA_H

#define MQ_BS_CSA(h, l, a, b)                                                                   \
    do {                                                                                        \
        const __m512i u_ = (l);                                                                 \
        (l) = _mm512_ternarylogic_epi64(u_, (a), (b), 0x96);                                    \
        (h) = _mm512_ternarylogic_epi64(u_, (a), (b), 0xe8);                                    \
    } while (0)

TGT_INLINE __m512i mq_bs_popb(__m512i v, __m512i lut, __m512i m4) {
    const __m512i lo = _mm512_and_si512(v, m4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    return _mm512_add_epi8(_mm512_shuffle_epi8(lut, lo), _mm512_shuffle_epi8(lut, hi));
}

#endif
