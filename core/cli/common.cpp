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
#include "core/file_kind.h"
#include "core/input/bounded_json.h"
#include "core/op_timing_backend.h"

namespace halo::cli {




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

PlanSource plan_source_from_dir(const std::string& dir, const QuantChoice& quantize) {
    PlanSource src;
    src.config = load_model_config(dir);
    src.checkpoint = Checkpoint::open(dir);
    src.weights = checked_weights(src.config, *src.checkpoint, quantize, dir);
    for (const auto& f : src.checkpoint->files()) src.file_bytes.push_back(f->size());
    return src;
}

PlanSource plan_source_from_config(const std::string& path, const QuantChoice& quantize) {
    if (const std::string why = why_not_a_file(path); !why.empty()) throw ConfigError("--config " + path + " " + why);
    PlanSource src;
    try {
        src.config = parse_model_config(input::read_json_file(path, input::kConfigJson), path);
    } catch (const input::InputError& e) {
        throw ConfigError(e.what());
    }
    src.weights = weights_from_config(src.config, quantize);
    return src;
}

OptionOrigins option_origins(const RunOptions& o) {
    OptionOrigins origin;
    for (const char* key : {"context", "parallel", "cache_dtype", "prefill_chunk"}) origin[key] = source_of(o, key);
    for (const auto& [name, bytes] : o.budget) origin["budget." + name] = source_of(o, "budget." + name);
    return origin;
}

MemoryPlan plan_for(const PlanSource& src, const RunOptions& o, int32_t sequences, const ops::Backend* backend,
                    const std::string& unavailable) {
    PlanInputs in;
    in.config = &src.config;
    in.weights = &src.weights;
    in.file_bytes = src.file_bytes;
    in.backend = backend;
    in.device_unavailable = unavailable;
    in.budget = o.budget;
    return plan_memory(in, model_options(o, sequences));
}

ContextChoice resolve_auto_context(RunOptions& o, int32_t sequences, const PlanSource& src, const ops::Backend* backend) {
    const int64_t least = o.context;
    int64_t longest = src.config.model_max_length > 0 ? src.config.model_max_length : int64_t(1) << 31;
    longest = std::min<int64_t>({longest, int64_t(1) << 31, int64_t(INT32_MAX / std::max(sequences, 1)) * kCachePageTokens});
    auto plan_at = [&](int64_t context) {
        RunOptions t = o;
        t.context = context;
        return plan_for(src, t, sequences, backend);
    };
    const ContextChoice choice = choose_context(plan_at, kCachePageTokens, longest, option_origins(o));
    if (choice.context < least)
        throw std::runtime_error(choice.reason + "; that is less than the " + std::to_string(least) +
                                 " tokens needed; " + refusal(plan_at(least), option_origins(o)));
    o.context = choice.context;
    return choice;
}

Engine open_engine(const RunOptions& options, int32_t sequences, const BackendWrap& wrap) {
    RunOptions o = options;
    const auto t0 = std::chrono::steady_clock::now();
    ops::BackendOptions bo;
    bo.threads = o.threads;
    bo.device_index = o.device;
    bo.device_name = o.device_name;
    bo.validation = o.validation;
    Engine e;
    e.backend = load_backend(o.backend, bo, o.plugin_dir);
    check_placements(o, e.backend->backend().device());
    const std::string dir = model_dir_of(o);
    if (o.context_auto) {
        const ContextChoice choice =
            resolve_auto_context(o, sequences, plan_source_from_dir(dir, o.quantize.choice()), &e.backend->backend());
        if (!o.quiet) std::fprintf(stderr, "engine: %s\n", choice.reason.c_str());
    }
    ModelOptions mo = model_options(o, sequences);
    mo.budget = o.budget;
    mo.origin = option_origins(o);
    const bool quiet = o.quiet;
    mo.on_plan = [quiet](const MemoryPlan& plan) {  // before any weight is loaded
        if (quiet) return;
        std::fputs(plan_table(plan).c_str(), stderr);
        std::fflush(stderr);
    };
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
    ops::Backend* backend = &e.backend->backend();
    if (wrap) backend = &wrap(*backend);
    if (const char* timing = std::getenv("HALO_OP_TIMING"); timing && std::string(timing) == "1") {
        e.op_timer = std::make_unique<OpTimingBackend>(*backend);
        backend = e.op_timer.get();
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
        std::fputs(allocated_table(e.model->plan(), e.model->allocated(), backend->internal_use()).c_str(), stderr);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const ModelConfig& c = e.model->config();
        std::fprintf(stderr, "engine: %s on %s: %d layers (%d KDA, %d MLA), hidden %lld, vocab %lld; %s; loaded in %.2f s\n",
                     dir.c_str(), e.backend->backend().device().name.c_str(), c.num_hidden_layers,
                     c.count(MixerKind::kda), c.count(MixerKind::mla), (long long)c.hidden_size,
                     (long long)c.vocab_size, e.model->plan().describe().c_str(), secs);
    }
    return e;
}


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
    if (o.context_auto)
        o.context = need;  // the least context open_engine's choice must reach
    else if (!context_given)
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


}  // namespace halo::cli
