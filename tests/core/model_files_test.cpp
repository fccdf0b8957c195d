// Bad model files: each must give a clear error naming the file and (where there is one) the tensor, never a crash.
// A fresh tiny checkpoint (2 shards) is generated per test and then damaged in one specific way.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/model.h"
#include "tests/support/plugins.h"
#include "tools/gen/checkpoint_writer.h"

namespace halo::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

class ModelFiles : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("halo_model_files_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        gen::GenOptions o;
        o.shards = 2;
        gen::write_checkpoint(dir_, gen::preset_config("tiny"), o);
        backend_ = load_plugin("cpu");
    }
    void TearDown() override { fs::remove_all(dir_); }

    // Loads the model and returns the error message (empty when it loaded).
    std::string load_error() {
        try {
            ModelOptions o;
            o.max_context = 64;
            Model m(backend_->backend(), dir_, o);
            return "";
        } catch (const std::exception& e) {
            return e.what();
        }
    }
    fs::path shard(int i) const { return dir_ / ("model-0000" + std::to_string(i) + "-of-00002.safetensors"); }

    // Rewrites a shard's header through edit(), keeping the data section (or replacing it).
    void edit_header(const fs::path& file, const std::function<void(json&)>& edit) {
        std::ifstream in(file, std::ios::binary);
        std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        uint64_t len = 0;
        for (int i = 7; i >= 0; --i) len = len << 8 | uint8_t(bytes[size_t(i)]);
        json h = json::parse(std::string(bytes.begin() + 8, bytes.begin() + 8 + long(len)));
        edit(h);
        std::string text = h.dump();
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        const uint64_t n = text.size();
        for (int i = 0; i < 8; ++i) out.put(char(n >> (8 * i)));
        out << text;
        out.write(bytes.data() + 8 + len, long(bytes.size() - 8 - len));
    }
    // First tensor name found in shard i.
    std::string some_tensor(int i, const std::string& containing = "") {
        std::string name;
        edit_header(shard(i), [&](json& h) {
            for (auto it = h.begin(); it != h.end(); ++it)
                if (it.key() != "__metadata__" && it.key().find(containing) != std::string::npos && name.empty()) name = it.key();
        });
        return name;
    }
    void expect_error(const std::vector<std::string>& parts) {
        const std::string e = load_error();
        ASSERT_FALSE(e.empty()) << "the damaged model loaded";
        for (const auto& p : parts) EXPECT_NE(e.find(p), std::string::npos) << "error '" << e << "' does not mention '" << p << "'";
    }

    fs::path dir_;
    std::unique_ptr<LoadedBackend> backend_;
};

TEST_F(ModelFiles, IntactModelLoads) { EXPECT_EQ(load_error(), ""); }

TEST_F(ModelFiles, TruncatedShard) {
    fs::resize_file(shard(2), fs::file_size(shard(2)) / 2);
    expect_error({shard(2).filename().string(), "truncated"});
}

TEST_F(ModelFiles, TruncatedInsideTheLength) {
    fs::resize_file(shard(1), 5);
    expect_error({shard(1).filename().string(), "too short"});
}

