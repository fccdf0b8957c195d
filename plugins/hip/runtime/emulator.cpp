// The HIP host emulator (emulator.h): blocks run one after another, a block's threads as fibers.
#include "plugins/hip/runtime/emulator.h"

#include <sys/mman.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define HALO_HIPEMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HALO_HIPEMU_ASAN 1
#endif
#endif
#ifdef HALO_HIPEMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// Switching between fibers. On x86-64 a few instructions save the callee-saved registers and the stack pointer
// (not MXCSR or the x87 control word: kernels never change rounding modes). swapcontext would also save the signal
// mask, a system call per switch, and a warp reduction switches every lane twice. Elsewhere ucontext.
#if defined(__x86_64__)
extern "C" void halo_hipemu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl halo_hipemu_switch
    .hidden halo_hipemu_switch
    .type halo_hipemu_switch, @function
halo_hipemu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size halo_hipemu_switch, .-halo_hipemu_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");
#endif

namespace halo::hipemu {

namespace {

#if defined(__x86_64__)
struct Context {
    void* sp = nullptr;
};
// A fresh stack whose first switch "returns" into entry, with rsp as after a call (8 mod 16).
void make_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
#ifdef HALO_HIPEMU_ASAN
    __asan_unpoison_memory_region(stack, bytes);  // the redzones of the frames of the stack's last fiber
#endif
    uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t(15);
    auto* p = reinterpret_cast<uint64_t*>(top);
    *--p = 0;                                   // entry's return address: it never returns
    *--p = reinterpret_cast<uint64_t>(entry);   // where the switch's ret goes
    for (int i = 0; i < 6; ++i) *--p = 0;       // rbp rbx r12 r13 r14 r15
    c.sp = p;
}
inline void switch_context(Context& from, Context& to) { halo_hipemu_switch(&from.sp, to.sp); }
#else
struct Context {
    ucontext_t uc;
};
void make_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = bytes;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
inline void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

constexpr size_t kStackBytes = 256 * 1024;  // per emulated thread: kernels keep small arrays on it
constexpr int kMaxThreads = 1024;

enum class Wait { none, block, warp, done };

struct Fiber {
    Context ctx;
    char* stack = nullptr;
    ThreadCoords coords;
    Wait wait = Wait::none;
    int lane = 0, warp = 0;
    uint64_t exchange_value = 0;
    int64_t reductions = 0;      // warp reductions this thread has made in the block (its warp's are in step)
    void* fake_stack = nullptr;  // AddressSanitizer's stack of this fiber while it is switched out
};

// A warp's butterfly results, computed once by the first of its lanes to pass the exchange.
struct WarpReduction {
    int64_t done = -1;  // the reduction (Fiber::reductions) whose results `out` holds
    float out[64];
};

struct Emulator {
    std::vector<Fiber> fibers;
    std::vector<WarpReduction> reductions;  // per warp of the block
    char* stacks = nullptr;  // kMaxThreads stacks of kStackBytes
    int block_threads = 0;   // threads of the running block
    Context scheduler;
    Fiber* current = nullptr;
    const std::function<void()>* body = nullptr;
    std::vector<unsigned char> shared;
    int wave = 32;
    bool reverse = false;
    const char* site = "";
#ifdef HALO_HIPEMU_ASAN
    const void* scheduler_stack_bottom = nullptr;
    size_t scheduler_stack_size = 0;
#endif

    Emulator() {
        // Every fiber and its stack at once (fibers are never moved: suspended ones point at themselves); the
        // stacks are reserved address space, touched as used.
        fibers.resize(kMaxThreads);
        void* p = mmap(nullptr, kMaxThreads * kStackBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            std::fprintf(stderr, "hip emulator: cannot map %d fiber stacks\n", kMaxThreads);
            std::abort();
        }
        stacks = static_cast<char*>(p);
        if (const char* w = std::getenv("HALO_HIPEMU_WAVE"); w && std::string(w) == "64") wave = 64;
        if (const char* r = std::getenv("HALO_HIPEMU_REVERSE"); r && *r && std::string(r) != "0") reverse = true;
    }
};

Emulator& emu() {
    static Emulator* e = new Emulator;  // never destroyed: kernels may run from other static destructors
    return *e;
}

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "hip emulator: kernel %s: %s\n", emu().site, what.c_str());
    std::abort();
}

