// engine quantize as a user runs it: converting the tiny golden's BF16 checkpoint with int4 experts reproduces the
// compressed-tensors golden (../shared/golden/tiny-int4, written by the Python generator) tensor for tensor; a
// mixed int4/int8 conversion of a generated model round-trips every Linear weight through ref::quantize_rows; bad
// requests are refused in a sentence and leave nothing behind.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "core/quantization.h"
#include "core/safetensors.h"
#include "ops/reference/quantize.h"
#include "ops/tensor.h"
#include "tests/cli/run_tool.h"
#include "tests/support/plugins.h"
#include "tests/support/scratch_dir.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const fs::path& p) {
    std::ifstream f(p);
    return json::parse(f);
}

std::vector<uint8_t> bytes_of(const TensorRecord& r) { return std::vector<uint8_t>(r.data, r.data + (r.end - r.begin)); }

class QuantizeCli : public ::testing::Test {
protected:
    void SetUp() override {
        work_ = scratch_dir("halo_quantize");
        fs::create_directories(work_);
        out_ = work_ / "out";
    }
    void TearDown() override { fs::remove_all(work_); }

    ToolRun quantize(const std::string& model, const std::vector<std::string>& extra) {
        std::vector<std::string> args = {"quantize", "--model", model, "--out", out_.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_tool(HALO_ENGINE_EXE, args);
    }
    // Nothing but what the test made is left in the output's parent: no half-written model, no temporary folder.
    void expect_nothing_written(const std::set<std::string>& expected, const std::string& what) {
        std::set<std::string> names;
        for (const auto& e : fs::directory_iterator(work_)) names.insert(e.path().filename().string());
        EXPECT_EQ(names, expected) << what;
    }

    fs::path work_, out_;
};

TEST_F(QuantizeCli, TinyExpertsInt4MatchTheCompressedTensorsGolden) {
    const std::string golden = golden_dir();
    const ToolRun r = quantize(golden + "/tiny", {"--quantize-experts", "int4"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("quantized 72 modules"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" MB out"), std::string::npos) << r.out;

    const auto want = Checkpoint::open(golden + "/tiny-int4");
    const auto got = Checkpoint::open(out_);
    std::set<std::string> want_names, got_names;
    for (const auto& [name, t] : want->tensors()) want_names.insert(name);
    for (const auto& [name, t] : got->tensors()) got_names.insert(name);
    EXPECT_EQ(got_names, want_names);
    for (const auto& [name, w] : want->tensors()) {
        const TensorRecord* g = got->find(name);
        if (!g) continue;  // reported above
        EXPECT_EQ(g->dtype, w.dtype) << name;
        EXPECT_EQ(g->shape, w.shape) << name;
        EXPECT_EQ(fs::path(g->file).filename(), fs::path(w.file).filename()) << name << " changed shard";
        EXPECT_TRUE(bytes_of(*g) == bytes_of(w)) << name << ": bytes differ from the golden";
    }
    // The index names every tensor; the other files are copied unchanged.
    const json index = read_json(out_ / "model.safetensors.index.json");
    EXPECT_EQ(index["weight_map"].size(), want_names.size());
    for (const char* f : {"prompt.json", "greedy.json", "logits.npy"})
        EXPECT_EQ(read_whole_file(out_ / f), read_whole_file(fs::path(golden) / "tiny" / f)) << f;

    // config.json: the input's keys unchanged, plus a quantization_config that maps each module as the golden's.
    json config = read_json(out_ / "config.json");
    json source = read_json(fs::path(golden) / "tiny" / "config.json");
    const json qc = config["quantization_config"];
    config.erase("quantization_config");
    EXPECT_EQ(config, source);
    const QuantizationConfig mine = parse_quantization_config(qc, "config.json");
    const QuantizationConfig theirs =
        parse_quantization_config(read_json(fs::path(golden) / "tiny-int4" / "config.json")["quantization_config"],
                                  "golden config.json");
    EXPECT_EQ(std::set<std::string>(mine.ignore.begin(), mine.ignore.end()),
              std::set<std::string>(theirs.ignore.begin(), theirs.ignore.end()));
    const auto src = Checkpoint::open(golden + "/tiny");
    int quantized = 0;
    for (const auto& [name, t] : src->tensors()) {
        if (weight_class(name) == WeightClass::other || t.shape.size() != 2) continue;
        const std::string module = name.substr(0, name.size() - 7);
        const QuantScheme* a = mine.scheme_for(module);
        const QuantScheme* b = theirs.scheme_for(module);
        ASSERT_EQ(a == nullptr, b == nullptr) << module;
        if (!a) continue;
        EXPECT_EQ(a->bits, 4) << module;
        EXPECT_EQ(a->group_size, 32) << module;
        ++quantized;
    }
    EXPECT_EQ(quantized, 72);
}

TEST_F(QuantizeCli, ConvertedModelRunsToTheGoldenLogits) {
    // The converter's output is a model the engine loads: its prompt logits match the float64 reference run on the
    // int4 golden (README: about 1e-4 of max |logit| = 4.8, so 5e-4 absolute).
    const std::string golden = golden_dir();
    ASSERT_EQ(quantize(golden + "/tiny", {"--quantize-experts", "int4", "--quiet"}).code, 0);
    std::string ids;
    const json prompt = read_json(fs::path(golden) / "tiny-int4" / "prompt.json");
    for (const json& id : prompt.at("ids"))
        ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
    const fs::path logits = work_ / "logits.npy";
    const ToolRun r = run_tool(HALO_ENGINE_EXE, {"logits", "--backend=cpu", "--model", out_.string(), "--prompt-ids",
                                                 ids, "--out", logits.string()});
    ASSERT_EQ(r.code, 0) << r.err;
    const NpyArray got = read_npy(logits), want = read_npy(fs::path(golden) / "tiny-int4" / "logits.npy");
    ASSERT_EQ(got.shape, want.shape);
    const std::vector<float> g = got.as_floats(), w = want.as_floats();
    double worst = 0;
    for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(double(g[i]) - double(w[i])));
    EXPECT_LT(worst, 5e-4);
}

TEST_F(QuantizeCli, MixedInt4Int8RoundTripsEveryLinearWeight) {
    // A generated model in F16 (so the quantizer reads a second float type), one shard, group 48: the hidden width
    // of 64 leaves a partial group.
    const fs::path model = work_ / "model";
    const ToolRun g = run_tool(HALO_KIMI_GEN_EXE, {"--preset", "tiny", "--quiet", "--dtype", "F16", "--seed", "7",
                                                   "--out", model.string()});
    ASSERT_EQ(g.code, 0) << g.err;
    const ToolRun r = quantize(model.string(), {"--quantize-experts", "int4", "--quantize-shared", "int8",
                                                "--quantize-attention", "int8", "--quantize-lm-head", "int4",
                                                "--quantize-group", "48"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::exists(out_ / "model.safetensors"));
    const QuantizationConfig qc = parse_quantization_config(read_json(out_ / "config.json")["quantization_config"],
                                                            "config.json");
    ASSERT_EQ(qc.schemes.size(), 2u);
    EXPECT_TRUE(qc.ignore.empty());  // every Linear module is quantized

    const auto src = Checkpoint::open(model);
    const auto got = Checkpoint::open(out_);
    int checked = 0;
    for (const auto& [name, s] : src->tensors()) {
        const WeightClass cls = weight_class(name);
        if (cls == WeightClass::other || s.shape.size() != 2) {
            const TensorRecord* c = got->find(name);
            ASSERT_NE(c, nullptr) << name;
            EXPECT_EQ(c->dtype, s.dtype) << name;
            EXPECT_TRUE(bytes_of(*c) == bytes_of(s)) << name << " was not copied byte for byte";
            continue;
        }
        const std::string module = name.substr(0, name.size() - 7);
        const ops::DType fmt = cls == WeightClass::experts || cls == WeightClass::lm_head ? ops::DType::q4 : ops::DType::q8;
        const QuantScheme* scheme = qc.scheme_for(module);
        ASSERT_NE(scheme, nullptr) << module;
        EXPECT_EQ(scheme->format(), fmt) << module;
        EXPECT_EQ(scheme->group_size, 48) << module;
        EXPECT_EQ(got->find(name), nullptr) << name << " is still stored as floats";
        const TensorRecord* packed = got->find(module + ".weight_packed");
        const TensorRecord* scale = got->find(module + ".weight_scale");
        const TensorRecord* shape = got->find(module + ".weight_shape");
        ASSERT_TRUE(packed && scale && shape) << module;
        ASSERT_EQ(s.dtype, "F16");
        const int64_t rows = s.shape[0], cols = s.shape[1], groups = (cols + 47) / 48;
        EXPECT_EQ(packed->shape, (std::vector<int64_t>{rows, int64_t(ops::row_bytes(fmt, cols) / 4)})) << module;
        EXPECT_EQ(scale->shape, (std::vector<int64_t>{rows, groups})) << module;
        ASSERT_EQ(shape->dtype, "I64");
        int64_t logical[2];
        ASSERT_EQ(shape->end - shape->begin, sizeof logical);
        std::memcpy(logical, shape->data, sizeof logical);
        EXPECT_EQ(logical[0], rows);
        EXPECT_EQ(logical[1], cols);

        // The converter's values, dequantized, equal ref::quantize_rows' output on the source, element by element.
        std::vector<uint8_t> want_packed(size_t(rows) * ops::row_bytes(fmt, cols)), want_scale(size_t(rows * groups) * 2);
        ref::quantize_rows(s.data, ops::DType::f16, rows, cols, fmt, 48, ops::DType::bf16, want_packed.data(),
                           want_scale.data());
        ASSERT_EQ(packed->end - packed->begin, want_packed.size()) << module;
        ASSERT_EQ(scale->end - scale->begin, want_scale.size()) << module;
        ops::Buffer wb, sb, gb, gsb;
        wb.host = want_packed.data();
        sb.host = want_scale.data();
        gb.host = const_cast<uint8_t*>(packed->data);
        gsb.host = const_cast<uint8_t*>(scale->data);
        ops::Tensor want = ops::make_tensor(&wb, 0, fmt, {rows, cols});
        want.scale = ops::QuantScale{&sb, 0, ops::DType::bf16, 48};
        ops::Tensor have = ops::make_tensor(&gb, 0, fmt, {rows, cols});
        have.scale = ops::QuantScale{&gsb, 0, ops::DType::bf16, 48};
        int64_t mismatches = 0;
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) mismatches += ops::weight_at(have, i, j) != ops::weight_at(want, i, j);
        EXPECT_EQ(mismatches, 0) << module;
        EXPECT_TRUE(std::vector<uint8_t>(packed->data, packed->data + want_packed.size()) == want_packed) << module;
        ++checked;
    }
    EXPECT_GT(checked, 40);
}

TEST_F(QuantizeCli, RefusesAnAlreadyQuantizedModel) {
    const ToolRun r = quantize(golden_dir() + "/tiny-int4", {"--quantize-experts", "int4"});
    expect_clear_error(r, {"config.json", "quantization_config", "already quantized"}, "a quantized input");
    expect_nothing_written({}, "a quantized input");
}

TEST_F(QuantizeCli, RefusesWhenNothingIsChosen) {
    expect_clear_error(quantize(golden_dir() + "/tiny", {}), {"nothing to quantize", "--quantize-experts"},
                       "no --quantize-* flag");
    expect_clear_error(quantize(golden_dir() + "/tiny", {"--quantize-experts", "none", "--quantize-shared", "none"}),
                       {"nothing to quantize", "--quantize-experts"}, "every class none");
    expect_clear_error(quantize(golden_dir() + "/tiny", {"--quantize-experts", "int3"}), {"--quantize-experts"},
                       "an unknown format");
    expect_nothing_written({}, "nothing chosen");
}

TEST_F(QuantizeCli, RefusesANonEmptyOutputUnlessForced) {
    fs::create_directories(out_);
    std::ofstream(out_ / "keep.txt") << "mine";
    const ToolRun r = quantize(golden_dir() + "/tiny", {"--quantize-experts", "int4"});
    expect_clear_error(r, {"--out", "not empty", "--force"}, "a non-empty --out");
    EXPECT_EQ(read_whole_file(out_ / "keep.txt"), "mine");
    expect_nothing_written({"out"}, "a non-empty --out");

    const ToolRun forced = quantize(golden_dir() + "/tiny", {"--quantize-experts", "int4", "--force"});
    ASSERT_EQ(forced.code, 0) << forced.err;
    EXPECT_FALSE(fs::exists(out_ / "keep.txt"));
    EXPECT_TRUE(fs::exists(out_ / "config.json"));
    expect_nothing_written({"out"}, "a forced conversion");

    // An empty folder is fine without --force, also named with a trailing slash.
    fs::remove_all(out_);
    fs::create_directories(out_);
    out_ = out_.string() + "/";
    EXPECT_EQ(quantize(golden_dir() + "/tiny", {"--quantize-experts", "int8"}).code, 0);
    EXPECT_TRUE(fs::exists(out_ / "config.json"));
    expect_nothing_written({"out"}, "an output named with a trailing slash");
}

TEST_F(QuantizeCli, RefusesBadDirectories) {
    expect_clear_error(quantize((work_ / "missing").string(), {"--quantize-experts", "int4"}), {"missing"},
                       "a missing model directory");
    out_ = work_ / "no" / "such" / "parent";
    expect_clear_error(quantize(golden_dir() + "/tiny", {"--quantize-experts", "int4"}), {"parent", "does not exist"},
                       "a missing parent folder");
    expect_nothing_written({}, "bad directories");
}

TEST_F(QuantizeCli, AFailureLeavesNoModelBehind) {
    // The model folder holds a FIFO beside its files: the tensors are written before the other files are copied,
    // and the copy refuses it, so the conversion fails part-way; no output folder and no temporary folder remain.
    const fs::path model = work_ / "model";
    fs::create_directories(model);
    const fs::path golden = fs::path(golden_dir()) / "tiny";
    for (const auto& e : fs::directory_iterator(golden)) fs::copy_file(e.path(), model / e.path().filename());
    ASSERT_EQ(::mkfifo((model / "tokenizer.pipe").c_str(), 0600), 0);
    const ToolRun r = quantize(model.string(), {"--quantize-experts", "int4"});
    expect_clear_error(r, {"tokenizer.pipe", "not a regular file"}, "a FIFO in the model folder");
    expect_nothing_written({"model"}, "a failed conversion");

    // A truncated shard is refused before anything is written.
    const std::string second = read_whole_file(golden / "model-00002-of-00002.safetensors");
    fs::remove(model / "tokenizer.pipe");
    fs::remove(model / "model-00002-of-00002.safetensors");
    std::ofstream(model / "model-00002-of-00002.safetensors", std::ios::binary) << second.substr(0, second.size() / 2);
    expect_clear_error(quantize(model.string(), {"--quantize-experts", "int4"}), {"model-00002-of-00002.safetensors"},
                       "a truncated shard");
    expect_nothing_written({"model"}, "a truncated shard");
}

}  // namespace
}  // namespace halo::test
