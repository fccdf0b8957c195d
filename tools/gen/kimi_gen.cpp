// kimi_gen: writes a random Kimi-Linear checkpoint (HF layout, real tensor names) of any dimensions.
//   kimi_gen --preset demo --out DIR [--seed 1] [--shards 2] [--dtype BF16] [--set hidden_size=128 ...]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/config.h"
#include "core/weights.h"
#include "tools/gen/checkpoint_writer.h"

namespace {

using nlohmann::json;

// Applies "a.b=value" to the config; value is parsed as JSON when it can be (numbers, lists, null), else a string.
void apply_override(json& config, const std::string& kv) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw std::runtime_error("--set '" + kv + "' is not of the form key=value");
    const std::string key = kv.substr(0, eq), text = kv.substr(eq + 1);
    json value = json::parse(text, nullptr, false);
    if (value.is_discarded()) value = text;
    json* node = &config;
    size_t start = 0;
    for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1) node = &(*node)[key.substr(start, dot - start)];
    (*node)[key.substr(start)] = value;
}

int64_t count_lines(const std::filesystem::path& p) {
    std::ifstream f(p);
    if (!f) throw std::runtime_error("cannot read " + p.string());
    int64_t n = 0;
    for (std::string line; std::getline(f, line);)
        if (!line.empty()) ++n;
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Writes a random Kimi-Linear checkpoint in the Hugging Face layout (config.json + safetensors),\n"
                 "deterministic from --seed. Presets: tiny, demo, bench (real 48B-A3B widths, 4 layers, 32 experts)."};
    std::string preset = "tiny", out, dtype = "BF16", config_path, vocab_from;
    uint64_t seed = 1;
    int32_t shards = 1;
    std::vector<std::string> sets;
    bool quiet = false;
    app.add_option("--preset", preset, "Starting configuration: tiny, demo or bench")->capture_default_str();
    app.add_option("--config", config_path, "Start from this config.json instead of a preset");
    app.add_option("--out", out, "Output directory (created)")->required();
    app.add_option("--seed", seed, "Random seed")->capture_default_str();
    app.add_option("--shards", shards, "Number of safetensors shards (1 = model.safetensors)")->capture_default_str();
    app.add_option("--dtype", dtype, "Weight dtype: BF16, F16 or F32 (A_log and dt_bias are always F32)")
        ->capture_default_str();
    app.add_option("--set", sets, "Override a config field, e.g. --set hidden_size=128 --set linear_attn_config.num_heads=4");
    app.add_option("--vocab-from", vocab_from,
                   "Copy tiktoken.model and tokenizer_config.json from this directory and size the vocabulary to them");
    app.add_flag("--quiet", quiet, "Print nothing but errors");
    CLI11_PARSE(app, argc, argv);

    try {
        json config;
        if (!config_path.empty()) {
            std::ifstream f(config_path);
            config = json::parse(f, nullptr, false);
            if (config.is_discarded()) throw std::runtime_error(config_path + " is not valid JSON");
        } else {
            config = halo::gen::preset_config(preset);
        }
        namespace fs = std::filesystem;
        if (!vocab_from.empty()) {
            const int64_t base = count_lines(fs::path(vocab_from) / "tiktoken.model");
            config["vocab_size"] = base + 256;
            config["bos_token_id"] = base;
            config["eos_token_id"] = base + 2;
            config["pad_token_id"] = base + 255;
        }
        for (const std::string& s : sets) apply_override(config, s);
        const halo::ModelConfig mc = halo::parse_model_config(config, "the generated config");

        halo::gen::GenOptions opt;
        opt.seed = seed;
        opt.shards = shards;
        opt.weight_dtype = dtype;
        const auto t0 = std::chrono::steady_clock::now();
        int last_pct = -1;
        if (!quiet)
            opt.progress = [&](uint64_t done, uint64_t total) {
                const int pct = int(100 * done / std::max<uint64_t>(total, 1));
                if (total > (256u << 20) && pct / 5 != last_pct / 5) {
                    std::fprintf(stderr, "\rkimi_gen: %3d%% of %.2f GB", pct, double(total) / 1e9);
                    last_pct = pct;
                }
            };
        const uint64_t bytes = halo::gen::write_checkpoint(out, config, opt);
        if (!vocab_from.empty() && !fs::equivalent(vocab_from, out))
            for (const char* name : {"tiktoken.model", "tokenizer_config.json"})
                fs::copy_file(fs::path(vocab_from) / name, fs::path(out) / name, fs::copy_options::overwrite_existing);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!quiet)
            std::fprintf(stderr, "%skimi_gen: wrote %s: %lld parameters, %.1f MB in %d shard(s), %.1f s\n",
                         last_pct >= 0 ? "\n" : "", out.c_str(), (long long)halo::count_parameters(mc),
                         double(bytes) / 1e6, shards, secs);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kimi_gen: %s\n", e.what());
        return 1;
    }
    return 0;
}
