// A Kimi-Linear model on one backend: weights checked and placed, per-sequence state allocated, and the forward
// graph (embedding, 27 x [norm, KDA|MLA, add, norm, MLP|MoE, add], final norm, lm_head) dispatched as ops.
// Not thread-safe: one engine thread drives it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/memory_plan.h"
#include "core/quantization.h"
#include "core/safetensors.h"
#include "core/sequence.h"
#include "core/weights.h"
#include "ops/backend.h"

namespace halo {

struct ModelOptions {
    std::string placement[ops::kMemoryUseCount];  // placement name per MemoryUse; empty = the plugin's default
    int32_t max_step_rows = 512;    // rows (tokens) per forward step: the prefill chunk
    int32_t max_logit_rows = 64;    // lm_head rows computed at once
    int32_t max_sequences = 1;      // KDA state slots
    int64_t max_context = 4096;     // tokens per sequence (MLA cache)
    int32_t page_size = 256;        // tokens per MLA cache page
    ops::DType cache_dtype = ops::DType::f32;
    ops::MoeWeighting moe_weighting = ops::MoeWeighting::unbiased;
    double kv_norm_eps = -1;        // kv_a_layernorm eps; < 0 = rms_norm_eps (vLLM, llama.cpp)
    ops::KdaForm kda_form = ops::KdaForm::automatic;
    ops::MlaForm mla_form = ops::MlaForm::automatic;
    int32_t kda_chunk = 64;
    // Load-time quantization of the float tensors of these classes (a checkpoint's own quantized tensors are used
    // as stored).
    QuantChoice quantize;
    // Reserves the plugin's planned temporaries (Backend::reserve_internal: arenas, workspaces) and runs one step
    // of max_step_rows rows after loading, so that a step that cannot get its memory fails at load, not when a
    // request runs. The server sets it. Without it the plugin's part grows to its plan in the first steps.
    bool warm_up = false;
    // Called as weights are copied into backend memory (bytes done, bytes total); not called for weights used in
    // place. May be empty.
    std::function<void(uint64_t, uint64_t)> on_load_progress;
    // Prefix reuse: bytes of KDA state snapshots the prefix cache may hold (in the state placement; 0: none). The
    // plan counts them in full; they are allocated as snapshots are taken.
    uint64_t prefix_cache_bytes = 0;
    // Memory budget per placement name: the plan must fit min(budget, what the device reports).
    std::map<std::string, uint64_t> budget;
    // Where the sizes a refusal names came from (see refusal() in core/memory_plan.h).
    OptionOrigins origin;
    // Called with the memory plan before anything is allocated (and before a plan that does not fit is refused).
    // May be empty.
    std::function<void(const MemoryPlan&)> on_plan;
};

// Which rows of a sequence's run get logits.
enum class LogitRows { none, last, all };

// One sequence's part of a forward step.
struct StepItem {
    Sequence* seq = nullptr;
    std::span<const int32_t> tokens;
    LogitRows logits = LogitRows::last;
};

class Model {
public:
    // Reads config.json, opens and checks the checkpoint against it (every tensor's name, shape and dtype) before
    // allocating anything, plans the memory and refuses (OutOfMemory, with the numbers) a plan that does not fit
    // the device or the budget, then allocates what the plan's layout says: weights, state, cache, scratch.
    Model(ops::Backend& backend, const std::filesystem::path& model_dir, const ModelOptions& options);
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    const ModelConfig& config() const { return config_; }
    const ModelOptions& options() const { return options_; }
    const MemoryPlan& plan() const { return plan_; }
    // Bytes of the model's buffers per placement index of the device (imported files included); the plugin's own
    // allocations are Backend::internal_use().
    std::vector<uint64_t> allocated() const;
    // Tensors of the checkpoint that the config does not use (sorted): a config that does not match its weights, e.g.
    // fewer layers than the checkpoint has. Loading goes on; the caller warns.
    const std::vector<std::string>& unused_tensors() const { return unused_tensors_; }
    ops::Backend& backend() { return backend_; }
    // The checkpoint's mapped files: their bytes, and MappedFile::page_use summed over them.
    struct CheckpointPages {
        uint64_t bytes = 0, resident = 0, huge = 0;
    };
    CheckpointPages checkpoint_pages() const;
    StatePool& pool() { return pool_; }
    // Bytes of weights one decode token reads (all non-expert tensors, the router, top_k routed experts and the
    // shared experts of every MoE layer, one embedding row).
    uint64_t decode_weight_bytes() const;
    // Bytes of sequence state one decode token moves at a given context length: every KDA state read and written
    // (F32) and the MLA latent cache read over the whole context.
    uint64_t decode_state_bytes(int64_t context) const;

