// Options shared by the commands that run a model, and the code that turns them into a loaded backend + model.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/model.h"
#include "core/plugin_loader.h"
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
    std::string backend = "cpu";
    std::string model_dir;  // empty = the built-in demo model
    std::string plugin_dir;
    int32_t threads = 0;
    int32_t device = -1;
    std::string device_name;
    std::string moe_weighting = "unbiased";
    int64_t context = 4096;
    int32_t chunk = 512;
    std::string cache_dtype = "f32";
    std::string kda_form = "auto";
    std::string mla_form = "auto";
    std::string placement[ops::kMemoryUseCount];
    bool quiet = false;
    bool check = false;       // re-run every op on the reference and stop at the first that diverges
    bool validation = false;  // driver validation layers (Vulkan: VK_LAYER_KHRONOS_validation)
    bool warm_up = false;     // size the plugin's temporaries with one full step at load (ModelOptions::warm_up)
    QuantTexts quantize;      // load-time quantization of a float checkpoint
};

void add_run_options(CLI::App& app, RunOptions& o);

// The demo model built beside the engine (../models/demo relative to the executable).
std::string demo_model_dir();

struct Engine {
    std::unique_ptr<LoadedBackend> backend;
    std::unique_ptr<ops::Backend> profiler;  // set when HALO_PROFILE=1: wraps backend, prints op times at exit
    std::unique_ptr<ops::Backend> checker;   // set by --check: wraps backend (or the profiler), compares each op
    std::unique_ptr<Model> model;
};

// Loads the backend plugin and the model; prints a one-line summary to stderr unless quiet.
Engine open_engine(const RunOptions& o, int32_t sequences = 1);

// The model directory the options name: --model, or the built-in demo model (which must have been built).
std::string model_dir_of(const RunOptions& o);

// "1,2,3" -> ids. Throws std::runtime_error naming `flag` on bad text (empty items, signs, numbers out of range).
std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag);

// Throws unless every id is below the model's vocabulary size; names `what` (e.g. "--prompt-ids").
void check_ids_in_vocab(const std::vector<int32_t>& ids, int64_t vocab_size, const std::string& what);

// Checks that `need` tokens fit the model's maximum length, then grows o.context to hold them, or, when the user
// fixed --context (`context_given`), checks that it does. `job` names what needs them in messages ("the prompt (5
// tokens)").
void fit_context(RunOptions& o, bool context_given, const ModelConfig& c, int64_t need, const std::string& job);

// Throws unless `path` can be written (not a directory, its folder exists, the file can be created), so that a long
// run does not end in an output error. Leaves no file behind that was not there before.
void check_output_path(const std::string& path, const std::string& flag);

// CLI11 validators: a non-empty value; an unsigned decimal integer that fits 64 bits.
extern const CLI::Validator kNonEmpty;
extern const CLI::Validator kUnsigned64;

}  // namespace halo::cli
