// engine bench: llama-bench's tests on a model (pp512, tg128, pp512+tg128, at context depths, repeated, mean ±
// standard deviation), with the bytes each test must read per second against the machine's measured memory read
// bandwidth, on one backend or several side by side, and a per-op profile of each decode test (one more pass with
// every op timed). Markdown (default), CSV or JSON on stdout; progress on stderr.
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "core/cli/bench_report.h"
#include "core/cli/bench_tests.h"
#include "core/cli/command.h"
#include "core/cli/common.h"
#include "core/input/excerpt.h"
#include "core/membw.h"
#include "core/op_timing_backend.h"
#include "halo_build_info.h"

namespace halo::cli {

namespace {

constexpr int32_t kMaxTokens = 1 << 24;

struct BenchOptions {
    RunOptions run;
    CLI::Option* prompt_option = nullptr;  // -p: read through its results (it also carries -pg, see bench_tests.h)
    std::vector<std::string> prompts, pairs, gens, depths, threads, backends;
    int32_t reps = 5;
    std::string output = "md";
    bool no_warmup = false;
    double bandwidth_gb = 2.0;
    std::string json_out;
    std::string op_profile = "auto";  // on, off, or auto: on for the cpu backend
};

// The threads the CPU plugin runs for a --threads request (its rule: 0 or more than the hardware threads = the CPUs
// this process may run on).
int32_t threads_for(int32_t requested) {
    const int hardware = int(std::max(1u, std::thread::hardware_concurrency()));
    int usable = hardware;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) usable = std::min(hardware, CPU_COUNT(&set));
    return requested == 0 || requested > hardware ? usable : requested;
}

// Random token ids (a fixed linear congruential sequence), as llama-bench feeds: no tokenizer, no sampling.
struct TokenSource {
    uint64_t state;
    int64_t vocab;
    std::vector<int32_t> take(int64_t n) {
        std::vector<int32_t> ids(size_t(std::max<int64_t>(n, 0)));
        for (int32_t& id : ids) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            id = int32_t((state >> 33) % uint64_t(vocab));
        }
        return ids;
    }
};

// Bytes one run of `t` must read from memory. A prefill step of r tokens reads the weights r decode tokens would
// (capped at all of them: a long step touches nearly every expert) and the sequence state at its end (KDA states
// read and written, the MLA cache over the context); each decoded token reads its weights and state.
uint64_t test_bytes(const Model& m, const BenchTest& t) {
    const uint64_t all = m.plan().bytes[int(ops::MemoryUse::weights)], per_token = m.decode_weight_bytes();
    const int64_t rows = m.options().max_step_rows;
    uint64_t bytes = 0;
    int64_t context = t.n_depth;
    for (int64_t left = t.n_prompt; left > 0;) {
        const int64_t r = std::min(rows, left);
        context += r;
        left -= r;
        bytes += std::min(all, uint64_t(r) * per_token) + m.decode_state_bytes(context);
    }
    for (int32_t i = 0; i < t.n_gen; ++i) bytes += per_token + m.decode_state_bytes(++context);
    return bytes;
}

// Decodes `ids` one token per step.
void decode(Model& m, Sequence& seq, const std::vector<int32_t>& ids) {
    std::vector<float> logits;
    for (const int32_t& id : ids) {
        logits.clear();
        const StepItem item{&seq, std::span<const int32_t>(&id, 1), LogitRows::last};
        m.step(std::span<const StepItem>(&item, 1), logits);
    }
}

// One repetition of `t` on a fresh sequence: the depth prefilled untimed, then the prompt and the generated tokens
// timed together. Returns nanoseconds.
uint64_t run_once(Model& m, const BenchTest& t, TokenSource& tokens) {
    Sequence seq;
    m.begin_sequence(seq);
    if (t.n_depth > 0) m.prefill(seq, tokens.take(t.n_depth), false);
    const std::vector<int32_t> prompt = tokens.take(t.n_prompt), gen = tokens.take(t.n_gen);
    const auto t0 = std::chrono::steady_clock::now();
    if (!prompt.empty()) m.prefill(seq, prompt, false);
    decode(m, seq, gen);
    const auto t1 = std::chrono::steady_clock::now();
    m.end_sequence(seq);
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
}

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string weight_formats(const Model& m) {
    std::string formats = m.config().quant.present ? "compressed-tensors checkpoint" : "float checkpoint";
    if (m.options().quantize.any()) formats += ", quantized at load: " + m.options().quantize.describe();
    return formats;
}

