// Fuzz target: HTTP request bodies through the server's parsers (body -> scheduler request, or an error status and
// an OpenAI/Anthropic error body), on the golden vocabulary, no model. The first byte picks the endpoint. Checks,
// trapping on failure: only ApiError escapes; its status is a 4xx; both error bodies are JSON of the right shape with
// a message that is one bounded line; an accepted request fits the context and has a prompt in the vocabulary.
#include <cstdint>
#include <cstdio>
#include <string_view>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/request.h"
#include "tests/fuzz/bounded_message.h"

namespace {

using halo::server::Api;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz: %s\n", what);
    __builtin_trap();
}

void check_error(const halo::server::ApiError& e) {
    halo::fuzz::check_message(e);
    if (e.status() < 400 || e.status() > 499) fail("a request body got a status outside 4xx");
    const auto o = nlohmann::json::parse(halo::server::openai_error_body(e), nullptr, false);
    if (o.is_discarded() || !o["error"]["message"].is_string() || !o["error"]["type"].is_string() ||
        !o["error"].contains("param") || !o["error"].contains("code"))
        fail("an OpenAI error body is not {\"error\": {message, type, param, code}}");
    const auto a = nlohmann::json::parse(halo::server::anthropic_error_body(e), nullptr, false);
    if (a.is_discarded() || a["type"] != "error" || !a["error"]["message"].is_string())
        fail("an Anthropic error body is not {\"type\": \"error\", \"error\": {...}}");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const halo::tok::Tokenizer tokenizer = halo::tok::Tokenizer::load(HALO_GOLDEN_DIR "/tokenizer/vocab_a");
    static const halo::server::ServingInfo info = [] {
        halo::server::ServingInfo i;
        i.model_name = "demo";
        i.context_tokens = 512;
        i.tokenizer = &tokenizer;
        i.vocab_size = tokenizer.vocab_size();
        return i;
    }();
    if (size == 0) return 0;
    const Api api = data[0] % 3 == 0 ? Api::chat : data[0] % 3 == 1 ? Api::completions : Api::messages;
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        const halo::server::ApiRequest r = halo::server::parse_request(api, body, info);
        const auto& g = r.generation;
        if (g.prompt.empty() || int64_t(g.prompt.size()) + 1 > info.context_tokens) fail("an accepted prompt does not fit");
        if (g.max_tokens < 0 || int64_t(g.prompt.size()) + g.max_tokens > info.context_tokens)
            fail("accepted max_tokens do not fit the context");
        for (int32_t id : g.prompt)
            if (id < 0 || id >= info.vocab_size) fail("an accepted prompt has an id outside the vocabulary");
        if (g.stop_strings.size() > halo::server::kMaxStopStrings) fail("too many stop strings accepted");
    } catch (const halo::server::ApiError& e) {
        check_error(e);
    }
    return 0;
}
