#include "core/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <thread>
#include <tuple>

#include "ops/reference/quantize.h"

namespace halo {

using namespace halo::ops;

namespace {

DType dtype_of(const std::string& name) {
    if (name == "BF16") return DType::bf16;
    if (name == "F16") return DType::f16;
    return DType::f32;
}

// Quantizes a float matrix into packed words and scales for t (its dtype, group and scale dtype), rows split over
// the machine's threads (a 48B checkpoint has about 47 billion expert weights to quantize).
void quantize_parallel(const uint8_t* src, DType src_dtype, const Tensor& t, uint8_t* packed, uint8_t* scales) {
    const int64_t rows = t.rows(), cols = t.cols();
    const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 64);
    const int64_t per = std::max<int64_t>(1, (rows + threads - 1) / threads);
    const uint64_t scale_row = uint64_t(t.scale.cols(cols)) * dtype_size(t.scale.dtype);
    auto run = [&](int64_t r0) {
        const int64_t n = std::min(per, rows - r0);
        ref::quantize_rows(src + uint64_t(r0) * uint64_t(cols) * dtype_size(src_dtype), src_dtype, n, cols, t.dtype,
                           t.scale.group, t.scale.dtype, packed + uint64_t(r0) * t.row_stride(),
                           scales + uint64_t(r0) * scale_row);
    };
    if (uint64_t(rows) * uint64_t(cols) < (1u << 20)) {
        ref::quantize_rows(src, src_dtype, rows, cols, t.dtype, t.scale.group, t.scale.dtype, packed, scales);
        return;
    }
    std::vector<std::thread> pool;
    for (int64_t r0 = per; r0 < rows; r0 += per) pool.emplace_back(run, r0);
    run(0);
    for (auto& th : pool) th.join();
}

}  // namespace

DType parse_cache_dtype(const std::string& name) {
    if (name == "f32" || name == "F32") return DType::f32;
    if (name == "f16" || name == "F16") return DType::f16;
    if (name == "bf16" || name == "BF16") return DType::bf16;
    throw std::runtime_error("cache dtype '" + name + "' is not f32, f16 or bf16");
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
    sources_ = checked_weights(config_, *checkpoint_, options_.quantize, dir.string(), &unused_tensors_);
    size_t index = 0;
    for_each_tensor(config_, weights_, [&](const TensorSpec&, Tensor& slot) { slot = sources_[index++].meta; });
    if (config_.tie_word_embeddings) weights_.lm_head = weights_.embed;
    make_plan(true);
    if (options_.on_plan) options_.on_plan(plan_);
    check_plan_fits();
    place_weights();
    allocate_state();
    if (options_.warm_up) warm_up();
}

void Model::warm_up() {
    // The largest step the engine will run: max_step_rows rows of one sequence, logits for as many rows as one
    // group holds. Its state slot is cleared by the next begin_sequence; its cache pages are written before read.
    backend_.reserve_internal(plan_.shape);  // the plugin's planned temporaries, held from now on
    Sequence seq;
    begin_sequence(seq);
    const std::vector<int32_t> ids(size_t(options_.max_step_rows), 0);
    std::vector<float> logits;
    StepItem item{&seq, ids, options_.max_step_rows <= options_.max_logit_rows ? LogitRows::all : LogitRows::last};
    step(std::span<const StepItem>(&item, 1), logits);
    end_sequence(seq);
}

std::vector<uint64_t> Model::allocated() const {
    std::vector<uint64_t> out(backend_.device().placements.size(), 0);
    auto add = [&](int32_t placement, uint64_t bytes) {
        if (placement >= 0 && size_t(placement) < out.size()) out[size_t(placement)] += bytes;
    };
    for (const Buffer* b : buffers_.list) add(b->placement, b->bytes);
    return out;
}

Model::~Model() = default;

void Model::make_plan(bool allow_in_place) {
    PlanInputs in;
    in.config = &config_;
    in.weights = &sources_;
    if (allow_in_place)
        for (const auto& f : checkpoint_->files()) in.file_bytes.push_back(f->size());
    in.backend = &backend_;
    in.budget = options_.budget;
    in.allow_in_place = allow_in_place;  // false: the weights placement could not import the files after all
    plan_ = plan_memory(in, options_);
}

void Model::check_plan_fits() const {
    if (!plan_.fits()) throw OutOfMemory(refusal(plan_, options_.origin));
}

