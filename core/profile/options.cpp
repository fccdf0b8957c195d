#include "core/profile/options.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

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
    const auto formats = one_of({"int4", "int8", "none"});
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
        ->check(whole_number(1, 1 << 16))->capture_default_str();
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
    app.add_option("--backend", o.backend, "Backend plugin: cpu, vulkan or hip")->check(kNonEmpty)->capture_default_str();
    app.add_option("--model", o.model_dir, "Model directory (config.json + safetensors); default: the built-in demo model")
        ->check(kNonEmpty);
    app.add_option("--plugin-dir", o.plugin_dir, "Also look for backend plugins in this directory")->check(kNonEmpty);
    app.add_option("--threads", o.threads,
                   "CPU threads (0 = every CPU this process may use; more than the hardware threads is capped, with a "
                   "warning)")
        ->check(whole_number(0, 4096))
        ->capture_default_str();
    app.add_option("--device", o.device, "Device index for GPU backends (-1 = best)")
        ->check(whole_number(-1, 4096))
        ->capture_default_str();
    app.add_option("--device-name", o.device_name, "Pick the GPU whose name contains this text")->check(kNonEmpty);
    app.add_option("--moe-weighting", o.moe_weighting,
                   "MoE mixing weights: unbiased (vLLM/llama.cpp, default) or biased (as the HF code computes)")
        ->check(one_of({"unbiased", "biased"}))
        ->capture_default_str();
    app.add_option_function<std::string>(
           "--context",
           [&o](const std::string& text) {
               o.context_auto = text == "auto";
               if (!o.context_auto) o.context = int64_t(*parse_decimal(text));  // kContext checked it
           },
           "Maximum tokens per sequence (sizes the MLA cache), or auto: the largest the memory budget holds")
        ->check(kContext)
        ->default_str(std::to_string(o.context));
    app.add_option("--parallel", o.sequences,
                   "Sequences run at once (KDA state slots): requests served together, or prompts batched")
        ->check(whole_number(1, 4096))
        ->capture_default_str();
    app.add_option_function<std::vector<std::string>>(
           "--memory-budget",
           [&o](const std::vector<std::string>& items) {
               for (const std::string& item : items) {  // kBudgetItem checked each
                   const size_t eq = item.find('=');
                   o.budget[item.substr(0, eq)] = *parse_size(std::string_view(item).substr(eq + 1));
               }
           },
           "Most bytes the plan may use in a placement, NAME=SIZE (e.g. heap=96GiB; units B, KB, MB, GB, TB, KiB, MiB, "
           "GiB, TiB); repeat it or give a comma list")
        ->check(kBudgetItem)
        ->delimiter(',');
    app.add_option("--chunk", o.chunk, "Prefill chunk: tokens per forward step")
        ->check(whole_number(1, 1 << 20))
        ->capture_default_str();
    app.add_option("--cache-dtype", o.cache_dtype, "MLA latent cache element type: f32, f16 or bf16")
        ->check(one_of({"f32", "f16", "bf16"}))
        ->capture_default_str();
    app.add_option("--kda-form", o.kda_form, "KDA evaluation: auto, recurrent or chunked (debugging)")
        ->check(one_of({"auto", "recurrent", "chunked"}));
    app.add_option("--mla-form", o.mla_form, "MLA evaluation: auto, expanded or absorbed (debugging)")
        ->check(one_of({"auto", "expanded", "absorbed"}));
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

void add_server_options(CLI::App& app, ServerSettings& s) {
    app.add_option("--host", s.host, "Address to listen on (loopback by default; 0.0.0.0 for every interface)")
        ->check(kNonEmpty)
        ->capture_default_str();
    app.add_option("--port", s.port, "TCP port (0 picks a free one; the 'listening on' line says which)")
        ->check(whole_number(0, 65535))
        ->capture_default_str();
    app.add_option("--queue", s.queue, "Requests that may wait for a free sequence; more get 503")
        ->check(whole_number(0, 100000))
        ->capture_default_str();
    app.add_option("--drain-timeout", s.drain_timeout_s,
                   "Seconds running requests get to finish after SIGINT/SIGTERM before they are cancelled")
        ->check(number_between(0, 86400))
        ->capture_default_str();
    app.add_option("--model-name", s.model_name,
                   "Model id that /v1/models lists and requests may name (default: the model directory's name)")
        ->check(kNonEmpty);
}

std::optional<uint64_t> parse_size(std::string_view text) {
    // number [spaces] [unit]; the number may have a fraction ("1.5 GiB"), kept exact as digits / 10^fraction_digits.
    size_t i = 0;
    unsigned __int128 digits = 0, scale = 1;
    bool any_digit = false, point = false;
    for (; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '.' && !point) {
            point = true;
        } else if (c >= '0' && c <= '9') {
            if (digits > (unsigned __int128)(UINT64_MAX)) return std::nullopt;  // far too large already
            digits = digits * 10 + unsigned(c - '0');
            if (point) scale *= 10;
            if (scale > (unsigned __int128)(UINT64_MAX)) return std::nullopt;
            any_digit = true;
        } else {
            break;
        }
    }
    if (!any_digit) return std::nullopt;
    while (i < text.size() && text[i] == ' ') ++i;
    std::string unit(text.substr(i));
    for (char& c : unit) c = char(std::tolower((unsigned char)c));
    static const std::pair<const char*, uint64_t> kUnits[] = {
        {"", 1},  {"b", 1},  {"kb", 1000ull}, {"mb", 1000000ull}, {"gb", 1000000000ull}, {"tb", 1000000000000ull},
        {"kib", 1ull << 10}, {"mib", 1ull << 20}, {"gib", 1ull << 30}, {"tib", 1ull << 40}};
    for (const auto& [name, factor] : kUnits)
        if (unit == name) {
            const unsigned __int128 bytes = digits * factor;
            if (bytes % scale != 0 && factor == 1) return std::nullopt;  // a fraction of a byte
            const unsigned __int128 whole = (bytes + scale / 2) / scale;
            if (whole > UINT64_MAX) return std::nullopt;
            return uint64_t(whole);
        }
    return std::nullopt;
}

