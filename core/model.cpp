#include "core/model.h"

#include <algorithm>
#include <set>
#include <cmath>
#include <cstring>
#include <map>

namespace halo {

using namespace halo::ops;

namespace {

constexpr uint64_t kAlign = 256;
uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

std::string shape_text(const std::vector<int64_t>& s) {
    std::string t = "[";
    for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + "]";
}

DType dtype_of(const std::string& name) {
    if (name == "BF16") return DType::bf16;
    if (name == "F16") return DType::f16;
    return DType::f32;
}

std::string gb(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f GB", double(bytes) / 1e9);
    return buf;
}

}  // namespace

DType parse_cache_dtype(const std::string& name) {
    if (name == "f32" || name == "F32") return DType::f32;
    if (name == "f16" || name == "F16") return DType::f16;
    if (name == "bf16" || name == "BF16") return DType::bf16;
    throw std::runtime_error("cache dtype '" + name + "' is not f32, f16 or bf16");
}

std::string MemoryPlan::describe(const DeviceInfo& device) const {
    std::string s;
    for (int u = 0; u < kMemoryUseCount; ++u) {
        const PlacementInfo& p = device.placements[size_t(placement[u])];
        s += std::string(u ? ", " : "") + memory_use_name(MemoryUse(u)) + " " + gb(bytes[u]) + " (" + p.name +
             (u == 0 && weights_zero_copy ? ", in place" : "") + ")";
    }
    if (plugin_bytes) s += ", plugin temporaries " + gb(plugin_bytes);
    return s;
}

namespace {

const ModelOptions& checked(const ModelOptions& o) {
    if (o.max_step_rows < 1 || o.max_logit_rows < 1 || o.max_sequences < 1 || o.max_context < 1 || o.page_size < 1 ||
        o.kda_chunk < 1)
        throw std::runtime_error("model options: step rows, logit rows, sequences, context, page size and KDA chunk "
                                 "must all be at least 1");
    if (o.max_step_rows > (1 << 20) || o.max_context > (int64_t(1) << 31) ||
        int64_t(o.max_sequences) * ((o.max_context + o.page_size - 1) / o.page_size) > INT32_MAX)
        throw std::runtime_error("model options: the step size, context or number of sequences is too large");
    return o;
}

int32_t pages_for(const ModelOptions& o) {
    return int32_t(int64_t(o.max_sequences) * ((o.max_context + o.page_size - 1) / o.page_size));
}

}  // namespace

Model::OwnedBuffers::~OwnedBuffers() {
    for (auto it = list.rbegin(); it != list.rend(); ++it) backend.release(*it);
}

void Model::OwnedBuffers::release(Buffer* b) {
    list.erase(std::remove(list.begin(), list.end(), b), list.end());
    backend.release(b);
}

Model::Model(Backend& backend, const std::filesystem::path& dir, const ModelOptions& options)
    : backend_(backend), config_(load_model_config(dir)), options_(checked(options)),
      pool_(options.max_sequences, pages_for(options), options.page_size) {
    checkpoint_ = Checkpoint::open(dir);
    check_checkpoint(dir);
    plan_memory();
    place_weights();
    allocate_state();
    if (options_.warm_up) warm_up();
}

void Model::warm_up() {
    // The largest step the engine will run: max_step_rows rows of one sequence, logits for as many rows as one
    // group holds. Its state slot is cleared by the next begin_sequence; its cache pages are written before read.
    Sequence seq;
    begin_sequence(seq);
    const std::vector<int32_t> ids(size_t(options_.max_step_rows), 0);
    std::vector<float> logits;
    StepItem item{&seq, ids, options_.max_step_rows <= options_.max_logit_rows ? LogitRows::all : LogitRows::last};
    step(std::span<const StepItem>(&item, 1), logits);
    end_sequence(seq);
    plan_.plugin_bytes = backend_.internal_bytes();
}

Model::~Model() = default;

void Model::check_checkpoint(const std::filesystem::path& dir) {
    // Every tensor the config implies must be present with the right shape and a supported dtype. Nothing is
    // allocated until all of them pass.
    std::set<std::string> used;
    for_each_tensor(config_, weights_, [&](const TensorSpec& spec, Tensor& slot) {
        used.insert(spec.name);
        const TensorRecord* r = checkpoint_->find(spec.name);
        if (!r)
            throw ModelFileError("model directory " + dir.string() + ": the checkpoint has no tensor '" + spec.name +
                                 "' (shape " + shape_text(spec.shape) + "), which config.json implies");
        if (r->shape != spec.shape)
            throw ModelFileError(r->file + ": tensor '" + spec.name + "' has shape " + shape_text(r->shape) +
                                 " but config.json implies " + shape_text(spec.shape));
        if (r->dtype != "BF16" && r->dtype != "F16" && r->dtype != "F32")
            throw ModelFileError(r->file + ": tensor '" + spec.name + "' has dtype " + r->dtype +
                                 "; supported weight dtypes are BF16, F16 and F32");
        slot.dtype = dtype_of(r->dtype);
        slot.ndim = int32_t(spec.shape.size());
        for (size_t i = 0; i < spec.shape.size(); ++i) slot.shape[i] = spec.shape[i];
    });
    if (config_.tie_word_embeddings) weights_.lm_head = weights_.embed;
    for (const auto& [name, record] : checkpoint_->tensors())
        if (!used.count(name)) unused_tensors_.push_back(name);
}

int32_t Model::placement_index(MemoryUse use) const {
    const DeviceInfo& dev = backend_.device();
    std::string name = options_.placement[int(use)];
    if (name.empty()) name = dev.default_placement[int(use)];
    for (size_t i = 0; i < dev.placements.size(); ++i)
        if (dev.placements[i].name == name) return int32_t(i);
    std::string names;
    for (const auto& p : dev.placements) names += (names.empty() ? "" : ", ") + p.name;
    throw std::runtime_error(std::string("placement '") + name + "' for " + memory_use_name(use) + " does not exist on " +
                             dev.name + " (it has: " + names + ")");
}

void Model::plan_memory() {
    const DeviceInfo& dev = backend_.device();
    for (int u = 0; u < kMemoryUseCount; ++u) plan_.placement[u] = placement_index(MemoryUse(u));
    for_each_tensor(config_, weights_, [&](const TensorSpec&, Tensor& t) { plan_.bytes[0] += align_up(t.bytes()); });
    plan_.weights_zero_copy = dev.placements[size_t(plan_.placement[0])].imports_host;
    // Used in place, every tensor must start at a multiple of its element size (GPU plugins address elements, not
    // bytes). A valid file whose header is not padded can break that; its weights are then copied, aligned.
    if (plan_.weights_zero_copy)
        for_each_tensor(config_, weights_, [&](const TensorSpec& spec, Tensor& t) {
            const TensorRecord* r = checkpoint_->find(spec.name);
            if (r && reinterpret_cast<uintptr_t>(r->data) % dtype_size(t.dtype) != 0) plan_.weights_zero_copy = false;
        });

    const ModelConfig& c = config_;
    const int64_t S = options_.max_sequences;
    const int64_t H = c.kda_num_heads, K = c.kda_head_dim, W = c.short_conv_kernel_size;
    kda_state_slot_bytes_ = uint64_t(H * K * K) * 4;
    kda_conv_slot_bytes_ = uint64_t(3 * (W - 1) * H * K) * 4;
    plan_.bytes[int(MemoryUse::state)] =
        uint64_t(c.count(MixerKind::kda)) * uint64_t(S) * (kda_state_slot_bytes_ + kda_conv_slot_bytes_);
    const int64_t width = c.kv_lora_rank + c.qk_rope_head_dim;
    const int64_t pages = S * ((options_.max_context + options_.page_size - 1) / options_.page_size);
    plan_.bytes[int(MemoryUse::cache)] =
        uint64_t(c.count(MixerKind::mla)) * align_up(uint64_t(pages * options_.page_size * width) * dtype_size(options_.cache_dtype));
    const int64_t R = options_.max_step_rows, L = options_.max_logit_rows, D = c.hidden_size;
    off_ids_ = 0;
    off_rows_ = align_up(uint64_t(R) * 4);
    off_x_ = off_rows_ + align_up(uint64_t(L) * 4);
    off_a_ = off_x_ + align_up(uint64_t(R * D) * 4);
    off_t_ = off_a_ + align_up(uint64_t(R * D) * 4);
    off_g_ = off_t_ + align_up(uint64_t(R * D) * 4);
    off_logits_ = off_g_ + align_up(uint64_t(L * D) * 4);
    plan_.bytes[int(MemoryUse::scratch)] = off_logits_ + align_up(uint64_t(L * c.vocab_size) * 4);

    check_plan_fits();
}

void Model::check_plan_fits() const {
    // Refuse to start when a placement cannot hold what it is asked for.
    const DeviceInfo& dev = backend_.device();
    std::map<int32_t, uint64_t> need;
    for (int u = 0; u < kMemoryUseCount; ++u)
        if (!(u == 0 && plan_.weights_zero_copy)) need[plan_.placement[u]] += plan_.bytes[u];
    for (const auto& [p, bytes] : need) {
        const PlacementInfo& pi = dev.placements[size_t(p)];
        const uint64_t limit = pi.budget_bytes ? pi.budget_bytes : pi.capacity_bytes;
        if (limit && bytes > limit)
            throw OutOfMemory("the memory plan does not fit: placement '" + pi.name + "' on " + dev.name + " needs " +
                              gb(bytes) + " but " + gb(limit) + " is available (" + plan_.describe(dev) +
                              "); lower the context length or the number of sequences, or choose other placements");
    }
}

void Model::place_weights() {
    const int32_t placement = plan_.placement[int(MemoryUse::weights)];
    std::map<const uint8_t*, std::pair<Buffer*, const uint8_t*>> imported;  // mapping base -> buffer
    if (plan_.weights_zero_copy) {
        std::vector<Buffer*> done;
        for (const auto& f : checkpoint_->files()) {
            Buffer* b = backend_.import_host(MemoryUse::weights, placement, const_cast<uint8_t*>(f->data()), f->size());
            if (!b) {
                // The placement could not take this mapping after all: copy every weight instead, and check that the
                // copies fit, which the plan skipped for in-place weights.
                for (Buffer* d : done) buffers_.release(d);
                plan_.weights_zero_copy = false;
                imported.clear();
                check_plan_fits();
                break;
            }
            done.push_back(buffers_.add(b));
            imported[f->data()] = {b, f->data()};
        }
    }
    if (plan_.weights_zero_copy) {
        for_each_tensor(config_, weights_, [&](const TensorSpec& spec, Tensor& t) {
            const TensorRecord* r = checkpoint_->find(spec.name);
            for (const auto& f : checkpoint_->files())
                if (r->data >= f->data() && r->data < f->data() + f->size()) {
                    t.buffer = imported[f->data()].first;
                    t.offset = uint64_t(r->data - f->data());
                }
        });
    } else {
        // One buffer per layer (and per global tensor), tensors packed at 256-byte offsets.
        std::map<std::string, uint64_t> group_bytes;
        auto group_of = [](const TensorSpec& s) { return s.layer >= 0 ? "layer" + std::to_string(s.layer) : s.name; };
        for_each_tensor(config_, weights_, [&](const TensorSpec& s, Tensor& t) { group_bytes[group_of(s)] += align_up(t.bytes()); });
        std::map<std::string, std::pair<Buffer*, uint64_t>> groups;
        for (const auto& [g, bytes] : group_bytes) {
            Buffer* b = buffers_.add(backend_.allocate(MemoryUse::weights, placement, bytes));
            groups[g] = {b, 0};
        }
        uint64_t done = 0, total = 0;
        for_each_tensor(config_, weights_, [&](const TensorSpec&, Tensor& t) { total += t.bytes(); });
        for_each_tensor(config_, weights_, [&](const TensorSpec& s, Tensor& t) {
            auto& [b, used] = groups[group_of(s)];
            backend_.write(b, used, checkpoint_->find(s.name)->data, t.bytes());
            done += t.bytes();
            if (options_.on_load_progress) options_.on_load_progress(done, total);
            t.buffer = b;
            t.offset = used;
            used += align_up(t.bytes());
        });
        checkpoint_.reset();  // copied: the mappings are no longer needed
    }
    if (config_.tie_word_embeddings) weights_.lm_head = weights_.embed;
}

void Model::allocate_state() {
    const ModelConfig& c = config_;
    const int64_t S = options_.max_sequences;
    const int64_t H = c.kda_num_heads, K = c.kda_head_dim, W = c.short_conv_kernel_size;
    const int32_t n_kda = c.count(MixerKind::kda), n_mla = c.count(MixerKind::mla);
    // One buffer per tensor, so no tensor ever spans a GPU plugin's allocation or binding pieces.
    const int32_t placement = plan_.placement[int(MemoryUse::state)];
    for (int32_t l = 0; l < n_kda; ++l) {
        Buffer* state = buffers_.add(backend_.allocate(MemoryUse::state, placement, uint64_t(S) * kda_state_slot_bytes_));
        Buffer* conv = buffers_.add(backend_.allocate(MemoryUse::state, placement, uint64_t(S) * kda_conv_slot_bytes_));
        backend_.zero(state, 0, state->bytes);
        backend_.zero(conv, 0, conv->bytes);
        kda_state_.push_back(make_tensor(state, 0, DType::f32, {S, H, K, K}));
        kda_conv_.push_back(make_tensor(conv, 0, DType::f32, {S, 3, W - 1, H * K}));
    }
    const int64_t width = c.kv_lora_rank + c.qk_rope_head_dim;
    const int64_t pages = S * ((options_.max_context + options_.page_size - 1) / options_.page_size);
    for (int32_t l = 0; l < n_mla; ++l) {
        const uint64_t bytes = uint64_t(pages * options_.page_size * width) * dtype_size(options_.cache_dtype);
        Buffer* b = buffers_.add(backend_.allocate(MemoryUse::cache, plan_.placement[int(MemoryUse::cache)], bytes));
        mla_cache_.push_back(make_tensor(b, 0, options_.cache_dtype, {pages, options_.page_size, width}));
    }
    scratch_buffer_ = buffers_.add(backend_.allocate(MemoryUse::scratch, plan_.placement[int(MemoryUse::scratch)],
                                                     plan_.bytes[int(MemoryUse::scratch)]));
}

uint64_t Model::decode_weight_bytes() const {
    uint64_t total = 0;
    ModelWeights w = weights_;
    for_each_tensor(config_, w, [&](const TensorSpec& s, Tensor& t) {
        const bool expert = s.name.find(".experts.") != std::string::npos;
        if (s.name == "model.embed_tokens.weight")
            total += uint64_t(t.cols()) * dtype_size(t.dtype);
        else if (!expert)
            total += t.bytes();
    });
    for (const LayerWeights& L : weights_.layers)
        if (!L.moe.w1.empty())
            total += uint64_t(config_.num_experts_per_token) *
                     (L.moe.w1[0].bytes() + L.moe.w2[0].bytes() + L.moe.w3[0].bytes());
    if (config_.tie_word_embeddings) total += weights_.embed.bytes();
    return total;
}

uint64_t Model::decode_state_bytes(int64_t context) const {
    const ModelConfig& c = config_;
    const uint64_t kda = uint64_t(c.count(MixerKind::kda)) * 2 * (kda_state_slot_bytes_ + kda_conv_slot_bytes_);
    const uint64_t mla = uint64_t(c.count(MixerKind::mla)) * uint64_t(context) *
                         uint64_t(c.kv_lora_rank + c.qk_rope_head_dim) * dtype_size(options_.cache_dtype);
    return kda + mla;
}

Tensor Model::scratch(uint64_t offset, DType dtype, std::initializer_list<int64_t> dims) const {
    return make_tensor(scratch_buffer_, offset, dtype, dims);
}

void Model::begin_sequence(Sequence& seq) {
    pool_.attach(seq);
    seq.n_tokens = 0;
    for (size_t l = 0; l < kda_state_.size(); ++l) {
        backend_.zero(kda_state_[l].buffer, uint64_t(seq.slot) * kda_state_slot_bytes_, kda_state_slot_bytes_);
        backend_.zero(kda_conv_[l].buffer, uint64_t(seq.slot) * kda_conv_slot_bytes_, kda_conv_slot_bytes_);
    }
}

void Model::step(std::span<const StepItem> items, std::vector<float>& logits) {
    submit_step(items);
    collect_step(logits);
}

void Model::submit_step(std::span<const StepItem> items) {
    if (step_pending_) throw std::logic_error("submit_step: the previous step was not collected");
    const ModelConfig& c = config_;
    const int64_t D = c.hidden_size, V = c.vocab_size;
    int64_t R = 0;
    for (const StepItem& it : items) R += int64_t(it.tokens.size());
    if (R == 0) {
        pending_logit_rows_.clear();
        pending_group_ = 0;
        step_pending_ = true;  // an empty step: nothing to read
        return;
    }
    if (R > options_.max_step_rows)
        throw std::runtime_error("a step of " + std::to_string(R) + " tokens exceeds the step size of " +
                                 std::to_string(options_.max_step_rows));

    // Sequences' runs, token ids and the rows that need logits.
    std::vector<SeqRun> runs;
    std::vector<int32_t> ids, logit_rows;
    for (const StepItem& it : items) {
        if (it.tokens.empty()) continue;
        if (it.seq->slot < 0) throw std::runtime_error("step: sequence was not started with begin_sequence");
        for (int32_t id : it.tokens)
            if (id < 0 || id >= V)
                throw std::runtime_error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                         std::to_string(V - 1) + ")");
        pool_.reserve(*it.seq, it.seq->n_tokens + int64_t(it.tokens.size()));
        SeqRun run;
        run.first_row = int32_t(ids.size());
        run.n_tokens = int32_t(it.tokens.size());
        run.slot = it.seq->slot;
        run.pos = it.seq->n_tokens;
        run.pages = it.seq->pages.data();
        run.n_pages = int32_t(it.seq->pages.size());
        if (it.logits != LogitRows::none)
            for (int32_t r = it.logits == LogitRows::all ? 0 : run.n_tokens - 1; r < run.n_tokens; ++r)
                logit_rows.push_back(run.first_row + r);
        ids.insert(ids.end(), it.tokens.begin(), it.tokens.end());
        runs.push_back(run);
    }
    const SeqBatch batch{runs.data(), int32_t(runs.size()), int32_t(R)};
    pending_rows_ = R;
    const Tensor x = scratch(off_x_, DType::f32, {R, D}), a = scratch(off_a_, DType::f32, {R, D}),
                 t = scratch(off_t_, DType::f32, {R, D});