void Model::place_weights() {
    const int32_t placement = plan_.placement[int(MemoryUse::weights)];
    std::map<const uint8_t*, Buffer*> imported;  // mapping base -> buffer
    if (plan_.weights_zero_copy) {
        std::vector<Buffer*> done;
        for (const auto& f : checkpoint_->files()) {
            Buffer* b = backend_.import_host(MemoryUse::weights, placement, const_cast<uint8_t*>(f->data()), f->size());
            if (!b) {
                // The placement could not take this mapping after all: plan every weight copied instead, and check
                // that the copies fit.
                for (Buffer* d : done) buffers_.release(d);
                imported.clear();
                make_plan(false);
                check_plan_fits();
                break;
            }
            done.push_back(buffers_.add(b));
            imported[f->data()] = b;
        }
    }
    // A pointer into the mappings as (buffer, offset).
    auto in_place = [&](const uint8_t* p) -> std::pair<Buffer*, uint64_t> {
        for (const auto& f : checkpoint_->files())
            if (p >= f->data() && p < f->data() + f->size()) return {imported[f->data()], uint64_t(p - f->data())};
        return {nullptr, 0};
    };

    // Copied tensors: the layout's groups, each tensor and its scales at their offsets.
    const MemoryLayout& L = plan_.layout;
    std::vector<Buffer*> groups;
    for (const MemoryLayout::Group& g : L.groups)
        groups.push_back(buffers_.add(backend_.allocate(MemoryUse::weights, placement, g.bytes)));
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < sources_.size(); ++i)
        if (L.weights[i].group >= 0) total += sources_[i].meta.bytes() + sources_[i].meta.scale_bytes();

    std::vector<uint8_t> packed, scales;  // one tensor quantized at load
    size_t index = 0;
    for_each_tensor(config_, weights_, [&](const TensorSpec&, Tensor& t) {
        const WeightTensor& src = sources_[index];
        const MemoryLayout::Place& at = L.weights[index++];
        if (at.group < 0) {
            std::tie(t.buffer, t.offset) = in_place(src.data);
            if (t.quantized()) std::tie(t.scale.buffer, t.scale.offset) = in_place(src.scale);
            return;
        }
        const uint8_t* data = src.data;
        const uint8_t* scale = src.scale;
        if (src.quantize_from) {
            packed.resize(t.bytes());
            scales.resize(t.scale_bytes());
            quantize_parallel(src.quantize_from->data, dtype_of(src.quantize_from->dtype), t, packed.data(),
                              scales.data());
            data = packed.data();
            scale = scales.data();
        }
        Buffer* b = groups[size_t(at.group)];
        backend_.write(b, at.offset, data, t.bytes());
        t.buffer = b;
        t.offset = at.offset;
        if (t.quantized()) {
            backend_.write(b, at.scale_offset, scale, t.scale_bytes());
            t.scale.buffer = b;
            t.scale.offset = at.scale_offset;
        }
        done += t.bytes() + t.scale_bytes();
        if (options_.on_load_progress) options_.on_load_progress(done, total);
    });
    if (!plan_.weights_zero_copy) checkpoint_.reset();  // copied: the mappings are no longer needed
    sources_.clear();
    if (config_.tie_word_embeddings) weights_.lm_head = weights_.embed;
}

void Model::allocate_state() {
    const ModelConfig& c = config_;
    const MemoryLayout& L = plan_.layout;
    const int64_t S = L.sequences;
    const int64_t H = c.kda_num_heads, K = c.kda_head_dim, W = c.short_conv_kernel_size;
    // One buffer per tensor, so no tensor ever spans a GPU plugin's allocation or binding pieces.
    const int32_t placement = plan_.placement[int(MemoryUse::state)];
    for (int32_t l = 0; l < L.kda_layers; ++l) {
        Buffer* state = buffers_.add(backend_.allocate(MemoryUse::state, placement, uint64_t(S) * L.kda_state_slot_bytes));
        Buffer* conv = buffers_.add(backend_.allocate(MemoryUse::state, placement, uint64_t(S) * L.kda_conv_slot_bytes));
        backend_.zero(state, 0, state->bytes);
        backend_.zero(conv, 0, conv->bytes);
        kda_state_.push_back(make_tensor(state, 0, DType::f32, {S, H, K, K}));
        kda_conv_.push_back(make_tensor(conv, 0, DType::f32, {S, 3, W - 1, H * K}));
    }
    for (int32_t l = 0; l < L.mla_layers; ++l) {
        Buffer* b = buffers_.add(backend_.allocate(MemoryUse::cache, plan_.placement[int(MemoryUse::cache)], L.cache_layer_bytes));
        mla_cache_.push_back(make_tensor(b, 0, L.cache_dtype, {L.cache_pages, L.page_size, L.cache_width}));
    }
    scratch_buffer_ = buffers_.add(backend_.allocate(MemoryUse::scratch, plan_.placement[int(MemoryUse::scratch)],
                                                     L.scratch_bytes));
}

