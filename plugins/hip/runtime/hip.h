// The one include for the HIP plugin's host code and kernels. The same sources build three ways:
//   libhalo_hip.so     hipcc (ROCm, or Debian's HIP 5.2) for AMD GPUs: <hip/hip_runtime.h>
//   HALO_HIP_ON_CUDA   nvcc for NVIDIA GPUs: cuda_names.h maps the HIP names the plugin uses to CUDA's
//   HALO_HIP_EMULATOR  any C++ compiler, kernels run on the CPU (libhalo_hipemu.so): emulator.h
// Kernels use only what all three provide: the builtins (threadIdx, blockIdx, blockDim, gridDim, warpSize,
// __syncthreads, __shared__, HIP_DYNAMIC_SHARED), the helpers of kernel_util.h, and launches through
// hipLaunchKernelGGL.
#pragma once

#if defined(HALO_HIP_EMULATOR)
#include "plugins/hip/runtime/emulator.h"
#elif defined(HALO_HIP_ON_CUDA)
#include "plugins/hip/runtime/cuda_names.h"
#else
#include <hip/hip_runtime.h>
#endif
