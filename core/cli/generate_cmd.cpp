// The default command: generate tokens from a prompt.
//   engine [--backend=cpu] [--model DIR] --prompt-ids 1,2,3 --max-tokens N [--temperature T --seed S] [--json]
#include <chrono>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/cli/command.h"
#include "core/cli/common.h"
#include "core/sampler.h"

namespace halo::cli {

namespace {

struct GenerateOptions {
    RunOptions run;
    std::string prompt_ids;
    int32_t max_tokens = 32;
    SamplingParams sampling;
    std::string stop_ids;
    bool json = false;
};

int run_generate(GenerateOptions& o, CLI::App& app) {
    std::vector<int32_t> prompt = parse_ids(o.prompt_ids);
    if (o.prompt_ids.empty()) prompt = {1, 2, 3, 4, 5, 6, 7, 8};  // the demo's default prompt
    if (prompt.empty()) throw std::runtime_error("--prompt-ids is empty; give at least one token id");
    if (o.max_tokens < 0) throw std::runtime_error("--max-tokens must be 0 or more");
    const std::vector<int32_t> stops = parse_ids(o.stop_ids);

    // Size the context to the job unless the user fixed it.
    const int64_t need = int64_t(prompt.size()) + o.max_tokens;
    if (app.get_option("--context")->count() == 0)
        o.run.context = std::max<int64_t>(o.run.context, need);
    else if (need > o.run.context)
        throw std::runtime_error("the prompt (" + std::to_string(prompt.size()) + " tokens) plus --max-tokens " +
                                 std::to_string(o.max_tokens) + " needs a context of " + std::to_string(need) +
                                 " tokens, more than --context " + std::to_string(o.run.context) + "; raise --context");

    Engine e = open_engine(o.run);
    Model& m = *e.model;
    if (m.config().model_max_length > 0 && need > m.config().model_max_length)
        throw std::runtime_error("the prompt plus --max-tokens needs " + std::to_string(need) +
                                 " tokens, more than the model's maximum length " +
                                 std::to_string(m.config().model_max_length));
    Sampler sampler(o.sampling);
    Sequence seq;
    m.begin_sequence(seq);
    const auto t0 = std::chrono::steady_clock::now();
    const bool show_progress = !o.run.quiet && prompt.size() > size_t(o.run.chunk);
    std::vector<float> logits = m.prefill(seq, prompt, false, [&](int64_t done, int64_t total) {
        if (show_progress) std::fprintf(stderr, "\rengine: prefill %lld/%lld tokens", (long long)done, (long long)total);
    });
    if (show_progress) std::fprintf(stderr, "\n");
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<int32_t> out;
    const int64_t vocab = m.config().vocab_size;
    while (int32_t(out.size()) < o.max_tokens) {
        const int32_t id = sampler.sample(logits.data(), vocab);
        out.push_back(id);
        if (std::find(stops.begin(), stops.end(), id) != stops.end() || int32_t(out.size()) == o.max_tokens) break;
        logits.clear();
        StepItem item{&seq, std::span<const int32_t>(&out.back(), 1), LogitRows::last};
        m.step(std::span<const StepItem>(&item, 1), logits);
    }
    const auto t2 = std::chrono::steady_clock::now();
    m.end_sequence(seq);

    const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
    const double decode_s = std::chrono::duration<double>(t2 - t1).count();
    const int64_t decoded = std::max<int64_t>(0, int64_t(out.size()) - 1);  // the first id came from prefill
    if (o.json) {
        nlohmann::json j;
        j["ids"] = out;
        j["prompt_tokens"] = prompt.size();
        j["timings"] = {{"prefill_s", prefill_s},
                        {"decode_s", decode_s},
                        {"prefill_tok_s", prefill_s > 0 ? double(prompt.size()) / prefill_s : 0.0},
                        {"decode_tok_s", decode_s > 0 ? double(decoded) / decode_s : 0.0}};
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::string line;
        for (size_t i = 0; i < out.size(); ++i) line += (i ? "," : "") + std::to_string(out[i]);
        std::printf("%s\n", line.c_str());
        if (!o.run.quiet)
            std::fprintf(stderr, "engine: prefill %zu tokens in %.3f s (%.1f tok/s), decode %lld tokens in %.3f s (%.1f tok/s)\n",
                         prompt.size(), prefill_s, prefill_s > 0 ? double(prompt.size()) / prefill_s : 0.0,
                         (long long)decoded, decode_s, decode_s > 0 ? double(decoded) / decode_s : 0.0);
    }
    return 0;
}

}  // namespace

std::function<int()> add_generate_options(CLI::App& app) {
    auto o = std::make_shared<GenerateOptions>();
    add_run_options(app, o->run);
    app.add_option("--prompt-ids", o->prompt_ids, "Prompt as token ids, e.g. 1,2,3");
    app.add_option("--max-tokens", o->max_tokens, "New tokens to generate")->capture_default_str();
    app.add_option("--temperature", o->sampling.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
    app.add_option("--top-k", o->sampling.top_k, "Sample among the k most likely tokens (0 = all)")->capture_default_str();
    app.add_option("--top-p", o->sampling.top_p, "Nucleus sampling threshold in (0, 1]")->capture_default_str();
    app.add_option("--seed", o->sampling.seed, "Random seed for sampling")->capture_default_str();
    app.add_option("--stop-ids", o->stop_ids, "Stop after generating one of these ids (with --prompt-ids nothing stops early by default)");
    app.add_flag("--json", o->json, "Print one JSON object with the ids and timings");
    return [o, &app] { return run_generate(*o, app); };
}

}  // namespace halo::cli
