// Check mode (`engine --check`): a Backend decorator that runs every op on the wrapped plugin and again on the
// reference (ops/reference) with the inputs read back from the plugin, compares the outputs, and throws
// CheckError naming the first op that diverges (step, op number, layer, and a label when the caller sets one).
// Slow on purpose: every op synchronises and copies its tensors to the host. Only the state slots and cache pages
// of the batch's sequences are copied, weights are cached on the host, and MoE loads only the experts routed to.
// Not thread-safe (driven by the engine thread like any backend).
//
// PerturbBackend injects a known error (one op kind's output scaled by 1 + amount, in one layer or all), so that
// the tools that look for divergence (check mode, `engine compare`) can be shown to find it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/forwarding_backend.h"
#include "ops/backend.h"
#include "ops/reference/host_buffer.h"

namespace halo {

class CheckError : public ops::Error {
public:
    using ops::Error::Error;
};

// Normalised error tolerances: max |plugin - reference| / rms(reference), one member per op (`linear`, `kda`, ...)
// defaulting to its check_tolerance in ops/op_list.h, where each is explained. NaN/Inf must match exactly.
struct CheckTolerances {
#define HALO_OP_TOLERANCE(name, Params, call, output, role, tolerance) double name = tolerance;
    HALO_OPS(HALO_OP_TOLERANCE)
#undef HALO_OP_TOLERANCE

    double of(ops::Op op) const;
};

class CheckBackend final : public ForwardingBackend {
public:
    explicit CheckBackend(ops::Backend& plugin, CheckTolerances tol = {});
    ~CheckBackend() override;

    // Free text added to the location of the next ops (e.g. "prompt chunk 2"); empty clears it.
    void set_label(std::string label) { label_ = std::move(label); }
    uint64_t ops_checked() const { return checked_; }
    // Largest normalised error seen per op kind so far.
    const std::map<std::string, double>& worst() const { return worst_; }

    void release(ops::Buffer* b) override;
    void write(ops::Buffer* d, uint64_t o, const void* s, uint64_t n) override;
    void zero(ops::Buffer* d, uint64_t o, uint64_t n) override;
    void copy(ops::Buffer* d, uint64_t doff, const ops::Buffer* s, uint64_t soff, uint64_t n) override;
    void begin_step() override;
    void end_step() override;

private:
    void on_op(const ops::OpCall& call) override;
    // Any op whose params name their tensors' parts (for_each_tensor): its inputs, weights and in-place tensors are
    // copied to the host, the reference runs on them, and every output and in-place tensor is compared.
    template <class Params>
    void check(const Params& p, const ops::SeqBatch* batch);
    // Only the batch's state slots and cache pages travel.
    void check(const ops::KdaParams& p, const ops::SeqBatch* batch);
    void check(const ops::MlaParams& p, const ops::SeqBatch* batch);
    // The reference loads only the experts it routes to, and rows routed differently by a near-tie are left out.
    void check(const ops::MoeParams& p, const ops::SeqBatch* batch);

    // Host copy of a whole plugin tensor (kept until the op finishes), or of the given rows of its outer dimension.
    ops::Tensor snapshot(const ops::Tensor& t);
    ops::Tensor snapshot_rows(const ops::Tensor& t, const std::vector<int32_t>& rows);
    // Host copy of a weight tensor, cached until its buffer is written or released.
    ops::Tensor weight(const ops::Tensor& t);
    // A host tensor of t's shape for the reference's output (kept until the op finishes).
    ops::Tensor host_output(const ops::Tensor& t);
    void forget(const ops::Buffer* b);
    // Compares a plugin tensor (read now) with the reference's host tensor; throws CheckError beyond tol.
    // skip_rows (one flag per row of the outermost dimensions) leaves rows out.
    void compare(const char* op, const char* name, const ops::Tensor& plugin_t, const ops::Tensor& ref_t, double tol,
                 const std::vector<bool>* skip_rows = nullptr);
    std::string where(const char* op) const;
    void begin_op(ops::Op op);
    void end_op();

    ops::Backend& plugin_;
    std::unique_ptr<ops::Backend> reference_;  // ops/reference on host memory
    CheckTolerances tol_;
    std::vector<std::unique_ptr<ops::HostBuffer>> temps_;  // host copies of the current op
    struct CachedWeight {
        std::unique_ptr<ops::HostBuffer> data;
        const ops::Buffer* buffer;
    };
    std::map<std::tuple<const ops::Buffer*, uint64_t, uint64_t>, CachedWeight> weights_;
    uint64_t weight_bytes_ = 0;
    std::string label_;
    int64_t step_ = 0;
    bool in_step_ = false;
    int64_t op_in_step_ = 0;
    int32_t mixers_in_step_ = 0;
    uint64_t checked_ = 0;
    std::map<std::string, double> worst_;
};

// An error to inject: the output of every `op` in `layer` is multiplied by (1 + amount), in every step.
struct Perturbation {
    std::string op;      // an op that belongs to one layer: a mixer ("kda", "mla") or an FFN ("mlp", "moe")
    int32_t layer = -1;  // 0-based decoder layer; -1 = every layer
    double amount = 0;   // relative change of every output element
};

// "kda:2:1e-2" or "moe:all:0.05" -> Perturbation. Throws std::runtime_error naming `flag` on bad text.
Perturbation parse_perturbation(const std::string& text, const std::string& flag);

// Scales the chosen op's output after the wrapped backend computed it (read back, scaled on the host, written
// again), in every forward step. Counts the layer of an op as CheckBackend does: a mixer (KDA or MLA) starts the
// next layer. Not thread-safe.
class PerturbBackend final : public ForwardingBackend {
public:
    PerturbBackend(ops::Backend& inner, Perturbation p) : ForwardingBackend(inner), p_(std::move(p)) {}
    uint64_t ops_perturbed() const { return perturbed_; }

    void begin_step() override;

private:
    void on_op(const ops::OpCall& call) override;
    void perturb(const char* op, const ops::Tensor& out);

    Perturbation p_;
    int32_t mixers_in_step_ = 0;
    uint64_t perturbed_ = 0;
    std::vector<float> host_;
};

}  // namespace halo
