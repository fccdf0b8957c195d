// The HIP host emulator: the subset of the HIP runtime and kernel language the plugin uses, executed on the CPU, so
// that the plugin's kernels run (and are tested against the reference) on machines without a GPU. Built into
// libhalo_hipemu.so; the real plugin (libhalo_hip.so) includes <hip/hip_runtime.h> instead (runtime/hip.h).
//
// Execution model: a launch runs its blocks one after another; the threads of a block are fibers (ucontext) that run
// until they reach a barrier or return. __syncthreads() waits for every thread of the block, a warp operation
// (shuffle) for every thread of its warp; a barrier that can never be released (threads of one block waiting at
// different barriers) aborts the process with the kernel's launch site. Warps have warp_size() lanes (32 or 64,
// HALO_HIPEMU_WAVE), so a kernel that assumes one wave size fails on the other. Threads run in lane order between
// barriers, or in reverse order with HALO_HIPEMU_REVERSE=1: a kernel that reads shared memory another thread writes
// without a barrier between them gives a different result in one of the two orders. __shared__ variables are
// function statics (blocks never overlap). Streams run everything at once, in order.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

// ---- kernel language ----------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __restrict__ __restrict

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace halo::hipemu {

struct ThreadCoords {
    dim3 thread, block, block_dim, grid_dim;
};

const ThreadCoords& coords();  // the running thread's
int warp_size();                // lanes per warp: 32, or 64 with HALO_HIPEMU_WAVE=64
void sync_block();              // __syncthreads()
void sync_warp();               // waits for every running thread of this thread's warp
void* dynamic_shared();         // the launch's dynamic shared memory
int lane();                     // lane of the running thread in its warp

// Exchanges a value of up to 8 bytes across the running thread's warp: returns the value that lane `src` passed.
// Every lane of the warp that is still running must call it (as on hardware, where a lane left out reads garbage).
uint64_t exchange(uint64_t mine, int src);

template <class T>
T shuffle(T v, int src) {
    static_assert(sizeof(T) <= 8, "shuffled values are at most 8 bytes");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    bits = exchange(bits, src);
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}

// The butterfly sum (or max) over the warp that warp_sum in kernel_util.h computes with log2(wave) shuffles, in one
// exchange: every lane publishes its value, then each lane repeats the butterfly over all values itself (the same
// additions in the same order, so the same bits as the shuffles).
float butterfly_sum(float v);
float butterfly_max(float v);

// Runs `body` for every thread of a grid. `site` names the kernel for error messages.
void launch(const char* site, dim3 grid, dim3 block, size_t dynamic_shared_bytes, const std::function<void()>& body);

}  // namespace halo::hipemu

#define threadIdx (::halo::hipemu::coords().thread)
#define blockIdx (::halo::hipemu::coords().block)
#define blockDim (::halo::hipemu::coords().block_dim)
#define gridDim (::halo::hipemu::coords().grid_dim)
// warpSize reads the emulated wave size (an object, not a macro, so hipDeviceProp_t can have a member of that name).
struct HipEmuWarpSize {
    operator int() const { return ::halo::hipemu::warp_size(); }
};
inline constexpr HipEmuWarpSize warpSize{};
#define __syncthreads() ::halo::hipemu::sync_block()
#define HIP_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::halo::hipemu::dynamic_shared())

template <class T>
inline T __shfl(T v, int src, int width = warpSize) {
    const int l = ::halo::hipemu::lane();
    return ::halo::hipemu::shuffle(v, (l / width) * width + (src % width));
}
template <class T>
inline T __shfl_xor(T v, int mask, int width = warpSize) {
    const int l = ::halo::hipemu::lane();
    const int src = l ^ mask;
    return ::halo::hipemu::shuffle(v, (src / width == l / width) ? src : l);
}
template <class T>
inline T __shfl_down(T v, unsigned delta, int width = warpSize) {
    const int l = ::halo::hipemu::lane();
    const int src = l + int(delta);
    return ::halo::hipemu::shuffle(v, (src / width == l / width) ? src : l);
}

