// Bad quantized checkpoints: the int4 golden (compressed-tensors pack-quantized) rewritten with one fact wrong. Each
// must be refused before anything is allocated, with a sentence naming the tensor (or the config key) and the fact.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/safetensors.h"
#include "tests/support/plugins.h"
#include "tests/support/scratch_dir.h"

namespace halo::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Stored {
    std::string dtype;
    std::vector<int64_t> shape;
    std::string bytes;
};

const std::string kExpert = "model.layers.1.block_sparse_moe.experts.3.w2";

class QuantModelFiles : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = scratch_dir("halo_quant_files");
        const fs::path src = golden_dir() + "/tiny-int4";
        auto ckpt = Checkpoint::open(src);
        for (const auto& [name, r] : ckpt->tensors())
            tensors_[name] = {r.dtype, r.shape, std::string(reinterpret_cast<const char*>(r.data), r.end - r.begin)};
        std::ifstream f(src / "config.json");
        config_ = json::parse(f);
        backend_ = load_plugin("cpu");
    }
    void TearDown() override { fs::remove_all(dir_); }

    // Writes config_ and tensors_ as one model.safetensors and loads it; returns the error ("" when it loaded).
    std::string load_error() {
        fs::create_directories(dir_);
        std::ofstream(dir_ / "config.json") << config_.dump();
        json header = json::object();
        std::string data;
        for (const auto& [name, t] : tensors_) {
            header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
            data += t.bytes;
        }
        std::string text = header.dump();
        text.append((8 - text.size() % 8) % 8, ' ');
        std::ofstream out(dir_ / "model.safetensors", std::ios::binary | std::ios::trunc);
        for (int i = 0; i < 8; ++i) out.put(char(uint64_t(text.size()) >> (8 * i)));
        out << text << data;
        out.close();
        try {
            ModelOptions o;
            o.max_context = 64;
            Model m(backend_->backend(), dir_, o);
            return "";
        } catch (const std::exception& e) {
            return e.what();
        }
    }
    json& weights_scheme() { return config_["quantization_config"]["config_groups"]["group_0"]["weights"]; }

    fs::path dir_;
    std::map<std::string, Stored> tensors_;
    json config_;
    std::unique_ptr<LoadedBackend> backend_;
};

#define EXPECT_MENTIONS(msg, text) EXPECT_NE((msg).find(text), std::string::npos) << (msg)

TEST_F(QuantModelFiles, IntactCopyLoads) { EXPECT_EQ(load_error(), ""); }

TEST_F(QuantModelFiles, WeightShapeAsI32Loads) {
    Stored& s = tensors_[kExpert + ".weight_shape"];
    int64_t v[2];
    std::memcpy(v, s.bytes.data(), 16);
    const int32_t w[2] = {int32_t(v[0]), int32_t(v[1])};
    s = {"I32", {2}, std::string(reinterpret_cast<const char*>(w), 8)};
    EXPECT_EQ(load_error(), "");
}

TEST_F(QuantModelFiles, MissingScale) {
    tensors_.erase(kExpert + ".weight_scale");
    const std::string e = load_error();
    EXPECT_MENTIONS(e, kExpert + ".weight_scale");
    EXPECT_MENTIONS(e, "incomplete");
}

TEST_F(QuantModelFiles, MissingShape) {
    tensors_.erase(kExpert + ".weight_shape");
    EXPECT_MENTIONS(load_error(), kExpert + ".weight_shape");
}

TEST_F(QuantModelFiles, ZeroPointMeansAsymmetric) {
    tensors_[kExpert + ".weight_zero_point"] = {"I32", {64, 1}, std::string(64 * 4, '\0')};
    const std::string e = load_error();
    EXPECT_MENTIONS(e, kExpert + ".weight_packed");
    EXPECT_MENTIONS(e, "asymmetric");
}

TEST_F(QuantModelFiles, NoQuantizationConfig) {
    config_.erase("quantization_config");
    const std::string e = load_error();
    EXPECT_MENTIONS(e, "block_sparse_moe.experts.0.w1.weight_packed");  // the first quantized tensor
    EXPECT_MENTIONS(e, "no quantization_config");
}

