// AVX-512 kernels. The standard and shared headers are included first, under the baseline ISA; only the kernel
// functions below the pragma are compiled for AVX-512, so no AVX-512 copy of a shared inline function (std::exp,
// ops::bf16_to_f32, std::fill) can be picked by the linker for code that runs on processors without it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <immintrin.h>

#include "ops/dtype.h"
#include "plugins/cpu/kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")
#define HALO_KERNEL_NS avx512
#define HALO_KERNELS_AVX512 1
#define HALO_KERNELS_AMX 0
#define HALO_KERNELS_BF16 0
#include "plugins/cpu/kernels_impl.h"

namespace halo::cpu {

const Kernels& avx512_kernels() {
    static const Kernels k = {"avx512",       avx512::matmul, avx512::matmul_rows, avx512::matmul_packed, avx512::dot,     avx512::axpy,       avx512::scale,
                              avx512::mul,    avx512::exp_vec, avx512::to_f32, avx512::sum_squares,
                              avx512::delta_step,   avx512::pair_dots, avx512::scores32, avx512::attend32};
    return k;
}

}  // namespace halo::cpu
#pragma GCC pop_options
