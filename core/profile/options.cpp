#include "core/profile/options.h"

#include <charconv>
#include <optional>
#include <string_view>

#include "core/input/excerpt.h"

namespace halo::cli {

// Digits only (no sign, no spaces), and the value fits 64 bits.
std::optional<uint64_t> parse_decimal(std::string_view s) {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos || ec != std::errc() ||
        end != s.data() + s.size())
        return std::nullopt;
    return v;
}


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
    app.add_option("--profile", o.profile, "TOML profile (configs/*.toml); a switch given here overrides its key")
        ->check(kNonEmpty);
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

void apply_profile(RunOptions& o, const CLI::App& app) {
    (void)app;
    if (!o.profile.empty()) throw std::runtime_error("--profile " + o.profile + ": profiles are not read yet");
}

ModelOptions model_options(const RunOptions& o, int32_t sequences) {
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
    return mo;
}

const CLI::Validator kNonEmpty(
    [](std::string& s) { return s.empty() ? std::string("the value is empty") : std::string(); }, "NON-EMPTY");

const CLI::Validator kUnsigned64(
    [](std::string& s) {
        return parse_decimal(s) ? std::string() : input::quote(s) + " is not a whole number from 0 to 18446744073709551615";
    },
    "UINT64");

}  // namespace halo::cli
