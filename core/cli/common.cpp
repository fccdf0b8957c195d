#include "core/cli/common.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <boost/dll/runtime_symbol_info.hpp>

#include "core/check_backend.h"
#include "core/profile_backend.h"

namespace halo::cli {

void add_run_options(CLI::App& app, RunOptions& o) {
    app.add_option("--backend", o.backend, "Backend plugin: cpu, vulkan or hip")->capture_default_str();
    app.add_option("--model", o.model_dir, "Model directory (config.json + safetensors); default: the built-in demo model");
    app.add_option("--plugin-dir", o.plugin_dir, "Also look for backend plugins in this directory");
    app.add_option("--threads", o.threads, "CPU threads (0 = all cores)")->capture_default_str();
    app.add_option("--device", o.device, "Device index for GPU backends (-1 = best)")->capture_default_str();
    app.add_option("--device-name", o.device_name, "Pick the GPU whose name contains this text");
    app.add_option("--moe-weighting", o.moe_weighting,
                   "MoE mixing weights: unbiased (vLLM/llama.cpp, default) or biased (as the HF code computes)")
        ->check(CLI::IsMember({"unbiased", "biased"}))
        ->capture_default_str();
    app.add_option("--context", o.context, "Maximum tokens per sequence (sizes the MLA cache)")->capture_default_str();
    app.add_option("--chunk", o.chunk, "Prefill chunk: tokens per forward step")->capture_default_str();
    app.add_option("--cache-dtype", o.cache_dtype, "MLA latent cache element type: f32, f16 or bf16")
        ->check(CLI::IsMember({"f32", "f16", "bf16"}))
        ->capture_default_str();
    app.add_option("--kda-form", o.kda_form, "KDA evaluation: auto, recurrent or chunked (debugging)")
        ->check(CLI::IsMember({"auto", "recurrent", "chunked"}));
    app.add_option("--mla-form", o.mla_form, "MLA evaluation: auto, expanded or absorbed (debugging)")
        ->check(CLI::IsMember({"auto", "expanded", "absorbed"}));
    app.add_option("--weights-placement", o.placement[0], "Placement of weights (see `engine backends`)");
    app.add_option("--state-placement", o.placement[1], "Placement of KDA states");
    app.add_option("--cache-placement", o.placement[2], "Placement of the MLA cache");
    app.add_option("--scratch-placement", o.placement[3], "Placement of activations");
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
    mo.max_step_rows = o.chunk;
    mo.max_sequences = sequences;
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
    if (!o.quiet)
        mo.on_load_progress = [last_pct = -1](uint64_t done, uint64_t total) mutable {
            const int pct = int(100 * done / std::max<uint64_t>(total, 1));
            if (total >= (1ull << 30) && pct / 5 != last_pct / 5) {
                std::fprintf(stderr, "\rengine: copying weights %3d%% of %.1f GB%s", pct, double(total) / 1e9, pct == 100 ? "\n" : "");
                last_pct = pct;
            }
        };
    const std::string dir = o.model_dir.empty() ? demo_model_dir() : o.model_dir;
    if (o.model_dir.empty() && !std::filesystem::exists(std::filesystem::path(dir) / "config.json"))
        throw std::runtime_error("the built-in demo model was not found at " + dir +
                                 " (build the demo_model target, or pass --model DIR)");
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
        throw std::runtime_error(err.what());
    }
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

std::vector<int32_t> parse_ids(const std::string& text) {
    std::vector<int32_t> ids;
    size_t pos = 0;
    while (pos < text.size()) {
        while (pos < text.size() && (text[pos] == ',' || text[pos] == ' ')) ++pos;
        if (pos >= text.size()) break;
        size_t used = 0;
        long long v;
        try {
            v = std::stoll(text.substr(pos), &used);
        } catch (const std::exception&) {
            throw std::runtime_error("--prompt-ids: '" + text.substr(pos, 12) + "' is not a token id (expected 1,2,3)");
        }
        if (v < 0 || v > INT32_MAX) throw std::runtime_error("--prompt-ids: " + std::to_string(v) + " is not a valid token id");
        ids.push_back(int32_t(v));
        pos += used;
        if (pos < text.size() && text[pos] != ',' && text[pos] != ' ')
            throw std::runtime_error("--prompt-ids: unexpected '" + std::string(1, text[pos]) + "' (expected 1,2,3)");
    }
    return ids;
}

}  // namespace halo::cli
