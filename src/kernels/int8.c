/* int8 GEMM through oneDNN (see int8.h for shapes and the exactness condition). */
#include <oneapi/dnnl/dnnl.h>

#include "core/core.h"
#include "kernels/int8.h"

int mq_i8_available(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
    }
    return cached;
#else
    return 0;
#endif
}

mixq_status mq_i8_gemm(const uint8_t *A, const int8_t *W, int M, int N, int K, int32_t *C,
                       int ldc) {
    if (!mq_i8_available())
        return mq_err(MIXQ_ERR_UNSUPPORTED, "int8 kernel: this CPU has no VNNI, so oneDNN's u8 x "
                      "s8 GEMM would saturate; hint: use the bitserial kernel");
    if (M < 1 || N < 1 || K < 1 || K > MQ_I8_MAX_K || ldc < N)
        return mq_err(MIXQ_ERR_ARG, "int8 kernel: bad sizes M=%d N=%d K=%d ldc=%d", M, N, K, ldc);
    const int32_t co = 0;
    dnnl_status_t s = dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.0f, A, K, 0, W, K, 0, 0.0f, C,
                                        ldc, &co);
    if (s != dnnl_success)
        return mq_err(MIXQ_ERR_UNSUPPORTED, "int8 kernel: oneDNN gemm_u8s8s32 failed (status %d) "
                      "for M=%d N=%d K=%d", (int)s, M, N, K);
    return MIXQ_OK;
}
