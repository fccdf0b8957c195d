// Portable kernels for any x86-64 (or other) processor, and the choice of the best table at start-up.
#define HALO_KERNEL_NS generic
#define HALO_KERNELS_AVX512 0
#define HALO_KERNELS_BF16 0
#define HALO_KERNELS_AMX 0
#include "plugins/cpu/kernels_impl.h"

#include <cstdlib>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <stdexcept>
#include <string>

namespace halo::cpu {

const Kernels& generic_kernels() {
    static const Kernels k = {"generic",       generic::matmul,  generic::matmul_rows, generic::matmul_packed, generic::dot,    generic::axpy,       generic::scale,
                              generic::mul,    generic::exp_vec, generic::to_f32, generic::sum_squares,
                              generic::delta_step,   generic::pair_dots, generic::scores32, generic::attend32};
    return k;
}

namespace {

bool cpu_has_avx512() {
#if defined(__x86_64__) && defined(HALO_HAVE_AVX512_KERNELS)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    return false;
#endif
}

}  // namespace

bool cpu_has_avx512_vnni() {
#if defined(__x86_64__) && defined(HALO_HAVE_AVX512_KERNELS)
    return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
#else
    return false;
#endif
}

bool cpu_has_avx512bf16() {
#if defined(__x86_64__) && defined(HALO_HAVE_AVX512_KERNELS)
    return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

bool cpu_has_amx() {
#if defined(__x86_64__) && defined(__linux__) && defined(HALO_HAVE_AVX512_KERNELS)
    // The processor has the tiles, and Linux lets this process use them (the tile data is an XSAVE feature the
    // kernel grants on request: ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA).
    static const bool ok = [] {
        if (!cpu_has_avx512bf16() || !__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16"))
            return false;
        constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
        return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
    }();
    return ok;
#else
    return false;
#endif
}

const Kernels& best_kernels() {
    const char* env = std::getenv("HALO_CPU_ISA");
    const std::string force = env ? env : "";
    if (force == "generic") return generic_kernels();
    if (force == "avx512" || force == "avx512bf16" || force == "amx") {
#if !defined(HALO_HAVE_AVX512_KERNELS)
        throw std::runtime_error("HALO_CPU_ISA=" + force + " asks for AVX-512 kernels, but this CPU plugin was built "
                                 "without them; set HALO_CPU_ISA=generic or unset it");
#else
        if (!cpu_has_avx512())
            throw std::runtime_error("HALO_CPU_ISA=" + force + " asks for AVX-512 kernels, but this processor lacks "
                                     "AVX-512 F/BW/VL/DQ; set HALO_CPU_ISA=generic or unset it");
        if (force == "avx512") return avx512_kernels();
        if (!cpu_has_avx512bf16())
            throw std::runtime_error("HALO_CPU_ISA=" + force + " asks for BF16 dot products, but this processor lacks "
                                     "AVX512_BF16; set HALO_CPU_ISA=avx512 (or generic), or unset it");
        if (force == "avx512bf16") return avx512bf16_kernels();
        if (!cpu_has_amx())
            throw std::runtime_error("HALO_CPU_ISA=amx asks for AMX tiles, but this processor lacks AMX-BF16 or the "
                                     "kernel does not grant them to this process; set HALO_CPU_ISA=avx512, or unset it");
        return amx_kernels();
#endif
    }
    if (!force.empty() && force != "auto")
        throw std::runtime_error("HALO_CPU_ISA=" + (force.size() > 40 ? force.substr(0, 40) + "..." : force) +
                                 " is not one of the CPU plugin's kernel sets (generic, avx512, avx512bf16, amx, auto); "
                                 "set it to one of them, or unset it to use the best kernels for this processor");
#if defined(HALO_HAVE_AVX512_KERNELS)
    // avx512bf16 is not picked by itself: its split products run no faster than F32 FMAs where measured (a Xeon:
    // 0.37 times the avx512 set's prompt speed).
    if (cpu_has_amx()) return amx_kernels();
    if (cpu_has_avx512()) return avx512_kernels();
#endif
    return generic_kernels();
}

}  // namespace halo::cpu
