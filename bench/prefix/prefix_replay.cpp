// prefix_replay: a coding agent's conversation replayed in-process (no HTTP) to measure prefix reuse. Turn 1 sends a
// system prompt; every later turn re-sends the whole conversation (the previous prompt and reply) plus new tokens,
// until the prompt reaches --max-tokens. Each turn runs on a Scheduler with a PrefixCache; then a Scheduler without
// one (cold) runs the same prompts for some turns. Reports the time to first token per turn with and without
// reuse, the tokens taken from the cache, the snapshots held and their memory against its bound (markdown on stdout,
// --json FILE), and checks that the greedy replies with reuse equal the cold ones (exit 1 when a check fails).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/dll/runtime_symbol_info.hpp>
#include <nlohmann/json.hpp>

#include "bench/prefix/replay.h"
#include "bench/prefix/report.h"
#include "core/plugin_loader.h"
#include "core/prefix_cache.h"
#include "core/profile/options.h"
#include "core/scheduler.h"

namespace fs = std::filesystem;
using namespace halo;
using namespace halo::bench;

namespace {

struct Options {
    std::string model_dir;  // empty: the bench model beside the build (../models/bench)
    std::string backend = "cpu";
    std::string plugin_dir;
    int32_t threads = 0;
    int64_t context = 32768;
    int32_t chunk = 512;
    int32_t sequences = 2;
    uint64_t prefix_cache = uint64_t(2) << 30;
    int64_t stride = 2048;
    cli::QuantTexts quantize;
    ReplaySettings replay;
    std::string json_path;
    bool quiet = false;
};

std::string default_model_dir() {
    boost::dll::fs::error_code ec;
    const auto exe = boost::dll::program_location(ec);
    if (ec) return "models/bench";
    return (fs::path(exe.parent_path().string()).parent_path() / "models" / "bench").string();
}

std::string cpu_model_name() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
        }
    return "unknown CPU";
}

// Random prompt ids stay below the model's special tokens (the lowest of bos, eos and pad when the config names
// them; Kimi's specials are the top 256 ids).
int32_t ordinary_id_limit(const ModelConfig& c) {
    int64_t limit = c.vocab_size;
    for (int64_t id : {c.bos_token_id, c.eos_token_id, c.pad_token_id})
        if (id > 0) limit = std::min(limit, id);
    return int32_t(limit);
}

