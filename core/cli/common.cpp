#include "core/cli/common.h"
#include "core/cli/progress.h"
#include "core/input/excerpt.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>

#include <boost/dll/runtime_symbol_info.hpp>

#include "core/check_backend.h"
#include "core/profile_backend.h"

namespace halo::cli {

void add_quantize_options(CLI::App& app, QuantTexts& q) {
    const auto formats = CLI::IsMember({"int4", "int8", "none"});
    app.add_option("--quantize-experts", q.experts,
                   "Quantize the routed experts of a float checkpoint at load: int4, int8 or none")
        ->check(formats)->capture_default_str();
    app.add_option("--quantize-shared", q.shared,
                   "Quantize the shared experts and the dense MLP: int4, int8 or none")
        ->check(formats)->capture_default_str();
    app.add_option("--quantize-attention", q.attention,
                   "Quantize the KDA and MLA projections: int4, int8 or none")
        ->check(formats)->capture_default_str();
    app.add_option("--quantize-lm-head", q.lm_head, "Quantize the output projection (lm_head): int4, int8 or none")
        ->check(formats)->capture_default_str();
    app.add_option("--quantize-group", q.group,
                   "Inputs per scale of --quantize-* (symmetric, BF16 scales, the compressed-tensors recipe)")
        ->check(CLI::Range(1, 1 << 16))->capture_default_str();
}

QuantChoice QuantTexts::choice() const {
    QuantChoice c;
    c.experts = parse_quant_format(experts, "--quantize-experts");
    c.shared = parse_quant_format(shared, "--quantize-shared");
    c.attention = parse_quant_format(attention, "--quantize-attention");
    c.lm_head = parse_quant_format(lm_head, "--quantize-lm-head");
    c.group = group;
    return c;
}

void add_run_options(CLI::App& app, RunOptions& o) {
    app.add_option("--backend", o.backend, "Backend plugin: cpu, vulkan or hip")->capture_default_str();
    app.add_option("--model", o.model_dir, "Model directory (config.json + safetensors); default: the built-in demo model")
        ->check(kNonEmpty);
    app.add_option("--plugin-dir", o.plugin_dir, "Also look for backend plugins in this directory")->check(kNonEmpty);
    app.add_option("--threads", o.threads,
                   "CPU threads (0 = every CPU this process may use; more than the hardware threads is capped, with a "
                   "warning)")
        ->check(CLI::Range(0, 4096))
        ->capture_default_str();
    app.add_option("--device", o.device, "Device index for GPU backends (-1 = best)")
        ->check(CLI::Range(-1, 4096))
        ->capture_default_str();
    app.add_option("--device-name", o.device_name, "Pick the GPU whose name contains this text")->check(kNonEmpty);
    app.add_option("--moe-weighting", o.moe_weighting,
                   "MoE mixing weights: unbiased (vLLM/llama.cpp, default) or biased (as the HF code computes)")
        ->check(CLI::IsMember({"unbiased", "biased"}))
        ->capture_default_str();
    app.add_option("--context", o.context, "Maximum tokens per sequence (sizes the MLA cache)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 32))
        ->capture_default_str();
    app.add_option("--chunk", o.chunk, "Prefill chunk: tokens per forward step")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    app.add_option("--cache-dtype", o.cache_dtype, "MLA latent cache element type: f32, f16 or bf16")
        ->check(CLI::IsMember({"f32", "f16", "bf16"}))
        ->capture_default_str();
    app.add_option("--kda-form", o.kda_form, "KDA evaluation: auto, recurrent or chunked (debugging)")
        ->check(CLI::IsMember({"auto", "recurrent", "chunked"}));
    app.add_option("--mla-form", o.mla_form, "MLA evaluation: auto, expanded or absorbed (debugging)")
        ->check(CLI::IsMember({"auto", "expanded", "absorbed"}));
    app.add_option("--weights-placement", o.placement[0], "Placement of weights (see `engine backends`)")->check(kNonEmpty);
    app.add_option("--state-placement", o.placement[1], "Placement of KDA states")->check(kNonEmpty);
    app.add_option("--cache-placement", o.placement[2], "Placement of the MLA cache")->check(kNonEmpty);
    app.add_option("--scratch-placement", o.placement[3], "Placement of activations")->check(kNonEmpty);
    add_quantize_options(app, o.quantize);
    app.add_flag("--quiet", o.quiet, "Print nothing but results and errors");
    app.add_flag("--check", o.check,
                 "Check mode: run every op also on the reference and stop at the first that diverges (slow)");
    app.add_flag("--validation", o.validation, "Turn on the driver's validation layers (Vulkan: Khronos validation)");
}

std::string demo_model_dir() {
    boost::dll::fs::error_code ec;
    const auto exe = boost::dll::program_location(ec);
    if (ec) return "models/demo";
    return (std::filesystem::path(exe.parent_path().string()).parent_path() / "models" / "demo").string();
}

std::string model_dir_of(const RunOptions& o) {
    if (!o.model_dir.empty()) return o.model_dir;
    const std::string dir = demo_model_dir();
    if (!std::filesystem::exists(std::filesystem::path(dir) / "config.json"))
        throw std::runtime_error("the built-in demo model was not found at " + dir +
                                 " (build the demo_model target, or pass --model DIR)");
    return dir;
}

Engine open_engine(const RunOptions& o, int32_t sequences) {
    const auto t0 = std::chrono::steady_clock::now();
    ops::BackendOptions bo;
    bo.threads = o.threads;
    bo.device_index = o.device;
    bo.device_name = o.device_name;
    bo.validation = o.validation;
    Engine e;
    e.backend = load_backend(o.backend, bo, o.plugin_dir);
    ModelOptions mo;
    for (int u = 0; u < ops::kMemoryUseCount; ++u) mo.placement[u] = o.placement[u];
    mo.max_step_rows = int32_t(std::min<int64_t>(o.chunk, o.context));  // no scratch for rows a step never holds
    mo.max_sequences = sequences;
    mo.warm_up = o.warm_up;
    mo.quantize = o.quantize.choice();
    mo.max_context = o.context;
    mo.page_size = int32_t(std::min<int64_t>(256, o.context));
    mo.cache_dtype = parse_cache_dtype(o.cache_dtype);
    mo.moe_weighting = o.moe_weighting == "biased" ? ops::MoeWeighting::biased : ops::MoeWeighting::unbiased;
    mo.kda_form = o.kda_form == "recurrent" ? ops::KdaForm::recurrent
                  : o.kda_form == "chunked" ? ops::KdaForm::chunked
                                            : ops::KdaForm::automatic;
    mo.mla_form = o.mla_form == "expanded" ? ops::MlaForm::expanded
                  : o.mla_form == "absorbed" ? ops::MlaForm::absorbed
                                             : ops::MlaForm::automatic;
    auto load_progress = std::make_shared<Progress>("copying weights", !o.quiet);
    if (!o.quiet)
        mo.on_load_progress = [load_progress, last_pct = -1](uint64_t done, uint64_t total) mutable {
            const int pct = int(100 * done / std::max<uint64_t>(total, 1));
            if (total >= (1ull << 30) && pct / 5 != last_pct / 5) {
                char text[64];
                std::snprintf(text, sizeof text, "%3d%% of %.1f GB", pct, double(total) / 1e9);
                load_progress->update(done, total, text);
                last_pct = pct;
            }
        };
    const std::string dir = model_dir_of(o);
    ops::Backend* backend = &e.backend->backend();
    if (const char* prof = std::getenv("HALO_PROFILE"); prof && std::string(prof) == "1") {
        e.profiler = std::make_unique<ProfileBackend>(*backend);
        backend = e.profiler.get();
    }
    if (o.check) {
        e.checker = std::make_unique<CheckBackend>(*backend);
        backend = e.checker.get();
    }
    try {
        e.model = std::make_unique<Model>(*backend, dir, mo);
    } catch (const std::exception& err) {
        // The exception may have been thrown inside the plugin, whose code goes away with `e`: keep only its text.
        load_progress->finish();
        throw std::runtime_error(err.what());
    }
    load_progress->finish();
    if (const auto& unused = e.model->unused_tensors(); !unused.empty())
        std::fprintf(stderr, "engine: warning: %zu tensor%s of the checkpoint %s not used by its config.json (first: %s); "
                     "check that the config matches the weights\n",
                     unused.size(), unused.size() == 1 ? "" : "s", unused.size() == 1 ? "is" : "are",
                     input::quote(unused.front(), input::kNameBytes).c_str());
    if (!o.quiet) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const ModelConfig& c = e.model->config();
        std::fprintf(stderr, "engine: %s on %s: %d layers (%d KDA, %d MLA), hidden %lld, vocab %lld; %s; loaded in %.2f s\n",
                     dir.c_str(), e.backend->backend().device().name.c_str(), c.num_hidden_layers,
                     c.count(MixerKind::kda), c.count(MixerKind::mla), (long long)c.hidden_size,
                     (long long)c.vocab_size, e.model->plan().describe(e.backend->backend().device()).c_str(), secs);
    }
    return e;
}

namespace {

// Digits only (no sign, no spaces), and the value fits 64 bits.
std::optional<uint64_t> parse_decimal(std::string_view s) {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos || ec != std::errc() ||
        end != s.data() + s.size())
        return std::nullopt;
    return v;
}

}  // namespace

