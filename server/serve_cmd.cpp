// engine serve: the HTTP API (server/server.h) on a model. Listens before loading (GET /health says "loading"
// meanwhile), serves until SIGINT or SIGTERM, then drains: new requests get 503, running ones get --drain-timeout
// seconds to finish, and the process exits 0.
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
#include "core/scheduler.h"
#include "core/tokenizer/tokenizer.h"
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
    SchedulerOptions sched_options;
    sched_options.max_queue = ss.queue;
    sched_options.decode_slowdown = o.decode_slowdown;
    Scheduler scheduler(*engine.model, tokenizer.get(), sched_options);
    server.set_ready(*engine.model, scheduler, tokenizer.get());
    waiter->ready.store(true);
    std::fprintf(stderr, "engine: ready: model %s, %d sequences x %lld tokens\n", so.model_name.c_str(), parallel,
                 (long long)scheduler.context_tokens());
    std::fflush(stderr);

    const int sig = waiter->signal.get_future().get();
    std::fprintf(stderr, "engine: %s: draining (new requests get 503; running ones have %g s to finish)\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", ss.drain_timeout_s);
    std::fflush(stderr);
    server.begin_shutdown();
    const int cancelled = scheduler.drain(std::chrono::milliseconds(int64_t(ss.drain_timeout_s * 1000)));
    server.stop();
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