    backend_.begin_step();
    backend_.write(scratch_buffer_, off_ids_, ids.data(), uint64_t(R) * 4);
    backend_.embedding({weights_.embed, scratch(off_ids_, DType::i32, {R}), x});
    int32_t kda_i = 0, mla_i = 0;
    for (int32_t i = 0; i < c.num_hidden_layers; ++i) {
        const LayerWeights& L = weights_.layers[size_t(i)];
        backend_.rms_norm({x, L.input_norm, a, float(c.rms_norm_eps)});
        if (c.mixer[size_t(i)] == MixerKind::kda) {
            KdaParams p;
            p.w = L.kda;
            p.n_heads = c.kda_num_heads;
            p.head_dim = c.kda_head_dim;
            p.conv_width = c.short_conv_kernel_size;
            p.norm_eps = float(c.rms_norm_eps);
            p.form = options_.kda_form;
            p.chunk_size = options_.kda_chunk;
            p.x = a;
            p.out = t;
            p.state = kda_state_[size_t(kda_i)];
            p.conv_state = kda_conv_[size_t(kda_i)];
            ++kda_i;
            backend_.kda(p, batch);
        } else {
            MlaParams p;
            p.w = L.mla;
            p.n_heads = c.num_attention_heads;
            p.qk_nope_dim = c.qk_nope_head_dim;
            p.qk_rope_dim = c.qk_rope_head_dim;
            p.v_dim = c.v_head_dim;
            p.kv_lora_rank = c.kv_lora_rank;
            p.kv_norm_eps = float(options_.kv_norm_eps < 0 ? c.rms_norm_eps : options_.kv_norm_eps);
            p.softmax_scale = float(1.0 / std::sqrt(double(c.qk_nope_head_dim + c.qk_rope_head_dim)));
            p.form = options_.mla_form;
            p.x = a;
            p.out = t;
            p.cache = mla_cache_[size_t(mla_i)];
            p.page_size = options_.page_size;
            ++mla_i;
            backend_.mla(p, batch);
        }
        backend_.add({x, t, x});
        backend_.rms_norm({x, L.post_norm, a, float(c.rms_norm_eps)});
        if (c.ffn[size_t(i)] == FfnKind::dense) {
            backend_.mlp({a, L.mlp.gate, L.mlp.up, L.mlp.down, t, &batch});
        } else {
            MoeParams p;
            p.x = a;
            p.out = t;
            p.router = L.moe.router;
            p.router_bias = L.moe.router_bias;
            p.w1 = L.moe.w1.data();
            p.w3 = L.moe.w3.data();
            p.w2 = L.moe.w2.data();
            p.n_experts = c.num_experts;
            p.top_k = c.num_experts_per_token;
            p.n_groups = c.num_expert_group;
            p.topk_groups = c.topk_group;
            p.renormalize = c.moe_renormalize;
            p.routed_scale = float(c.routed_scaling_factor);
            p.weighting = options_.moe_weighting;
            p.shared_gate = L.moe.shared.gate;
            p.shared_up = L.moe.shared.up;
            p.shared_down = L.moe.shared.down;
            p.batch = &batch;
            backend_.moe(p);
        }
        backend_.add({x, t, x});
    }

