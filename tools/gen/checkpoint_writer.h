// Writes random Kimi-Linear checkpoints in the Hugging Face layout (config.json, safetensors shards, index), with
// the real tensor names, shapes and dtypes, deterministic from a seed. Used by the `kimi_gen` tool (which builds
// the demo model), by tests that need a model of a given shape, and by the benchmarks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace halo::gen {

struct GenOptions {
    uint64_t seed = 1;
    int32_t shards = 1;          // 1 = a single model.safetensors; more = model-0000i-of-0000n + index
    std::string weight_dtype = "BF16";  // BF16, F16 or F32 for every tensor except A_log and dt_bias (always F32)
    // Called with (bytes written, total bytes) as tensors are written; may be empty.
    std::function<void(uint64_t, uint64_t)> progress;
};

// A config.json document for one of the named presets: "tiny" (the golden test model's shape), "demo" (the
// built-in demo model) or "bench" (the real 48B-A3B widths with 4 layers and 32 experts, about 3.3 GB).
nlohmann::json preset_config(const std::string& name);

// Writes config.json and the weights into dir (created if needed). Throws std::runtime_error on a bad config or
// an I/O failure. Returns the number of bytes of tensor data written.
uint64_t write_checkpoint(const std::filesystem::path& dir, const nlohmann::json& config, const GenOptions& options);

}  // namespace halo::gen
