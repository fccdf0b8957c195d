// The default command: generate tokens from a prompt.
//   engine [--profile configs/demo.toml] [--backend=cpu] [--model DIR] --prompt-ids 1,2,3 --max-tokens N [--temperature T --seed S] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/cli/command.h"
#include "core/cli/common.h"
#include "core/cli/progress.h"
#include "core/sampler.h"
#include "core/scheduler.h"
#include "core/tokenizer/chat.h"
#include "core/tokenizer/tool_calls.h"

namespace halo::cli {

namespace {

struct GenerateOptions {
    RunOptions run;
    std::string prompt_ids;
    std::string prompt;   // raw text, encoded without special tokens
    std::string chat;     // one user message, rendered with the chat template
    std::string system;   // system prompt for --chat (the template's default when empty)
    bool ignore_eos = false;
    int32_t max_tokens = 32;
    SamplingParams sampling;
    std::string stop_ids;
    bool json = false;
    bool show_special = false;  // print special and reserved tokens by name instead of leaving them out
};

int run_generate(GenerateOptions& o, CLI::App& app) {
    apply_profile(o.run, app);
    auto given = [&](const char* flag) { return app.get_option(flag)->count() > 0; };
    if (int(given("--prompt-ids")) + int(given("--prompt")) + int(given("--chat")) > 1)
        throw std::runtime_error("give only one of --prompt-ids, --prompt and --chat");
    if (given("--system") && !given("--chat")) throw std::runtime_error("--system goes with --chat");
    for (const auto& [flag, value] : {std::pair{"--prompt-ids", &o.prompt_ids}, {"--prompt", &o.prompt}, {"--chat", &o.chat}})
        if (given(flag) && value->empty()) throw std::runtime_error(std::string(flag) + " is empty; give a prompt");
    if (given("--system") && o.system.empty())
        throw std::runtime_error("--system is empty; leave it out to use the chat template's default system prompt");
    // Check the sampling options before anything is loaded.
    try {
        Sampler check(o.sampling);
    } catch (const std::invalid_argument& err) {
        throw std::runtime_error(std::string("sampling options (--temperature, --top-k, --top-p): ") + err.what());
    }
    if (o.max_tokens < 0) throw std::runtime_error("--max-tokens must be 0 or more");

    // Read the config first, so that prompts the model cannot take are refused before its weights are loaded.
    const std::string dir = model_dir_of(o.run);
    const ModelConfig config = load_model_config(dir);
    // Text modes need the model's tokenizer; the demo without a prompt uses a short story opening.
    std::optional<tok::Tokenizer> tokenizer;
    const bool has_tokenizer = std::filesystem::exists(std::filesystem::path(dir) / "tiktoken.model");
    const bool any_prompt = given("--prompt-ids") || given("--prompt") || given("--chat");
    if (!any_prompt && has_tokenizer) o.prompt = "Once upon a time";
    std::vector<int32_t> prompt;
    std::vector<int32_t> stops = parse_ids(o.stop_ids, "--stop-ids");
    check_ids_in_vocab(stops, config.vocab_size, "--stop-ids");
    if (!o.prompt.empty() || !o.chat.empty()) {
        tokenizer = tok::Tokenizer::load(dir);
        if (tokenizer->vocab_size() > config.vocab_size)
            throw std::runtime_error("the tokenizer in " + dir + " has " + std::to_string(tokenizer->vocab_size()) +
                                     " ids but the model's vocab_size is " + std::to_string(config.vocab_size) +
                                     ": tiktoken.model and tokenizer_config.json do not belong to this model");
        if (!o.chat.empty()) {
            std::vector<tok::ChatMessage> messages;
            if (!o.system.empty()) messages.push_back({"system", o.system, {}, {}});
            messages.push_back({"user", o.chat, {}, {}});
            prompt = tok::encode_chat(*tokenizer, messages);
        } else {
            prompt = tokenizer->encode(o.prompt);
        }
        if (!o.ignore_eos)
            for (int32_t id : tokenizer->stop_ids()) stops.push_back(id);
    } else if (given("--prompt-ids")) {
        prompt = parse_ids(o.prompt_ids, "--prompt-ids");
        check_ids_in_vocab(prompt, config.vocab_size, "--prompt-ids");
    } else {
        prompt = {1, 2, 3, 4, 5, 6, 7, 8};  // a model without a tokenizer
    }
    if (prompt.empty()) throw std::runtime_error("the prompt is empty; give at least one token");

    // Size the context to the job unless the user fixed it.
    fit_context(o.run, is_set(o.run, "context"), config, int64_t(prompt.size()) + o.max_tokens,
                "the prompt (" + std::to_string(prompt.size()) + " tokens) plus --max-tokens " +
                    std::to_string(o.max_tokens));

    Engine e = open_engine(o.run, o.run.sequences);
    // The same engine loop the server runs: one request, streamed.
    Scheduler scheduler(*e.model, tokenizer ? &*tokenizer : nullptr);
    GenerationRequest request;
    request.prompt = prompt;
    request.max_tokens = o.max_tokens;
    request.sampling = o.sampling;
    request.stop_ids = stops;
    request.skip_special = !o.show_special;
    const auto t0 = std::chrono::steady_clock::now();
    std::shared_ptr<GenerationStream> stream;
    try {
        stream = scheduler.submit(std::move(request));
    } catch (const RequestError& err) {
        throw std::runtime_error(err.what());
    }
    auto t1 = t0;
    std::vector<int32_t> out;
    std::string text;  // the reply without the stop token (text modes only)
    const bool print_text = tokenizer && !o.json;
    GenerationEvent ev;
    {
        Progress progress("prefill", !o.run.quiet && prompt.size() > size_t(o.run.chunk));
        while (stream->next(ev)) {
            if (out.empty() && ev.ids.empty() && !ev.finished) {
                progress.update(uint64_t(ev.prompt_done), uint64_t(ev.prompt_tokens),
                                std::to_string(ev.prompt_done) + "/" + std::to_string(ev.prompt_tokens) + " tokens");
                continue;
            }
            if (out.empty()) {
                const int64_t n = int64_t(prompt.size());
                progress.update(uint64_t(n), uint64_t(n), std::to_string(n) + "/" + std::to_string(n) + " tokens");
                progress.finish();
                t1 = std::chrono::steady_clock::now();
            }
            out.insert(out.end(), ev.ids.begin(), ev.ids.end());
            text += ev.text;
            if (print_text && !ev.text.empty()) {
                std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
                std::fflush(stdout);
            }
            if (ev.finished) break;
        }
    }
    if (ev.finish_reason == FinishReason::error) throw std::runtime_error(ev.error);
    if (out.empty()) t1 = std::chrono::steady_clock::now();
    const auto t2 = std::chrono::steady_clock::now();

    const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
    const double decode_s = std::chrono::duration<double>(t2 - t1).count();
    const int64_t decoded = std::max<int64_t>(0, int64_t(out.size()) - 1);  // the first id came from prefill
    if (o.json) {
        nlohmann::json j;
        j["ids"] = out;
        if (tokenizer) {
            j["text"] = text;
            if (!o.chat.empty()) {
                const tok::ParsedReply reply = tok::parse_tool_calls(text);
                j["content"] = reply.content;
                j["tool_calls"] = nlohmann::json::array();
                for (const auto& c : reply.tool_calls)
                    j["tool_calls"].push_back({{"id", c.id}, {"name", c.name}, {"index", c.index}, {"arguments", c.arguments}});
            }
        }
        j["prompt_tokens"] = prompt.size();
        j["timings"] = {{"prefill_s", prefill_s},
                        {"decode_s", decode_s},
                        {"prefill_tok_s", prefill_s > 0 ? double(prompt.size()) / prefill_s : 0.0},
                        {"decode_tok_s", decode_s > 0 ? double(decoded) / decode_s : 0.0}};
        std::printf("%s\n", j.dump().c_str());
    } else if (print_text) {
        std::printf("\n");
    } else {
        std::string line;
        for (size_t i = 0; i < out.size(); ++i) line += (i ? "," : "") + std::to_string(out[i]);
        std::printf("%s\n", line.c_str());
    }
    // The reply's last line reaches a shared pipe or terminal before the summary on stderr.
    std::fflush(stdout);
    if (!o.run.quiet && !o.json)
        std::fprintf(stderr, "engine: prefill %zu tokens in %.3f s (%.1f tok/s), decode %lld tokens in %.3f s (%.1f tok/s)\n",
                     prompt.size(), prefill_s, prefill_s > 0 ? double(prompt.size()) / prefill_s : 0.0,
                     (long long)decoded, decode_s, decode_s > 0 ? double(decoded) / decode_s : 0.0);
    return 0;
}

}  // namespace

std::function<int()> add_generate_options(CLI::App& app) {
    auto o = std::make_shared<GenerateOptions>();
    add_run_options(app, o->run);
    app.add_option("--prompt-ids", o->prompt_ids, "Prompt as token ids, e.g. 1,2,3");
    app.add_option("--prompt", o->prompt, "Prompt text (special-token strings in it stay plain text); prints text");
    app.add_option("--chat", o->chat, "One user message, rendered in the Kimi K2 chat format (built in; the checkpoint's chat_template "
                   "string is not run); prints the reply");
    app.add_option("--system", o->system, "System prompt for --chat (default: the template's)");
    app.add_flag("--ignore-eos", o->ignore_eos, "With --prompt/--chat, do not stop at the end-of-message token");
    app.add_option("--max-tokens", o->max_tokens, "New tokens to generate")->check(kNonEmpty)->capture_default_str();
    app.add_option("--temperature", o->sampling.temperature, "Sampling temperature; 0 = greedy")
        ->check(kNonEmpty)
        ->capture_default_str();
    app.add_option("--top-k", o->sampling.top_k, "Sample among the k most likely tokens (0 = all)")
        ->check(kNonEmpty)
        ->capture_default_str();
    app.add_option("--top-p", o->sampling.top_p, "Nucleus sampling threshold in (0, 1]")
        ->check(kNonEmpty)
        ->capture_default_str();
    app.add_option("--seed", o->sampling.seed, "Random seed for sampling")->check(kUnsigned64)->capture_default_str();
    app.add_option("--stop-ids", o->stop_ids,
                   "Stop after generating one of these ids (with --prompt-ids nothing stops early by default; "
                   "--prompt and --chat stop at <|im_end|> and [EOS])");
    app.add_flag("--json", o->json, "Print one JSON object with the ids and timings");
    app.add_flag("--show-special", o->show_special,
                 "Print special and reserved tokens by name (e.g. <|im_end|>) instead of leaving them out of the text");
    return [o, &app] { return run_generate(*o, app); };
}

}  // namespace halo::cli
