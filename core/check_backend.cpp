#include "core/check_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <stdexcept>

#include "ops/reference/reference.h"
#include "ops/reference/reference_backend.h"

namespace halo {

using namespace halo::ops;

namespace {

constexpr uint64_t kWeightCacheBytes = uint64_t(16) << 30;  // host copies of weights kept at most
constexpr double kRoutingTie = 1e-5;                          // selection margin below which routing may differ

std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

Tensor like(HostBuffer* b, const Tensor& t) {
    Tensor r = t;
    r.buffer = b;
    r.offset = 0;
    return r;
}

}  // namespace

double CheckTolerances::of(Op op) const {
    switch (op) {
#define HALO_OP_TOLERANCE_CASE(name, ...) \
    case Op::name: return name;
        HALO_OPS(HALO_OP_TOLERANCE_CASE)
#undef HALO_OP_TOLERANCE_CASE
    }
    throw std::logic_error("CheckTolerances::of: not an op");
}

CheckBackend::CheckBackend(Backend& plugin, CheckTolerances tol)
    : ForwardingBackend(plugin), plugin_(plugin), reference_(ref::make_reference_backend()), tol_(tol) {}

CheckBackend::~CheckBackend() = default;

void CheckBackend::forget(const Buffer* b) {
    for (auto it = weights_.begin(); it != weights_.end();)
        if (it->second.buffer == b) {
            weight_bytes_ -= it->second.data->bytes;
            it = weights_.erase(it);
        } else {
            ++it;
        }
}

void CheckBackend::release(Buffer* b) {
    forget(b);
    plugin_.release(b);
}

void CheckBackend::write(Buffer* d, uint64_t o, const void* s, uint64_t n) {
    if (!weights_.empty()) forget(d);
    plugin_.write(d, o, s, n);
}

void CheckBackend::zero(Buffer* d, uint64_t o, uint64_t n) {
    if (!weights_.empty()) forget(d);
    plugin_.zero(d, o, n);
}

void CheckBackend::copy(Buffer* d, uint64_t doff, const Buffer* s, uint64_t soff, uint64_t n) {
    if (!weights_.empty()) forget(d);
    plugin_.copy(d, doff, s, soff, n);
}

void CheckBackend::begin_step() {
    plugin_.begin_step();
    ++step_;
    in_step_ = true;
    op_in_step_ = 0;
    mixers_in_step_ = 0;
}

void CheckBackend::end_step() {
    plugin_.end_step();
    in_step_ = false;
}

std::string CheckBackend::where(const char* op) const {
    std::string s = "op '" + std::string(op) + "'";
    if (in_step_) {
        s += " (op " + std::to_string(op_in_step_) + " of step " + std::to_string(step_);
        // The core runs [norm, mixer, add, norm, ffn, add] per layer; a mixer starts the next layer.
        s += mixers_in_step_ ? ", layer " + std::to_string(mixers_in_step_ - 1) : ", before the first layer";
        s += ")";
    } else {
        s += " (outside a step)";
    }
    if (!label_.empty()) s += " [" + label_ + "]";
    return s;
}

void CheckBackend::begin_op(Op op) {
    temps_.clear();
    if (in_step_) ++op_in_step_;
    if (op_traits(op).role == OpRole::mixer) ++mixers_in_step_;
}

void CheckBackend::end_op() {
    temps_.clear();
    ++checked_;
}

Tensor CheckBackend::snapshot(const Tensor& t) {
    temps_.push_back(std::make_unique<HostBuffer>(t.buffer ? t.buffer->use : MemoryUse::scratch, 0, t.bytes()));
    if (t.bytes()) plugin_.read(t.buffer, t.offset, temps_.back()->host, t.bytes());
    return like(temps_.back().get(), t);
}

Tensor CheckBackend::snapshot_rows(const Tensor& t, const std::vector<int32_t>& rows) {
    const uint64_t row_bytes = t.shape[0] ? t.bytes() / uint64_t(t.shape[0]) : 0;
    temps_.push_back(std::make_unique<HostBuffer>(t.buffer->use, 0, std::max<uint64_t>(row_bytes * rows.size(), 1)));
    char* dst = static_cast<char*>(temps_.back()->host);
    for (size_t i = 0; i < rows.size(); ++i)
        plugin_.read(t.buffer, t.offset + uint64_t(rows[i]) * row_bytes, dst + i * row_bytes, row_bytes);
    Tensor r = like(temps_.back().get(), t);
    r.shape[0] = int64_t(rows.size());
    return r;
}

Tensor CheckBackend::host_output(const Tensor& t) {
    temps_.push_back(std::make_unique<HostBuffer>(MemoryUse::scratch, 0, t.bytes()));
    return like(temps_.back().get(), t);
}

Tensor CheckBackend::weight(const Tensor& t) {
    if (!t.present()) return t;
    const auto key = std::make_tuple(static_cast<const Buffer*>(t.buffer), t.offset, t.bytes());
    auto it = weights_.find(key);
    if (it == weights_.end()) {
        if (weight_bytes_ + t.bytes() > kWeightCacheBytes) {
            weights_.clear();
            weight_bytes_ = 0;
        }
        // A quantized weight's scales come along, right after its packed words.
        const uint64_t total = t.bytes() + t.scale_bytes();
        CachedWeight w{std::make_unique<HostBuffer>(MemoryUse::weights, 0, total), t.buffer};
        if (t.bytes()) plugin_.read(t.buffer, t.offset, w.data->host, t.bytes());
        if (t.scale_bytes())
            plugin_.read(t.scale.buffer, t.scale.offset, static_cast<char*>(w.data->host) + t.bytes(), t.scale_bytes());
        weight_bytes_ += total;
        it = weights_.emplace(key, std::move(w)).first;
    }
    Tensor host = like(it->second.data.get(), t);
    if (t.quantized()) {
        host.scale.buffer = it->second.data.get();
        host.scale.offset = t.bytes();
    }
    return host;
}

void CheckBackend::compare(const char* op, const char* name, const Tensor& got, const Tensor& want, double tol,
                           const std::vector<bool>* skip_rows) {
    const int64_t n = want.numel(), row = std::max<int64_t>(want.cols(), 1);
    double ss = 0, mx = 0;
    int64_t counted = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (skip_rows && (*skip_rows)[size_t(i / row)]) continue;
        const double a = load_as_f32(got.host(), got.dtype, size_t(i)), b = load_as_f32(want.host(), want.dtype, size_t(i));
        if (std::isnan(a) != std::isnan(b) || ((std::isinf(a) || std::isinf(b)) && a != b))
            throw CheckError("check mode: " + where(op) + " diverges from the reference: output '" + name + "' element " +
                             std::to_string(i) + " is " + fmt(a) + " on the plugin but " + fmt(b) +
                             " in the reference (NaN/Inf must match)");
        if (!std::isfinite(b)) continue;
        ss += b * b;
        mx = std::max(mx, std::fabs(a - b));
        ++counted;
    }
    const double rms = counted ? std::sqrt(ss / double(counted)) : 0.0;
    const double err = mx / std::max(rms, 1e-30);
    double& worst = worst_[op];
    worst = std::max(worst, counted ? err : 0.0);
    if (counted && err > tol)
        throw CheckError("check mode: " + where(op) + " diverges from the reference: output '" + name +
                         "' has normalised error " + fmt(err) + " (max |plugin - reference| " + fmt(mx) +
                         ", reference rms " + fmt(rms) + ", tolerance " + fmt(tol) +
                         "); the plugin computes this op differently from ops/reference");
}