int run(Options& o) {
    ReplaySettings& r = o.replay;
    if (r.max_tokens > o.context)
        throw std::runtime_error("--max-tokens " + std::to_string(r.max_tokens) + " is more than --context " +
                                 std::to_string(o.context) + "; raise --context or lower --max-tokens");
    if (r.first + r.reply > r.max_tokens)
        throw std::runtime_error("turn 1 (--first " + std::to_string(r.first) + " + --reply " + std::to_string(r.reply) +
                                 " tokens) does not fit --max-tokens " + std::to_string(r.max_tokens));
    if (const fs::path dir = fs::path(o.json_path).parent_path(); !o.json_path.empty() && !dir.empty() && !fs::is_directory(dir))
        throw std::runtime_error("--json " + o.json_path + ": the folder " + dir.string() + " does not exist");
    if (o.model_dir.empty()) o.model_dir = default_model_dir();
    if (!fs::exists(fs::path(o.model_dir) / "config.json"))
        throw std::runtime_error("no model at " + o.model_dir + " (no config.json): generate the bench model with "
                                 "`kimi_gen --preset bench --out " + o.model_dir + "` (bench/prefix/run.sh does), or "
                                 "pass --model DIR");

    ops::BackendOptions bo;
    bo.threads = o.threads;
    std::unique_ptr<LoadedBackend> backend = load_backend(o.backend, bo, o.plugin_dir);
    cli::RunOptions ro;
    ro.context = o.context;
    ro.chunk = o.chunk;
    ro.quantize = o.quantize;
    ro.use_prefix_cache = true;
    ro.prefix_cache = o.prefix_cache;
    ModelOptions mo = cli::model_options(ro, o.sequences);
    mo.warm_up = true;  // the plugin's temporaries sized before turn 1 is timed
    Model model(backend->backend(), o.model_dir, mo);
    const int32_t max_snapshots = model.plan().layout.prefix_snapshots;
    if (max_snapshots < 1)
        throw std::runtime_error("--prefix-cache " + std::to_string(o.prefix_cache) + " bytes holds no snapshot of " +
                                 std::to_string(model.snapshot_bytes()) + " bytes; give at least that");
    if (const int32_t chunk = model.options().kda_chunk; chunk > 0 && o.stride % chunk != 0)
        throw std::runtime_error("--prefix-stride " + std::to_string(o.stride) + " is not a multiple of the KDA chunk (" +
                                 std::to_string(chunk) + " tokens)");
    r.id_limit = ordinary_id_limit(model.config());
    if (r.id_limit < 1) throw std::runtime_error("the model's special token ids leave no ordinary id for prompts");

    ReplaySetup setup;
    setup.model_dir = o.model_dir;
    setup.device = backend->backend().device().name;
    setup.cpu = cpu_model_name();
    setup.threads = o.threads;
    setup.context = o.context;
    setup.sequences = o.sequences;
    setup.total_pages = model.pool().total_pages();
    setup.stride = o.stride;
    setup.cache_bytes = o.prefix_cache;
    setup.max_snapshots = max_snapshots;
    setup.snapshot_bytes = model.snapshot_bytes();
    setup.page_bytes = model.page_bytes();
    setup.page_size = model.pool().page_size();
    setup.settings = r;
    if (!o.quiet)
        std::fprintf(stderr, "prefix_replay: %s on %s: %s; %d snapshots of %.2f MB, pages of %.3f MB\n",
                     o.model_dir.c_str(), setup.device.c_str(), model.plan().describe().c_str(), max_snapshots,
                     double(setup.snapshot_bytes) / 1e6, double(setup.page_bytes) / 1e6);

    {  // One untimed request first, so that turn 1 does not pay for first-use costs.
        Scheduler warm(model, nullptr, {});
        std::vector<int32_t> prompt;
        for (int64_t i = 0; i < r.first; ++i) prompt.push_back(int32_t((i * 7919 + 17) % r.id_limit));
        run_request(warm, prompt, 2);
    }
    // The JSON is rewritten after every turn (with "complete": false until the end), so an interrupted run keeps
    // what it measured.
    auto save_json = [&](const std::vector<Turn>& turns, bool complete) {
        if (o.json_path.empty()) return;
        nlohmann::json j = replay_json(setup, turns, replay_checks(setup, turns));
        j["complete"] = complete;
        const std::string tmp = o.json_path + ".tmp";
        {
            std::ofstream out(tmp);
            out << j.dump(2) << "\n";
            if (!out) throw std::runtime_error("cannot write --json " + o.json_path);
        }
        fs::rename(tmp, o.json_path);
    };
    const AfterTurn partial = [&](const std::vector<Turn>& turns) { save_json(turns, false); };
    std::vector<Turn> turns;
    {
        PrefixCache cache(model, {.max_snapshots = max_snapshots, .stride = o.stride});
        SchedulerOptions so;
        so.prefix_cache = &cache;
        Scheduler reuse(model, nullptr, so);
        turns = run_reuse(reuse, r, !o.quiet, partial);
    }  // the scheduler ends, then the cache releases its snapshots and pages
    {
        Scheduler cold(model, nullptr, {});
        run_cold(cold, turns, cold_turns(turns.size(), r.cold_every), r.reply, !o.quiet, partial);
    }

    const std::vector<Check> checks = replay_checks(setup, turns);
    std::fputs(replay_markdown(setup, turns, checks).c_str(), stdout);
    std::fflush(stdout);
    save_json(turns, true);
    for (const Check& c : checks)
        if (!c.ok) return 1;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    ReplaySettings& r = o.replay;
    CLI::App app{"Replays a multi-turn agent conversation (every turn re-sends the whole conversation plus new "
                 "tokens) and reports the time to first token per turn with and without prefix reuse, the snapshot "
                 "memory held, and whether greedy replies with reuse equal the cold ones (exit 1 when not)."};
    app.add_option("--model", o.model_dir, "Model directory (default: the bench model, ../models/bench beside the "
                                           "build's bin/, as bench/prefix/run.sh generates it)");
    app.add_option("--backend", o.backend, "Backend plugin")->capture_default_str();
    app.add_option("--plugin-dir", o.plugin_dir, "Also look for backend plugins in this directory");
    app.add_option("--threads", o.threads, "CPU threads (0: every CPU this process may use)")
        ->check(cli::whole_number(0, 4096))->capture_default_str();
    app.add_option("--context", o.context, "Tokens per sequence (the MLA cache); at least --max-tokens")
        ->check(cli::whole_number(2, int64_t(1) << 31))->capture_default_str();
    app.add_option("--chunk", o.chunk, "Prefill chunk: tokens per forward step")
        ->check(cli::whole_number(1, 1 << 20))->capture_default_str();
    app.add_option_function<std::string>(
           "--prefix-cache", [&o](const std::string& text) { o.prefix_cache = text == "off" ? 0 : *cli::parse_size(text); },
           "Most memory for prefix-cache snapshots (e.g. 2GiB, 512MB)")
        ->check(cli::kSize)->default_str("2GiB");
    app.add_option("--prefix-stride", o.stride, "Prompt tokens between snapshots (a multiple of the KDA chunk, 64)")
        ->check(cli::whole_number(0, int64_t(1) << 31))->capture_default_str();
    app.add_option("--parallel", o.sequences,
                   "KDA state slots and MLA pages for this many sequences: one runs the conversation, the other pages "
                   "hold the cache's older snapshots (the cache has no pages of its own)")
        ->check(cli::whole_number(1, 4096))->capture_default_str();
    cli::add_quantize_options(app, o.quantize);
    app.add_option("--first", r.first, "Tokens of turn 1's prompt (the system prompt)")
        ->check(cli::whole_number(1, int64_t(1) << 31))->capture_default_str();
    app.add_option("--new", r.fresh, "New tokens each later turn adds after the previous reply")
        ->check(cli::whole_number(0, int64_t(1) << 31))->capture_default_str();
    app.add_option("--reply", r.reply, "Tokens generated per turn (greedy)")
        ->check(cli::whole_number(1, 1 << 20))->capture_default_str();
    app.add_option("--max-tokens", r.max_tokens, "Turns go on while the prompt plus the reply fit this")
        ->check(cli::whole_number(2, int64_t(1) << 31))->capture_default_str();
    app.add_option("--turns", r.turns, "At most this many turns (0: until --max-tokens)")
        ->check(cli::whole_number(0, 1 << 30))->capture_default_str();
    app.add_option("--cold-every", r.cold_every,
                   "Measure without the cache turn 1, the last turn and every K-th (0: only the first and last; "
                   "1: every turn)")
        ->check(cli::whole_number(0, 1 << 30))->capture_default_str();
    app.add_option("--seed", r.seed, "Seed of the random token ids")->capture_default_str();
    app.add_option("--json", o.json_path, "Also write every figure to this JSON file");
    app.add_flag("--quiet", o.quiet, "No progress lines on stderr");
    CLI11_PARSE(app, argc, argv);
    try {
        return run(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "prefix_replay: %s\n", e.what());
        return 2;
    }
}