    for (const StepItem& it : items) it.seq->n_tokens += int64_t(it.tokens.size());
    pending_logit_rows_ = std::move(logit_rows);
    pending_group_ = 0;
    step_pending_ = true;
    record_logit_group();  // the first group of logit rows ends the step, which the backend may now run
}

// Gathers, normalises and projects the next max_logit_rows rows that need logits, and ends the step.
void Model::record_logit_group() {
    const ModelConfig& c = config_;
    const int64_t D = c.hidden_size, V = c.vocab_size;
    const size_t g0 = pending_group_;
    if (g0 >= pending_logit_rows_.size()) {
        backend_.end_step();
        return;
    }
    const int64_t n = std::min<int64_t>(options_.max_logit_rows, int64_t(pending_logit_rows_.size() - g0));
    const Tensor rows = scratch(off_rows_, DType::i32, {n});
    const Tensor g = scratch(off_g_, DType::f32, {n, D});
    const Tensor out = scratch(off_logits_, DType::f32, {n, V});
    backend_.write(scratch_buffer_, off_rows_, pending_logit_rows_.data() + g0, uint64_t(n) * 4);
    backend_.embedding({scratch(off_x_, DType::f32, {int64_t(pending_rows_), D}), rows, g});
    backend_.rms_norm({g, weights_.final_norm, g, float(c.rms_norm_eps)});
    backend_.linear({g, weights_.lm_head, out});
    backend_.end_step();
}