void CheckBackend::on_op(const OpCall& call) {
    visit_params(call, [&](const auto& p) { check(p, call.batch); });
}

// ---- ops that name their tensors ----------------------------------------------------------------------------------

template <class Params>
void CheckBackend::check(const Params& p, const SeqBatch* batch) {
    constexpr Op op = op_of<Params>;
    begin_op(op);
    // The reference's params: p with every tensor replaced by a host copy, taken before the plugin runs (an output
    // may alias an input).
    Params r = p;
    struct Output {
        const char* name;
        Tensor plugin;     // in the plugin's memory, read after it ran
        const Tensor* ref;  // in r
    };
    std::vector<Output> outputs;
    r.for_each_tensor([&](const char* name, Tensor& t, TensorRole role) {
        if (!t.present()) return;
        const Tensor plugin_t = t;
        switch (role) {
        case TensorRole::input: t = snapshot(t); break;
        // Weights are cached on the host; anything else in a weight's place is copied like an input.
        case TensorRole::weight:
            t = t.buffer->use == MemoryUse::weights || t.quantized() ? weight(t) : snapshot(t);
            break;
        case TensorRole::output: t = host_output(t); break;
        case TensorRole::inout: t = snapshot(t); break;
        }
        if (role == TensorRole::output || role == TensorRole::inout) outputs.push_back({name, plugin_t, &t});
    });
    run_op(plugin_, p, batch);
    run_op(*reference_, r, batch);
    for (const Output& o : outputs) compare(op_name(op), o.name, snapshot(o.plugin), *o.ref, tol_.of(op));
    end_op();
}