BandwidthResult measure_bandwidth(const BenchOptions& o, const char* when) {
    const int threads = threads_for(0);
    if (!o.run.quiet)
        std::fprintf(stderr, "bench: measuring memory read bandwidth %s the tests (%.1f GB buffer, %d threads)...\n", when,
                     o.bandwidth_gb, threads);
    const BandwidthResult bw = measure_read_bandwidth(uint64_t(o.bandwidth_gb * 1e9), threads, 5);
    if (bw.best_gbs <= 0)
        throw std::runtime_error("could not allocate the " + std::to_string(o.bandwidth_gb) +
                                 " GB buffer for the memory bandwidth measurement; lower --bandwidth-gb");
    return bw;
}

// The op kinds of a decode profile in the order a token runs them (row gather: the rows that get logits).
const char* const kProfileOrder[] = {"embedding", "rms_norm", "add", "linear", "mlp", "kda", "mla", "moe", "row gather",
                                     "lm_head"};

// A tg test's tokens decoded once more on a fresh sequence (the same tokens as its first repetition, the depth
// prefilled untimed), with every op timed and its bytes counted by `timer`, which is off before and after.
OpProfile profile_decode(Model& m, OpTimingBackend& timer, const BenchTest& t) {
    TokenSource tokens{12345, m.config().vocab_size};
    Sequence seq;
    m.begin_sequence(seq);
    if (t.n_depth > 0) m.prefill(seq, tokens.take(t.n_depth), false);
    const std::vector<int32_t> gen = tokens.take(t.n_gen);
    timer.clear();
    timer.set_enabled(true);
    const auto t0 = std::chrono::steady_clock::now();
    try {
        decode(m, seq, gen);
    } catch (...) {
        timer.set_enabled(false);
        throw;
    }
    const auto t1 = std::chrono::steady_clock::now();
    timer.set_enabled(false);
    m.end_sequence(seq);

    OpProfile p;
    p.tokens = t.n_gen;
    p.wall_seconds = std::chrono::duration<double>(t1 - t0).count();
    std::map<std::string, OpProfileLine> by_op;  // one row or many: all of a decode step's ops have one row
    for (const auto& [key, e] : timer.entries()) {
        OpProfileLine& l = by_op[key.op];
        l.op = key.op;
        l.calls += e.calls;
        l.seconds += e.seconds;
        l.weight_bytes += e.bytes.weights;
        l.state_bytes += e.bytes.state;
    }
    for (const char* op : kProfileOrder)
        if (const auto it = by_op.find(op); it != by_op.end()) {
            p.ops.push_back(it->second);
            by_op.erase(it);
        }
    for (const auto& [op, l] : by_op) p.ops.push_back(l);  // an op kind added later
    timer.clear();
    return p;
}

// Every test on one loaded model (one backend, one thread count); the tg tests profiled after their repetitions
// when `timer` is given.
void run_tests(Model& m, const BenchOptions& o, const std::vector<BenchTest>& tests, const BenchRow& base,
               OpTimingBackend* timer, std::vector<BenchRow>& rows) {
    const int64_t vocab = m.config().vocab_size;
    for (size_t i = 0; i < tests.size(); ++i) {
        const BenchTest& t = tests[i];
        BenchRow row = base;
        row.test = t;
        row.bytes_per_run = test_bytes(m, t);
        row.test_time = utc_now();
        if (!o.no_warmup) {  // as llama-bench: the whole prompt once and one decode step, untimed
            TokenSource warm{0x5eed ^ i, vocab};
            Sequence seq;
            m.begin_sequence(seq);
            if (t.n_prompt > 0) m.prefill(seq, warm.take(t.n_prompt), false);
            if (t.n_gen > 0) decode(m, seq, warm.take(1));
            m.end_sequence(seq);
        }
        for (int32_t rep = 0; rep < o.reps; ++rep) {
            TokenSource tokens{uint64_t(12345 + 7919 * rep), vocab};
            row.samples_ns.push_back(run_once(m, t, tokens));
            if (!o.run.quiet)
                std::fprintf(stderr, "bench: %s, %d threads, %s: rep %d/%d: %.2f t/s\n", row.backend.c_str(), row.threads,
                             t.name().c_str(), rep + 1, o.reps, row.samples_ts().back());
        }
        if (timer && t.n_prompt == 0 && t.n_gen > 0) {
            if (!o.run.quiet)
                std::fprintf(stderr, "bench: %s, %d threads, %s: per-op profile (every op synchronised)\n",
                             row.backend.c_str(), row.threads, t.name().c_str());
            row.op_profile = profile_decode(m, *timer, t);
        }
        rows.push_back(std::move(row));
    }
}

void write_file(const std::string& path, const std::string& text, const std::string& flag) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + flag + " " + path + ": " + std::strerror(errno));
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok) throw std::runtime_error("cannot write " + flag + " " + path + ": " + std::strerror(errno));
}

