// The checks of a checkpoint against its config.json, before anything is allocated: every tensor the config
// implies must be present with the right shape and a supported dtype, and quantized tensors must match the
// quantization_config. The result is the tensors as the model will hold them (loading and the memory plan use it).
#include <cstring>
#include <set>

#include "core/memory_plan.h"
#include "core/weights.h"

namespace halo {

using namespace halo::ops;

namespace {

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

void check_quantized_tensor(const ModelConfig& config, const Checkpoint& checkpoint, const TensorSpec& spec,
                            const std::string& module, WeightTensor& w, std::set<std::string>& used) {
    Tensor& slot = w.meta;
    // A compressed-tensors pack-quantized Linear: X.weight_packed, X.weight_scale, X.weight_shape. The tensors are
    // the ground truth; each layout fact is checked against them and against config.json's quantization_config.
    const std::string pk = module + ".weight_packed", sc = module + ".weight_scale", sh = module + ".weight_shape";
    const TensorRecord* packed = checkpoint.find(pk);
    const std::string& file = packed->file;
    auto fail = [&](const std::string& what) { throw ModelFileError(file + ": tensor '" + pk + "' " + what); };
    if (spec.shape.size() != 2 || weight_class(spec.name) == WeightClass::other)
        fail("is quantized, but '" + spec.name + "' is read as floats by the engine (only Linear projections, "
             "experts and lm_head can be quantized); convert the checkpoint again without quantizing it");
    if (checkpoint.find(module + ".weight_zero_point"))
        fail("comes with '" + module + ".weight_zero_point': asymmetric quantization is not supported, only symmetric");
    if (!config.quant.present)
        fail("is quantized, but config.json has no quantization_config; use the config.json that came with the "
             "checkpoint");
    const QuantScheme* scheme = config.quant.scheme_for(module);
    if (!scheme)
        fail("is quantized, but config.json's quantization_config leaves module '" + module +
             "' unquantized (it is in 'ignore' or no config group targets it); the config does not match the weights");
    const int64_t out = spec.shape[0], in = spec.shape[1];
    const DType format = scheme->format();
    const WeightFormat wf = weight_format(format);
    const std::string key = "quantization_config.config_groups." + scheme->name + ".weights.";

    // weight_shape: the logical [out, in].
    const TensorRecord* shape = checkpoint.find(sh);
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
    const TensorRecord* scale = checkpoint.find(sc);
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
    w.data = packed->data;
    w.scale = scale->data;
    w.stored_bytes = (packed->end - packed->begin) + (scale->end - scale->begin) + (shape->end - shape->begin);
}

}  // namespace

std::vector<WeightTensor> checked_weights(const ModelConfig& config, const Checkpoint& checkpoint,
                                          const QuantChoice& quantize, const std::string& dir,
                                          std::vector<std::string>* unused) {
    // Every tensor the config implies must be present with the right shape and a supported dtype. Nothing is
    // allocated until all of them pass.
    std::set<std::string> used;
    std::vector<WeightTensor> out;
    ModelWeights slots;
    for_each_tensor(config, slots, [&](const TensorSpec& spec, Tensor&) {
        WeightTensor w;
        w.name = spec.name;
        w.layer = spec.layer;
        Tensor& slot = w.meta;
        const std::string kWeight = ".weight";
        const bool linear_name = spec.name.size() > kWeight.size() &&
                                 spec.name.compare(spec.name.size() - kWeight.size(), kWeight.size(), kWeight) == 0;
        const std::string module = linear_name ? spec.name.substr(0, spec.name.size() - kWeight.size()) : "";
        const TensorRecord* r = checkpoint.find(spec.name);
        if (!r && linear_name && checkpoint.find(module + ".weight_packed")) {
            check_quantized_tensor(config, checkpoint, spec, module, w, used);
            out.push_back(std::move(w));
            return;
        }
        used.insert(spec.name);
        if (!r)
            throw ModelFileError("model directory " + dir + ": the checkpoint has no tensor '" + spec.name +
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
        w.data = r->data;
        w.stored_bytes = r->end - r->begin;
        const DType target = quantize.format_for(spec.name);
        if (is_quantized(target) && spec.shape.size() == 2) {  // quantized while loading
            slot.dtype = target;
            slot.scale.dtype = DType::bf16;
            slot.scale.group = quantize.group;
            w.quantize_from = r;
            w.quantized_at_load = true;
        }
        out.push_back(std::move(w));
    });
    if (unused)
        for (const auto& [name, record] : checkpoint.tensors())
            if (!used.count(name)) unused->push_back(name);
    return out;
}

}  // namespace halo