Model::CheckpointPages Model::checkpoint_pages() const {
    CheckpointPages out;
    if (!checkpoint_) return out;
    for (const auto& f : checkpoint_->files()) {
        const MappedFile::PageUse use = f->page_use();
        out.bytes += f->size();
        out.resident += use.resident;
        out.huge += use.huge;
    }
    return out;
}

uint64_t Model::decode_weight_bytes() const {
    uint64_t total = 0;
    ModelWeights w = weights_;
    for_each_tensor(config_, w, [&](const TensorSpec& s, Tensor& t) {
        const bool expert = s.name.find(".experts.") != std::string::npos;
        if (s.name == "model.embed_tokens.weight")
            total += t.row_stride();
        else if (!expert)
            total += t.bytes() + t.scale_bytes();
    });
    for (const LayerWeights& L : weights_.layers)
        if (!L.moe.w1.empty())
            total += uint64_t(config_.num_experts_per_token) *
                     (L.moe.w1[0].bytes() + L.moe.w2[0].bytes() + L.moe.w3[0].bytes() + L.moe.w1[0].scale_bytes() +
                      L.moe.w2[0].scale_bytes() + L.moe.w3[0].scale_bytes());
    if (config_.tie_word_embeddings) total += weights_.embed.bytes();
    return total;
}

uint64_t Model::decode_state_bytes(int64_t context) const {
    const ModelConfig& c = config_;
    const uint64_t kda = uint64_t(c.count(MixerKind::kda)) * 2 * (plan_.layout.kda_state_slot_bytes + plan_.layout.kda_conv_slot_bytes);
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
        const MemoryLayout& L = plan_.layout;
        backend_.zero(kda_state_[l].buffer, uint64_t(seq.slot) * L.kda_state_slot_bytes, L.kda_state_slot_bytes);
        backend_.zero(kda_conv_[l].buffer, uint64_t(seq.slot) * L.kda_conv_slot_bytes, L.kda_conv_slot_bytes);
    }
}

// ---- prefix reuse ------------------------------------------------------------------------------------------------

Buffer* Model::new_snapshot() {
    return backend_.allocate(MemoryUse::state, plan_.placement[int(MemoryUse::state)], snapshot_bytes());
}

void Model::save_state(const Sequence& seq, Buffer* snapshot) {
    if (seq.slot < 0) throw std::logic_error("save_state: the sequence has no slot");
    const MemoryLayout& L = plan_.layout;
    const uint64_t per_layer = L.kda_state_slot_bytes + L.kda_conv_slot_bytes;
    for (size_t l = 0; l < kda_state_.size(); ++l) {
        backend_.copy(snapshot, l * per_layer, kda_state_[l].buffer, uint64_t(seq.slot) * L.kda_state_slot_bytes,
                      L.kda_state_slot_bytes);
        backend_.copy(snapshot, l * per_layer + L.kda_state_slot_bytes, kda_conv_[l].buffer,
                      uint64_t(seq.slot) * L.kda_conv_slot_bytes, L.kda_conv_slot_bytes);
    }
}

void Model::restore_state(const Buffer* snapshot, Sequence& seq) {
    if (seq.slot < 0) throw std::logic_error("restore_state: the sequence has no slot");
    const MemoryLayout& L = plan_.layout;
    const uint64_t per_layer = L.kda_state_slot_bytes + L.kda_conv_slot_bytes;
    for (size_t l = 0; l < kda_state_.size(); ++l) {
        backend_.copy(kda_state_[l].buffer, uint64_t(seq.slot) * L.kda_state_slot_bytes, snapshot, l * per_layer,
                      L.kda_state_slot_bytes);
        backend_.copy(kda_conv_[l].buffer, uint64_t(seq.slot) * L.kda_conv_slot_bytes, snapshot,
                      l * per_layer + L.kda_state_slot_bytes, L.kda_conv_slot_bytes);
    }
}

void Model::read_snapshot(const Buffer* snapshot, void* dst) { backend_.read(snapshot, 0, dst, snapshot_bytes()); }

