// AVX-512 kernels whose packed product (prompt rows) multiplies BF16 weights with native BF16 dot products
// (vdpbf16ps, AVX512_BF16: Zen 4 and 5, Cooper Lake and later Xeons); everything else as the AVX-512 set. As in
// kernels_avx512.cpp, only the kernel functions below the pragma are compiled for the extended ISA.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <immintrin.h>

#include "ops/dtype.h"
#include "plugins/cpu/kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c,avx2")
#define HALO_KERNEL_NS avx512bf16
#define HALO_KERNELS_AVX512 1
#define HALO_KERNELS_AMX 0
#define HALO_KERNELS_BF16 1
#include "plugins/cpu/kernels_impl.h"

namespace halo::cpu {

const Kernels& avx512bf16_kernels() {
    static const Kernels k = {"avx512bf16",         avx512bf16::matmul,     avx512bf16::matmul_rows,
                              avx512bf16::matmul_packed, avx512bf16::dot,    avx512bf16::axpy,
                              avx512bf16::scale,    avx512bf16::mul,        avx512bf16::exp_vec,
                              avx512bf16::to_f32,   avx512bf16::sum_squares, avx512bf16::delta_step,
                              avx512bf16::pair_dots, avx512bf16::scores32, avx512bf16::attend32};
    return k;
}

}  // namespace halo::cpu
#pragma GCC pop_options