std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag) {
    std::vector<int32_t> ids;
    if (text.find_first_not_of(" \t") == std::string::npos) return ids;
    size_t pos = 0;
    while (true) {
        const size_t comma = std::min(text.find(',', pos), text.size());
        std::string item = text.substr(pos, comma - pos);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        const std::string shown = input::quote(item, 40);
        if (item.empty())
            throw std::runtime_error(flag + ": an empty item in " + input::quote(text, 80) +
                                     " (give ids separated by single commas, like 1,2,3)");
        const std::optional<uint64_t> v = parse_decimal(item);
        if (!v) throw std::runtime_error(flag + ": " + shown + " is not a token id (ids are whole numbers from 0, like 1,2,3)");
        if (*v > INT32_MAX) throw std::runtime_error(flag + ": " + shown + " is too large to be a token id");
        ids.push_back(int32_t(*v));
        if (comma == text.size()) break;
        pos = comma + 1;
    }
    return ids;
}

void check_ids_in_vocab(const std::vector<int32_t>& ids, int64_t vocab_size, const std::string& what) {
    for (size_t i = 0; i < ids.size(); ++i)
        if (ids[i] >= vocab_size)
            throw std::runtime_error(what + ": token id " + std::to_string(ids[i]) + " (item " + std::to_string(i + 1) +
                                     ") is outside the model's vocabulary (ids 0.." + std::to_string(vocab_size - 1) + ")");
}

