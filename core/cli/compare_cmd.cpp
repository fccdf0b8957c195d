// engine compare --backends A,B [--model DIR] [--prompt TEXT | --prompt-ids 1,2,3] [--max-tokens N] [--json]
//
// Runs the same tokens through two backends, one after the other in this process, and reports how far apart they
// are: the residual stream after every layer at every prompt position, the logits at every position (prompt and
// continuation), the greedy continuation, and prefill and decode speed. Backend A generates the continuation
// greedily; backend B is fed A's tokens (teacher forcing), so that every position sees the same input on both and
// the first position where B's greedy choice differs is where free-running greedy outputs would part. Exit status 2
// when a figure is beyond its threshold.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/check_backend.h"
#include "core/cli/command.h"
#include "core/cli/common.h"
#include "core/layer_capture_backend.h"
#include "core/sampler.h"
#include "core/tokenizer/tokenizer.h"

namespace halo::cli {

namespace {

using nlohmann::json;

struct CompareOptions {
    RunOptions run;
    std::string backends;  // "A,B"
    std::string prompt;    // text, encoded with the model's tokenizer
    std::string prompt_ids;
    int32_t max_tokens = 16;
    bool json = false;
    double max_error = 1e-2;
    double max_kl = 1e-3;
    double min_top1 = 0.9;
    double max_logit_diff = 0;  // checked only when given
    std::vector<std::string> perturb;  // "B:kda:2:1e-2"
};

// What one backend produced on the shared tokens.
struct BackendRun {
    std::string backend;
    std::string device;
    bool software_gpu = false;  // a GPU plugin on a CPU-emulated driver (llvmpipe): its speed says nothing
    std::vector<std::vector<float>> layers;  // [layer][T * hidden]: residual stream after the layer, every position
    std::vector<float> logits;               // [(T + decode steps) * vocab]: prompt positions, then decode steps
    std::vector<int32_t> generated;          // the greedy continuation (backend A only)
    double prefill_s = 0, decode_s = 0;
    int64_t decode_steps = 0;
    uint64_t perturbed_ops = 0;
};

std::string fmt(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return "inf";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

std::string percent(int64_t agree, int64_t total) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%lld/%lld (%.1f%%)", (long long)agree, (long long)total,
                  total ? 100.0 * double(agree) / double(total) : 100.0);
    return buf;
}

const char* mixer_name(MixerKind k) { return k == MixerKind::kda ? "kda" : "mla"; }
const char* ffn_name(FfnKind k) { return k == FfnKind::dense ? "mlp" : "moe"; }

// ---- running one backend ---------------------------------------------------------------------------------------

// Loads `name` and the model (printing the memory plan unless quiet), runs the prompt once with the layer capture
// on (every position's logits and residuals), then once more timed: prefill, and one decode step per continuation
// token but the last. `feed` holds the continuation to decode (backend B); without it the continuation is generated
// greedily (backend A).
BackendRun run_backend(const CompareOptions& o, const std::string& name, const std::optional<Perturbation>& perturbation,
                       const std::vector<int32_t>& prompt, const std::vector<int32_t>* feed) {
    RunOptions ro = o.run;
    ro.backend = name;
    // Around the plugin: the injected error (when asked for), then the capture; check mode, when on, wraps both.
    std::unique_ptr<PerturbBackend> perturb;
    std::unique_ptr<LayerCaptureBackend> capture;
    Engine e = open_engine(ro, 1, [&](ops::Backend& plugin) -> ops::Backend& {
        ops::Backend* b = &plugin;
        if (perturbation) {
            perturb = std::make_unique<PerturbBackend>(*b, *perturbation);
            b = perturb.get();
        }
        capture = std::make_unique<LayerCaptureBackend>(*b);
        return *capture;
    });
    BackendRun r;
    r.backend = name;
    // Exceptions may come from the plugin, whose code goes away with `e`: keep only their text.
    try {
        const ops::DeviceInfo& device = e.backend->backend().device();
        r.device = device.name;
        r.software_gpu = name != "cpu" && device.kind == "cpu";
        Model& model = *e.model;
        const ModelConfig& c = model.config();

        // Pass 1: every prompt position's logits and layer outputs (reading back mid-step: not timed).
        {
            Sequence seq;
            model.begin_sequence(seq);
            capture->set_capturing(true);
            r.logits = model.prefill(seq, prompt, true);
            capture->set_capturing(false);
            model.end_sequence(seq);
            r.layers = capture->layers();
            const size_t rows = prompt.size() * size_t(c.hidden_size);
            if (r.layers.size() != size_t(c.num_hidden_layers) ||
                std::any_of(r.layers.begin(), r.layers.end(), [&](const auto& l) { return l.size() != rows; }))
                throw std::logic_error("compare: the layer capture did not see every layer's output once per position "
                                       "(the op order of a forward step has changed)");
        }

        // Pass 2, timed: prefill as a request would, then the continuation one token per step.
        const int64_t vocab = c.vocab_size;
        const int64_t T = int64_t(prompt.size());
        Sequence seq;
        model.begin_sequence(seq);
        const auto t0 = std::chrono::steady_clock::now();
        model.prefill(seq, prompt, false);
        const auto t1 = std::chrono::steady_clock::now();
        r.prefill_s = std::chrono::duration<double>(t1 - t0).count();
        const int64_t steps = std::max<int64_t>(o.max_tokens - 1, 0);
        int32_t next = argmax(r.logits.data() + (T - 1) * vocab, vocab);  // A's first generated token
        if (o.max_tokens > 0 && !feed) r.generated.push_back(next);
        const auto t2 = std::chrono::steady_clock::now();
        for (int64_t k = 0; k < steps; ++k) {
            const int32_t token = feed ? (*feed)[size_t(k)] : next;
            StepItem item{&seq, std::span<const int32_t>(&token, 1), LogitRows::last};
            const size_t at = r.logits.size();
            model.step(std::span<const StepItem>(&item, 1), r.logits);
            next = argmax(r.logits.data() + at, vocab);
            if (!feed) r.generated.push_back(next);
        }
        r.decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count();
        r.decode_steps = steps;
        model.end_sequence(seq);
        r.perturbed_ops = perturb ? perturb->ops_perturbed() : 0;
    } catch (const std::exception& err) {
        throw std::runtime_error(err.what());
    }
    return r;
}

// ---- the figures -------------------------------------------------------------------------------------------------

struct LayerFigures {
    double max_abs_diff = 0, rms_a = 0, error = 0;  // error = max_abs_diff / rms_a
    int64_t worst_position = 0;
    int64_t non_finite = 0;  // elements where NaN/Inf differ
};

LayerFigures layer_figures(const std::vector<float>& a, const std::vector<float>& b, int64_t hidden) {
    LayerFigures f;
    double ss = 0;
    int64_t finite = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double x = a[i], y = b[i];
        if (!std::isfinite(x) || !std::isfinite(y)) {
            if (!(x == y || (std::isnan(x) && std::isnan(y)))) ++f.non_finite;
            continue;
        }
        ss += x * x;
        ++finite;
        if (std::fabs(x - y) > f.max_abs_diff) {
            f.max_abs_diff = std::fabs(x - y);
            f.worst_position = int64_t(i) / hidden;
        }
    }
    f.rms_a = finite ? std::sqrt(ss / double(finite)) : 0.0;
    f.error = f.non_finite ? INFINITY : f.max_abs_diff / std::max(f.rms_a, 1e-30);
    return f;
}