// Switches from the running fiber back to the scheduler.
void yield_to_scheduler() {
    Emulator& e = emu();
    Fiber* me = e.current;
#ifdef HALO_HIPEMU_ASAN
    __sanitizer_start_switch_fiber(&me->fake_stack, e.scheduler_stack_bottom, e.scheduler_stack_size);
#endif
    switch_context(me->ctx, e.scheduler);
#ifdef HALO_HIPEMU_ASAN
    __sanitizer_finish_switch_fiber(me->fake_stack, nullptr, nullptr);
#endif
}

void fiber_entry() {
    Emulator& e = emu();
#ifdef HALO_HIPEMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &e.scheduler_stack_bottom, &e.scheduler_stack_size);
#endif
    // A fiber lives as long as the process: it runs its thread of one block, then waits to run the same thread of
    // the next block (of this launch or a later one). Creating fibers per block cost more than the kernels, and under
    // AddressSanitizer every fiber's end and start unmapped and mapped its fake stack.
    for (;;) {
        (*e.body)();
        e.current->wait = Wait::done;
        yield_to_scheduler();
    }
}

void run_fiber(Fiber& f) {
    Emulator& e = emu();
    e.current = &f;
#ifdef HALO_HIPEMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f.stack, kStackBytes);
#endif
    switch_context(e.scheduler, f.ctx);
#ifdef HALO_HIPEMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    e.current = nullptr;
}

void run_block(const dim3& block_id, const dim3& grid, const dim3& block, int n) {
    Emulator& e = emu();
    e.block_threads = n;
    for (int t = 0; t < n; ++t) {
        Fiber& f = e.fibers[size_t(t)];
        f.coords.thread = dim3(unsigned(t) % block.x, unsigned(t) / block.x % block.y, unsigned(t) / (block.x * block.y));
        f.coords.block = block_id;
        f.coords.block_dim = block;
        f.coords.grid_dim = grid;
        f.wait = Wait::none;
        f.reductions = 0;
        f.lane = t % e.wave;
        f.warp = t / e.wave;
        if (!f.stack) {
            f.stack = e.stacks + size_t(t) * kStackBytes;
            // Stack tops 64 bytes apart modulo 4 KiB: tops all on one 256 KiB boundary would share the caches' sets.
            make_context(f.ctx, f.stack, kStackBytes - 64 * size_t(t % 61), fiber_entry);
        }
    }
    const int warps = (n + e.wave - 1) / e.wave;
    e.reductions.assign(size_t(warps), WarpReduction{});
    const auto deadlock = [&] {
        fail("threads of block (" + std::to_string(block_id.x) + "," + std::to_string(block_id.y) + "," +
             std::to_string(block_id.z) + ") wait at different barriers (__syncthreads in divergent code, or a "
             "shuffle that not every lane of a warp reaches): on a GPU this hangs or reads garbage");
    };
    // Warp by warp: a warp's lanes run until each waits at the block barrier or returns, their warp barriers
    // (shuffles, reductions) released as soon as every running lane of the warp waits at one. Then the block
    // barrier is released once every running thread of the block waits at it.
    for (;;) {
        int at_block = 0, done = 0;
        for (int wi = 0; wi < warps; ++wi) {
            const int w = e.reverse ? warps - 1 - wi : wi;
            const int lo = w * e.wave, hi = std::min(n, lo + e.wave);
            for (;;) {
                for (int i = lo; i < hi; ++i) {
                    Fiber& f = e.fibers[size_t(e.reverse ? hi - 1 - (i - lo) : i)];
                    if (f.wait == Wait::none) run_fiber(f);
                }
                int at_warp = 0, warp_block = 0;
                for (int t = lo; t < hi; ++t) {
                    const Wait st = e.fibers[size_t(t)].wait;
                    at_warp += st == Wait::warp;
                    warp_block += st == Wait::block;
                }
                if (at_warp == 0) {
                    at_block += warp_block;
                    done += hi - lo - warp_block;
                    break;
                }
                if (warp_block > 0) deadlock();
                for (int t = lo; t < hi; ++t)
                    if (e.fibers[size_t(t)].wait == Wait::warp) e.fibers[size_t(t)].wait = Wait::none;
            }
        }
        if (done == n) return;
        if (at_block + done != n) deadlock();
        for (int t = 0; t < n; ++t)
            if (e.fibers[size_t(t)].wait == Wait::block) e.fibers[size_t(t)].wait = Wait::none;
    }
}

}  // namespace