TEST_F(ModelFiles, HeaderIsNotJson) {
    std::fstream f(shard(1), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    f.write("{not json at all", 16);
    f.close();
    expect_error({shard(1).filename().string(), "not valid JSON"});
}

TEST_F(ModelFiles, HeaderLengthBeyondFile) {
    std::fstream f(shard(1), std::ios::in | std::ios::out | std::ios::binary);
    const char huge[8] = {char(0xff), char(0xff), char(0xff), 0x00, 0, 0, 0, 0};
    f.write(huge, 8);
    f.close();
    expect_error({shard(1).filename().string(), "header"});
}

TEST_F(ModelFiles, OffsetsOutOfRange) {
    const std::string name = some_tensor(1, "q_proj");
    edit_header(shard(1), [&](json& h) { h[name]["data_offsets"][1] = h[name]["data_offsets"][1].get<uint64_t>() + (1u << 30); });
    expect_error({shard(1).filename().string(), name, "past the end"});
}

TEST_F(ModelFiles, SizeDisagreesWithShape) {
    const std::string name = some_tensor(1, "k_proj");
    edit_header(shard(1), [&](json& h) { h[name]["data_offsets"][1] = h[name]["data_offsets"][1].get<uint64_t>() - 2; });
    expect_error({shard(1).filename().string(), name, "bytes"});
}

TEST_F(ModelFiles, ShapeSoLargeItsByteCountWraps) {
    // 2^62 F32 elements need 2^64 bytes: the product wraps to 0 in 64 bits, matching empty offsets.
    const std::string name = some_tensor(1, "q_proj");
    edit_header(shard(1), [&](json& h) {
        h[name]["shape"] = {uint64_t(1) << 62};
        h[name]["dtype"] = "F32";
        h[name]["data_offsets"] = {0, 0};
    });
    expect_error({shard(1).filename().string(), name, "more bytes than"});
}

TEST_F(ModelFiles, WrongDtype) {
    const std::string name = some_tensor(1, "v_proj");
    edit_header(shard(1), [&](json& h) {  // same byte count, unsupported type
        h[name]["dtype"] = "I16";
    });
    expect_error({name, "I16", "BF16"});
}

TEST_F(ModelFiles, UnknownDtype) {
    const std::string name = some_tensor(1, "o_proj");
    edit_header(shard(1), [&](json& h) { h[name]["dtype"] = "Q4_WHATEVER"; });
    expect_error({shard(1).filename().string(), name, "Q4_WHATEVER"});
}

TEST_F(ModelFiles, WrongShape) {
    const std::string name = some_tensor(1, "q_proj");
    edit_header(shard(1), [&](json& h) {
        auto s = h[name]["shape"];
        h[name]["shape"] = {s[1], s[0]};  // transposed: same size, wrong layout
    });
    expect_error({name, "shape", "config.json"});
}

TEST_F(ModelFiles, MissingTensor) {
    const std::string name = some_tensor(2, "experts.3.w2");
    edit_header(shard(2), [&](json& h) { h.erase(name); });
    // The index still names it, so the shard is blamed.
    expect_error({name});
}

TEST_F(ModelFiles, MissingTensorAndIndexEntry) {
    const std::string name = some_tensor(2, "experts.3.w2");
    edit_header(shard(2), [&](json& h) { h.erase(name); });
    std::ifstream in(dir_ / "model.safetensors.index.json");
    json idx = json::parse(in);
    in.close();
    idx["weight_map"].erase(name);
    std::ofstream(dir_ / "model.safetensors.index.json") << idx.dump();
    expect_error({"has no tensor", name});
}

TEST_F(ModelFiles, IndexNamesMissingShard) {
    fs::remove(shard(2));
    expect_error({shard(2).filename().string(), "does not exist"});
}

TEST_F(ModelFiles, UnknownModelType) {
    std::ifstream in(dir_ / "config.json");
    json c = json::parse(in);
    in.close();
    c["model_type"] = "llama";
    std::ofstream(dir_ / "config.json") << c.dump();
    expect_error({"config.json", "llama", "kimi_linear"});
}

TEST_F(ModelFiles, ConfigMissingOrBroken) {
    std::ofstream(dir_ / "config.json") << "{\"model_type\": ";
    expect_error({"config.json", "not valid JSON"});
    fs::remove(dir_ / "config.json");
    expect_error({"config.json"});
}

TEST_F(ModelFiles, ConfigDimensionDisagreesWithWeights) {
    std::ifstream in(dir_ / "config.json");
    json c = json::parse(in);
    in.close();
    c["moe_intermediate_size"] = 48;
    std::ofstream(dir_ / "config.json") << c.dump();
    expect_error({"shape", "config.json implies"});
}

TEST_F(ModelFiles, ModelDirectoryDoesNotExist) {
    fs::remove_all(dir_);
    expect_error({dir_.string(), "does not exist"});
}

}  // namespace

}  // namespace halo::test
