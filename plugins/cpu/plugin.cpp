// The CPU backend plugin: device description, host memory placements, the op table, and the exported symbols.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "ops/reference/host_buffer.h"
#include "plugins/cpu/context.h"

namespace halo::cpu {

using namespace halo::ops;

namespace {

// Kilobytes of a /proc/meminfo field, or 0.
uint64_t meminfo_kb(const char* key) {
    std::ifstream f("/proc/meminfo");
    std::string k;
    uint64_t v = 0;
    std::string unit;
    while (f >> k >> v >> unit)
        if (k == std::string(key) + ":") return v;
    return 0;
}

std::string cpu_model_name() {
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) return line.substr(colon + 2);
        }
    return "CPU";
}

// Anonymous mapping (the "mmap" placement's own allocations).
struct MappedBuffer : Buffer {
    ~MappedBuffer() override {
        if (host) ::munmap(host, bytes);
    }
};

// How many threads the backend runs, and why not the number asked for.
struct ThreadChoice {
    int threads = 1;
    std::string warning;  // the request could not be used as given (printed to stderr, kept as a device note)
};

// 0 = every CPU this process may use. More threads than the machine has hardware threads are never useful and,
// thousands of them, make every parallel loop wake thousands of threads: capped, with a warning.
ThreadChoice choose_threads(int32_t requested) {
    const int hardware = int(std::max(1u, std::thread::hardware_concurrency()));
    const int usable = std::min(usable_cpu_count(), hardware);
    if (requested < 0)
        throw Error("cpu: " + std::to_string(requested) +
                    " threads is not a thread count; give 0 (every CPU this process may use) or a positive count");
    ThreadChoice c;
    c.threads = requested == 0 ? usable : requested;
    if (requested > hardware) {
        c.threads = usable;
        c.warning = "cpu: --threads " + std::to_string(requested) + " exceeds the " + std::to_string(hardware) +
                    (hardware == 1 ? " hardware thread" : " hardware threads") + "; using " + std::to_string(usable) +
                    (usable < hardware ? ", the CPUs this process may run on" : "");
    }
    return c;
}

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(const BackendOptions& opt) : CpuBackend(choose_threads(opt.threads)) {}

    explicit CpuBackend(const ThreadChoice& threads) : ctx_(threads.threads) {
        info_.name = cpu_model_name() + " (" + std::to_string(ctx_.pool.size()) + " threads, " + ctx_.k.isa + " kernels)";
        info_.kind = "cpu";
        info_.unified_memory = true;
        const uint64_t total = meminfo_kb("MemTotal") * 1024, avail = meminfo_kb("MemAvailable") * 1024;
        // Both are the process's pages.
        PlacementInfo heap{"heap", "process heap (64-byte aligned)", total, avail, true, false, "system memory"};
        PlacementInfo mapped{"mmap", "memory-mapped files used in place (weights are not copied)", total, avail, true, true,
                             "system memory"};
        info_.placements = {heap, mapped};
        info_.default_placement[int(MemoryUse::weights)] = "mmap";
        info_.default_placement[int(MemoryUse::state)] = "heap";
        info_.default_placement[int(MemoryUse::cache)] = "heap";
        info_.default_placement[int(MemoryUse::scratch)] = "heap";
        if (std::strcmp(ctx_.k.isa, "generic") == 0)
            info_.notes.push_back("AVX-512 kernels not in use (processor lacks them or HALO_CPU_ISA=generic): slower");
        if (g_quant_dot == QuantDot::int8)
            info_.notes.push_back("HALO_CPU_QUANT_DOT=int8: activations meet int4/int8 weights as int8 (integer dot "
                                  "products); results differ from the exact path by the activations' rounding");
        if (!threads.warning.empty()) {
            std::fprintf(stderr, "%s\n", threads.warning.c_str());  // the plugin interface has no warning channel
            info_.notes.push_back(threads.warning);
        }
        if (!ctx_.pool.spins()) {  // more threads than the affinity mask allows (taskset, a container's cpuset)
            const int usable = usable_cpu_count();
            info_.notes.push_back(std::to_string(ctx_.pool.size()) + " threads share " +
                                  (usable == 1 ? "the 1 CPU" : "the " + std::to_string(usable) + " CPUs") +
                                  " this process may run on (its affinity mask): idle threads sleep instead of "
                                  "polling, and --threads " + std::to_string(usable) + " may well be faster");
        }
    }

    const DeviceInfo& device() const override { return info_; }
    uint64_t internal_bytes() const override {
        uint64_t total = 0;
        for (const InternalUse& u : internal_use()) total += u.bytes;
        return total;
    }
    std::vector<InternalUse> internal_use() const override {
        uint64_t pack = 0;
        for (const auto& p : ctx_.pack) pack += p.capacity() * sizeof(float);
        return {{"arena (temporaries of the largest op)", 0, ctx_.arena.bytes()},
                {"packing scratch (" + std::to_string(ctx_.pool.size()) + " threads)", 0, pack}};
    }
    std::vector<InternalUse> plan_internal(const StepShape& s) const override {
        return cpu::plan_internal(s, ctx_.pool.size());
    }
    void reserve_internal(const StepShape& s) override { reserve_arena(ctx_.arena, s, ctx_.pool.size()); }

    Buffer* allocate(MemoryUse use, int32_t placement, uint64_t bytes) override {
        check_placement(placement);
        if (placement == 1) {
            void* p = ::mmap(nullptr, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) throw OutOfMemory("cpu: cannot map " + std::to_string(bytes) + " bytes for " + memory_use_name(use));
            auto* b = new MappedBuffer;
            b->host = p;
            b->bytes = bytes;
            b->use = use;
            b->placement = placement;
            return b;
        }
        try {
            return new HostBuffer(use, placement, bytes);
        } catch (const std::bad_alloc&) {
            throw OutOfMemory("cpu: cannot allocate " + std::to_string(bytes) + " bytes of heap for " + memory_use_name(use));
        }
    }
    Buffer* import_host(MemoryUse use, int32_t placement, void* data, uint64_t bytes) override {
        check_placement(placement);
        if (placement != 1) return nullptr;  // the heap placement copies
        return new HostBuffer(use, placement, data, bytes);
    }
    void release(Buffer* b) override { delete b; }
    void write(Buffer* dst, uint64_t off, const void* src, uint64_t n) override {
        check_range(dst, off, n);
        std::memcpy(static_cast<char*>(dst->host) + off, src, n);
    }
    void read(const Buffer* src, uint64_t off, void* dst, uint64_t n) override {
        check_range(src, off, n);
        std::memcpy(dst, static_cast<const char*>(src->host) + off, n);
    }
    void zero(Buffer* dst, uint64_t off, uint64_t n) override {
        check_range(dst, off, n);
        std::memset(static_cast<char*>(dst->host) + off, 0, n);
    }
    void copy(Buffer* dst, uint64_t doff, const Buffer* src, uint64_t soff, uint64_t n) override {
        check_range(dst, doff, n);
        check_range(src, soff, n);
        std::memmove(static_cast<char*>(dst->host) + doff, static_cast<const char*>(src->host) + soff, n);
    }

    // The op table: each op of ops/op_list.h runs cpu::<op>(ctx_, ...), defined in the op's own file.
