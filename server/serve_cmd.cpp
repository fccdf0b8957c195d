// engine serve: the HTTP API (server/server.h) on a model. Listens before loading (GET /health says "loading"
// meanwhile), serves until SIGINT or SIGTERM, then drains: new requests get 503, running ones get --drain-timeout
// seconds to finish, and the process exits 0. Requests resume from the prefix cache (--prefix-cache), which
// --prefix-cache-dir keeps across restarts: loaded before the first request, saved once the last one has ended.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>

#include "core/cli/command.h"
#include "core/cli/common.h"
#include "core/input/excerpt.h"
#include "core/prefix_cache.h"
#include "core/scheduler.h"
#include "core/tokenizer/tokenizer.h"
#include "halo_build_info.h"
#include "server/cache_fingerprint.h"
#include "server/server.h"

namespace halo::cli {

namespace {

struct ServeOptions {
    RunOptions run;  // run.server: host, port, queue, drain timeout, model name; run.sequences: --parallel
    double decode_slowdown = SchedulerOptions{}.decode_slowdown;
};

std::string base_name(const std::string& dir) {
    std::filesystem::path p(dir);
    while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "models/demo/" -> "models/demo"
    const std::string name = p.filename().string();
    return name.empty() || name == "." || name == ".." ? "model" : name;
}

// Waits for SIGINT or SIGTERM (blocked in every thread) on its own thread. Before `ready` a signal ends the process
// at once: loading cannot be interrupted, and nothing is served yet.
struct SignalWaiter {
    sigset_t set;
    std::atomic<bool> ready{false};
    std::promise<int> signal;

