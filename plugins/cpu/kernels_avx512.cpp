// AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c).
#define HALO_KERNEL_NS avx512
#include "plugins/cpu/kernels_impl.h"

namespace halo::cpu {

const Kernels& avx512_kernels() {
    static const Kernels k = {"avx512",       avx512::matmul, avx512::dot,     avx512::axpy,       avx512::scale,
                              avx512::mul,    avx512::exp_vec, avx512::to_f32, avx512::sum_squares,
                              avx512::delta_step,   avx512::pair_dots};
    return k;
}

}  // namespace halo::cpu
