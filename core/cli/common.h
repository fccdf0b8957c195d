// Options shared by the commands that run a model, and the code that turns them into a loaded backend + model.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/model.h"
#include "core/plugin_loader.h"
#include "core/profile/options.h"
#include "core/quantization.h"

namespace halo::cli {

// The demo model built beside the engine (../models/demo relative to the executable).
std::string demo_model_dir();

struct Engine {
    std::unique_ptr<LoadedBackend> backend;
    std::unique_ptr<ops::Backend> op_timer;  // set when HALO_OP_TIMING=1: wraps backend, prints op times at exit
    std::unique_ptr<ops::Backend> checker;   // set by --check: wraps backend (or the op timer), compares each op
    std::unique_ptr<Model> model;
};

// Loads the backend plugin and the model. Prints the memory plan to stderr before any weight is loaded and refuses
// (std::runtime_error with the numbers and the key to change) a plan that does not fit; after loading, prints what
// was allocated beside the plan and a one-line summary. Nothing printed when quiet. context = "auto" is resolved
// here (the largest context the plan fits, at least o.context: see fit_context). `wrap`, when set, puts a command's
// own decorators around the plugin (under op timing and check mode) and returns the backend the model runs on; the
// caller owns them, and they must outlive the Engine.
using BackendWrap = std::function<ops::Backend&(ops::Backend& plugin)>;
Engine open_engine(const RunOptions& o, int32_t sequences = 1, const BackendWrap& wrap = {});

// What a memory plan is computed from: the model's config and its tensors as they will be held.
struct PlanSource {
    ModelConfig config;
    std::unique_ptr<Checkpoint> checkpoint;  // the mapped files the tensors point into (none from a config file)
    std::vector<WeightTensor> weights;
    std::vector<uint64_t> file_bytes;
};
// From a model directory's config.json and checkpoint headers (checked as loading checks them).
PlanSource plan_source_from_dir(const std::string& dir, const QuantChoice& quantize);
// From a config.json file alone: BF16 tensors unless its dtype or quantization_config or `quantize` says otherwise.
PlanSource plan_source_from_config(const std::string& path, const QuantChoice& quantize);

// Where each size a refusal names came from (source_of for every key refusal() uses, budgets included).
OptionOrigins option_origins(const RunOptions& o);
// The plan for these options. backend may be null (then `unavailable` says why).
MemoryPlan plan_for(const PlanSource& src, const RunOptions& o, int32_t sequences, const ops::Backend* backend,
                    const std::string& unavailable = "");
// context = "auto": sets o.context to the largest context (a multiple of 256 tokens, at most the model's maximum
// length) whose plan fits, and returns what it picked and why it stops there. Throws when that is less than the
// o.context the job needs, or when nothing fits.
ContextChoice resolve_auto_context(RunOptions& o, int32_t sequences, const PlanSource& src, const ops::Backend* backend);

// The model directory the options name: --model, or the built-in demo model (which must have been built).
std::string model_dir_of(const RunOptions& o);

// "1,2,3" -> ids. Throws std::runtime_error naming `flag` on bad text (empty items, signs, numbers out of range).
std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag);

// Throws unless every id is below the model's vocabulary size; names `what` (e.g. "--prompt-ids").
void check_ids_in_vocab(const std::vector<int32_t>& ids, int64_t vocab_size, const std::string& what);

// Checks that `need` tokens fit the model's maximum length, then grows o.context to hold them, or, when the user
// fixed --context (`context_given`), checks that it does. With context = "auto", o.context becomes the least
// context the job needs and open_engine checks the context it picks against it. `job` names what needs them in
// messages ("the prompt (5 tokens)").
void fit_context(RunOptions& o, bool context_given, const ModelConfig& c, int64_t need, const std::string& job);

// Throws unless `path` can be written (not a directory, its folder exists, the file can be created), so that a long
// run does not end in an output error. Leaves no file behind that was not there before.
void check_output_path(const std::string& path, const std::string& flag);

}  // namespace halo::cli
