#include "core/op_timing_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <type_traits>
#include <vector>

namespace halo {

namespace {

using namespace ops;

// Bytes of a weight: its elements and scales, when it lives in a weights buffer (absent tensors count 0).
uint64_t weight_bytes(const Tensor& t) {
    return t.present() && t.buffer->use == MemoryUse::weights ? t.bytes() + t.scale_bytes() : 0;
}

// Bytes of one row of a weight (an embedding lookup), scales included.
uint64_t weight_row_bytes(const Tensor& t) {
    if (!t.present() || t.buffer->use != MemoryUse::weights) return 0;
    return t.row_stride() + (t.quantized() ? uint64_t(t.scale.cols(t.cols())) * dtype_size(t.scale.dtype) : 0);
}

// Bytes of one slot of a per-slot state tensor [slots, ...].
uint64_t slot_bytes(const Tensor& t) { return t.present() && t.shape[0] > 0 ? t.bytes() / uint64_t(t.shape[0]) : 0; }

OpBytes bytes_of(const EmbeddingParams& p) { return {uint64_t(p.ids.numel()) * weight_row_bytes(p.table), 0}; }
OpBytes bytes_of(const RmsNormParams& p) { return {weight_bytes(p.weight), 0}; }
OpBytes bytes_of(const AddParams&) { return {}; }
OpBytes bytes_of(const LinearParams& p) { return {weight_bytes(p.weight), 0}; }
OpBytes bytes_of(const MlpParams& p) { return {weight_bytes(p.gate) + weight_bytes(p.up) + weight_bytes(p.down), 0}; }

OpBytes bytes_of(const KdaParams& p, const SeqBatch& batch) {
    const KdaWeights& w = p.w;
    OpBytes b;
    for (const Tensor* t : {&w.q_proj, &w.k_proj, &w.v_proj, &w.q_conv, &w.k_conv, &w.v_conv, &w.f_a, &w.f_b,
                            &w.dt_bias, &w.a_log, &w.b_proj, &w.g_a, &w.g_b, &w.o_norm, &w.o_proj})
        b.weights += weight_bytes(*t);
    b.state = uint64_t(batch.n_runs) * 2 * (slot_bytes(p.state) + slot_bytes(p.conv_state));  // read and written
    return b;
}

OpBytes bytes_of(const MlaParams& p, const SeqBatch& batch) {
    const MlaWeights& w = p.w;
    OpBytes b;
    for (const Tensor* t : {&w.q_proj, &w.kv_a, &w.kv_a_norm, &w.kv_b, &w.o_proj}) b.weights += weight_bytes(*t);
    for (int32_t i = 0; i < batch.n_runs; ++i)  // the cache over the run's context, its own tokens included
        b.state += uint64_t(batch.runs[i].pos + batch.runs[i].n_tokens) * p.cache.row_stride();
    return b;
}

OpBytes bytes_of(const MoeParams& p) {
    OpBytes b;
    b.weights = weight_bytes(p.router) + weight_bytes(p.router_bias) + weight_bytes(p.shared_gate) +
                weight_bytes(p.shared_up) + weight_bytes(p.shared_down);
    if (p.n_experts > 0 && p.w1 && p.w2 && p.w3) {
        const int64_t experts = std::min<int64_t>(p.n_experts, p.x.rows() * p.top_k);  // distinct ones, at most
        b.weights += uint64_t(experts) * (weight_bytes(p.w1[0]) + weight_bytes(p.w2[0]) + weight_bytes(p.w3[0]));
    }
    return b;
}

}  // namespace

OpBytes op_read_bytes(const OpCall& call) {
    return visit_params(call, [&](const auto& p) {
        if constexpr (requires { bytes_of(p, *call.batch); })
            return bytes_of(p, *call.batch);
        else
            return bytes_of(p);
    });
}

void OpTimingBackend::on_op(const OpCall& call) {
    if (!enabled_) {
        run_op(inner_, call);
        return;
    }
    std::string op = call.traits().name;
    if (const auto* lp = std::get_if<const LinearParams*>(&call.params); lp && lm_head_width_ > 0 &&
                                                                        (*lp)->y.cols() == lm_head_width_)
        op = "lm_head";
    if (const auto* ep = std::get_if<const EmbeddingParams*>(&call.params);
        ep && (!(*ep)->table.present() || (*ep)->table.buffer->use != MemoryUse::weights))
        op = "row gather";
    const int64_t rows = call.output().rows();
    inner_.begin_step();
    const auto t0 = std::chrono::steady_clock::now();
    run_op(inner_, call);
    inner_.end_step();
    inner_.synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Entry& e = entries_[{op, rows == 1}];
    const OpBytes b = op_read_bytes(call);
    e.seconds += s;
    e.calls += 1;
    e.rows += rows;
    e.bytes.weights += b.weights;
    e.bytes.state += b.state;
}

OpTimingBackend::~OpTimingBackend() {
    if (report_at_exit_) report();
}

void OpTimingBackend::report() const {
    double total = 0;
    for (const auto& [k, e] : entries_) total += e.seconds;
    if (total == 0) return;
    std::vector<std::pair<double, Key>> order;
    for (const auto& [k, e] : entries_) order.push_back({e.seconds, k});
    std::sort(order.rbegin(), order.rend());
    std::fprintf(stderr, "op timing: %-24s %10s %8s %10s %6s\n", "op", "seconds", "calls", "ms/call", "share");
    for (const auto& [s, k] : order) {
        const Entry& e = entries_.at(k);
        const std::string name = k.op + (k.one_row ? " (1 row)" : " (many rows)");
        std::fprintf(stderr, "op timing: %-24s %10.3f %8lld %10.3f %5.1f%%\n", name.c_str(), e.seconds,
                     (long long)e.calls, 1e3 * e.seconds / double(e.calls), 100 * e.seconds / total);
    }
}

}  // namespace halo
