// The interface every backend plugin implements, and the symbols a plugin library exports.
//
// Threading: a Backend is driven by one thread at a time (the engine thread); a plugin may use its own threads
// inside a call. Memory: every Buffer is created and released by the Backend that owns it. Execution: op calls may
// be recorded and run later (a GPU plugin records a whole forward step between begin_step and end_step); read()
// waits for everything submitted before it. Errors: calls throw halo::ops::Error with a sentence that says what
// failed and what to do.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/op_list.h"
#include "ops/tensor.h"

namespace halo::ops {

// Bumped whenever anything in ops/ that crosses the plugin boundary changes (structs, virtual methods).
constexpr uint32_t kAbiVersion = 4;  // 4: StepShape, InternalUse, plan_internal / internal_use / reserve_internal,
                                      // PlacementInfo::pool

#if defined(__GNUC__)
#define HALO_VISIBLE __attribute__((visibility("default")))
#else
#define HALO_VISIBLE
#endif

// Errors thrown across the plugin boundary (visible so the core can catch them by type).
class HALO_VISIBLE Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown when a placement cannot hold a request; the core reports it against its memory plan.
class HALO_VISIBLE OutOfMemory : public Error {
public:
    using Error::Error;
};

// Thrown by an op the plugin does not implement (for some or all of its inputs), with a sentence naming the op and
// why: "<op> is not supported by the <plugin> plugin: <reason>". The conformance suite reports such a case as not
// run, with that sentence, instead of as a failure, when the plugin's list of expected-unsupported cases names it.
class HALO_VISIBLE Unsupported : public Error {
public:
    using Error::Error;
};

// One kind of memory a plugin can allocate from.
struct PlacementInfo {
    std::string name;         // profile key, e.g. "heap", "mmap", "device-local", "host-visible", "pinned"
    std::string description;  // one line for `engine backends`
    uint64_t capacity_bytes = 0;  // size of the memory behind it (0 when unknown)
    uint64_t budget_bytes = 0;    // what the process may still use now (0 when unknown)
    bool host_visible = false;    // Buffer::host is set for its buffers
    bool imports_host = false;    // import_host() can wrap existing host memory in it without a copy
    // The physical memory behind it ("system memory", "vulkan heap 0"): placements with the same pool draw on the
    // same bytes, so the memory plan also checks their sum against it. Empty: a pool of its own.
    std::string pool;
};

struct DeviceInfo {
    std::string name;           // "AMD Radeon 8060S", "Intel Xeon (2 threads)"
    std::string kind;           // "cpu", "integrated-gpu", "discrete-gpu", "virtual-gpu", "other"
    bool unified_memory = false;  // device and host share physical memory
    std::vector<PlacementInfo> placements;
    std::string default_placement[kMemoryUseCount];  // placement name per MemoryUse when the profile sets none
    std::vector<std::string> notes;  // anything a user should know (features missing, fallbacks in use)
};

struct BackendOptions {
    int32_t threads = 0;          // worker threads for CPU work; 0 = the CPUs this process may use (capped there)
    int32_t device_index = -1;    // -1 = the plugin's best device
    std::string device_name;      // substring match on DeviceInfo::name, when not empty
    bool validation = false;      // enable driver validation layers where they exist
};

// The largest forward steps the core will run, and the model's dimensions: what a plugin needs to size its own
// temporaries before any weight is loaded (Backend::plan_internal, reserve_internal).
struct StepShape {
    int32_t max_rows = 1;        // tokens of one step, all sequences together
    int32_t max_logit_rows = 1;  // rows of one lm_head product
    int32_t max_sequences = 1;   // sequences (runs) in one step
    int64_t max_context = 1;     // tokens per sequence, the step's own included
    int32_t page_size = 1;       // MLA cache tokens per page
    DType cache_dtype = DType::f32;
    int32_t placement[kMemoryUseCount] = {};  // where the core allocates each use (DeviceInfo::placements index)
    int64_t hidden = 0, vocab = 0;
    int32_t kda_layers = 0, mla_layers = 0, dense_layers = 0, moe_layers = 0;
    int64_t dense_inter = 0;     // width of the dense MLP
    // KDA: heads, head dim (also the rank of the f_a / g_a low-rank projections), conv width, chunk, form
    int32_t kda_heads = 0, kda_head_dim = 0, kda_conv_width = 0, kda_chunk = 64;
    KdaForm kda_form = KdaForm::automatic;
    // MLA: heads, nope / rope query widths, value width, latent rank, form
    int32_t mla_heads = 0, mla_nope_dim = 0, mla_rope_dim = 0, mla_v_dim = 0, mla_rank = 0;
    MlaForm mla_form = MlaForm::automatic;
    // MoE: routed experts, experts per token, routed expert width, the shared experts' width (0: none)
    int32_t experts = 0, top_k = 0;
    int64_t expert_inter = 0, shared_inter = 0;
};

// One of a plugin's own allocations, beside the buffers made by allocate(): op temporaries, staging, packing.
struct InternalUse {
    std::string what;        // "arena", "workspace", "staging": one line of the memory plan
    int32_t placement = -1;  // the DeviceInfo::placements entry whose memory it takes; -1: none of them
    uint64_t bytes = 0;
};

class Backend {
public:
    virtual ~Backend() = default;

    virtual const DeviceInfo& device() const = 0;