// Threads of a block never run at the same time, so these are atomic as they are.
template <class T>
inline T atomicAdd(T* p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
template <class T>
inline T atomicMax(T* p, T v) {
    T old = *p;
    if (v > old) *p = v;
    return old;
}

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __fdividef(float a, float b) { return a / b; }

// ---- runtime API --------------------------------------------------------------------------------------------------
enum hipError_t {
    hipSuccess = 0,
    hipErrorInvalidValue = 1,
    hipErrorOutOfMemory = 2,
    hipErrorNoDevice = 100,
    hipErrorInvalidDevice = 101,
    hipErrorNotSupported = 801,
};

enum hipMemcpyKind {
    hipMemcpyHostToHost = 0,
    hipMemcpyHostToDevice = 1,
    hipMemcpyDeviceToHost = 2,
    hipMemcpyDeviceToDevice = 3,
    hipMemcpyDefault = 4,
};

struct hipDeviceProp_t {
    char name[256] = {};
    char gcnArchName[256] = {};
    size_t totalGlobalMem = 0;
    size_t sharedMemPerBlock = 0;
    int warpSize = 32;
    int maxThreadsPerBlock = 1024;
    int multiProcessorCount = 1;
    int integrated = 1;
    int managedMemory = 1;
    int canMapHostMemory = 1;
    int pciBusID = 0;
    int pciDeviceID = 0;
    int pciDomainID = 0;
    int major = 0, minor = 0;
};

using hipStream_t = struct HipEmuStream*;

constexpr unsigned hipHostMallocDefault = 0;
constexpr unsigned hipHostMallocMapped = 2;
constexpr unsigned hipHostRegisterDefault = 0;
constexpr unsigned hipHostRegisterMapped = 2;
constexpr unsigned hipMemAttachGlobal = 1;

const char* hipGetErrorName(hipError_t e);
const char* hipGetErrorString(hipError_t e);
hipError_t hipGetLastError();
hipError_t hipGetDeviceCount(int* count);
hipError_t hipGetDeviceProperties(hipDeviceProp_t* prop, int device);
hipError_t hipSetDevice(int device);
hipError_t hipDriverGetVersion(int* version);
hipError_t hipRuntimeGetVersion(int* version);
hipError_t hipMemGetInfo(size_t* free_bytes, size_t* total_bytes);
hipError_t hipMalloc(void** p, size_t bytes);
hipError_t hipFree(void* p);
hipError_t hipHostMalloc(void** p, size_t bytes, unsigned flags = 0);
hipError_t hipHostFree(void* p);
hipError_t hipMallocManaged(void** p, size_t bytes, unsigned flags = hipMemAttachGlobal);
hipError_t hipHostRegister(void* p, size_t bytes, unsigned flags);
hipError_t hipHostUnregister(void* p);
hipError_t hipHostGetDevicePointer(void** device, void* host, unsigned flags);
hipError_t hipMemcpy(void* dst, const void* src, size_t bytes, hipMemcpyKind kind);
hipError_t hipMemcpyAsync(void* dst, const void* src, size_t bytes, hipMemcpyKind kind, hipStream_t stream);
hipError_t hipMemsetAsync(void* dst, int value, size_t bytes, hipStream_t stream);
hipError_t hipStreamCreate(hipStream_t* stream);
hipError_t hipStreamDestroy(hipStream_t stream);
hipError_t hipStreamSynchronize(hipStream_t stream);
hipError_t hipDeviceSynchronize();

#define hipLaunchKernelGGL(kernel, grid, block, shared_bytes, stream, ...) \
    ((void)(stream), ::halo::hipemu::launch(#kernel, dim3(grid), dim3(block), size_t(shared_bytes), [&] { kernel(__VA_ARGS__); }))
