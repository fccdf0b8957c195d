#include "core/model.h"

#include <algorithm>
#include <set>
#include <cmath>
#include <cstring>
#include <map>
#include <thread>
#include <tuple>

#include "ops/reference/quantize.h"

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

std::string MemoryPlan::describe(const DeviceInfo& device) const {
    std::string s;
    for (int u = 0; u < kMemoryUseCount; ++u) {
        const PlacementInfo& p = device.placements[size_t(placement[u])];
        std::string how = p.name;
        if (u == 0 && weights_zero_copy) how += ", in place";
        if (u == 0 && quantized_at_load)
            how += ", " + std::to_string(quantized_at_load) + " tensors quantized at load" +
                   (weights_zero_copy ? " (" + gb(weights_copied_bytes) + " of them copied)" : "");
        s += std::string(u ? ", " : "") + memory_use_name(MemoryUse(u)) + " " + gb(bytes[u]) + " (" + how + ")";
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
        const std::string kWeight = ".weight";
        const bool linear_name = spec.name.size() > kWeight.size() &&
                                 spec.name.compare(spec.name.size() - kWeight.size(), kWeight.size(), kWeight) == 0;
        const std::string module = linear_name ? spec.name.substr(0, spec.name.size() - kWeight.size()) : "";
        const TensorRecord* r = checkpoint_->find(spec.name);
        if (!r && linear_name && checkpoint_->find(module + ".weight_packed")) {
            check_quantized_tensor(spec, module, slot, used);
            return;
        }
        used.insert(spec.name);
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
        WeightSource src;
        src.data = r->data;
        const DType target = options_.quantize.format_for(spec.name);
        if (is_quantized(target) && spec.shape.size() == 2) {  // quantized while loading
            slot.dtype = target;
            slot.scale.dtype = DType::bf16;
            slot.scale.group = options_.quantize.group;
            src.quantize_from = r;
        }
        sources_.push_back(src);
    });
    if (config_.tie_word_embeddings) weights_.lm_head = weights_.embed;
    for (const auto& [name, record] : checkpoint_->tensors())
        if (!used.count(name)) unused_tensors_.push_back(name);
}