// ---- KDA and MLA: only the batch's state slots and cache pages travel ----------------------------------------------

void CheckBackend::check(const KdaParams& p, const SeqBatch* batch_ptr) {
    const SeqBatch& batch = *batch_ptr;
    begin_op(Op::kda);
    std::vector<int32_t> slots;
    std::vector<SeqRun> runs(batch.runs, batch.runs + batch.n_runs);
    for (SeqRun& run : runs) {
        auto it = std::find(slots.begin(), slots.end(), run.slot);
        if (it == slots.end()) it = slots.insert(slots.end(), run.slot);
        run.slot = int32_t(it - slots.begin());
    }
    KdaParams r = p;
    const KdaWeights& w = p.w;
    r.w = {weight(w.q_proj), weight(w.k_proj), weight(w.v_proj), weight(w.q_conv), weight(w.k_conv), weight(w.v_conv),
           weight(w.f_a),    weight(w.f_b),    weight(w.dt_bias), weight(w.a_log), weight(w.b_proj), weight(w.g_a),
           weight(w.g_b),    weight(w.o_norm), weight(w.o_proj)};
    r.x = snapshot(p.x);
    r.state = snapshot_rows(p.state, slots);
    r.conv_state = snapshot_rows(p.conv_state, slots);
    temps_.push_back(std::make_unique<HostBuffer>(MemoryUse::scratch, 0, p.out.bytes()));
    r.out = like(temps_.back().get(), p.out);
    plugin_.kda(p, batch);
    ref::kda(r, SeqBatch{runs.data(), batch.n_runs, batch.n_rows});
    compare("kda", "out", snapshot(p.out), r.out, tol_.kda);
    compare("kda", "state", snapshot_rows(p.state, slots), r.state, tol_.kda);
    compare("kda", "conv_state", snapshot_rows(p.conv_state, slots), r.conv_state, tol_.kda);
    end_op();
}

void CheckBackend::check(const MlaParams& p, const SeqBatch* batch_ptr) {
    const SeqBatch& batch = *batch_ptr;
    begin_op(Op::mla);
    std::vector<int32_t> pages;
    std::vector<SeqRun> runs(batch.runs, batch.runs + batch.n_runs);
    std::vector<std::vector<int32_t>> tables(runs.size());
    for (size_t i = 0; i < runs.size(); ++i) {
        const SeqRun& run = runs[i];
        const int64_t used = std::min<int64_t>(run.n_pages, (int64_t(run.pos) + run.n_tokens + p.page_size - 1) / p.page_size);
        for (int64_t k = 0; k < used; ++k) {
            auto it = std::find(pages.begin(), pages.end(), run.pages[k]);
            if (it == pages.end()) it = pages.insert(pages.end(), run.pages[k]);
            tables[i].push_back(int32_t(it - pages.begin()));
        }
        runs[i].pages = tables[i].data();
        runs[i].n_pages = int32_t(tables[i].size());
    }
    MlaParams r = p;
    r.w = {weight(p.w.q_proj), weight(p.w.kv_a), weight(p.w.kv_a_norm), weight(p.w.kv_b), weight(p.w.o_proj)};
    r.x = snapshot(p.x);
    r.cache = snapshot_rows(p.cache, pages);
    temps_.push_back(std::make_unique<HostBuffer>(MemoryUse::scratch, 0, p.out.bytes()));
    r.out = like(temps_.back().get(), p.out);
    plugin_.mla(p, batch);
    ref::mla(r, SeqBatch{runs.data(), batch.n_runs, batch.n_rows});
    const double tol = p.cache.dtype == DType::bf16 ? 2e-2 : p.cache.dtype == DType::f16 ? 5e-3 : tol_.mla;
    compare("mla", "out", snapshot(p.out), r.out, tol);
    compare("mla", "cache", snapshot_rows(p.cache, pages), r.cache, tol);
    end_op();
}

// ---- MoE: the reference loads only the experts it routes to ---------------------------------------------------------

