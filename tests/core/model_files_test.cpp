// Bad model files: each must give a clear error naming the file and (where there is one) the tensor, never a crash.
// A fresh tiny checkpoint (2 shards) is generated per test and then damaged in one specific way.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/safetensors.h"
#include "tests/support/fifo_guard.h"
#include "tests/support/plugins.h"
#include "tests/support/scratch_dir.h"
#include "tools/gen/checkpoint_writer.h"

namespace halo::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

class ModelFiles : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = scratch_dir("halo_model_files");
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
    // A shard split into its header and data section.
    struct Shard {
        json header;
        std::string data;
    };
    Shard read_shard(const fs::path& file) {
        std::ifstream in(file, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        uint64_t len = 0;
        for (int i = 7; i >= 0; --i) len = len << 8 | uint8_t(bytes[size_t(i)]);
        return {json::parse(bytes.substr(8, len)), bytes.substr(8 + len)};
    }
    // Writes header_text and data, declaring a header length of header_text.size() + length_error.
    void write_shard(const fs::path& file, const std::string& header_text, const std::string& data,
                     int64_t length_error = 0) {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        const uint64_t n = uint64_t(int64_t(header_text.size()) + length_error);
        for (int i = 0; i < 8; ++i) out.put(char(n >> (8 * i)));
        out << header_text << data;
    }
    // Removes a tensor from a shard, header entry and bytes, leaving a well-formed file without it.
    void drop_tensor(const fs::path& file, const std::string& name) {
        Shard s = read_shard(file);
        const uint64_t begin = s.header[name]["data_offsets"][0], end = s.header[name]["data_offsets"][1];
        s.header.erase(name);
        for (auto it = s.header.begin(); it != s.header.end(); ++it)
            if (it.key() != "__metadata__" && (*it)["data_offsets"][0].get<uint64_t>() >= end)
                for (json& o : (*it)["data_offsets"]) o = o.get<uint64_t>() - (end - begin);
        write_shard(file, s.header.dump(), s.data.erase(begin, end - begin));
    }
    // The tensor names of a header in data-offset order.
    static std::vector<std::string> by_offset(const json& h) {
        std::vector<std::string> names;
        for (auto it = h.begin(); it != h.end(); ++it)
            if (it.key() != "__metadata__") names.push_back(it.key());
        std::sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
            return h[a]["data_offsets"][0].get<uint64_t>() < h[b]["data_offsets"][0].get<uint64_t>();
        });
        return names;
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
    drop_tensor(shard(2), name);
    // The index still names it, so the shard is blamed.
    expect_error({name});
}

