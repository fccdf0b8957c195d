// The fingerprint a saved prefix cache is checked against: the same model files give the same "model" value wherever
// they lie, and any change a loaded cache would be wrong for gives another: config.json, every tensor's values (a
// fine-tune with the same shapes), or one small tensor alone; each numerics option changes its own key.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/safetensors.h"
#include "server/cache_fingerprint.h"
#include "tests/support/scratch_dir.h"

namespace halo::server {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    ASSERT_TRUE(out.good()) << p;
}

// A copy of the demo model's config.json and checkpoint in `dir`.
void copy_demo(const fs::path& dir) {
    fs::create_directories(dir);
    for (const char* name : {"config.json", "model.safetensors"})
        fs::copy_file(fs::path(HALO_DEMO_DIR) / name, dir / name, fs::copy_options::overwrite_existing);
}

// Applies `edit` to the stored bytes of the tensors `pick` selects (the header stays as it is).
template <class Pick, class Edit>
void edit_tensors(const fs::path& file, Pick pick, Edit edit) {
    std::string bytes = read_file(file);
    uint64_t header = 0;
    std::memcpy(&header, bytes.data(), sizeof header);
    const uint64_t data_begin = 8 + header;
    int edited = 0;
    for (const TensorRecord& t :
         parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), file.string())) {
        if (!pick(t)) continue;
        for (uint64_t i = t.begin; i < t.end; ++i) edit(bytes[data_begin + i], i - t.begin);
        ++edited;
    }
    ASSERT_GT(edited, 0);
    write_file(file, bytes);
}

TEST(CacheFingerprint, SameFilesSameModelWhereverTheyLie) {
    const fs::path dir = test::scratch_dir("fingerprint") / "copy";
    copy_demo(dir);
    const std::string original = model_digest(HALO_DEMO_DIR);
    EXPECT_EQ(model_digest(dir), original);
    EXPECT_NE(original.find("(config.json + 1 checkpoint file)"), std::string::npos) << original;
    fs::remove_all(dir.parent_path());
}

TEST(CacheFingerprint, ConfigTextChangesTheModel) {
    const fs::path dir = test::scratch_dir("fingerprint") / "config";
    copy_demo(dir);
    write_file(dir / "config.json", read_file(dir / "config.json") + " ");
    EXPECT_NE(model_digest(dir), model_digest(HALO_DEMO_DIR));
    fs::remove_all(dir.parent_path());
}

TEST(CacheFingerprint, AFineTuneWithTheSameShapesIsAnotherModel) {
    const fs::path dir = test::scratch_dir("fingerprint") / "tuned";
    copy_demo(dir);
    // Every BF16 value one step away (the low mantissa bit of each 2-byte element): same header, same size.
    edit_tensors(
        dir / "model.safetensors", [](const TensorRecord& t) { return t.dtype == "BF16"; },
        [](char& b, uint64_t i) {
            if (i % 2 == 0) b = char(b ^ 1);
        });
    EXPECT_EQ(fs::file_size(dir / "model.safetensors"), fs::file_size(fs::path(HALO_DEMO_DIR) / "model.safetensors"));
    EXPECT_NE(model_digest(dir), model_digest(HALO_DEMO_DIR));
    fs::remove_all(dir.parent_path());
}

TEST(CacheFingerprint, OneSmallTensorChangedIsAnotherModel) {
    const fs::path dir = test::scratch_dir("fingerprint") / "norm";
    copy_demo(dir);
    // The final norm only (a few hundred bytes in a 23 MB file): missed by blocks sampled over the file alone.
    edit_tensors(
        dir / "model.safetensors", [](const TensorRecord& t) { return t.name == "model.norm.weight"; },
        [](char& b, uint64_t) { b = char(b ^ 1); });
    EXPECT_NE(model_digest(dir), model_digest(HALO_DEMO_DIR));
    fs::remove_all(dir.parent_path());
}

TEST(CacheFingerprint, EveryNumericsOptionHasItsKey) {
    FingerprintSource src;
    src.engine_build = "halo 0.1.0 commit abc1234";
    src.model_dir = HALO_DEMO_DIR;
    src.plugin = "cpu";
    src.device = "Some CPU (2 threads)";
    const CacheFingerprint base = cache_fingerprint(src);
    EXPECT_EQ(base.at("engine"), "halo 0.1.0 commit abc1234");
    EXPECT_EQ(base.at("backend"), "cpu");
    EXPECT_EQ(base.at("device"), "Some CPU (2 threads)");
    EXPECT_EQ(base.at("model"), model_digest(HALO_DEMO_DIR));
    EXPECT_EQ(base, cache_fingerprint(src));

    // Each change differs from `base` in exactly the named key.
    auto differs_in = [&](const std::string& key, auto change) {
        FingerprintSource other = src;
        change(other);
        const CacheFingerprint f = cache_fingerprint(other);
        for (const auto& [k, v] : base) {
            if (k == key)
                EXPECT_NE(f.at(k), v) << key;
            else
                EXPECT_EQ(f.at(k), v) << "changing " << key << " changed " << k;
        }
    };
    differs_in("engine", [](FingerprintSource& s) { s.engine_build = "halo 0.1.0 commit def5678"; });
    differs_in("backend", [](FingerprintSource& s) { s.plugin = "vulkan"; });
    differs_in("device", [](FingerprintSource& s) { s.device = "Other CPU (2 threads)"; });
    differs_in("cache_dtype", [](FingerprintSource& s) { s.options.cache_dtype = ops::DType::bf16; });
    differs_in("kda_form", [](FingerprintSource& s) { s.options.kda_form = ops::KdaForm::recurrent; });
    differs_in("mla_form", [](FingerprintSource& s) { s.options.mla_form = ops::MlaForm::absorbed; });
    differs_in("moe_weighting", [](FingerprintSource& s) { s.options.moe_weighting = ops::MoeWeighting::biased; });
    differs_in("quantize", [](FingerprintSource& s) { s.options.quantize.experts = ops::DType::q4; });
    differs_in("kda_chunk", [](FingerprintSource& s) { s.options.kda_chunk = 32; });
    differs_in("kv_norm_eps", [](FingerprintSource& s) { s.options.kv_norm_eps = 1e-6; });
}

}  // namespace
}  // namespace halo::server