const ThreadCoords& coords() {
    Emulator& e = emu();
    if (!e.current) fail("threadIdx/blockIdx read outside a kernel");
    return e.current->coords;
}

int warp_size() { return emu().wave; }

int lane() { return emu().current ? emu().current->lane : 0; }

void sync_block() {
    Emulator& e = emu();
    if (!e.current) fail("__syncthreads() called outside a kernel");
    e.current->wait = Wait::block;
    yield_to_scheduler();
}

void sync_warp() {
    Emulator& e = emu();
    if (!e.current) fail("a warp operation called outside a kernel");
    e.current->wait = Wait::warp;
    yield_to_scheduler();
}

uint64_t exchange(uint64_t mine, int src) {
    Emulator& e = emu();
    Fiber* me = e.current;
    if (!me) fail("a shuffle called outside a kernel");
    me->exchange_value = mine;
    sync_warp();  // every lane has published its value
    const int warp_first = me->warp * e.wave;
    const size_t t = size_t(warp_first + src);
    uint64_t v = mine;
    if (src >= 0 && src < e.wave && t < size_t(e.block_threads) && e.fibers[t].wait != Wait::done) v = e.fibers[t].exchange_value;
    sync_warp();  // every lane has read before any publishes again
    return v;
}

namespace {
template <class Op>
float butterfly(float v, Op op) {
    Emulator& e = emu();
    Fiber* me = e.current;
    if (!me) fail("a warp reduction called outside a kernel");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, 4);
    me->exchange_value = bits;
    sync_warp();
    WarpReduction& wr = e.reductions[size_t(me->warp)];
    if (wr.done != me->reductions) {
        const int first = me->warp * e.wave;
        float vals[64];
        for (int l = 0; l < e.wave; ++l) {
            const size_t t = size_t(first + l);
            // A lane that has returned contributes what a shuffle from it reads on hardware: the reader's own
            // value; the butterfly below then stays what each running lane computes.
            uint64_t b = t < size_t(e.block_threads) && e.fibers[t].wait != Wait::done ? e.fibers[t].exchange_value : bits;
            std::memcpy(&vals[l], &b, 4);
        }
        float next[64];
        for (int o = e.wave / 2; o > 0; o >>= 1) {
            for (int l = 0; l < e.wave; ++l) next[l] = op(vals[l], vals[l ^ o]);
            std::memcpy(vals, next, sizeof(float) * size_t(e.wave));
        }
        std::memcpy(wr.out, vals, sizeof(float) * size_t(e.wave));
        wr.done = me->reductions;
    }
    const float result = wr.out[me->lane];
    ++me->reductions;
    sync_warp();
    return result;
}
}  // namespace

float butterfly_sum(float v) {
    return butterfly(v, [](float a, float b) { return a + b; });
}
float butterfly_max(float v) {
    return butterfly(v, [](float a, float b) { return std::fmax(a, b); });
}

void* dynamic_shared() { return emu().shared.data(); }

void launch(const char* site, dim3 grid, dim3 block, size_t dynamic_shared_bytes, const std::function<void()>& body) {
    Emulator& e = emu();
    if (e.current) fail("a kernel launched from inside a kernel");
    const long long n = (long long)block.x * block.y * block.z;
    e.site = site;
    if (n <= 0 || n > kMaxThreads) fail("a block of " + std::to_string(n) + " threads (1 to 1024 allowed)");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) fail("an empty grid");
    if (dynamic_shared_bytes > 64 * 1024) fail(std::to_string(dynamic_shared_bytes) + " bytes of dynamic shared memory (64 KiB allowed)");
    e.shared.assign(std::max<size_t>(dynamic_shared_bytes, 16), 0xA5);  // not zero: kernels must initialise it
    e.body = &body;
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) run_block(dim3(x, y, z), grid, block, int(n));
    e.body = nullptr;
}

}  // namespace halo::hipemu

// ---- runtime API: host memory stands in for the device's ----------------------------------------------------------

namespace {
hipError_t g_last = hipSuccess;
hipError_t record(hipError_t e) {
    if (e != hipSuccess) g_last = e;
    return e;
}
uint64_t meminfo(const char* key) {
    FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char name[64];
    unsigned long long kb = 0;
    uint64_t out = 0;
    while (std::fscanf(f, "%63s %llu kB", name, &kb) == 2)
        if (std::string(name) == std::string(key) + ":") out = kb * 1024;
    std::fclose(f);
    return out;
}
}  // namespace

struct HipEmuStream {};

