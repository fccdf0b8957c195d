// AVX-512 kernels whose packed product (prompt rows) multiplies BF16 weights on AMX tiles (AMX-BF16: Sapphire Rapids
// and later Xeons); everything else as the AVX-512 set. As in kernels_avx512.cpp, only the kernel functions below the
// pragma are compiled for the extended ISA.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <immintrin.h>

#include "ops/dtype.h"
#include "plugins/cpu/kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16,fma,f16c,avx2")
#define HALO_KERNEL_NS amx
#define HALO_KERNELS_AVX512 1
#define HALO_KERNELS_BF16 1
#define HALO_KERNELS_AMX 1
#include "plugins/cpu/kernels_impl.h"

namespace halo::cpu {

const Kernels& amx_kernels() {
    static const Kernels k = {"amx",          amx::matmul,   amx::matmul_rows, amx::matmul_packed, amx::dot,
                              amx::axpy,      amx::scale,    amx::mul,         amx::exp_vec,       amx::to_f32,
                              amx::sum_squares, amx::delta_step, amx::pair_dots, amx::scores32, amx::attend32};
    return k;
}

}  // namespace halo::cpu
#pragma GCC pop_options