struct LogitFigures {
    int64_t positions = 0;
    double max_abs_diff = 0, mean_kl = 0, max_kl = 0;
    int64_t top1_agree = 0;
    int64_t non_finite = 0;  // positions with a NaN or Inf logit on either side
    double top1() const { return positions ? double(top1_agree) / double(positions) : 1.0; }
};

// log-sum-exp of one row, in double.
double log_sum_exp(const float* x, int64_t n) {
    double mx = -INFINITY;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, double(x[i]));
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
    return mx + std::log(s);
}

// Rows [first, first + count) of both runs' logits.
LogitFigures logit_figures(const std::vector<float>& a, const std::vector<float>& b, int64_t vocab, int64_t first,
                           int64_t count) {
    LogitFigures f;
    f.positions = count;
    double kl_sum = 0;
    for (int64_t r = first; r < first + count; ++r) {
        const float* x = a.data() + r * vocab;
        const float* y = b.data() + r * vocab;
        if (!std::all_of(x, x + vocab, [](float v) { return std::isfinite(v); }) ||
            !std::all_of(y, y + vocab, [](float v) { return std::isfinite(v); })) {
            ++f.non_finite;
            f.max_abs_diff = f.max_kl = INFINITY;
            continue;
        }
        const double lx = log_sum_exp(x, vocab), ly = log_sum_exp(y, vocab);
        double kl = 0;
        for (int64_t i = 0; i < vocab; ++i) {
            f.max_abs_diff = std::max(f.max_abs_diff, std::fabs(double(x[i]) - double(y[i])));
            const double px = double(x[i]) - lx;
            kl += std::exp(px) * (px - (double(y[i]) - ly));
        }
        kl = std::max(kl, 0.0);  // rounding can leave a tiny negative sum
        kl_sum += kl;
        f.max_kl = std::max(f.max_kl, kl);
        f.top1_agree += argmax(x, vocab) == argmax(y, vocab);
    }
    f.mean_kl = f.non_finite ? INFINITY : count ? kl_sum / double(count) : 0.0;
    return f;
}