void add_prefix_cache_options(CLI::App& app, RunOptions& o) {
    app.add_option_function<std::string>(
           "--prefix-cache",
           [&o](const std::string& text) { o.prefix_cache = text == "off" ? 0 : *parse_size(text); },  // kSize checked it
           "Most memory for prefix-cache snapshots (KDA state copies; e.g. 4GiB; 0 or off: no prefix reuse). A "
           "request that starts with a cached prefix reads only the rest of its prompt")
        ->check(kSize)
        ->default_str("2GiB");
    app.add_option("--prefix-stride", o.prefix_stride,
                   "Prompt tokens between prefix-cache snapshots (a multiple of 64); snapshots are also taken at the "
                   "end of every prompt and every reply")
        ->check(CLI::Validator(
            [](std::string& s) {
                const std::optional<uint64_t> v = parse_decimal(s);
                return v && *v >= 64 && *v <= (uint64_t(1) << 31) && *v % 64 == 0
                           ? std::string()
                           : input::quote(s) + " is not a multiple of 64 (the KDA chunk) from 64 to 2147483648";
            },
            "N"))
        ->capture_default_str();
    app.add_option("--prefix-cache-dir", o.prefix_cache_dir,
                   "Save the prefix cache to this folder when the server stops and load it when it starts (a cache "
                   "of another engine build or model is not loaded, and says why)")
        ->check(kNonEmpty);
}

ModelOptions model_options(const RunOptions& o, int32_t sequences) {
    ModelOptions mo;
    if (o.use_prefix_cache) mo.prefix_cache_bytes = o.prefix_cache;
    for (int u = 0; u < ops::kMemoryUseCount; ++u) mo.placement[u] = o.placement[u];
    mo.max_step_rows = int32_t(std::min<int64_t>(o.chunk, o.context));  // no scratch for rows a step never holds
    mo.max_sequences = sequences;
    mo.warm_up = o.warm_up;
    mo.quantize = o.quantize.choice();
    mo.max_context = o.context;
    mo.page_size = int32_t(std::min<int64_t>(kCachePageTokens, o.context));
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

const CLI::Validator kSize(
    [](std::string& s) {
        return s == "off" || parse_size(s) ? std::string()
                                           : input::quote(s) + " is not a size; give bytes or a number with a unit (B, "
                                                               "KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 4GiB, or off";
    },
    "SIZE");

const CLI::Validator kNonEmpty(
    [](std::string& s) { return s.empty() ? std::string("the value is empty") : std::string(); }, "NON-EMPTY");

CLI::Validator whole_number(int64_t lo, int64_t hi) {
    const std::string range = std::to_string(lo) + " to " + std::to_string(hi);
    return CLI::Validator(
        [lo, hi, range](std::string& s) {
            int64_t v = 0;
            const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
            if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi)
                return input::quote(s) + " is not a whole number from " + range;
            return std::string();
        },
        "INT in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

namespace {
std::string text_between(double lo, double hi, const char* between) {
    char text[80];
    std::snprintf(text, sizeof text, "%g%s%g", lo, between, hi);
    return text;
}
}  // namespace

CLI::Validator number_between(double lo, double hi) {
    return CLI::Validator(
        [lo, hi, text = text_between(lo, hi, " to ")](std::string& s) {
            double v = 0;
            const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
            if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !(v >= lo && v <= hi))
                return input::quote(s) + " is not a number from " + text;
            return std::string();
        },
        "FLOAT in [" + text_between(lo, hi, " - ") + "]");
}

CLI::Validator one_of(std::vector<std::string> values) {
    std::string list, set;  // "f32, f16, bf16" for sentences, "{f32,f16,bf16}" for --help
    for (const std::string& v : values) {
        list += (list.empty() ? "" : ", ") + v;
        set += (set.empty() ? "{" : ",") + v;
    }
    return CLI::Validator(
        [values, list](std::string& s) {
            if (std::find(values.begin(), values.end(), s) != values.end()) return std::string();
            return input::quote(s) + " is not one of " + list;
        },
        set + "}");
}

const CLI::Validator kContext(
    [](std::string& s) {
        const std::optional<uint64_t> v = parse_decimal(s);
        if (s == "auto" || (v && *v >= 1 && *v <= (uint64_t(1) << 32))) return std::string();
        return input::quote(s) + " is not a context length; give a number of tokens from 1 to 4294967296, or auto";
    },
    "TOKENS|auto");

const CLI::Validator kBudgetItem(
    [](std::string& s) {
        const size_t eq = s.find('=');
        if (eq == std::string::npos || eq == 0)
            return input::quote(s) + " is not NAME=SIZE; give a placement name and a size, e.g. heap=96GiB";
        const std::optional<uint64_t> bytes = parse_size(std::string_view(s).substr(eq + 1));
        if (!bytes)
            return input::quote(s.substr(eq + 1)) +
                   " is not a size; give bytes or a number with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 96GiB";
        if (*bytes == 0) return std::string("a budget of 0 bytes holds nothing; give a size above 0");
        return std::string();
    },
    "NAME=SIZE");

const CLI::Validator kUnsigned64(
    [](std::string& s) {
        return parse_decimal(s) ? std::string() : input::quote(s) + " is not a whole number from 0 to 18446744073709551615";
    },
    "UINT64");

}  // namespace halo::cli
