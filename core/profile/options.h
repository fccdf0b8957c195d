// The options of every command that runs a model, as one struct filled from a TOML profile (--profile) and the
// command line (a switch given on the command line overrides its profile key), and the conversions from their text
// to the engine's types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "core/model.h"
#include "core/quantization.h"

namespace halo::cli {

// The --quantize-* options as typed (int4, int8 or none per weight class), shared by every command that loads a
// model and by `engine quantize`.
struct QuantTexts {
    std::string experts = "none", shared = "none", attention = "none", lm_head = "none";
    int32_t group = 32;
    QuantChoice choice() const;  // throws std::runtime_error naming the flag
};
void add_quantize_options(CLI::App& app, QuantTexts& q);

struct RunOptions {
    std::string profile;     // --profile: the TOML file the other fields were read from (empty: none)
    std::string backend = "cpu";
    std::string model_dir;  // empty = the built-in demo model
    std::string plugin_dir;
    int32_t threads = 0;
    int32_t device = -1;
    std::string device_name;
    std::string moe_weighting = "unbiased";
    int64_t context = 4096;
    bool context_auto = false;  // context = "auto": the largest context the memory budget holds (the plan picks it)
    int32_t sequences = 1;      // sequences run at once (KDA state slots); `serve --parallel`
    int32_t chunk = 512;
    std::string cache_dtype = "f32";
    std::string kda_form = "auto";
    std::string mla_form = "auto";
    std::string placement[ops::kMemoryUseCount];
    // Memory budget per placement name ("heap" -> bytes): the plan must fit min(budget, what the device reports).
    std::map<std::string, uint64_t> budget;
    bool quiet = false;
    bool check = false;       // re-run every op on the reference and stop at the first that diverges
    bool validation = false;  // driver validation layers (Vulkan: VK_LAYER_KHRONOS_validation)
    bool warm_up = false;     // size the plugin's temporaries with one full step at load (ModelOptions::warm_up)
    QuantTexts quantize;      // load-time quantization of a float checkpoint
};

void add_run_options(CLI::App& app, RunOptions& o);

// After parsing: reads o.profile (when set) and fills every field whose switch was not given on `app`'s command line
// from it. Every command that takes run options calls this first. Throws std::runtime_error naming the file, line
// and key for a profile it cannot use.
void apply_profile(RunOptions& o, const CLI::App& app);

// The model options the run options ask for (placements, sizes, forms, quantization); `sequences` KDA state slots.
ModelOptions model_options(const RunOptions& o, int32_t sequences);

// Digits only (no sign, no spaces) and fits 64 bits, or nothing.
std::optional<uint64_t> parse_decimal(std::string_view s);

// CLI11 validators: a non-empty value; an unsigned decimal integer that fits 64 bits.
extern const CLI::Validator kNonEmpty;
extern const CLI::Validator kUnsigned64;

}  // namespace halo::cli