    // Starts a sequence: takes a slot and clears its KDA state and conv history.
    void begin_sequence(Sequence& seq);
    void end_sequence(Sequence& seq) { pool_.detach(seq); }

    // Runs the items as one step (their tokens must total at most max_step_rows) and appends the logits
    // ([rows, vocab] F32: the rows each item asks for, in item order) to logits. Same as submit_step + collect_step.
    void step(std::span<const StepItem> items, std::vector<float>& logits);
    // The two halves of step(): submit_step records the step and hands it to the backend (which may run it
    // asynchronously); the caller may prepare its next step meanwhile, then collect_step waits and appends the logits.
    // Every submit_step must be followed by one collect_step before the next submit_step. The items' sequences count
    // the step's tokens as consumed once submit_step returns.
    void submit_step(std::span<const StepItem> items);
    void collect_step(std::vector<float>& logits);

    // ---- prefix reuse (core/prefix_cache.h) -------------------------------------------------------------
    // A snapshot is one buffer in the state placement holding, per KDA layer, one sequence's recurrent state and
    // then its conv history (the bytes of its slot).
    uint64_t snapshot_bytes() const { return plan_.layout.prefix_snapshot_bytes(); }
    // Allocates a snapshot (contents undefined). Throws ops::OutOfMemory when the placement cannot hold it.
    ops::Buffer* new_snapshot();
    void release_snapshot(ops::Buffer* snapshot) { backend_.release(snapshot); }
    // Copies the sequence's KDA state and conv history into a snapshot, or a snapshot into the sequence's slot
    // (ordered with the steps around it).
    void save_state(const Sequence& seq, ops::Buffer* snapshot);
    void restore_state(const ops::Buffer* snapshot, Sequence& seq);
    // Bytes of one MLA cache page of every MLA layer (layer after layer, as read_page writes them).
    uint64_t page_bytes() const;
    // Host copies for persistence: a snapshot's bytes, and one cache page of every MLA layer.
    void read_snapshot(const ops::Buffer* snapshot, void* dst);
    void write_snapshot(ops::Buffer* snapshot, const void* src);
    void read_page(int32_t page, void* dst);
    void write_page(int32_t page, const void* src);

    // Feeds tokens to one sequence in chunks of max_step_rows; returns the logits of the last token, or all rows
    // when all_logits. on_chunk(done, total) is called after every chunk (progress).
    std::vector<float> prefill(Sequence& seq, std::span<const int32_t> tokens, bool all_logits,
                               const std::function<void(int64_t, int64_t)>& on_chunk = {});

private:
    void make_plan(bool allow_in_place);
    void check_plan_fits() const;
    void place_weights();
    void allocate_state();
    void warm_up();
    ops::Tensor scratch(uint64_t offset, ops::DType dtype, std::initializer_list<int64_t> dims) const;
    void record_logit_group();
    // Copy-on-write: gives the sequence a page of its own for every shared page that tokens [from, to) fall in.
    void own_pages(Sequence& seq, int64_t from, int64_t to);

    // The submitted, not yet collected step: rows that need logits, the next group of them to read, step rows.
    bool step_pending_ = false;
    std::vector<int32_t> pending_logit_rows_;
    std::vector<ops::SeqRun> step_runs_;  // submit_step's, kept between steps
    std::vector<int32_t> step_ids_, step_logit_rows_;
    size_t pending_group_ = 0;
    int64_t pending_rows_ = 0;

    ops::Backend& backend_;
    ModelConfig config_;
    ModelOptions options_;  // checked (throws) before anything is built from it
    MemoryPlan plan_;
    std::unique_ptr<Checkpoint> checkpoint_;
    std::vector<std::string> unused_tensors_;
    ModelWeights weights_;
    // Each weight as checked, in for_each_tensor order: its dtype and where its bytes come from (the mapped
    // checkpoint, or a float tensor of it that place_weights quantizes first).
    std::vector<WeightTensor> sources_;
    StatePool pool_;
    // Everything allocated or imported, released in reverse order when the model goes away, including when its
    // constructor throws half way (a member's destructor runs then; the model's would not).
    struct OwnedBuffers {
        ops::Backend& backend;
        std::vector<ops::Buffer*> list;
        ~OwnedBuffers();
        void release(ops::Buffer* b);  // releases one early (and forgets it)
        ops::Buffer* add(ops::Buffer* b) {
            list.push_back(b);
            return b;
        }
    };
    OwnedBuffers buffers_{backend_, {}};

    ops::Buffer* scratch_buffer_ = nullptr;
    std::vector<ops::Tensor> kda_state_, kda_conv_, mla_cache_;  // per KDA / MLA layer
};

// "BF16" -> DType; throws std::runtime_error for other names.
ops::DType parse_cache_dtype(const std::string& name);

}  // namespace halo