void Model::check_quantized_tensor(const TensorSpec& spec, const std::string& module, Tensor& slot,
                                   std::set<std::string>& used) {
    // A compressed-tensors pack-quantized Linear: X.weight_packed, X.weight_scale, X.weight_shape. The tensors are
    // the ground truth; each layout fact is checked against them and against config.json's quantization_config.
    const std::string pk = module + ".weight_packed", sc = module + ".weight_scale", sh = module + ".weight_shape";
    const TensorRecord* packed = checkpoint_->find(pk);
    const std::string& file = packed->file;
    auto fail = [&](const std::string& what) { throw ModelFileError(file + ": tensor '" + pk + "' " + what); };
    if (spec.shape.size() != 2 || weight_class(spec.name) == WeightClass::other)
        fail("is quantized, but '" + spec.name + "' is read as floats by the engine (only Linear projections, "
             "experts and lm_head can be quantized); convert the checkpoint again without quantizing it");
    if (checkpoint_->find(module + ".weight_zero_point"))
        fail("comes with '" + module + ".weight_zero_point': asymmetric quantization is not supported, only symmetric");
    if (!config_.quant.present)
        fail("is quantized, but config.json has no quantization_config; use the config.json that came with the "
             "checkpoint");
    const QuantScheme* scheme = config_.quant.scheme_for(module);
    if (!scheme)
        fail("is quantized, but config.json's quantization_config leaves module '" + module +
             "' unquantized (it is in 'ignore' or no config group targets it); the config does not match the weights");
    const int64_t out = spec.shape[0], in = spec.shape[1];
    const DType format = scheme->format();
    const WeightFormat wf = weight_format(format);
    const std::string key = "quantization_config.config_groups." + scheme->name + ".weights.";

    // weight_shape: the logical [out, in].
    const TensorRecord* shape = checkpoint_->find(sh);
    if (!shape) fail("has no '" + sh + "' beside it (the logical [out, in] shape); the checkpoint is incomplete");
    if ((shape->dtype != "I64" && shape->dtype != "I32") || shape->shape != std::vector<int64_t>{2})
        throw ModelFileError(shape->file + ": tensor '" + sh + "' must be I64 (or I32) [2], not " + shape->dtype + " " +
                             shape_text(shape->shape));
    int64_t logical[2];
    for (int i = 0; i < 2; ++i) {
        if (shape->dtype == "I64") {
            std::memcpy(&logical[i], shape->data + 8 * i, 8);
        } else {
            int32_t v;
            std::memcpy(&v, shape->data + 4 * i, 4);
            logical[i] = v;
        }
    }
    if (logical[0] != out || logical[1] != in)
        throw ModelFileError(shape->file + ": tensor '" + sh + "' says [" + std::to_string(logical[0]) + ", " +
                             std::to_string(logical[1]) + "] but config.json implies " + shape_text(spec.shape));

    // weight_packed: int32 words, (32 / num_bits) values each.
    if (packed->dtype != "I32" && packed->dtype != "U32")
        fail("has dtype " + packed->dtype + "; pack-quantized weights are stored as I32 words");
    const std::vector<int64_t> want_packed{out, (in + wf.block_elems - 1) / wf.block_elems};
    if (packed->shape != want_packed)
        fail("has shape " + shape_text(packed->shape) + ", but " + std::to_string(scheme->bits) + "-bit values of [" +
             std::to_string(out) + ", " + std::to_string(in) + "] pack into " + shape_text(want_packed) + " (" + key +
             "num_bits is " + std::to_string(scheme->bits) + ")");

    // weight_scale: one per group_size inputs.
    const TensorRecord* scale = checkpoint_->find(sc);
    if (!scale) fail("has no '" + sc + "' beside it; the checkpoint is incomplete");
    if (scale->dtype != "BF16" && scale->dtype != "F16" && scale->dtype != "F32")
        throw ModelFileError(scale->file + ": tensor '" + sc + "' has dtype " + scale->dtype +
                             "; scales must be BF16, F16 or F32");
    const std::vector<int64_t> want_scale{out, (in + scheme->group_size - 1) / scheme->group_size};
    if (scale->shape != want_scale)
        throw ModelFileError(scale->file + ": tensor '" + sc + "' has shape " + shape_text(scale->shape) + ", but " +
                             key + "group_size " + std::to_string(scheme->group_size) + " over " + std::to_string(in) +
                             " inputs needs " + shape_text(want_scale));

    slot.dtype = format;
    slot.ndim = 2;
    slot.shape[0] = out;
    slot.shape[1] = in;
    slot.scale.dtype = dtype_of(scale->dtype);
    slot.scale.group = scheme->group_size;
    used.insert(pk);
    used.insert(sc);
    used.insert(sh);
    WeightSource src;
    src.data = packed->data;
    src.scale = scale->data;
    sources_.push_back(src);
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
    size_t index = 0;
    for_each_tensor(config_, weights_, [&](const TensorSpec&, Tensor& t) {
        const uint64_t bytes = align_up(t.bytes()) + align_up(t.scale_bytes());
        plan_.bytes[0] += bytes;
        if (sources_[index].quantize_from) {
            plan_.weights_copied_bytes += bytes;
            ++plan_.quantized_at_load;
        }
        ++index;
    });
    plan_.weights_zero_copy = dev.placements[size_t(plan_.placement[0])].imports_host;
    // Used in place, every tensor must start at a multiple of its element size (GPU plugins address elements, not
    // bytes; packed words and scales alike). A valid file whose header is not padded can break that; its weights
    // are then copied, aligned.
    if (plan_.weights_zero_copy) {
        index = 0;
        for_each_tensor(config_, weights_, [&](const TensorSpec&, Tensor& t) {
            const WeightSource& src = sources_[index++];
            if (src.quantize_from) return;
            const uint64_t unit = t.quantized() ? 4 : dtype_size(t.dtype);
            if (reinterpret_cast<uintptr_t>(src.data) % unit != 0) plan_.weights_zero_copy = false;
            if (t.quantized() && reinterpret_cast<uintptr_t>(src.scale) % dtype_size(t.scale.dtype) != 0)
                plan_.weights_zero_copy = false;
        });
    }
    if (!plan_.weights_zero_copy) plan_.weights_copied_bytes = plan_.bytes[0];

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
        need[plan_.placement[u]] += u == 0 ? plan_.weights_copied_bytes : plan_.bytes[u];
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
    std::map<const uint8_t*, Buffer*> imported;  // mapping base -> buffer
    if (plan_.weights_zero_copy) {
        std::vector<Buffer*> done;
        for (const auto& f : checkpoint_->files()) {
            Buffer* b = backend_.import_host(MemoryUse::weights, placement, const_cast<uint8_t*>(f->data()), f->size());
            if (!b) {
                // The placement could not take this mapping after all: copy every weight instead, and check that the
                // copies fit, which the plan skipped for in-place weights.
                for (Buffer* d : done) buffers_.release(d);
                plan_.weights_zero_copy = false;
                plan_.weights_copied_bytes = plan_.bytes[0];
                imported.clear();
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
    auto copied = [&](size_t index) { return !plan_.weights_zero_copy || sources_[index].quantize_from; };

    // Copied tensors: one buffer per layer (and per global tensor), tensors and their scales at 256-byte offsets.
    std::map<std::string, uint64_t> group_bytes;
    auto group_of = [](const TensorSpec& s) { return s.layer >= 0 ? "layer" + std::to_string(s.layer) : s.name; };
    uint64_t total = 0;
    size_t index = 0;
    for_each_tensor(config_, weights_, [&](const TensorSpec& s, Tensor& t) {
        if (!copied(index++)) return;
        group_bytes[group_of(s)] += align_up(t.bytes()) + align_up(t.scale_bytes());
        total += t.bytes() + t.scale_bytes();
    });
    std::map<std::string, std::pair<Buffer*, uint64_t>> groups;
    for (const auto& [g, bytes] : group_bytes)
        groups[g] = {buffers_.add(backend_.allocate(MemoryUse::weights, placement, bytes)), 0};

    uint64_t done = 0;
    std::vector<uint8_t> packed, scales;  // one tensor quantized at load
    index = 0;
    for_each_tensor(config_, weights_, [&](const TensorSpec& s, Tensor& t) {
        const WeightSource& src = sources_[index];
        if (!copied(index++)) {
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
        auto& [b, used] = groups[group_of(s)];
        backend_.write(b, used, data, t.bytes());
        t.buffer = b;
        t.offset = used;
        used += align_up(t.bytes());
        if (t.quantized()) {
            backend_.write(b, used, scale, t.scale_bytes());
            t.scale.buffer = b;
            t.scale.offset = used;
            used += align_up(t.scale_bytes());
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