void CheckBackend::check(const MoeParams& p, const SeqBatch*) {
    begin_op(Op::moe);
    const int64_t T = p.x.rows(), D = p.x.cols(), E = p.n_experts, k = p.top_k;
    MoeParams r = p;
    r.x = snapshot(p.x);
    r.router = weight(p.router);
    r.router_bias = weight(p.router_bias);
    r.shared_gate = weight(p.shared_gate);
    r.shared_up = weight(p.shared_up);
    r.shared_down = weight(p.shared_down);

    // The reference's selection, in double, with the margin between the k-th and (k+1)-th selection score.
    std::vector<std::vector<int32_t>> ref_ids(static_cast<size_t>(T));
    std::vector<double> margin(static_cast<size_t>(T), 1e9);
    std::set<int32_t> needed;
    for (int64_t t = 0; t < T; ++t) {
        std::vector<double> sel(static_cast<size_t>(E));
        for (int64_t e = 0; e < E; ++e) {
            double acc = 0;
            for (int64_t d = 0; d < D; ++d)
                acc += double(load_as_f32(r.router.host(), r.router.dtype, size_t(e * D + d))) *
                       double(r.x.host_as<float>()[t * D + d]);
            sel[size_t(e)] = 1.0 / (1.0 + std::exp(-acc)) +
                             (r.router_bias.present() ? load_as_f32(r.router_bias.host(), r.router_bias.dtype, size_t(e)) : 0.0);
        }
        std::vector<int32_t> order;
        const int G = std::max(1, p.n_groups);
        const int64_t per = E / G;
        std::vector<bool> allowed(static_cast<size_t>(E), G == 1);
        if (G > 1) {
            std::vector<std::pair<double, int>> gs;
            for (int g = 0; g < G; ++g) {
                std::vector<double> v(sel.begin() + g * per, sel.begin() + (g + 1) * per);
                std::sort(v.begin(), v.end(), std::greater<double>());
                gs.push_back({v[0] + (per > 1 ? v[1] : 0.0), g});
            }
            std::stable_sort(gs.begin(), gs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
            for (int i = 0; i < std::max(1, p.topk_groups) && i < G; ++i)
                for (int64_t e = 0; e < per; ++e) allowed[size_t(gs[size_t(i)].second * per + e)] = true;
        }
        for (int64_t e = 0; e < E; ++e)
            if (allowed[size_t(e)]) order.push_back(int32_t(e));
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return sel[size_t(a)] > sel[size_t(b)]; });
        for (int64_t i = 0; i < k && i < int64_t(order.size()); ++i) {
            ref_ids[size_t(t)].push_back(order[size_t(i)]);
            needed.insert(order[size_t(i)]);
        }
        if (int64_t(order.size()) > k) margin[size_t(t)] = sel[size_t(order[size_t(k - 1)])] - sel[size_t(order[size_t(k)])];
    }
    std::vector<Tensor> w1(static_cast<size_t>(E)), w3(static_cast<size_t>(E)), w2(static_cast<size_t>(E));
    for (int32_t e : needed) {
        w1[size_t(e)] = weight(p.w1[e]);
        w3[size_t(e)] = weight(p.w3[e]);
        w2[size_t(e)] = weight(p.w2[e]);
    }
    r.w1 = w1.data();
    r.w3 = w3.data();
    r.w2 = w2.data();

    // The plugin's choice: its own topk_ids output, or a temporary one.
    MoeParams pp = p;
    Buffer* tmp = nullptr;
    if (!p.topk_ids.present()) {
        const DeviceInfo& dev = plugin_.device();
        int32_t placement = 0;
        for (size_t i = 0; i < dev.placements.size(); ++i)
            if (dev.placements[i].name == dev.default_placement[int(MemoryUse::scratch)]) placement = int32_t(i);
        tmp = plugin_.allocate(MemoryUse::scratch, placement, uint64_t(T * k) * 4);
        pp.topk_ids = make_tensor(tmp, 0, DType::i32, {T, k});
    }
    temps_.push_back(std::make_unique<HostBuffer>(MemoryUse::scratch, 0, p.out.bytes()));
    r.out = like(temps_.back().get(), p.out);
    if (p.topk_ids.present()) {
        temps_.push_back(std::make_unique<HostBuffer>(MemoryUse::scratch, 0, p.topk_ids.bytes()));
        r.topk_ids = like(temps_.back().get(), p.topk_ids);
    }
    if (p.topk_weights.present()) {
        temps_.push_back(std::make_unique<HostBuffer>(MemoryUse::scratch, 0, p.topk_weights.bytes()));
        r.topk_weights = like(temps_.back().get(), p.topk_weights);
    }
    try {
        plugin_.moe(pp);
        const Tensor plugin_ids = snapshot(pp.topk_ids);
        if (tmp) plugin_.release(tmp);
        tmp = nullptr;
        // Rows where a near-tie let the plugin route differently are left out of the comparison.
        std::vector<bool> skip(static_cast<size_t>(T), false);
        for (int64_t t = 0; t < T; ++t) {
            bool same = true;
            for (int64_t i = 0; i < k && i < int64_t(ref_ids[size_t(t)].size()); ++i)
                same = same && plugin_ids.host_as<int32_t>()[t * k + i] == ref_ids[size_t(t)][size_t(i)];
            if (!same && margin[size_t(t)] >= kRoutingTie)
                throw CheckError("check mode: " + where("moe") + " diverges from the reference: row " + std::to_string(t) +
                                 " is routed to different experts although the selection margin is " +
                                 fmt(margin[size_t(t)]) + " (the router or the selection is wrong)");
            skip[size_t(t)] = !same;
        }
        ref::moe(r);
        compare("moe", "out", snapshot(p.out), r.out, tol_.moe, &skip);
        if (p.topk_weights.present()) compare("moe", "topk_weights", snapshot(p.topk_weights), r.topk_weights, tol_.moe, &skip);
    } catch (...) {
        if (tmp) plugin_.release(tmp);
        throw;
    }
    end_op();
}

