#include "core/quantization.h"

#include <regex>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/input/excerpt.h"

namespace halo {

using json = nlohmann::json;

namespace {

bool matches(const std::string& pattern, const std::string& module, const std::string& class_name,
             const std::map<std::string, std::regex>& compiled) {
    if (pattern.rfind("re:", 0) == 0) {
        const auto it = compiled.find(pattern);
        return it != compiled.end() && std::regex_match(module, it->second);
    }
    return pattern == module || pattern == class_name;
}

// A JSON value that means "not set": absent, null or false.
bool unset(const json& obj, const char* key) {
    if (!obj.contains(key)) return true;
    const json& v = obj.at(key);
    return v.is_null() || (v.is_boolean() && !v.get<bool>());
}

bool empty_object(const json& obj, const char* key) {
    if (!obj.contains(key)) return true;
    const json& v = obj.at(key);
    return v.is_null() || (v.is_object() && v.empty());
}

std::vector<std::string> string_list(const json& obj, const char* key, const std::string& where,
                                     std::map<std::string, std::regex>& compiled) {
    std::vector<std::string> out;
    if (!obj.contains(key) || obj.at(key).is_null()) return out;
    const json& v = obj.at(key);
    if (!v.is_array()) throw ConfigError(where + key + " must be a list of module names or \"re:\" patterns");
    for (const json& e : v) {
        if (!e.is_string()) throw ConfigError(where + key + " must hold only strings");
        const std::string s = e.get<std::string>();
        if (s.rfind("re:", 0) == 0 && !compiled.count(s)) {
            try {
                compiled.emplace(s, std::regex(s.substr(3)));
            } catch (const std::regex_error&) {
                throw ConfigError(where + key + " holds " + input::quote(s) + ", which is not a valid regular expression");
            }
        }
        out.push_back(s);
    }
    return out;
}

}  // namespace

const QuantScheme* QuantizationConfig::scheme_for(const std::string& module) const {
    if (!present) return nullptr;
    for (const std::string& p : ignore)
        if (matches(p, module, "Linear", patterns)) return nullptr;
    for (const QuantScheme& s : schemes)
        for (const std::string& t : s.targets)
            if (matches(t, module, "Linear", patterns)) return &s;
    return nullptr;
}

QuantizationConfig parse_quantization_config(const json& q, const std::string& source) {
    const std::string at = source + ": quantization_config.";
    if (!q.is_object()) throw ConfigError(source + ": quantization_config must be an object");
    auto str = [&](const json& obj, const char* key, const std::string& where) -> std::string {
        if (!obj.contains(key) || obj.at(key).is_null()) return "";
        if (!obj.at(key).is_string()) throw ConfigError(where + key + " must be a string");
        return obj.at(key).get<std::string>();
    };
    const std::string method = str(q, "quant_method", at);
    if (method != "compressed-tensors")
        throw ConfigError(at + "quant_method is " + input::quote(method) +
                          "; this engine reads only \"compressed-tensors\" checkpoints (pack-quantized int4/int8). "
                          "Convert the model with `engine quantize`, or use the BF16 release");
    const std::string top_format = str(q, "format", at);
    if (!top_format.empty() && top_format != "pack-quantized")
        throw ConfigError(at + "format is " + input::quote(top_format) +
                          "; only \"pack-quantized\" (integer weights packed in int32 words) is supported");
    const std::string status = str(q, "quantization_status", at);
    if (!status.empty() && status != "compressed")
        throw ConfigError(at + "quantization_status is " + input::quote(status) +
                          "; only \"compressed\" checkpoints (weights stored packed) can be loaded");
    if (!empty_object(q, "sparsity_config"))
        throw ConfigError(at + "sparsity_config is set; sparse (2:4 or bitmask) compression is not supported");
    if (!empty_object(q, "transform_config"))
        throw ConfigError(at + "transform_config is set; rotated (transformed) weights are not supported");
    if (!unset(q, "kv_cache_scheme"))
        throw ConfigError(at + "kv_cache_scheme is set; a quantized KV cache in the checkpoint is not supported "
                               "(the MLA cache type is chosen with --cache-dtype)");

    QuantizationConfig out;
    out.present = true;
    out.ignore = string_list(q, "ignore", at, out.patterns);
    if (!q.contains("config_groups") || !q.at("config_groups").is_object() || q.at("config_groups").empty())
        throw ConfigError(at + "config_groups must be a non-empty object of quantization schemes");
    for (const auto& [name, g] : q.at("config_groups").items()) {
        const std::string where = at + "config_groups." + name + ".";
        if (!g.is_object()) throw ConfigError(where.substr(0, where.size() - 1) + " must be an object");
        const std::string fmt = str(g, "format", where);
        if (!fmt.empty() && fmt != "pack-quantized")
            throw ConfigError(where + "format is " + input::quote(fmt) + "; only \"pack-quantized\" is supported");
        if (!unset(g, "input_activations"))
            throw ConfigError(where + "input_activations is set; activation quantization (W4A4, W8A8) is not "
                                      "supported, only weight-only schemes (W4A16, W8A16)");
        if (!unset(g, "output_activations"))
            throw ConfigError(where + "output_activations is set; only weight-only schemes are supported");
        if (!g.contains("weights") || !g.at("weights").is_object())
            throw ConfigError(where + "weights must be an object describing the weight quantization");
        const json& w = g.at("weights");
        const std::string ww = where + "weights.";
        QuantScheme s;
        s.name = name;
        s.targets = string_list(g, "targets", where, out.patterns);
        if (s.targets.empty()) throw ConfigError(where + "targets must name the modules it quantizes (e.g. \"Linear\")");
        const std::string type = str(w, "type", ww);
        if (type != "int")
            throw ConfigError(ww + "type is " + input::quote(type) + "; only integer weights (\"int\") are supported");
        if (!w.contains("num_bits") || !w.at("num_bits").is_number_integer() ||
            (w.at("num_bits").get<int64_t>() != 4 && w.at("num_bits").get<int64_t>() != 8))
            throw ConfigError(ww + "num_bits must be 4 or 8 (the int4 and int8 pack-quantized formats)");
        s.bits = int32_t(w.at("num_bits").get<int64_t>());
        if (!w.contains("symmetric") || !w.at("symmetric").is_boolean())
            throw ConfigError(ww + "symmetric must be true or false");
        if (!w.at("symmetric").get<bool>())
            throw ConfigError(ww + "symmetric is false; asymmetric weights (with weight_zero_point) are not supported, "
                                   "only symmetric ones");
        const std::string strategy = str(w, "strategy", ww);
        if (strategy != "group")
            throw ConfigError(ww + "strategy is " + input::quote(strategy) +
                              "; only \"group\" (one scale per group_size inputs) is supported");
        if (!w.contains("group_size") || !w.at("group_size").is_number_integer() ||
            w.at("group_size").get<int64_t>() < 1 || w.at("group_size").get<int64_t>() > (1 << 20))
            throw ConfigError(ww + "group_size must be a positive integer (e.g. 32 or 128)");
        s.group_size = int32_t(w.at("group_size").get<int64_t>());
        if (w.contains("actorder") && !w.at("actorder").is_null() &&
            !(w.at("actorder").is_boolean() && !w.at("actorder").get<bool>()))
            throw ConfigError(ww + "actorder is " + input::quote(w.at("actorder").dump()) +
                              "; activation-ordered (GPTQ act-order) groups are not supported");
        if (!unset(w, "dynamic"))
            throw ConfigError(ww + "dynamic is set; only static weight scales stored in the checkpoint are supported");
        if (!unset(w, "block_structure"))
            throw ConfigError(ww + "block_structure is set; block-wise scales are not supported");
        out.schemes.push_back(std::move(s));
    }
    return out;
}

WeightClass weight_class(const std::string& name) {
    // The module: the name without a tensor suffix.
    std::string module = name;
    for (const char* suffix : {".weight_packed", ".weight_scale", ".weight_shape", ".weight"}) {
        const std::string x = suffix;
        if (module.size() > x.size() && module.compare(module.size() - x.size(), x.size(), x) == 0) {
            module.resize(module.size() - x.size());
            break;
        }
    }
    auto has = [&](const char* s) { return module.find(s) != std::string::npos; };
    if (module == "lm_head") return WeightClass::lm_head;
    if (has(".experts.")) return WeightClass::experts;
    if (has(".shared_experts.") || has(".mlp.")) return WeightClass::shared;
    if (has(".self_attn.")) {
        const std::string leaf = module.substr(module.rfind('.') + 1);
        for (const char* p : {"q_proj", "k_proj", "v_proj", "f_a_proj", "f_b_proj", "b_proj", "g_a_proj", "g_b_proj",
                              "o_proj", "kv_a_proj_with_mqa", "kv_b_proj"})
            if (leaf == p) return WeightClass::attention;
    }
    return WeightClass::other;
}

const char* weight_class_name(WeightClass c) {
    switch (c) {
    case WeightClass::experts: return "experts";
    case WeightClass::shared: return "shared";
    case WeightClass::attention: return "attention";
    case WeightClass::lm_head: return "lm_head";
    case WeightClass::other: return "other";
    }
    return "?";
}

bool QuantChoice::any() const {
    return ops::is_quantized(experts) || ops::is_quantized(shared) || ops::is_quantized(attention) ||
           ops::is_quantized(lm_head);
}

ops::DType QuantChoice::format_for(const std::string& name) const {
    switch (weight_class(name)) {
    case WeightClass::experts: return experts;
    case WeightClass::shared: return shared;
    case WeightClass::attention: return attention;
    case WeightClass::lm_head: return lm_head;
    case WeightClass::other: return ops::DType::f32;
    }
    return ops::DType::f32;
}

std::string QuantChoice::describe() const {
    std::string s;
    auto item = [&](const char* what, ops::DType t) {
        if (ops::is_quantized(t)) s += (s.empty() ? "" : ", ") + std::string(what) + (t == ops::DType::q4 ? " int4" : " int8");
    };
    item("experts", experts);
    item("shared", shared);
    item("attention", attention);
    item("lm_head", lm_head);
    return s.empty() ? "none" : s + " (group " + std::to_string(group) + ")";
}

ops::DType parse_quant_format(const std::string& text, const std::string& flag) {
    if (text == "int4") return ops::DType::q4;
    if (text == "int8") return ops::DType::q8;
    if (text.empty() || text == "none") return ops::DType::f32;
    throw std::runtime_error(flag + " " + input::quote(text) + " is not a weight format; use int4, int8 or none");
}

}  // namespace halo