TEST_F(ModelFiles, MissingTensorAndIndexEntry) {
    const std::string name = some_tensor(2, "experts.3.w2");
    drop_tensor(shard(2), name);
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

TEST_F(ModelFiles, TwoTensorsShareBytes) {
    // The second tensor is pointed at the first one's bytes: it would load and run with the wrong weights.
    Shard s = read_shard(shard(1));
    const std::vector<std::string> names = by_offset(s.header);
    const std::string& a = names[0];
    const std::string& b = names[1];
    for (const char* field : {"dtype", "shape", "data_offsets"}) s.header[b][field] = s.header[a][field];
    write_shard(shard(1), s.header.dump(), s.data);
    const std::string range = "[0, " + std::to_string(s.header[a]["data_offsets"][1].get<uint64_t>()) + ")";
    expect_error({shard(1).filename().string(), "overlaps tensor", std::min(a, b) + "' " + range,
                  "tensor '" + std::max(a, b) + "' data " + range});
}

TEST_F(ModelFiles, GapBeforeTheFirstTensor) {
    Shard s = read_shard(shard(1));
    for (auto it = s.header.begin(); it != s.header.end(); ++it)
        if (it.key() != "__metadata__")
            for (json& o : (*it)["data_offsets"]) o = o.get<uint64_t>() + 1;
    write_shard(shard(1), s.header.dump(), std::string(1, '\0') + s.data);
    expect_error({shard(1).filename().string(), "gap of 1 byte before tensor '" + by_offset(s.header)[0] + "'",
                  "the first in the data section"});
}

TEST_F(ModelFiles, GapBetweenTensors) {
    Shard s = read_shard(shard(2));
    const std::vector<std::string> names = by_offset(s.header);
    const uint64_t cut = s.header[names[1]]["data_offsets"][0].get<uint64_t>();
    for (size_t i = 1; i < names.size(); ++i)
        for (json& o : s.header[names[i]]["data_offsets"]) o = o.get<uint64_t>() + 4;
    write_shard(shard(2), s.header.dump(), s.data.substr(0, cut) + std::string(4, '\0') + s.data.substr(cut));
    expect_error({shard(2).filename().string(), "gap of 4 bytes before tensor '" + names[1] + "'",
                  "after tensor '" + names[0] + "'"});
}

TEST_F(ModelFiles, HeaderLengthThreeBytesShort) {
    // The JSON still parses (its trailing spaces absorb the cut), and every tensor would be read 3 bytes early.
    Shard s = read_shard(shard(1));
    write_shard(shard(1), s.header.dump() + std::string(8, ' '), s.data, -3);
    expect_error({shard(1).filename().string(), "3 bytes after the last tensor '" + by_offset(s.header).back() + "'",
                  "header length"});
}

TEST_F(ModelFiles, BytesAfterTheLastTensor) {
    std::ofstream(shard(2), std::ios::binary | std::ios::app) << std::string(16, 'x');
    expect_error({shard(2).filename().string(), "16 bytes after the last tensor"});
}

TEST_F(ModelFiles, FifoInsteadOfAFile) {
    const std::vector<std::string> names = {"config.json", "model.safetensors.index.json",
                                            shard(2).filename().string()};
    for (const std::string& name : names) {
        const fs::path path = dir_ / name, aside = dir_ / (name + ".aside");
        fs::rename(path, aside);
        std::string error;
        EXPECT_TRUE(returns_without_blocking_on_fifo(path, [&] { error = load_error(); }))
            << "loading blocked in open() on the FIFO " << name;
        EXPECT_NE(error.find(name), std::string::npos) << error;
        EXPECT_NE(error.find("is not a regular file"), std::string::npos) << error;
        fs::remove(path);
        fs::rename(aside, path);
    }
}

TEST_F(ModelFiles, DirectoryInsteadOfAFile) {
    const std::vector<std::string> names = {"config.json", "model.safetensors.index.json",
                                            shard(1).filename().string()};
    for (const std::string& name : names) {
        const fs::path path = dir_ / name, aside = dir_ / (name + ".aside");
        fs::rename(path, aside);
        fs::create_directory(path);
        expect_error({name, "is a directory, not a file"});
        fs::remove(path);
        fs::rename(aside, path);
    }
    fs::remove(dir_ / "model.safetensors.index.json");
    fs::remove(shard(2));
    fs::rename(shard(1), dir_ / "aside");
    fs::create_directory(dir_ / "model.safetensors");
    expect_error({"model.safetensors", "is a directory, not a file"});
}

TEST_F(ModelFiles, ModelDirectoryDoesNotExist) {
    fs::remove_all(dir_);
    expect_error({dir_.string(), "does not exist"});
}

// A safetensors file in memory: header JSON, padded with spaces as the format allows, then `data_bytes` zeros.
std::vector<uint8_t> safetensors_bytes(const json& header, size_t data_bytes, size_t padding = 0) {
    const std::string text = header.dump() + std::string(padding, ' ');
    std::vector<uint8_t> out(8 + text.size() + data_bytes, 0);
    for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(uint64_t(text.size()) >> (8 * i));
    std::copy(text.begin(), text.end(), out.begin() + 8);
    return out;
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
    try {
        parse_safetensors(bytes.data(), bytes.size(), "t.safetensors");
        return "";
    } catch (const ModelFileError& e) {
        return e.what();
    }
}

json f32(std::vector<int64_t> shape, uint64_t begin, uint64_t end) {
    return {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

TEST(SafetensorsTiling, ZeroByteTensorsMayStandAtAnyBoundary) {
    const json h = {{"a", f32({2}, 0, 8)}, {"b", f32({1}, 8, 12)}, {"first", f32({0}, 0, 0)},
                    {"middle", f32({0, 3}, 8, 8)}, {"last", f32({0}, 12, 12)}, {"__metadata__", json::object()}};
    EXPECT_EQ(parse_error(safetensors_bytes(h, 12, 5)), "");
    EXPECT_EQ(parse_error(safetensors_bytes({{"empty", f32({0}, 0, 0)}}, 0)), "");
    EXPECT_EQ(parse_error(safetensors_bytes(json::object(), 0)), "");
}

TEST(SafetensorsTiling, ErrorsNameTheTensors) {
    EXPECT_EQ(parse_error(safetensors_bytes({{"a", f32({2}, 0, 8)}, {"b", f32({1}, 4, 8)}}, 8)),
              "t.safetensors: tensor 'b' data [4, 8) overlaps tensor 'a' [0, 8)");
    EXPECT_EQ(parse_error(safetensors_bytes({{"a", f32({2}, 0, 8)}, {"inside", f32({0}, 4, 4)}}, 8)),
              "t.safetensors: tensor 'inside' data [4, 4) overlaps tensor 'a' [0, 8)");
    EXPECT_EQ(parse_error(safetensors_bytes({{"a", f32({1}, 0, 4)}, {"b", f32({1}, 6, 10)}}, 10)),
              "t.safetensors: leaves a gap of 2 bytes before tensor 'b' [6, 10), after tensor 'a' [0, 4) "
              "(the header length or offsets are wrong)");
    EXPECT_EQ(parse_error(safetensors_bytes({{"a", f32({1}, 1, 5)}}, 5)),
              "t.safetensors: leaves a gap of 1 byte before tensor 'a' [1, 5), the first in the data section "
              "(the header length or offsets are wrong)");
    EXPECT_EQ(parse_error(safetensors_bytes({{"a", f32({1}, 0, 4)}}, 7)),
              "t.safetensors: has a data section with 3 bytes after the last tensor 'a' [0, 4) "
              "(the header length or offsets are wrong)");
    EXPECT_EQ(parse_error(safetensors_bytes({{"e", f32({0}, 0, 0)}}, 2)),
              "t.safetensors: has a data section of 2 bytes but no tensor holding any of them "
              "(the header length or offsets are wrong)");
}

// Hostile JSON in the model's files: each is refused in one short sentence naming the file, never a crash (the first
// was a stack overflow) or a message that quotes megabytes of the input.
TEST_F(ModelFiles, HostileJsonInConfigIsRefusedInOneShortSentence) {
    std::ifstream in(dir_ / "config.json");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    const json c = json::parse(text);
    const std::string hidden = "\"hidden_size\": " + std::to_string(c["hidden_size"].get<int64_t>());
    ASSERT_NE(text.find(hidden), std::string::npos);
    const struct {
        std::string value, needle;
    } cases[] = {
        {std::string(100000, '[') + std::string(100000, ']'), "nests JSON more than 32 levels deep"},
        {"\"" + std::string(1000000, 'x') + "\"", "field 'hidden_size' must be an integer, not \"xxxx"},
        {"[" + std::string(10, '[') + "1" + std::string(10, ']') + "]", "field 'hidden_size' must be an integer, not [[[[["},
        {"64, \"hidden_size\": 128", "has the key 'hidden_size' twice"},
        {"1e999", "too large for a double"},
    };
    for (const auto& k : cases) {
        std::string edited = text;
        edited.replace(edited.find(hidden), hidden.size(), "\"hidden_size\": " + k.value);
        std::ofstream(dir_ / "config.json", std::ios::trunc) << edited;
        const std::string e = load_error();
        EXPECT_NE(e.find("config.json"), std::string::npos) << e.substr(0, 300);
        EXPECT_NE(e.find(k.needle), std::string::npos) << e.substr(0, 300);
        EXPECT_LT(e.size(), 400u) << e.substr(0, 500);
    }
}

TEST_F(ModelFiles, HostileJsonInIndexAndHeaderIsRefused) {
    const fs::path index = dir_ / "model.safetensors.index.json";
    std::ifstream in(index);
    const std::string original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    // The same tensor twice, the second time pointing outside the model directory.
    const size_t map = original.find("\"weight_map\"");
    ASSERT_NE(map, std::string::npos);
    const size_t brace = original.find('{', map);
    std::ofstream(index, std::ios::trunc) << original.substr(0, brace + 1)
                                          << "\"lm_head.weight\": \"../x\", \"lm_head.weight\": \"y\","
                                          << original.substr(brace + 1);
    expect_error({"model.safetensors.index.json", "has the key 'lm_head.weight' twice in the object at 'weight_map'"});
    std::ofstream(index, std::ios::trunc) << "{\"weight_map\": " << std::string(50000, '[') << "}";
    expect_error({"model.safetensors.index.json", "nests JSON more than 16 levels deep"});
    std::ofstream(index, std::ios::trunc) << original;

    // A shape nested 50,000 deep in a shard's header.
    Shard s = read_shard(shard(1));
    std::string header = s.header.dump();
    const size_t shape = header.find("\"shape\":");
    header.insert(shape + 8, std::string(50000, '[') + std::string(50000, ']') + ",\"x\":");
    write_shard(shard(1), header, s.data);
    expect_error({shard(1).filename().string(), "the header nests JSON more than 16 levels deep"});
}

// A file of at least 2 MiB is mapped at a 2 MiB boundary (so the kernel can map it in huge pages), its bytes are
// the file's, and once every byte has been read page_use counts the whole file as mapped. Whether the kernel grants
// huge pages depends on it and on the page cache, so only that count's bounds are checked.
TEST(MappedFileTest, LargeFilesMapAtTwoMebibyteBoundariesAndReportTheirPages) {
    const fs::path dir = scratch_dir("mapped_file");
    fs::create_directories(dir);
    for (const uint64_t size : {uint64_t(5) << 20, (uint64_t(2) << 20) + 12345, uint64_t(1) << 20, uint64_t(4097)}) {
        const fs::path path = dir / ("f" + std::to_string(size));
        std::string bytes(size, '\0');
        for (uint64_t i = 0; i < size; ++i) bytes[i] = char((i * 131 + i / 4096) & 0xff);
        std::ofstream(path, std::ios::binary) << bytes;
        MappedFile f(path);
        ASSERT_EQ(f.size(), size);
        if (size >= (uint64_t(2) << 20)) {
            EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data()) % (uintptr_t(2) << 20), 0u) << size;
        }
        uint64_t sum = 0, want = 0;
        for (uint64_t i = 0; i < size; ++i) {
            sum += f.data()[i];
            want += uint8_t(bytes[i]);
        }
        EXPECT_EQ(sum, want) << size;
        EXPECT_EQ(std::memcmp(f.data(), bytes.data(), size), 0) << size;
        const MappedFile::PageUse use = f.page_use();
        // Every page was read: the whole file is mapped (in pages of 4 KiB or more, so up to a page past the end).
        EXPECT_GE(use.resident, size) << size;
        EXPECT_LE(use.resident, (size + (uint64_t(2) << 20) - 1) / (uint64_t(2) << 20) * (uint64_t(2) << 20)) << size;
        EXPECT_LE(use.huge, use.resident) << size;
        EXPECT_EQ(use.huge % (uint64_t(2) << 20), 0u) << size;
    }
    fs::remove_all(dir);
}

}  // namespace

}  // namespace halo::test