TEST_F(QuantModelFiles, ConfigIgnoresTheModule) {
    config_["quantization_config"]["ignore"].push_back(kExpert);
    const std::string e = load_error();
    EXPECT_MENTIONS(e, kExpert);
    EXPECT_MENTIONS(e, "unquantized");
}

TEST_F(QuantModelFiles, ConfigSaysEightBits) {
    weights_scheme()["num_bits"] = 8;
    const std::string e = load_error();
    EXPECT_MENTIONS(e, ".weight_packed");
    EXPECT_MENTIONS(e, "num_bits");
}

TEST_F(QuantModelFiles, ConfigSaysAnotherGroupSize) {
    weights_scheme()["group_size"] = 16;
    const std::string e = load_error();
    EXPECT_MENTIONS(e, ".weight_scale");
    EXPECT_MENTIONS(e, "group_size 16");
}

TEST_F(QuantModelFiles, RefusedSchemesNameTheKey) {
    const std::vector<std::pair<std::function<void()>, std::string>> cases = {
        {[&] { weights_scheme()["symmetric"] = false; }, "symmetric"},
        {[&] { weights_scheme()["strategy"] = "channel"; }, "strategy"},
        {[&] { weights_scheme()["actorder"] = "group"; }, "actorder"},
        {[&] { weights_scheme()["dynamic"] = true; }, "dynamic"},
        {[&] { weights_scheme()["num_bits"] = 2; }, "num_bits"},
        {[&] { weights_scheme()["type"] = "float"; }, "type"},
        {[&] { config_["quantization_config"]["format"] = "nvfp4-pack-quantized"; }, "format"},
        {[&] { config_["quantization_config"]["quant_method"] = "awq"; }, "quant_method"},
        {[&] { config_["quantization_config"]["config_groups"]["group_0"]["input_activations"] = {{"num_bits", 8}}; },
         "input_activations"},
    };
    const json saved = config_;
    for (const auto& [edit, key] : cases) {
        config_ = saved;
        edit();
        const std::string e = load_error();
        EXPECT_MENTIONS(e, "quantization_config");
        EXPECT_MENTIONS(e, key);
    }
}

TEST_F(QuantModelFiles, LogicalShapeDisagrees) {
    Stored& s = tensors_[kExpert + ".weight_shape"];
    const int64_t v[2] = {64, 64};
    s.bytes.assign(reinterpret_cast<const char*>(v), 16);
    const std::string e = load_error();
    EXPECT_MENTIONS(e, kExpert + ".weight_shape");
    EXPECT_MENTIONS(e, "[64, 64]");
}

TEST_F(QuantModelFiles, PackedWordsAreNotI32) {
    tensors_[kExpert + ".weight_packed"].dtype = "F32";
    const std::string e = load_error();
    EXPECT_MENTIONS(e, kExpert + ".weight_packed");
    EXPECT_MENTIONS(e, "I32");
}

TEST_F(QuantModelFiles, PackedShapeDisagrees) {
    Stored& s = tensors_[kExpert + ".weight_packed"];
    s.shape = {32, 8};  // [64, 4] words hold [64, 32]; claim [32, 8]
    const std::string e = load_error();
    EXPECT_MENTIONS(e, kExpert + ".weight_packed");
    EXPECT_MENTIONS(e, "pack into");
}

TEST_F(QuantModelFiles, QuantizedNormIsRefused) {
    const std::string norm = "model.layers.0.input_layernorm";
    tensors_.erase(norm + ".weight");
    tensors_[norm + ".weight_packed"] = {"I32", {1, 8}, std::string(32, '\0')};
    const std::string e = load_error();
    EXPECT_MENTIONS(e, norm + ".weight_packed");
    EXPECT_MENTIONS(e, "read as floats");
}

TEST_F(QuantModelFiles, FloatWeightWhereTheConfigSaysQuantizedIsUsedAsStored) {
    // The tensors are the ground truth: a module the config targets but the file stores as BF16 loads as BF16.
    const std::string bf16 = "model.layers.0.mlp.down_proj.weight";
    ASSERT_TRUE(tensors_.count(bf16));
    config_["quantization_config"]["ignore"] = json::array();
    EXPECT_EQ(load_error(), "");
}

}  // namespace

}  // namespace halo::test