std::string model_name(const std::string& dir) {
    std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    return p.filename().string();
}

int run_bench(BenchOptions& o, const CLI::App& app) {
    apply_profile(o.run, app);
    const auto given = [&](const char* name) { return app.get_option(name)->count() > 0; };

    // The tests, the thread counts and the backends, checked before anything loads.
    BenchGrid grid;
    const std::vector<std::string> prompt_items = split_prompt_results(o.prompt_option->results(), grid.pairs);
    if (given("-p") && prompt_items.empty() && grid.pairs.empty())
        throw std::runtime_error("-p is empty; give prompt lengths like -p 512 or -p 128,512 (0: no pp test)");
    for (const std::string& pair : o.pairs) grid.pairs.push_back(parse_pair(pair, "--pg"));
    if (!prompt_items.empty()) grid.prompts = parse_counts(prompt_items, "-p", 0, kMaxTokens);
    if (!o.gens.empty()) grid.gens = parse_counts(o.gens, "-n", 0, kMaxTokens);
    if (!o.depths.empty()) grid.depths = parse_counts(o.depths, "-d", 0, kMaxTokens);
    const std::vector<BenchTest> tests = bench_tests(grid);
    if (tests.empty())
        throw std::runtime_error("nothing to run: -p and -n are all 0 and no -pg pair was given; give a prompt length "
                                 "(-p 512), a generation length (-n 128) or a pair (-pg 512,128)");
    const std::vector<int32_t> threads =
        o.threads.empty() ? std::vector<int32_t>{o.run.threads} : parse_counts(o.threads, "-t", 0, 4096);
    if (given("--backend") && given("--backends"))
        throw std::runtime_error("--backend and --backends were both given; give one (--backends a,b compares them)");
    std::vector<std::string> backends;
    for (const std::string& item : o.backends) {
        size_t pos = 0;
        while (true) {
            const size_t comma = std::min(item.find(',', pos), item.size());
            const std::string name = item.substr(pos, comma - pos);
            if (name.empty())
                throw std::runtime_error("--backends: an empty name in " + input::quote(item) +
                                         "; give plugin names separated by commas, like cpu,vulkan");
            if (std::find(backends.begin(), backends.end(), name) != backends.end())
                throw std::runtime_error("--backends names " + input::quote(name) + " twice");
            backends.push_back(name);
            if (comma == item.size()) break;
            pos = comma + 1;
        }
    }
    if (backends.empty()) backends = {o.run.backend};
    if (!(o.bandwidth_gb >= 0.1 && o.bandwidth_gb <= 1024))
        throw std::runtime_error("--bandwidth-gb must be between 0.1 and 1024 (1 or more measures DRAM, not caches)");
    if (!o.json_out.empty()) check_output_path(o.json_out, "--json-out");

    // One context that holds the deepest test.
    const std::string dir = model_dir_of(o.run);
    const ModelConfig config = load_model_config(dir);
    const BenchTest& deepest =
        *std::max_element(tests.begin(), tests.end(), [](const BenchTest& a, const BenchTest& b) { return a.context() < b.context(); });
    fit_context(o.run, given("--context"), config, deepest.context(),
                "the test " + deepest.name() + " (" + std::to_string(deepest.context()) + " tokens)");

    BenchSetup setup;
    setup.build_commit = HALO_BUILD_COMMIT;
    setup.model_dir = dir;
    setup.model_name = model_name(dir);
    const BandwidthResult before = measure_bandwidth(o, "before");
    setup.bandwidth_before_gbs = before.best_gbs;
    setup.bandwidth_buffer_bytes = before.bytes;
    setup.bandwidth_threads = before.threads;

    std::vector<BenchRow> rows;
    for (const std::string& backend : backends)
        for (int32_t t : threads) {
            RunOptions ro = o.run;
            ro.backend = backend;
            ro.threads = t;
            // The profiler sits between the model and the plugin, off (ops pass straight through) but for the
            // profiling pass; declared before the engine, which uses it until it goes.
            std::unique_ptr<OpTimingBackend> profiler;
            BackendWrap wrap;
            if (o.op_profile == "on" || (o.op_profile == "auto" && backend == "cpu"))
                wrap = [&profiler](ops::Backend& plugin) -> ops::Backend& {
                    profiler = std::make_unique<OpTimingBackend>(plugin, false);
                    profiler->set_enabled(false);
                    return *profiler;
                };
            Engine e = open_engine(ro, 1, wrap);
            Model& m = *e.model;
            BenchRow base;
            base.backend = backend;
            base.device = m.backend().device().name;
            base.weights = weight_formats(m);
            base.model_size = m.plan().bytes[int(ops::MemoryUse::weights)];
            base.model_n_params = uint64_t(count_parameters(m.config()));
            base.decode_weight_bytes = m.decode_weight_bytes();
            base.threads = threads_for(t);
            base.chunk = m.options().max_step_rows;
            base.cache_dtype = ro.cache_dtype;
            if (profiler) profiler->set_lm_head_width(m.config().vocab_size);
            const size_t first_row = rows.size();
            run_tests(m, o, tests, base, profiler.get(), rows);
            const Model::CheckpointPages pages = m.checkpoint_pages();
            for (size_t i = first_row; i < rows.size(); ++i) {
                rows[i].mapped_bytes = pages.bytes;
                rows[i].mapped_resident_bytes = pages.resident;
                rows[i].mapped_huge_bytes = pages.huge;
            }
        }

    setup.bandwidth_after_gbs = measure_bandwidth(o, "after").best_gbs;

    std::string out;
    if (o.output == "md") {
        out = bench_markdown(setup, rows, backends);
    } else if (o.output == "csv") {
        out = bench_csv(setup, rows);
    } else if (o.output == "json") {
        out = bench_json(setup, rows).dump(2) + "\n";
    } else {  // jsonl
        for (const BenchRow& r : rows) out += bench_json_record(setup, r).dump() + "\n";
    }
    std::fputs(out.c_str(), stdout);
    if (!o.json_out.empty()) write_file(o.json_out, bench_json(setup, rows).dump(2) + "\n", "--json-out");
    return 0;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
    auto o = std::make_shared<BenchOptions>();
    CLI::App* sub = app.add_subcommand(
        "bench", "Measure speed as llama-bench does (pp512, tg128, pp512+tg128, at context depths), with the GB/s "
                 "each test reads against the machine's memory bandwidth; --backends a,b side by side");
    add_run_options(*sub, o->run);
    // llama-bench's names for the run options it shares: -m for --model, -t (a comma list) for --threads.
    sub->remove_option(sub->get_option("--model"));
    sub->add_option("-m,--model", o->run.model_dir,
                    "Model directory (config.json + safetensors); default: the built-in demo model")
        ->check(kNonEmpty);
    sub->remove_option(sub->get_option("--threads"));
    sub->add_option("-t,--threads", o->threads,
                    "CPU threads; a comma list runs every test with each count (0 = every CPU this process may use)");
    CLI::Option* p = sub->add_option("-p,--n-prompt", o->prompts,
                                     "Prompt lengths: a pp test each (comma lists; 0: none) [512]. -pg PP,TG (as "
                                     "llama-bench writes it, or --pg) adds a test prefilling PP tokens then decoding TG");
    p->allow_extra_args();  // -pg reaches CLI11 as -p with the value "g" and the pair after it
    p->inject_separator();  // so that each occurrence's values stay apart
    o->prompt_option = p;
    sub->add_option("--pg", o->pairs, "A pp+tg test: PP,TG (also written -pg)");
    sub->add_option("-n,--n-gen", o->gens, "Generation lengths: a tg test each, decoding one token per step [128]");
    sub->add_option("-d,--n-depth", o->depths,
                    "Context depths: every test also runs after this many tokens are prefilled, untimed [0]");
    sub->add_option("-r,--repetitions", o->reps, "Repetitions of each test")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    sub->add_option("-o,--output", o->output, "Output format on stdout: md, csv, json or jsonl")
        ->check(CLI::IsMember({"md", "csv", "json", "jsonl"}))
        ->capture_default_str();
    sub->add_option("--backends", o->backends, "Run the same tests on each of these backends, e.g. cpu,vulkan: one "
                                               "table with a column per backend and their ratio");
    sub->add_flag("--no-warmup", o->no_warmup, "Skip the untimed run of each test's prompt and first token");
    sub->add_option("--bandwidth-gb", o->bandwidth_gb,
                    "Buffer of the memory bandwidth measurement, in GB (0.1 to 1024; 1 or more measures DRAM)")
        ->capture_default_str();
    sub->add_option("--json-out", o->json_out, "Also write the results as JSON to this file")->check(kNonEmpty);
    sub->add_option("--op-profile", o->op_profile,
                    "Per-op profile of each tg test: after its timed repetitions, its tokens are decoded once more with "
                    "every op synchronised and timed, giving per op kind the calls, ms, bytes read, GB/s and share of "
                    "the bandwidth per token (a table after the results, \"op_profile\" in JSON, not in CSV). on, off, "
                    "or auto: on for the cpu backend (a GPU's per-op synchronisation changes what it measures)")
        ->check(CLI::IsMember({"auto", "on", "off"}))
        ->capture_default_str();
    return {sub, [o, sub] { return run_bench(*o, *sub); }};
}

}  // namespace halo::cli
