// engine plan [--profile P] [--model DIR | --config config.json] [--json]: the memory plan without loading weights.
// The backend plugin is loaded (cheap) for what its device reports per placement and for the plugin's own
// allocations; when it cannot be, the plan is printed without them.
#include <algorithm>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/cli/command.h"
#include "core/cli/common.h"

namespace halo::cli {

namespace {

struct PlanOptions {
    RunOptions run;
    std::string config;  // --config: plan from this config.json alone
    bool json = false;
};

int run_plan(PlanOptions& o, CLI::App& sub) {
    apply_profile(o.run, sub);
    // The prefix cache is the server's: planned when the profile or a switch sizes it.
    o.run.use_prefix_cache = is_set(o.run, "prefix_cache.size");
    const QuantChoice quantize = o.run.quantize.choice();
    auto source = [&]() -> PlanSource {
        if (!o.config.empty()) return plan_source_from_config(o.config, quantize);
        try {
            return plan_source_from_dir(model_dir_of(o.run), quantize);
        } catch (const std::exception& e) {
            // Plans are made before a checkpoint is fetched: point at the config-only way.
            throw std::runtime_error(std::string(e.what()) + " (" + source_of(o.run, "model") +
                                     "); to plan before the checkpoint is there, give its config.json with --config "
                                     "FILE (configs/kimi-linear-48b-a3b-instruct.json is the released 48B-A3B one)");
        }
    };
    const PlanSource src = source();

    ops::BackendOptions bo;
    bo.threads = o.run.threads;
    bo.device_index = o.run.device;
    bo.device_name = o.run.device_name;
    std::unique_ptr<LoadedBackend> backend;
    std::string unavailable;
    try {
        backend = load_backend(o.run.backend, bo, o.run.plugin_dir);
    } catch (const PluginError& e) {
        unavailable = e.what();
    }
    const ops::Backend* device = backend ? &backend->backend() : nullptr;
    if (device) check_placements(o.run, device->device());

    const int32_t sequences = o.run.sequences;
    std::string context_reason;
    if (o.run.context_auto) {
        o.run.context = 1;  // any context is worth planning
        try {
            context_reason = resolve_auto_context(o.run, sequences, src, device).reason;
            if (!device) context_reason += " (no device to set it against)";
        } catch (const std::runtime_error&) {
            // Not even one cache page fits: show the plan at one page, with the refusal that says what to change.
            const int64_t longest = src.config.model_max_length > 0 ? src.config.model_max_length : kCachePageTokens;
            o.run.context = std::min<int64_t>(kCachePageTokens, longest);
            context_reason = "context auto: not even " + std::to_string(o.run.context) +
                             " tokens fit; the plan below is at that context";
        }
    }
    const MemoryPlan plan = plan_for(src, o.run, sequences, device, unavailable);
    const std::string verdict = plan.fits() ? "" : refusal(plan, option_origins(o.run));
    if (o.json) {
        nlohmann::json j = plan_json(plan);
        j["source"] = o.config.empty() ? nlohmann::json{{"model", model_dir_of(o.run)}} : nlohmann::json{{"config", o.config}};
        j["backend"] = o.run.backend;
        j["context_auto"] = o.run.context_auto ? nlohmann::json(context_reason) : nlohmann::json(nullptr);
        j["refusal"] = verdict.empty() ? nlohmann::json(nullptr) : nlohmann::json(verdict);
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("%s: %s\n", o.config.empty() ? "model" : "config",
                o.config.empty() ? model_dir_of(o.run).c_str() : o.config.c_str());
    if (!context_reason.empty()) std::printf("%s\n", context_reason.c_str());
    std::fputs(plan_table(plan).c_str(), stdout);
    if (!verdict.empty()) std::printf("%s\n", verdict.c_str());
    return 0;
}

}  // namespace

Command add_plan_command(CLI::App& app) {
    auto o = std::make_shared<PlanOptions>();
    CLI::App* sub = app.add_subcommand(
        "plan", "The memory plan of a model (weights per dtype, KDA state, MLA cache, scratch, the plugin's own "
                "temporaries) per placement against what the device reports, without loading any weight");
    add_run_options(*sub, o->run);
    add_prefix_cache_options(*sub, o->run);
    CLI::Option* config = sub->add_option("--config", o->config,
                                          "Plan from this config.json alone (no checkpoint): BF16 weights unless its "
                                          "dtype, its quantization_config or --quantize-* say otherwise")
                              ->check(kNonEmpty);
    config->excludes(sub->get_option("--model"));
    sub->add_flag("--json", o->json, "Print the plan as JSON (for scripts; \"fits\" says whether it fits)");
    return {sub, [o, sub] { return run_plan(*o, *sub); }};
}

}  // namespace halo::cli