void fit_context(RunOptions& o, bool context_given, const ModelConfig& c, int64_t need, const std::string& job) {
    if (c.model_max_length > 0 && need > c.model_max_length)
        throw std::runtime_error(job + " needs " + std::to_string(need) + " tokens, more than the model's maximum length " +
                                 std::to_string(c.model_max_length) + " (model_max_length in config.json)");
    if (!context_given)
        o.context = std::max<int64_t>(o.context, need);
    else if (need > o.context)
        throw std::runtime_error(job + " needs a context of " + std::to_string(need) + " tokens, more than --context " +
                                 std::to_string(o.context) + "; raise --context");
}

void check_output_path(const std::string& path, const std::string& flag) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw std::runtime_error(flag + " " + path + " is a directory; give a file name");
    if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
        throw std::runtime_error(flag + " " + path + " is not a regular file (a FIFO or device would block or lose the "
                                 "output); give a file name");
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
        throw std::runtime_error(flag + " " + path + ": the folder " + parent.string() + " does not exist");
    const bool existed = fs::exists(path, ec);
    FILE* f = std::fopen(path.c_str(), "ab");
    if (!f) throw std::runtime_error(flag + " " + path + " cannot be written: " + std::strerror(errno));
    std::fclose(f);
    if (!existed) fs::remove(path, ec);
}

const CLI::Validator kNonEmpty(
    [](std::string& s) { return s.empty() ? std::string("the value is empty") : std::string(); }, "NON-EMPTY");

const CLI::Validator kUnsigned64(
    [](std::string& s) {
        return parse_decimal(s) ? std::string() : input::quote(s) + " is not a whole number from 0 to 18446744073709551615";
    },
    "UINT64");

}  // namespace halo::cli
