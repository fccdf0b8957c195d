// Portable kernels for any x86-64 (or other) processor, and the choice of the best table at start-up.
#define HALO_KERNEL_NS generic
#define HALO_KERNELS_AVX512 0
#include "plugins/cpu/kernels_impl.h"

#include <cstdlib>
#include <cstring>

namespace halo::cpu {

const Kernels& generic_kernels() {
    static const Kernels k = {"generic",       generic::matmul,  generic::dot,    generic::axpy,       generic::scale,
                              generic::mul,    generic::exp_vec, generic::to_f32, generic::sum_squares,
                              generic::delta_step,   generic::pair_dots};
    return k;
}

const Kernels& best_kernels() {
    const char* force = std::getenv("HALO_CPU_ISA");
    if (force && std::strcmp(force, "generic") == 0) return generic_kernels();
#if defined(__x86_64__) && defined(HALO_HAVE_AVX512_KERNELS)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return avx512_kernels();
#endif
    return generic_kernels();
}

}  // namespace halo::cpu