const char* hipGetErrorName(hipError_t e) {
    switch (e) {
    case hipSuccess: return "hipSuccess";
    case hipErrorInvalidValue: return "hipErrorInvalidValue";
    case hipErrorOutOfMemory: return "hipErrorOutOfMemory";
    case hipErrorNoDevice: return "hipErrorNoDevice";
    case hipErrorInvalidDevice: return "hipErrorInvalidDevice";
    case hipErrorNotSupported: return "hipErrorNotSupported";
    }
    return "hipErrorUnknown";
}
const char* hipGetErrorString(hipError_t e) {
    switch (e) {
    case hipSuccess: return "no error";
    case hipErrorInvalidValue: return "invalid argument";
    case hipErrorOutOfMemory: return "out of memory";
    case hipErrorNoDevice: return "no ROCm-capable device is detected";
    case hipErrorInvalidDevice: return "invalid device ordinal";
    case hipErrorNotSupported: return "operation not supported";
    }
    return "unknown error";
}
hipError_t hipGetLastError() {
    hipError_t e = g_last;
    g_last = hipSuccess;
    return e;
}
hipError_t hipGetDeviceCount(int* count) {
    *count = 1;
    return hipSuccess;
}
hipError_t hipGetDeviceProperties(hipDeviceProp_t* prop, int device) {
    if (device != 0) return record(hipErrorInvalidDevice);
    *prop = hipDeviceProp_t{};
    const int wave = halo::hipemu::warp_size();
    std::snprintf(prop->name, sizeof prop->name, "HIP host emulator (wave%d)", wave);
    std::snprintf(prop->gcnArchName, sizeof prop->gcnArchName, "emulated-wave%d", wave);
    prop->totalGlobalMem = meminfo("MemTotal");
    prop->sharedMemPerBlock = 64 * 1024;
    prop->warpSize = wave;
    return hipSuccess;
}
hipError_t hipSetDevice(int device) { return device == 0 ? hipSuccess : record(hipErrorInvalidDevice); }
hipError_t hipDriverGetVersion(int* version) {
    *version = 0;
    return hipSuccess;
}
hipError_t hipRuntimeGetVersion(int* version) {
    *version = 0;
    return hipSuccess;
}
hipError_t hipMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
    *free_bytes = meminfo("MemAvailable");
    *total_bytes = meminfo("MemTotal");
    return hipSuccess;
}
hipError_t hipMalloc(void** p, size_t bytes) {
    const size_t rounded = (bytes + 255) / 256 * 256;
    *p = std::aligned_alloc(256, rounded ? rounded : 256);
    if (!*p) return record(hipErrorOutOfMemory);
    std::memset(*p, 0xCD, rounded ? rounded : 256);  // device memory starts undefined: kernels must not read it unwritten
    return hipSuccess;
}
hipError_t hipFree(void* p) {
    std::free(p);
    return hipSuccess;
}
hipError_t hipHostMalloc(void** p, size_t bytes, unsigned) { return hipMalloc(p, bytes); }
hipError_t hipHostFree(void* p) { return hipFree(p); }
hipError_t hipMallocManaged(void** p, size_t bytes, unsigned) { return hipMalloc(p, bytes); }
hipError_t hipHostRegister(void*, size_t, unsigned) { return hipSuccess; }
hipError_t hipHostUnregister(void*) { return hipSuccess; }
hipError_t hipHostGetDevicePointer(void** device, void* host, unsigned) {
    *device = host;
    return hipSuccess;
}
hipError_t hipMemcpy(void* dst, const void* src, size_t bytes, hipMemcpyKind) {
    if (bytes) std::memmove(dst, src, bytes);
    return hipSuccess;
}
hipError_t hipMemcpyAsync(void* dst, const void* src, size_t bytes, hipMemcpyKind kind, hipStream_t) {
    return hipMemcpy(dst, src, bytes, kind);
}
hipError_t hipMemsetAsync(void* dst, int value, size_t bytes, hipStream_t) {
    if (bytes) std::memset(dst, value, bytes);
    return hipSuccess;
}
hipError_t hipStreamCreate(hipStream_t* stream) {
    *stream = new HipEmuStream;
    return hipSuccess;
}
hipError_t hipStreamDestroy(hipStream_t stream) {
    delete stream;
    return hipSuccess;
}
hipError_t hipStreamSynchronize(hipStream_t) { return hipSuccess; }
hipError_t hipDeviceSynchronize() { return hipSuccess; }