#define HALO_CPU_OP(name, Params, call, ...) \
    void name(HALO_OP_SIGNATURE(Params, call)) override { cpu::name(ctx_, HALO_OP_ARGS(call)); }
    HALO_OPS(HALO_CPU_OP)
#undef HALO_CPU_OP

private:
    void check_placement(int32_t placement) const {
        if (placement < 0 || placement >= int32_t(info_.placements.size()))
            throw Error("cpu: placement index " + std::to_string(placement) + " does not exist (0 = heap, 1 = mmap)");
    }
    static void check_range(const Buffer* b, uint64_t off, uint64_t n) {
        if (off > b->bytes || n > b->bytes - off)
            throw Error("cpu: access of " + std::to_string(n) + " bytes at offset " + std::to_string(off) +
                        " is outside a buffer of " + std::to_string(b->bytes) + " bytes");
    }

    DeviceInfo info_;
    CpuContext ctx_;
};

}  // namespace

}  // namespace halo::cpu

extern "C" {

__attribute__((visibility("default"))) uint32_t halo_plugin_abi_version() { return halo::ops::kAbiVersion; }

__attribute__((visibility("default"))) void halo_plugin_probe(halo::ops::PluginProbe* out) {
    out->plugin_name = "cpu";
    out->unusable_reason.clear();
    std::string isa;
    try {
        isa = halo::cpu::best_kernels().isa;
    } catch (const std::exception& e) {  // HALO_CPU_ISA names kernels this plugin cannot run
        isa = "no";
        out->unusable_reason = e.what();
    }
    out->version = "halo cpu plugin (" + isa + " kernels)";
    out->devices = {halo::cpu::cpu_model_name() + ", " + std::to_string(std::thread::hardware_concurrency()) +
                    " hardware threads (" + std::to_string(halo::cpu::usable_cpu_count()) + " usable), " + isa +
                    " kernels"};
}

__attribute__((visibility("default"))) halo::ops::Backend* halo_plugin_create(const halo::ops::BackendOptions* options,
                                                                              std::string* error) {
    try {
        return new halo::cpu::CpuBackend(options ? *options : halo::ops::BackendOptions{});
    } catch (const std::exception& e) {
        if (error) *error = e.what();
        return nullptr;
    }
}

}  // extern "C"