void Model::write_snapshot(Buffer* snapshot, const void* src) { backend_.write(snapshot, 0, src, snapshot_bytes()); }

uint64_t Model::page_bytes() const {
    const MemoryLayout& L = plan_.layout;
    return uint64_t(L.mla_layers) * uint64_t(L.page_size * L.cache_width) * dtype_size(L.cache_dtype);
}

void Model::read_page(int32_t page, void* dst) {
    const MemoryLayout& L = plan_.layout;
    const uint64_t one = uint64_t(L.page_size * L.cache_width) * dtype_size(L.cache_dtype);
    for (size_t l = 0; l < mla_cache_.size(); ++l)
        backend_.read(mla_cache_[l].buffer, uint64_t(page) * one, static_cast<uint8_t*>(dst) + l * one, one);
}

void Model::write_page(int32_t page, const void* src) {
    const MemoryLayout& L = plan_.layout;
    const uint64_t one = uint64_t(L.page_size * L.cache_width) * dtype_size(L.cache_dtype);
    for (size_t l = 0; l < mla_cache_.size(); ++l)
        backend_.write(mla_cache_[l].buffer, uint64_t(page) * one, static_cast<const uint8_t*>(src) + l * one, one);
}

void Model::own_pages(Sequence& seq, int64_t from, int64_t to) {
    const MemoryLayout& L = plan_.layout;
    const int64_t ps = options_.page_size;
    const uint64_t one = uint64_t(L.page_size * L.cache_width) * dtype_size(L.cache_dtype);
    for (int64_t p = from / ps; p < int64_t(seq.pages.size()) && p * ps < to; ++p) {
        const int32_t old = seq.pages[size_t(p)];
        if (!pool_.shared(old)) continue;
        int32_t fresh;
        try {
            fresh = pool_.take_page();
        } catch (const CapacityError&) {
            // No page could be freed, so the prefix cache gave up its entries: when they were what shared this
            // page, it is now the sequence's alone and needs no copy (a pool of one page per sequence, say).
            if (pool_.shared(old)) throw;
            continue;
        }
        // The whole page: the tokens before `from` are the shared prefix's, the rest is overwritten before it is read.
        for (const Tensor& cache : mla_cache_)
            backend_.copy(cache.buffer, uint64_t(fresh) * one, cache.buffer, uint64_t(old) * one, one);
        seq.pages[size_t(p)] = fresh;
        pool_.release(std::span<const int32_t>(&old, 1));
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

    // Sequences' runs, token ids and the rows that need logits (in vectors kept from step to step: a decode step
    // allocates nothing).
    std::vector<SeqRun>& runs = step_runs_;
    std::vector<int32_t>& ids = step_ids_;
    std::vector<int32_t>& logit_rows = step_logit_rows_;
    runs.clear();
    ids.clear();
    logit_rows.clear();
    for (const StepItem& it : items) {
        if (it.tokens.empty()) continue;
        if (it.seq->slot < 0) throw std::runtime_error("step: sequence was not started with begin_sequence");
        for (int32_t id : it.tokens)
            if (id < 0 || id >= V)
                throw std::runtime_error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                         std::to_string(V - 1) + ")");
        own_pages(*it.seq, it.seq->n_tokens, it.seq->n_tokens + int64_t(it.tokens.size()));
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
    const Tensor x = scratch(plan_.layout.off_x, DType::f32, {R, D}), a = scratch(plan_.layout.off_a, DType::f32, {R, D}),
                 t = scratch(plan_.layout.off_t, DType::f32, {R, D});

    backend_.begin_step();
    backend_.write(scratch_buffer_, plan_.layout.off_ids, ids.data(), uint64_t(R) * 4);
    backend_.embedding({weights_.embed, scratch(plan_.layout.off_ids, DType::i32, {R}), x});
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
    pending_logit_rows_.swap(logit_rows);
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
    const Tensor rows = scratch(plan_.layout.off_rows, DType::i32, {n});
    const Tensor g = scratch(plan_.layout.off_g, DType::f32, {n, D});
    const Tensor out = scratch(plan_.layout.off_logits, DType::f32, {n, V});
    backend_.write(scratch_buffer_, plan_.layout.off_rows, pending_logit_rows_.data() + g0, uint64_t(n) * 4);
    backend_.embedding({scratch(plan_.layout.off_x, DType::f32, {int64_t(pending_rows_), D}), rows, g});
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
        backend_.read(scratch_buffer_, plan_.layout.off_logits, logits.data() + at, uint64_t(n * V) * 4);
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