// ---- PerturbBackend: a known error, to test the tools that look for errors -------------------------------------

namespace {

// An op that belongs to one layer: a mixer or an FFN.
bool layer_op(const OpTraits& t) { return t.role == OpRole::mixer || t.role == OpRole::ffn; }

}  // namespace

Perturbation parse_perturbation(const std::string& text, const std::string& flag) {
    std::vector<std::string> layer_ops;
    for (const OpTraits& t : kOpTraits)
        if (layer_op(t)) layer_ops.push_back(t.name);
    std::string op_list;
    for (size_t i = 0; i < layer_ops.size(); ++i)
        op_list += (i == 0 ? "" : i + 1 == layer_ops.size() ? " or " : ", ") + layer_ops[i];
    const std::string usage = " (the form is OP:LAYER:AMOUNT, e.g. kda:2:1e-2 or moe:all:0.05: OP is " + op_list +
                              ", LAYER a 0-based layer or 'all', AMOUNT the relative change of the op's output)";
    std::vector<std::string> parts;
    for (size_t at = 0;;) {
        const size_t colon = text.find(':', at);
        parts.push_back(text.substr(at, colon == std::string::npos ? std::string::npos : colon - at));
        if (colon == std::string::npos) break;
        at = colon + 1;
    }
    if (parts.size() != 3) throw std::runtime_error(flag + ": '" + text + "' is not a perturbation" + usage);
    Perturbation p;
    p.op = parts[0];
    if (std::find(layer_ops.begin(), layer_ops.end(), p.op) == layer_ops.end())
        throw std::runtime_error(flag + ": '" + p.op + "' is not an op that belongs to one layer" + usage);
    if (parts[1] != "all") {
        const std::string& l = parts[1];
        if (l.empty() || l.size() > 6 || l.find_first_not_of("0123456789") != std::string::npos)
            throw std::runtime_error(flag + ": '" + l + "' is not a layer number" + usage);
        p.layer = int32_t(std::stoi(l));
    }
    const std::string& a = parts[2];
    char* end = nullptr;
    p.amount = a.empty() ? 0.0 : std::strtod(a.c_str(), &end);
    if (a.empty() || end != a.c_str() + a.size() || !std::isfinite(p.amount) || p.amount == 0.0)
        throw std::runtime_error(flag + ": '" + a + "' is not a non-zero finite amount" + usage);
    return p;
}

void PerturbBackend::begin_step() {
    inner_.begin_step();
    mixers_in_step_ = 0;
}

void PerturbBackend::perturb(const char* op, const Tensor& out) {
    if (p_.op != op || (p_.layer >= 0 && p_.layer != mixers_in_step_ - 1)) return;
    if (out.dtype != DType::f32)
        throw Error(std::string("perturbation: the output of '") + op + "' is not F32; only F32 outputs can be perturbed");
    host_.resize(size_t(out.numel()));
    inner_.read(out.buffer, out.offset, host_.data(), out.bytes());
    const float scale = float(1.0 + p_.amount);
    for (float& v : host_) v *= scale;
    inner_.write(out.buffer, out.offset, host_.data(), out.bytes());
    ++perturbed_;
}

void PerturbBackend::on_op(const OpCall& call) {
    const OpTraits& t = call.traits();
    if (t.role == OpRole::mixer) ++mixers_in_step_;
    run_op(inner_, call);
    if (layer_op(t)) perturb(t.name, call.output());
}

}  // namespace halo