json logit_json(const LogitFigures& f) {
    auto num = [](double v) { return std::isfinite(v) ? json(v) : json(fmt(v)); };
    return {{"positions", f.positions},       {"max_abs_diff", num(f.max_abs_diff)}, {"mean_kl", num(f.mean_kl)},
            {"max_kl", num(f.max_kl)},        {"top1_agreement", f.top1()},          {"top1_agree", f.top1_agree},
            {"non_finite_positions", f.non_finite}};
}

// ---- the command ------------------------------------------------------------------------------------------------

std::vector<std::string> split_backends(const std::string& text) {
    std::vector<std::string> names;
    for (size_t at = 0;;) {
        const size_t comma = text.find(',', at);
        names.push_back(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    if (names.size() != 2 || names[0].empty() || names[1].empty())
        throw std::runtime_error("--backends '" + text + "' must name two backends separated by a comma, e.g. "
                                 "--backends cpu,vulkan (the same one twice compares it with itself)");
    return names;
}

// "B:kda:2:1e-2" -> which backend (0 = A, 1 = B) and what to perturb, checked against the model's layers.
std::pair<int, Perturbation> parse_perturb_option(const std::string& text, const ModelConfig& c) {
    const std::string flag = "--perturb " + text;
    if (text.size() < 2 || (text[0] != 'A' && text[0] != 'B') || text[1] != ':')
        throw std::runtime_error(flag + ": start with A: or B: (which of --backends to perturb), e.g. B:kda:2:1e-2");
    const Perturbation p = parse_perturbation(text.substr(2), "--perturb");
    auto has = [&](int32_t l) {
        return p.op == mixer_name(c.mixer[size_t(l)]) || p.op == ffn_name(c.ffn[size_t(l)]);
    };
    if (p.layer >= c.num_hidden_layers)
        throw std::runtime_error(flag + ": the model has " + std::to_string(c.num_hidden_layers) + " layers (0.." +
                                 std::to_string(c.num_hidden_layers - 1) + ")");
    if (p.layer >= 0 && !has(p.layer))
        throw std::runtime_error(flag + ": layer " + std::to_string(p.layer) + " has no " + p.op + " op (it runs " +
                                 mixer_name(c.mixer[size_t(p.layer)]) + " and " + ffn_name(c.ffn[size_t(p.layer)]) + ")");
    bool any = false;
    for (int32_t l = 0; l < c.num_hidden_layers; ++l) any = any || has(l);
    if (!any) throw std::runtime_error(flag + ": no layer of the model has a " + p.op + " op");
    return {text[0] == 'A' ? 0 : 1, p};
}

int run_compare(CompareOptions& o, CLI::App& app) {
    apply_profile(o.run, app);
    auto given = [&](const char* flag) { return app.get_option(flag)->count() > 0; };
    if (given("--backend"))
        throw std::runtime_error("compare takes its two backends from --backends A,B, not --backend");
    const std::vector<std::string> names = split_backends(o.backends);
    if (given("--prompt") && given("--prompt-ids")) throw std::runtime_error("give only one of --prompt and --prompt-ids");
    if (given("--prompt") && o.prompt.empty()) throw std::runtime_error("--prompt is empty; give a prompt");
    if (o.max_tokens < 0) throw std::runtime_error("--max-tokens must be 0 or more");
    for (const auto& [flag, v] : {std::pair{"--max-error", o.max_error}, {"--max-kl", o.max_kl},
                                  {"--max-logit-diff", o.max_logit_diff}})
        if (!(v >= 0) || !std::isfinite(v)) throw std::runtime_error(std::string(flag) + " must be a finite number, 0 or more");
    if (!(o.min_top1 >= 0 && o.min_top1 <= 1)) throw std::runtime_error("--min-top1 must be between 0 and 1");

    // The config first, so that prompts and perturbations the model cannot take are refused before loading.
    const std::string dir = model_dir_of(o.run);
    const ModelConfig config = load_model_config(dir);
    std::optional<Perturbation> perturbation[2];
    for (const std::string& text : o.perturb) {
        auto [which, p] = parse_perturb_option(text, config);
        if (perturbation[which])
            throw std::runtime_error("--perturb " + text + ": backend " + std::string(1, text[0]) +
                                     " is perturbed already; give one --perturb per backend");
        perturbation[which] = p;
    }
    std::vector<int32_t> prompt;
    const bool has_tokenizer = std::filesystem::exists(std::filesystem::path(dir) / "tiktoken.model");
    if (given("--prompt-ids")) {
        prompt = parse_ids(o.prompt_ids, "--prompt-ids");
        if (prompt.empty()) throw std::runtime_error("--prompt-ids is empty; give at least one token id");
        check_ids_in_vocab(prompt, config.vocab_size, "--prompt-ids");
    } else if (given("--prompt") || has_tokenizer) {
        if (!has_tokenizer)
            throw std::runtime_error("--prompt needs the model's tokenizer, and " + dir +
                                     " has no tiktoken.model; give --prompt-ids instead");
        const tok::Tokenizer tokenizer = tok::Tokenizer::load(dir);
        prompt = tokenizer.encode(given("--prompt") ? o.prompt : "Once upon a time");
        check_ids_in_vocab(prompt, config.vocab_size, "the tokenized --prompt");
        if (prompt.empty()) throw std::runtime_error("--prompt encodes to no tokens; give a longer prompt");
    } else {
        prompt = {1, 2, 3, 4, 5, 6, 7, 8};  // a model without a tokenizer
    }
    const int64_t T = int64_t(prompt.size());
    fit_context(o.run, given("--context"), config, T + o.max_tokens,
                "the prompt (" + std::to_string(T) + " tokens) plus --max-tokens " + std::to_string(o.max_tokens));

    // Both backends must start and take the options before either runs (the first may run for long); then A's
    // model generates, and B's follows A's tokens, one model in memory at a time.
    ops::BackendOptions bo;
    bo.threads = o.run.threads;
    bo.device_index = o.run.device;
    bo.device_name = o.run.device_name;
    bo.validation = o.run.validation;
    for (int i = 0; i < 2; ++i) {
        const std::unique_ptr<LoadedBackend> probe = load_backend(names[size_t(i)], bo, o.run.plugin_dir);
        try {
            check_placements(o.run, probe->backend().device());
        } catch (const std::exception& err) {
            throw std::runtime_error("backend " + names[size_t(i)] + " (" + "AB"[i] + "): " + err.what() +
                                     " (compare gives both backends the same options)");
        }
    }
    const BackendRun a = run_backend(o, names[0], perturbation[0], prompt, nullptr);
    const BackendRun b = run_backend(o, names[1], perturbation[1], prompt, &a.generated);
    for (int i = 0; i < 2; ++i)
        if (perturbation[i] && (i == 0 ? a : b).perturbed_ops == 0)
            throw std::runtime_error("--perturb: no op of backend " + std::string(i == 0 ? "A" : "B") +
                                     " was perturbed (the op order of a forward step has changed)");

    // Figures.
    const int64_t V = config.vocab_size, D = config.hidden_size, steps = a.decode_steps;
    std::vector<LayerFigures> layers;
    for (int32_t l = 0; l < config.num_hidden_layers; ++l)
        layers.push_back(layer_figures(a.layers[size_t(l)], b.layers[size_t(l)], D));
    const LogitFigures prefill = logit_figures(a.logits, b.logits, V, 0, T);
    const LogitFigures decode = logit_figures(a.logits, b.logits, V, T, steps);
    const LogitFigures all = logit_figures(a.logits, b.logits, V, 0, T + steps);
    // The continuation: A's tokens, and B's greedy choice at the same positions (rows T-1 .. T-1+steps).
    std::vector<int32_t> b_choice;
    for (int64_t k = 0; k < int64_t(a.generated.size()); ++k)
        b_choice.push_back(argmax(b.logits.data() + (T - 1 + k) * V, V));
    int64_t first_difference = -1, greedy_agree = 0;
    for (size_t k = 0; k < b_choice.size(); ++k) {
        greedy_agree += b_choice[k] == a.generated[k];
        if (first_difference < 0 && b_choice[k] != a.generated[k]) first_difference = int64_t(k);
    }

    // Thresholds.
    std::vector<std::string> failures;
    for (int32_t l = 0; l < config.num_hidden_layers; ++l)
        if (!(layers[size_t(l)].error <= o.max_error)) {
            int32_t more = 0;
            for (int32_t m = l + 1; m < config.num_hidden_layers; ++m) more += !(layers[size_t(m)].error <= o.max_error);
            failures.push_back("layer " + std::to_string(l) + " (" + mixer_name(config.mixer[size_t(l)]) + ", " +
                               ffn_name(config.ffn[size_t(l)]) + ") is the first to diverge: normalised error " +
                               fmt(layers[size_t(l)].error) + " at position " +
                               std::to_string(layers[size_t(l)].worst_position) + " exceeds --max-error " +
                               fmt(o.max_error) +
                               (more ? " (and " + std::to_string(more) + " later layer" + (more > 1 ? "s" : "") + ")" : ""));
            break;
        }
    if (!(all.mean_kl <= o.max_kl))
        failures.push_back("the mean KL(A||B) of the logits " + fmt(all.mean_kl) + " exceeds --max-kl " + fmt(o.max_kl));
    if (all.top1() < o.min_top1)
        failures.push_back("top-1 agreement " + percent(all.top1_agree, all.positions) + " is below --min-top1 " +
                           fmt(o.min_top1));
    if (given("--max-logit-diff") && !(all.max_abs_diff <= o.max_logit_diff))
        failures.push_back("the largest logit difference " + fmt(all.max_abs_diff) + " exceeds --max-logit-diff " +
                           fmt(o.max_logit_diff));
    if (all.non_finite)
        failures.push_back(std::to_string(all.non_finite) + " position" + (all.non_finite > 1 ? "s have" : " has") +
                           " NaN or Inf logits on one backend");

    auto tok_s = [](double tokens, double s) { return s > 0 && tokens > 0 ? tokens / s : 0.0; };
    const BackendRun* runs[2] = {&a, &b};
    if (o.json) {
        json doc;
        doc["backends"] = {a.backend, b.backend};
        doc["devices"] = {a.device, b.device};
        doc["model"] = dir;
        doc["prompt_tokens"] = T;
        doc["prompt_ids"] = prompt;
        doc["generated_tokens"] = a.generated.size();
        json perturbed = {nullptr, nullptr};  // the --perturb given for A and for B
        for (const std::string& text : o.perturb) perturbed[text[0] == 'A' ? 0 : 1] = text;
        doc["perturbed"] = perturbed;
        json lj = json::array();
        for (int32_t l = 0; l < config.num_hidden_layers; ++l) {
            const LayerFigures& f = layers[size_t(l)];
            lj.push_back({{"layer", l},
                          {"mixer", mixer_name(config.mixer[size_t(l)])},
                          {"ffn", ffn_name(config.ffn[size_t(l)])},
                          {"normalised_error", std::isfinite(f.error) ? json(f.error) : json(fmt(f.error))},
                          {"max_abs_diff", f.max_abs_diff},
                          {"rms_a", f.rms_a},
                          {"worst_position", f.worst_position},
                          {"non_finite", f.non_finite}});
        }
        doc["layers"] = lj;
        doc["logits"] = {{"prefill", logit_json(prefill)}, {"decode", logit_json(decode)}, {"all", logit_json(all)}};
        doc["greedy"] = {{"tokens_a", a.generated},
                         {"tokens_b", b_choice},
                         {"agree", greedy_agree},
                         {"first_difference", first_difference < 0 ? json(nullptr) : json(first_difference)}};
        json speed = json::array();
        for (const BackendRun* r : runs)
            speed.push_back({{"backend", r->backend},
                             {"device", r->device},
                             {"software_gpu", r->software_gpu},
                             {"prefill_tokens", T},
                             {"prefill_s", r->prefill_s},
                             {"prefill_tok_s", tok_s(double(T), r->prefill_s)},
                             {"decode_tokens", r->decode_steps},
                             {"decode_s", r->decode_s},
                             {"decode_tok_s", tok_s(double(r->decode_steps), r->decode_s)}});
        doc["speed"] = speed;
        json th = {{"max_error", o.max_error}, {"max_kl", o.max_kl}, {"min_top1", o.min_top1}};
        th["max_logit_diff"] = given("--max-logit-diff") ? json(o.max_logit_diff) : json(nullptr);
        doc["thresholds"] = th;
        doc["failures"] = failures;
        doc["agree"] = failures.empty();
        std::printf("%s\n", doc.dump(2).c_str());
    } else {
        const std::string A = a.backend + " (A)", B = b.backend + " (B)";
        std::printf("engine compare: %s on %s vs %s on %s; %s; %lld prompt tokens, %zu generated greedily by A and "
                    "fed to B\n\n",
                    A.c_str(), a.device.c_str(), B.c_str(), b.device.c_str(), dir.c_str(), (long long)T,
                    a.generated.size());
        for (const std::string& text : o.perturb)
            std::printf("perturbed on purpose (a test of this comparison): %s\n\n", text.c_str());
        std::printf("Residual stream after each layer, every prompt position (normalised error = max|A-B| / rms(A)):\n\n");
        std::printf("| layer | mixer | ffn | normalised error | max abs diff | rms(A) | worst position |\n");
        std::printf("|---:|---|---|---:|---:|---:|---:|\n");
        for (int32_t l = 0; l < config.num_hidden_layers; ++l) {
            const LayerFigures& f = layers[size_t(l)];
            std::printf("| %d | %s | %s | %s%s | %s | %s | %lld |\n", l, mixer_name(config.mixer[size_t(l)]),
                        ffn_name(config.ffn[size_t(l)]), fmt(f.error).c_str(), f.error > o.max_error ? " !" : "",
                        fmt(f.max_abs_diff).c_str(), fmt(f.rms_a).c_str(), (long long)f.worst_position);
        }
        std::printf("\nLogits (B fed A's tokens):\n\n");
        std::printf("| positions | count | max abs diff | mean KL(A‖B) | max KL(A‖B) | top-1 agreement |\n");
        std::printf("|---|---:|---:|---:|---:|---:|\n");
        for (const auto& [label, f] : {std::pair{"prompt (prefill)", &prefill}, {"continuation (decode)", &decode},
                                       {"all", &all}}) {
            if (f->positions == 0) {
                std::printf("| %s | 0 | - | - | - | - |\n", label);
                continue;
            }
            std::printf("| %s | %lld | %s | %s | %s | %s |\n", label, (long long)f->positions, fmt(f->max_abs_diff).c_str(),
                        fmt(f->mean_kl).c_str(), fmt(f->max_kl).c_str(), percent(f->top1_agree, f->positions).c_str());
        }
        if (a.generated.empty())
            std::printf("\nGreedy continuation: none (--max-tokens 0).\n");
        else if (first_difference < 0)
            std::printf("\nGreedy continuation: B picks A's token at all %zu positions.\n", a.generated.size());
        else
            std::printf("\nGreedy continuation: B first picks another token at generated token %lld (A %d, B %d); "
                        "%s agree.\n",
                        (long long)first_difference, a.generated[size_t(first_difference)],
                        b_choice[size_t(first_difference)], percent(greedy_agree, int64_t(b_choice.size())).c_str());
        std::printf("\nSpeed (the timed pass; the layer capture runs apart):\n\n");
        std::printf("| backend | device | prefill tok/s | decode tok/s |\n|---|---|---:|---:|\n");
        for (const BackendRun* r : runs) {
            char pp[32] = "-", tg[32] = "-";
            if (T > 0 && r->prefill_s > 0) std::snprintf(pp, sizeof pp, "%.1f", tok_s(double(T), r->prefill_s));
            if (r->decode_steps > 0 && r->decode_s > 0)
                std::snprintf(tg, sizeof tg, "%.1f", tok_s(double(r->decode_steps), r->decode_s));
            std::printf("| %s | %s | %s | %s |\n", r->backend.c_str(), r->device.c_str(), pp, tg);
        }
        for (const BackendRun* r : runs)
            if (r->software_gpu)
                std::printf("\nNote: %s runs on %s, a driver that emulates a GPU on the CPU: its speed says nothing "
                            "about a GPU.\n",
                            r->backend.c_str(), r->device.c_str());
        std::printf("\nThresholds: --max-error %s, --max-kl %s, --min-top1 %s%s. Result: %s\n", fmt(o.max_error).c_str(),
                    fmt(o.max_kl).c_str(), fmt(o.min_top1).c_str(),
                    given("--max-logit-diff") ? (", --max-logit-diff " + fmt(o.max_logit_diff)).c_str() : "",
                    failures.empty() ? "the backends agree." : "the backends DISAGREE.");
    }
    std::fflush(stdout);
    if (failures.empty()) return 0;
    std::string text;
    for (const std::string& f : failures) text += (text.empty() ? "" : "; ") + f;
    std::fprintf(stderr, "engine compare: %s and %s disagree: %s\n", names[0].c_str(), names[1].c_str(), text.c_str());
    return 2;
}

}  // namespace

Command add_compare_command(CLI::App& app) {
    auto o = std::make_shared<CompareOptions>();
    CLI::App* sub = app.add_subcommand(
        "compare",
        "Run the same tokens through two backends and report how far apart they are: the residual stream after every\n"
        "layer, the logits (max difference, KL, top-1 agreement) over the prompt and a greedy continuation (made by\n"
        "A, fed to B), and prefill and decode speed side by side. Exit status 2 when a figure passes its threshold.");
    add_run_options(*sub, o->run);
    sub->get_option("--backend")->group("");  // compare takes --backends
    sub->add_option("--backends", o->backends, "The two backends, A,B: e.g. cpu,vulkan (cpu,cpu compares two runs)")
        ->required();
    sub->add_option("--prompt", o->prompt, "Prompt text (needs the model's tokenizer)");
    sub->add_option("--prompt-ids", o->prompt_ids,
                    "Prompt as token ids, e.g. 1,2,3 (default: \"Once upon a time\" with a tokenizer, else 1..8)");
    sub->add_option("--max-tokens", o->max_tokens, "Tokens A generates greedily after the prompt (B is fed them)")
        ->capture_default_str();
    sub->add_flag("--json", o->json, "Print one JSON object instead of tables");
    sub->add_option("--max-error", o->max_error,
                    "Threshold on each layer's normalised error, max|A-B| / rms(A) of its output (float32 backends "
                    "agree to about 1e-5)")
        ->capture_default_str();
    sub->add_option("--max-kl", o->max_kl, "Threshold on the mean KL(A||B) of the logits over all positions")
        ->capture_default_str();
    sub->add_option("--min-top1", o->min_top1, "Least fraction of positions where A and B pick the same top token")
        ->capture_default_str();
    sub->add_option("--max-logit-diff", o->max_logit_diff, "Threshold on the largest logit difference (default: none)");
    sub->add_option("--perturb", o->perturb,
                    "A test of this comparison: scale one op's output on backend A or B by 1 + AMOUNT, in one layer "
                    "or all: A|B:OP:LAYER:AMOUNT with OP kda, mla, mlp or moe, LAYER 0-based or 'all', e.g. "
                    "B:kda:2:1e-2 (the comparison must then name layer 2)");
    return {sub, [o, sub] { return run_compare(*o, *sub); }};
}

}  // namespace halo::cli