    SignalWaiter() {
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts, so that all inherit it
    }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The refusal of a prefix-cache stride (PrefixCache's sentence), naming where the stride came from.
std::string stride_refusal(const RunOptions& o, const std::string& why, int32_t chunk) {
    const int64_t lower = std::max<int64_t>(chunk, o.prefix_stride / chunk * chunk);
    return source_of(o, "prefix_cache.stride") + ": " + why + "; give a multiple of " + std::to_string(chunk) +
           " such as " + std::to_string(lower) + " or " + std::to_string(lower + chunk);
}

// The prefix cache the scheduler resumes requests from; null when it is off (--prefix-cache off, or a size too small
// for one snapshot). It must outlive the scheduler and die before the model.
std::unique_ptr<PrefixCache> make_prefix_cache(const RunOptions& o, Model& model) {
    const int32_t snapshots = model.plan().layout.prefix_snapshots;
    if (snapshots <= 0) return nullptr;
    try {
        return std::make_unique<PrefixCache>(model, PrefixCacheOptions{.max_snapshots = snapshots,
                                                                       .stride = o.prefix_stride});
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(stride_refusal(o, e.what(), model.options().kda_chunk));
    }
}

// The ready line's account of the prefix cache.
std::string prefix_cache_line(const RunOptions& o, const Model& model, const PrefixCache* cache) {
    if (cache) {
        const MemoryLayout& L = model.plan().layout;
        return "prefix cache: up to " + std::to_string(L.prefix_snapshots) + " snapshots of " +
               size_text(L.prefix_snapshot_bytes()) + " (" + size_text(L.prefix_bytes()) +
               " in all), a snapshot every " + std::to_string(o.prefix_stride) + " prompt tokens";
    }
    if (o.prefix_cache == 0) return "prefix cache: off (" + source_of(o, "prefix_cache.size") + ")";
    if (model.snapshot_bytes() > o.prefix_cache)
        return "prefix cache: off (" + source_of(o, "prefix_cache.size") + " " + size_text(o.prefix_cache) +
               " holds no snapshot of " + size_text(model.snapshot_bytes()) + ")";
    return "prefix cache: off";
}

// The engine and model a saved cache must match: this build (version and commit), the model's files, the plugin,
// the device and the numerics options.
CacheFingerprint serve_fingerprint(Engine& engine, const std::string& model_dir) {
    server::FingerprintSource src;
    src.engine_build = std::string("halo ") + HALO_VERSION + " commit " + HALO_BUILD_COMMIT;
    src.model_dir = model_dir;
    src.plugin = engine.backend->name();
    src.device = engine.backend->backend().device().name;
    src.options = engine.model->options();
    return server::cache_fingerprint(src);
}

// --prefix-cache-dir at start: a folder the cache can be saved in (checked now, not when the server stops).
void check_cache_dir(const RunOptions& o) {
    namespace fs = std::filesystem;
    const fs::path dir = o.prefix_cache_dir;
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
        throw std::runtime_error(source_of(o, "prefix_cache.dir") + ": " + input::quote(o.prefix_cache_dir, 400) +
                                 " is a file; name a folder (it is created when missing)");
    fs::create_directories(dir, ec);
    if (ec)
        throw std::runtime_error(source_of(o, "prefix_cache.dir") + ": cannot create the folder " +
                                 input::quote(o.prefix_cache_dir, 400) + " (" + ec.message() + "); name a folder this "
                                 "user may write");
}

// Loads the saved cache before the first request. A stale or damaged one is not loaded: the server warns and starts
// empty, and its save at the end replaces it.
void load_prefix_cache(PrefixCache& cache, const std::string& dir, const CacheFingerprint& fingerprint) {
    const auto start = std::chrono::steady_clock::now();
    try {
        const int32_t n = cache.load_from(dir, fingerprint);
        const PrefixCacheStats s = cache.stats();
        if (n == 0)
            std::fprintf(stderr, "engine: prefix cache: loaded 0 entries from %s (it is saved there when the server "
                                 "stops)\n", dir.c_str());
        else
            std::fprintf(stderr, "engine: prefix cache: loaded %d entr%s from %s (%s of snapshots, %d pages) in %.2f s\n",
                         n, n == 1 ? "y" : "ies", dir.c_str(), size_text(s.snapshot_bytes).c_str(), s.pages,
                         seconds_since(start));
    } catch (const std::exception& e) {
        std::fprintf(stderr,
                     "engine: warning: %s; starting with an empty cache (it is replaced when the server stops)\n",
                     input::one_line(e.what(), 600).c_str());
    }
}

// Saves the cache once no request runs. A failed save is reported but does not change the exit status: every
// request was served and drained, and the folder still holds the previous cache or none (save_to replaces it
// whole or not at all).
void save_prefix_cache(PrefixCache& cache, const std::string& dir, const CacheFingerprint& fingerprint) {
    const auto start = std::chrono::steady_clock::now();
    try {
        const PrefixCache::SaveResult r = cache.save_to(dir, fingerprint);
        std::fprintf(stderr, "engine: prefix cache: saved %d entr%s (%d pages, %s) to %s in %.2f s\n", r.entries,
                     r.entries == 1 ? "y" : "ies", r.pages, size_text(r.bytes).c_str(), dir.c_str(),
                     seconds_since(start));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "engine: error: the prefix cache was not saved: %s\n",
                     input::one_line(e.what(), 600).c_str());
    }
}

void start_waiting(const std::shared_ptr<SignalWaiter>& w) {
    std::thread([w] {
        int sig = 0;
        if (sigwait(&w->set, &sig) != 0) return;
        if (!w->ready.load()) {
            std::fprintf(stderr, "engine: %s while loading the model; stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
            std::fflush(stderr);
            std::_Exit(0);
        }
        w->signal.set_value(sig);
    }).detach();  // it may outlive run() when loading fails; it holds its own state
}

int run_serve(ServeOptions& o, const CLI::App& app) {
    apply_profile(o.run, app);
    const ServerSettings& ss = o.run.server;
    const int32_t parallel = o.run.sequences;
    // A cache folder that cannot be written is refused before the (long) load, as --prefix-stride's own check
    // refuses a stride that is not a multiple of the KDA chunk.
    const bool keep_cache = o.run.prefix_cache && !o.run.prefix_cache_dir.empty();
    if (keep_cache) check_cache_dir(o.run);
    auto waiter = std::make_shared<SignalWaiter>();
    const std::string dir = model_dir_of(o.run);
    server::ServerOptions so;
    so.host = ss.host;
    so.port = ss.port;
    so.model_name = ss.model_name.empty() ? base_name(dir) : ss.model_name;
    so.worker_threads = parallel + ss.queue + 8;  // every running and queued request may hold a thread
    server::Server server(so);
    server.bind();
    std::fprintf(stderr, "engine: listening on %s\n", server.url().c_str());
    std::fflush(stderr);
    server.start();
    start_waiting(waiter);

    if (!o.run.quiet)
        std::fprintf(stderr, "engine: loading %s (%d sequences x %lld tokens)\n", dir.c_str(), parallel,
                     (long long)o.run.context);
    // One full step at load sizes the plugin's own temporaries, so the plan counts them and admission never
    // promises memory a step then fails to get.
    o.run.warm_up = true;
    o.run.use_prefix_cache = true;
    Engine engine = open_engine(o.run, parallel);
    std::unique_ptr<tok::Tokenizer> tokenizer;
    try {
        tokenizer = std::make_unique<tok::Tokenizer>(tok::Tokenizer::load(dir));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "engine: warning: no tokenizer (%s); only token-id prompts on /v1/completions will work\n",
                     input::one_line(e.what(), 300).c_str());
    }
    std::unique_ptr<PrefixCache> cache = make_prefix_cache(o.run, *engine.model);
    CacheFingerprint fingerprint;
    if (cache && keep_cache) {
        fingerprint = serve_fingerprint(engine, dir);
        load_prefix_cache(*cache, o.run.prefix_cache_dir, fingerprint);
    } else if (!o.run.prefix_cache_dir.empty()) {
        std::fprintf(stderr, "engine: warning: the prefix cache is off, so %s is neither loaded nor saved\n",
                     o.run.prefix_cache_dir.c_str());
    }
    SchedulerOptions sched_options;
    sched_options.max_queue = ss.queue;
    sched_options.decode_slowdown = o.decode_slowdown;
    sched_options.prefix_cache = cache.get();
    auto scheduler = std::make_unique<Scheduler>(*engine.model, tokenizer.get(), sched_options);
    server.set_ready(*engine.model, *scheduler, tokenizer.get());
    waiter->ready.store(true);
    std::fprintf(stderr, "engine: ready: model %s, %d sequences x %lld tokens\n", so.model_name.c_str(), parallel,
                 (long long)scheduler->context_tokens());
    std::fprintf(stderr, "engine: %s\n", prefix_cache_line(o.run, *engine.model, cache.get()).c_str());
    std::fflush(stderr);

    const int sig = waiter->signal.get_future().get();
    std::fprintf(stderr, "engine: %s: draining (new requests get 503; running ones have %g s to finish)\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", ss.drain_timeout_s);
    std::fflush(stderr);
    server.begin_shutdown();
    const int cancelled = scheduler->drain(std::chrono::milliseconds(int64_t(ss.drain_timeout_s * 1000)));
    server.stop();
    scheduler.reset();  // the engine thread has ended: the cache is this thread's now
    if (cache && keep_cache) save_prefix_cache(*cache, o.run.prefix_cache_dir, fingerprint);
    if (cancelled > 0)
        std::fprintf(stderr, "engine: stopped (%d request%s cancelled)\n", cancelled, cancelled == 1 ? "" : "s");
    else
        std::fprintf(stderr, "engine: stopped\n");
    return 0;
}

}  // namespace

Command add_serve_command(CLI::App& app) {
    auto o = std::make_shared<ServeOptions>();
    CLI::App* serve = app.add_subcommand(
        "serve",
        "Serve the model over HTTP: OpenAI /v1/chat/completions, /v1/completions, /v1/models; Anthropic /v1/messages; "
        "/tokenize, /detokenize, /health, /metrics. Stops on SIGINT/SIGTERM after draining.");
    o->run.sequences = 4;  // --parallel: requests generated at once
    add_run_options(*serve, o->run);
    add_server_options(*serve, o->run.server);
    add_prefix_cache_options(*serve, o->run);
    serve->add_option("--decode-slowdown", o->decode_slowdown,
                      "While streams decode, prompt chunks are sized so a step takes about this many times a "
                      "decode-only step (their inter-token latency); lower favours running streams, higher new "
                      "prompts; 1 or less: fixed chunks of a quarter of --chunk")
        ->check(CLI::Range(0.0, 1000.0))
        ->capture_default_str();
    return Command{serve, [o, serve] { return run_serve(*o, *serve); }};
}

}  // namespace halo::cli
