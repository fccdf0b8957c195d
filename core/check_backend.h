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

// Normalised error tolerances: max |plugin - reference| / rms(reference), per op. NaN/Inf must match exactly.
struct CheckTolerances {
    double embedding = 1e-6;  // a copy
    double add = 1e-6;        // one F32 addition
    double rms_norm = 1e-5;   // F32 sum of squares over the row
    double linear = 1e-3;     // F32 dot products of up to 9216 terms (the conformance suite's 1e-4 covers <= 2304)
    double mlp = 1e-3;        // two such products in a row
    double kda = 1e-3;        // F32 state over a 512-token prefill chunk (conformance: 1e-4 over 200 tokens)
    double mla = 1e-3;        // F32 softmax over the context (BF16/F16 caches: 2e-2 / 5e-3, one rounding step)
    double moe = 1e-3;        // rows whose routing is a near-tie (< 1e-5 apart) are compared only where both agree
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

    void embedding(const ops::EmbeddingParams& p) override;
    void rms_norm(const ops::RmsNormParams& p) override;
    void add(const ops::AddParams& p) override;
    void linear(const ops::LinearParams& p) override;
    void mlp(const ops::MlpParams& p) override;
    void kda(const ops::KdaParams& p, const ops::SeqBatch& batch) override;
    void mla(const ops::MlaParams& p, const ops::SeqBatch& batch) override;
    void moe(const ops::MoeParams& p) override;

private:
    // Host copy of a whole plugin tensor (kept until the op finishes), or of the given rows of its outer dimension.
    ops::Tensor snapshot(const ops::Tensor& t);
    ops::Tensor snapshot_rows(const ops::Tensor& t, const std::vector<int32_t>& rows);
    // Host copy of a weight tensor, cached until its buffer is written or released.
    ops::Tensor weight(const ops::Tensor& t);
    void forget(const ops::Buffer* b);
    // Compares a plugin tensor (read now) with the reference's host tensor; throws CheckError beyond tol.
    // skip_rows (one flag per row of the outermost dimensions) leaves rows out.
    void compare(const char* op, const char* name, const ops::Tensor& plugin_t, const ops::Tensor& ref_t, double tol,
                 const std::vector<bool>* skip_rows = nullptr);
    std::string where(const char* op) const;
    void begin_op(const char* op);
    void end_op();

    ops::Backend& plugin_;
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
    std::string op;      // "kda", "mla" (the mixer) or "mlp", "moe" (the FFN): ops that belong to one layer
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
    void kda(const ops::KdaParams& p, const ops::SeqBatch& b) override;
    void mla(const ops::MlaParams& p, const ops::SeqBatch& b) override;
    void mlp(const ops::MlpParams& p) override;
    void moe(const ops::MoeParams& p) override;

private:
    void perturb(const char* op, const ops::Tensor& out);

    Perturbation p_;
    int32_t mixers_in_step_ = 0;
    uint64_t perturbed_ = 0;
    std::vector<float> host_;
};

}  // namespace halo