void Model::collect_step(std::vector<float>& logits) {
    if (!step_pending_) throw std::logic_error("collect_step without submit_step");
    step_pending_ = false;
    const int64_t V = config_.vocab_size;
    while (pending_group_ < pending_logit_rows_.size()) {
        const int64_t n = std::min<int64_t>(options_.max_logit_rows, int64_t(pending_logit_rows_.size() - pending_group_));
        const size_t at = logits.size();
        logits.resize(at + size_t(n * V));
        backend_.read(scratch_buffer_, off_logits_, logits.data() + at, uint64_t(n * V) * 4);
        pending_group_ += size_t(n);
        if (pending_group_ < pending_logit_rows_.size()) {
            backend_.begin_step();
            record_logit_group();
        }
    }
}

std::vector<float> Model::prefill(Sequence& seq, std::span<const int32_t> tokens, bool all_logits,
                                  const std::function<void(int64_t, int64_t)>& on_chunk) {
    std::vector<float> logits;
    const int64_t n = int64_t(tokens.size());
    for (int64_t s = 0; s < n; s += options_.max_step_rows) {
        const int64_t len = std::min<int64_t>(options_.max_step_rows, n - s);
        const bool last = s + len == n;
        std::vector<float> chunk_logits;
        StepItem item{&seq, tokens.subspan(size_t(s), size_t(len)),
                      all_logits ? LogitRows::all : last ? LogitRows::last : LogitRows::none};
        step(std::span<const StepItem>(&item, 1), chunk_logits);
        if (all_logits)
            logits.insert(logits.end(), chunk_logits.begin(), chunk_logits.end());
        else if (last)
            logits = std::move(chunk_logits);
        if (on_chunk) on_chunk(s + len, n);
    }
    return logits;
}

}  // namespace halo