    // ---- memory -------------------------------------------------------------------------------------------
    // Allocates bytes in the named placement (an index into device().placements). Throws OutOfMemory.
    virtual Buffer* allocate(MemoryUse use, int32_t placement, uint64_t bytes) = 0;
    // Wraps existing host memory (for example an mmap'd weight file) without copying, or returns null when this
    // placement cannot. The memory must outlive the buffer and stay unchanged while ops read it.
    virtual Buffer* import_host(MemoryUse use, int32_t placement, void* data, uint64_t bytes) = 0;
    virtual void release(Buffer* buffer) = 0;
    // Copies host memory into a buffer, ordered with the ops around it (ops recorded before it see the old
    // contents, ops after it the new). The source may be reused once the call returns.
    virtual void write(Buffer* dst, uint64_t offset, const void* src, uint64_t bytes) = 0;
    // Copies a buffer region to host memory, after all work submitted before has finished.
    virtual void read(const Buffer* src, uint64_t offset, void* dst, uint64_t bytes) = 0;
    // Sets a region to zero bytes (ordered with the ops around it).
    virtual void zero(Buffer* dst, uint64_t offset, uint64_t bytes) = 0;
    // Copies between two buffers of this backend (ordered with the ops around it).
    virtual void copy(Buffer* dst, uint64_t dst_offset, const Buffer* src, uint64_t src_offset, uint64_t bytes) = 0;
    // Bytes the plugin holds for itself now, beyond the buffers allocated through allocate(): op temporaries,
    // upload and readback staging, packing scratch. They grow to the largest step run so far.
    virtual uint64_t internal_bytes() const { return 0; }
    // The same, item by item (their bytes add up to internal_bytes()).
    virtual std::vector<InternalUse> internal_use() const { return {}; }
    // What internal_use() will hold at most once steps up to `shape` have run, computed by the sizing code the ops
    // allocate with; callable before any buffer exists. The core adds it to its memory plan.
    virtual std::vector<InternalUse> plan_internal(const StepShape& shape) const { return {}; }
    // Allocates plan_internal(shape) now, so that no step up to `shape` allocates later (the model's warm-up).
    virtual void reserve_internal(const StepShape& shape) {}

    // ---- execution ------------------------------------------------------------------------------------------
    // Ops between begin_step and end_step form one forward step; a GPU plugin records them and submits once at
    // end_step. Ops outside a step run as their own step.
    virtual void begin_step() {}
    virtual void end_step() {}
    // Waits until all submitted work is done.
    virtual void synchronize() {}

    // ---- ops --------------------------------------------------------------------------------------------------
    // One pure virtual per entry of HALO_OPS (ops/op_list.h), in its order, e.g.
    //   virtual void linear(const LinearParams& p) = 0;
    //   virtual void kda(const KdaParams& p, const SeqBatch& batch) = 0;
#define HALO_OP_PURE_VIRTUAL(name, Params, call, ...) virtual void name(HALO_OP_SIGNATURE(Params, call)) = 0;
    HALO_OPS(HALO_OP_PURE_VIRTUAL)
#undef HALO_OP_PURE_VIRTUAL
};

// Runs an op on a backend through its method: run_op(b, p[, &batch]) for one op's params, run_op(b, call) for any.
#define HALO_OP_RUN(name, Params, call, ...)                                          \
    inline void run_op(Backend& b, const Params& p, const SeqBatch* batch = nullptr) { \
        HALO_OP_RUN_##call(name);                                                     \
    }
#define HALO_OP_RUN_params(name) b.name(p)
#define HALO_OP_RUN_params_batch(name) \
    batch ? b.name(p, *batch) : throw Error(std::string(#name) + " was run without the step's SeqBatch")
HALO_OPS(HALO_OP_RUN)
#undef HALO_OP_RUN
#undef HALO_OP_RUN_params
#undef HALO_OP_RUN_params_batch

inline void run_op(Backend& b, const OpCall& call) {
    visit_params(call, [&](const auto& p) { run_op(b, p, call.batch); });
}

// What a plugin says about itself before any backend is created (for `engine backends`).
struct PluginProbe {
    std::string plugin_name;            // "cpu", "vulkan", "hip"
    std::string version;                // free text
    std::vector<std::string> devices;   // one line per usable device
    std::string unusable_reason;        // empty when at least one device can be used
};

}  // namespace halo::ops

// Symbols every plugin exports (C linkage so the loader finds them by name).
//   uint32_t halo_plugin_abi_version();                       kAbiVersion the plugin was built with
//   void halo_plugin_probe(halo::ops::PluginProbe* out);      fills out; never throws
//   halo::ops::Backend* halo_plugin_create(const halo::ops::BackendOptions* options, std::string* error);
//       returns a new backend (the caller deletes it before unloading the library), or null with *error set
#define HALO_PLUGIN_ABI_SYMBOL "halo_plugin_abi_version"
#define HALO_PLUGIN_PROBE_SYMBOL "halo_plugin_probe"
#define HALO_PLUGIN_CREATE_SYMBOL "halo_plugin_create"

namespace halo::ops {
using PluginAbiFn = uint32_t();
using PluginProbeFn = void(PluginProbe*);
using PluginCreateFn = Backend*(const BackendOptions*, std::string*);
}  // namespace halo::ops
