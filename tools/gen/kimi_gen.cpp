// kimi_gen: writes a random Kimi-Linear checkpoint (HF layout, real tensor names) of any dimensions.
//   kimi_gen --preset demo --out DIR [--seed 1] [--shards 2] [--dtype BF16] [--set hidden_size=128 ...]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/config.h"
#include "core/input/nearest.h"
#include "core/weights.h"
#include "tools/gen/checkpoint_writer.h"

namespace {

using nlohmann::json;

// Every field --set may change: its dotted path ("linear_attn_config.num_heads") and an example value that gives
// its JSON type. Objects are listed too (replacing one takes an object).
using SettableFields = std::map<std::string, json>;

void collect_fields(const json& node, const std::string& prefix, SettableFields& out) {
    for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string path = prefix + it.key();
        out[path] = it.value();
        if (it->is_object()) collect_fields(*it, path + ".", out);
    }
}

// The fields of the starting config and of the presets, and the fields of other family members that the engine
// reads only to refuse them (any value, so that such checkpoints can be made for tests).
SettableFields settable_fields(const json& config) {
    SettableFields f;
    collect_fields(halo::gen::preset_config("tiny"), "", f);
    collect_fields(config, "", f);
    for (const char* key : {"torch_dtype", "gate_lower_bound", "use_full_rank_gate", "mla_use_output_gate"})
        f.emplace(key, nullptr);
    return f;
}

std::string nearest_field(const SettableFields& fields, const std::string& key) {
    std::vector<std::string> names;
    for (const auto& [name, example] : fields) names.push_back(name);
    return halo::input::nearest(key, names);
}

// The JSON value that `text` gives field `key`, whose current value `example` fixes its type. Throws a sentence
// naming the --set argument `kv` when the text is not a value of that type.
json parse_value(const std::string& kv, const std::string& key, const std::string& text, const json& example) {
    if (example.is_string()) return text;  // taken as written, even "5" or "true"
    json value = json::parse(text, nullptr, false);
    if (example.is_null()) return value.is_discarded() ? json(text) : value;
    auto fail = [&](const std::string& wanted) {
        throw std::runtime_error("--set " + kv + ": " + key + " takes " + wanted + ", not '" + text + "'");
    };
    const bool token_id = key.size() > 9 && key.compare(key.size() - 9, 9, "_token_id") == 0;
    if (example.is_boolean() && !value.is_boolean()) fail("true or false");
    if (example.is_number_integer()) {
        if (!value.is_number_integer()) fail("a whole number such as " + example.dump());
        if (!value.is_number_unsigned() && value.get<int64_t>() < (token_id ? -1 : 0))
            fail(token_id ? "a token id (-1 for none)" : "a whole number from 0");
    }
    if (example.is_number_float() && !value.is_number()) fail("a number such as " + example.dump());
    if (example.is_array()) {
        if (!value.is_array()) fail("a list such as " + example.dump());
        if (!example.empty() && example[0].is_number_integer())
            for (const json& item : value)
                if (!item.is_number_integer()) fail("a list of whole numbers such as " + example.dump());
    }
    if (example.is_object() && !value.is_object()) fail("a JSON object such as " + example.dump());
    return value;
}

// Applies "a.b=value" to the config. The key must name a field (an unknown one is an error naming the nearest)
// and the value must have that field's type; ranges are checked when the whole config is parsed.
void apply_override(json& config, const SettableFields& fields, const std::string& kv) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw std::runtime_error("--set '" + kv + "' is not of the form key=value");
    const std::string key = kv.substr(0, eq), text = kv.substr(eq + 1);
    const auto field = fields.find(key);
    if (field == fields.end())
        throw std::runtime_error("--set " + kv + ": '" + key + "' is not a config field; did you mean '" +
                                 nearest_field(fields, key) + "'? (the fields are those of the config.json a preset writes)");
    json value = parse_value(kv, key, text, field->second);
    json* node = &config;
    size_t start = 0;
    for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1) {
        json& child = (*node)[key.substr(start, dot - start)];
        if (!child.is_object()) child = json::object();  // a parent a --config file lacks
        node = &child;
    }
    (*node)[key.substr(start)] = std::move(value);
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
    CLI::Option* preset_option = app.get_option("--preset");
    app.add_option("--config", config_path, "Start from this config.json instead of a preset")->excludes(preset_option);
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
            if (!f) throw std::runtime_error("--config " + config_path + " cannot be read");
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
        const SettableFields fields = settable_fields(config);
        for (const std::string& s : sets) apply_override(config, fields, s);
        // Names where the config came from, so that a field out of range points at the --set that put it there.
        std::string source = config_path.empty() ? "preset " + preset : config_path;
        for (size_t i = 0; i < sets.size(); ++i) source += (i ? ", --set " : " with --set ") + sets[i];
        const halo::ModelConfig mc = halo::parse_model_config(config, source);

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
