// Weight quantization against independent truth: ref::quantize_rows reproduces the compressed-tensors golden
// (../shared/golden/tiny-int4, made by the Python generator from ../tiny) byte for byte; quantization_config
// parsing accepts the golden's config and refuses, naming the key, every scheme the engine cannot honour.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/quantization.h"
#include "core/safetensors.h"
#include "ops/reference/quantize.h"
#include "ops/tensor.h"
#include "tests/support/plugins.h"

namespace halo::test {

using nlohmann::json;

namespace {

json golden_quant_config() {
    std::ifstream f(golden_dir() + "/tiny-int4/config.json");
    return json::parse(f).at("quantization_config");
}

TEST(Quantize, RoutedExpertsReproduceTheCompressedTensorsGolden) {
    const auto src = Checkpoint::open(golden_dir() + "/tiny");
    const auto want = Checkpoint::open(golden_dir() + "/tiny-int4");
    int modules = 0;
    for (int layer : {1, 2, 3})
        for (int e = 0; e < 8; ++e)
            for (const char* w : {"w1", "w2", "w3"}) {
                const std::string m = "model.layers." + std::to_string(layer) + ".block_sparse_moe.experts." +
                                      std::to_string(e) + "." + w;
                const TensorRecord* s = src->find(m + ".weight");
                const TensorRecord* packed = want->find(m + ".weight_packed");
                const TensorRecord* scale = want->find(m + ".weight_scale");
                const TensorRecord* shape = want->find(m + ".weight_shape");
                ASSERT_TRUE(s && packed && scale && shape) << m;
                EXPECT_EQ(want->find(m + ".weight"), nullptr) << m << " keeps its float weight";
                ASSERT_EQ(s->dtype, "BF16");
                ASSERT_EQ(s->shape.size(), 2u);
                const int64_t rows = s->shape[0], cols = s->shape[1];
                EXPECT_EQ(packed->dtype, "I32");
                EXPECT_EQ(scale->dtype, "BF16");
                EXPECT_EQ(shape->dtype, "I64");
                EXPECT_EQ(packed->shape, (std::vector<int64_t>{rows, cols / 8})) << m;
                EXPECT_EQ(scale->shape, (std::vector<int64_t>{rows, cols / 32})) << m;
                int64_t logical[2];
                ASSERT_EQ(shape->end - shape->begin, sizeof logical);
                std::memcpy(logical, shape->data, sizeof logical);
                EXPECT_EQ(logical[0], rows);
                EXPECT_EQ(logical[1], cols);

                std::vector<uint8_t> got_packed(size_t(rows) * ops::row_bytes(ops::DType::q4, cols));
                std::vector<uint8_t> got_scale(size_t(rows * (cols / 32)) * 2);
                ref::quantize_rows(s->data, ops::DType::bf16, rows, cols, ops::DType::q4, 32, ops::DType::bf16,
                                   got_packed.data(), got_scale.data());
                ASSERT_EQ(got_packed.size(), packed->end - packed->begin) << m;
                ASSERT_EQ(got_scale.size(), scale->end - scale->begin) << m;
                EXPECT_EQ(std::memcmp(got_packed.data(), packed->data, got_packed.size()), 0) << m << ": packed words differ";
                EXPECT_EQ(std::memcmp(got_scale.data(), scale->data, got_scale.size()), 0) << m << ": scales differ";
                ++modules;
            }
    EXPECT_EQ(modules, 72);
}

TEST(Quantize, Int8RoundTripsWithinHalfAStep) {
    // q8 has no golden; check the recipe's contract instead: |deq - w| stays within one step (round to nearest
    // gives half a step, but the recipe rounds w / scale to BF16 first, which for |q| >= 64 is a multiple of 0.5,
    // and a BF16 scale that rounded down clamps the group maximum), zero stays zero, the full int8 range is used,
    // and a partial last group and partial last word are packed.
    const int64_t rows = 3, cols = 45;
    const int32_t group = 16;
    std::vector<float> w(size_t(rows * cols));
    for (size_t i = 0; i < w.size(); ++i) w[i] = float(int(i * 37 % 101) - 50) / 40.0f;
    w[5] = 0.0f;
    std::vector<uint8_t> packed(size_t(rows) * ops::row_bytes(ops::DType::q8, cols));
    std::vector<uint8_t> scales(size_t(rows * 3) * 4);
    ref::quantize_rows(w.data(), ops::DType::f32, rows, cols, ops::DType::q8, group, ops::DType::f32, packed.data(),
                       scales.data());
    ops::Buffer wb, sb;
    wb.host = packed.data();
    sb.host = scales.data();
    ops::Tensor t = ops::make_tensor(&wb, 0, ops::DType::q8, {rows, cols});
    t.scale = ops::QuantScale{&sb, 0, ops::DType::f32, group};
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            const float step = reinterpret_cast<const float*>(scales.data())[r * 3 + c / group];
            const float got = ops::weight_at(t, r, c), want = w[size_t(r * cols + c)];
            EXPECT_LE(std::fabs(got - want), 1.0f * step + 1e-7f) << r << "," << c;
            EXPECT_LE(std::abs(ops::quant_value(packed.data() + r * ops::row_bytes(ops::DType::q8, cols),
                                                ops::DType::q8, c)), 128);
        }
    EXPECT_EQ(ops::weight_at(t, 0, 5), 0.0f);
    // The group max maps to +-127 or -128 (the full int8 range is used).
    int extreme = 0;
    for (int64_t c = 0; c < group; ++c) extreme = std::max(extreme, std::abs(ops::quant_value(packed.data(), ops::DType::q8, c)));
    EXPECT_GE(extreme, 127);
}

// The refusal message for a quantization_config changed by `edit`, or "" when it parses.
template <class Edit>
std::string refusal(Edit edit) {
    json q = golden_quant_config();
    edit(q);
    try {
        parse_quantization_config(q, "config.json");
        return "";
    } catch (const ConfigError& e) {
        return e.what();
    }
}

TEST(QuantizationConfig, GoldenConfigParses) {
    const QuantizationConfig c = parse_quantization_config(golden_quant_config(), "config.json");
    ASSERT_TRUE(c.present);
    ASSERT_EQ(c.schemes.size(), 1u);
    EXPECT_EQ(c.schemes[0].name, "group_0");
    EXPECT_EQ(c.schemes[0].bits, 4);
    EXPECT_EQ(c.schemes[0].group_size, 32);
    EXPECT_EQ(c.schemes[0].format(), ops::DType::q4);
    EXPECT_EQ(c.ignore.size(), 44u);
    // Every routed expert is int4; every other Linear module of the tiny model is in `ignore`.
    for (int layer : {1, 2, 3})
        for (int e = 0; e < 8; ++e)
            for (const char* w : {"w1", "w2", "w3"}) {
                const std::string m = "model.layers." + std::to_string(layer) + ".block_sparse_moe.experts." +
                                      std::to_string(e) + "." + w;
                const QuantScheme* s = c.scheme_for(m);
                ASSERT_NE(s, nullptr) << m;
                EXPECT_EQ(s->bits, 4);
            }
    for (const char* m : {"lm_head", "model.layers.0.self_attn.q_proj", "model.layers.0.mlp.gate_proj",
                          "model.layers.3.self_attn.kv_b_proj", "model.layers.2.block_sparse_moe.shared_experts.down_proj"})
        EXPECT_EQ(c.scheme_for(m), nullptr) << m;
}

TEST(QuantizationConfig, RefusalsNameTheKey) {
    auto w = [](json& q) -> json& { return q["config_groups"]["group_0"]["weights"]; };
    struct Case {
        const char* key;
        std::function<void(json&)> edit;
    };
    const std::vector<Case> cases = {
        {"symmetric", [&](json& q) { w(q)["symmetric"] = false; }},
        {"strategy", [&](json& q) { w(q)["strategy"] = "channel"; }},
        {"actorder", [&](json& q) { w(q)["actorder"] = "group"; }},
        {"dynamic", [&](json& q) { w(q)["dynamic"] = true; }},
        {"input_activations", [](json& q) {
             q["config_groups"]["group_0"]["input_activations"] = {{"num_bits", 8}, {"type", "int"}};
         }},
        {"num_bits", [&](json& q) { w(q)["num_bits"] = 2; }},
        {"format", [](json& q) { q["format"] = "naive-quantized"; }},
        {"format", [](json& q) { q["config_groups"]["group_0"]["format"] = "float-quantized"; }},
        {"quant_method", [](json& q) { q["quant_method"] = "awq"; }},
        {"ignore", [](json& q) { q["ignore"].push_back("re:model.layers.(["); }},
        {"targets", [](json& q) { q["config_groups"]["group_0"]["targets"] = json::array({"re:*bad"}); }},
    };
    for (const Case& c : cases) {
        const std::string msg = refusal(c.edit);
        EXPECT_FALSE(msg.empty()) << c.key << " was accepted";
        EXPECT_NE(msg.find(c.key), std::string::npos) << "the refusal does not name " << c.key << ": " << msg;
        EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
    }
    // Null and false mean "not set" and are accepted.
    EXPECT_EQ(refusal([&](json& q) { w(q)["actorder"] = false; }), "");
    EXPECT_EQ(refusal([&](json& q) { w(q)["dynamic"] = nullptr; }), "");
    EXPECT_EQ(refusal([&](json& q) { w(q)["num_bits"] = 8; }), "");
}

TEST(QuantizationConfig, SchemeForTargetsIgnoresAndPatterns) {
    const json q = json::parse(R"({
      "quant_method": "compressed-tensors", "format": "pack-quantized", "quantization_status": "compressed",
      "config_groups": {
        "group_0": {"targets": ["re:.*block_sparse_moe\\.experts\\..*"], "format": "pack-quantized",
                    "weights": {"num_bits": 4, "group_size": 32, "symmetric": true, "strategy": "group", "type": "int"}},
        "group_1": {"targets": ["Linear"], "format": "pack-quantized",
                    "weights": {"num_bits": 8, "group_size": 128, "symmetric": true, "strategy": "group", "type": "int"}}},
      "ignore": ["lm_head", "re:.*self_attn\\.(q|k|v)_proj$", "model.layers.0.mlp.down_proj"]})");
    const QuantizationConfig c = parse_quantization_config(q, "config.json");
    ASSERT_EQ(c.schemes.size(), 2u);
    auto bits = [&](const std::string& m) { const QuantScheme* s = c.scheme_for(m); return s ? s->bits : 0; };
    EXPECT_EQ(bits("model.layers.1.block_sparse_moe.experts.7.w2"), 4);      // the first group that matches
    EXPECT_EQ(bits("model.layers.1.block_sparse_moe.shared_experts.up_proj"), 8);  // "Linear" catches the rest
    EXPECT_EQ(bits("model.layers.0.mlp.gate_proj"), 8);
    EXPECT_EQ(bits("model.layers.0.mlp.down_proj"), 0);                      // an exact-name ignore
    EXPECT_EQ(bits("model.layers.0.mlp.down_proj_x"), 8);                    // ... that is not a prefix match
    EXPECT_EQ(bits("lm_head"), 0);
    EXPECT_EQ(bits("model.layers.2.self_attn.q_proj"), 0);                   // an ignored pattern
    EXPECT_EQ(bits("model.layers.2.self_attn.o_proj"), 8);
    EXPECT_EQ(bits("model.layers.2.self_attn.kv_b_proj"), 8);                // patterns match the whole name
    QuantizationConfig absent;
    EXPECT_EQ(absent.scheme_for("model.layers.1.block_sparse_moe.experts.0.w1"), nullptr);
}

}  // namespace

}  // namespace halo::test
