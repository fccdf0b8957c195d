// Request bodies of the three generation APIs parsed into scheduler requests (the demo model's tokenizer; no model):
// what is accepted, the defaults, and the status, field and message of what is refused.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/tokenizer/chat.h"
#include "server/api_error.h"
#include "server/request.h"

namespace halo::server {
namespace {

using Json = nlohmann::ordered_json;

const tok::Tokenizer& demo_tokenizer() {
    static const tok::Tokenizer t = tok::Tokenizer::load(HALO_DEMO_DIR);
    return t;
}

ServingInfo info(int64_t context = 256) {
    ServingInfo i;
    i.model_name = "demo";
    i.context_tokens = context;
    i.tokenizer = &demo_tokenizer();
    i.vocab_size = demo_tokenizer().vocab_size();
    return i;
}

// The ApiError a body gets, checked to be one bounded line in a well-formed OpenAI error body.
ApiError refused(Api api, const std::string& body, const ServingInfo& si = info()) {
    try {
        parse_request(api, body, si);
    } catch (const ApiError& e) {
        const std::string what = e.what();
        EXPECT_FALSE(what.empty());
        EXPECT_LE(what.size(), 700u);
        EXPECT_EQ(what.find('\n'), std::string::npos);
        const Json j = Json::parse(openai_error_body(e));
        EXPECT_TRUE(j["error"]["message"].is_string());
        EXPECT_TRUE(j["error"]["type"].is_string());
        EXPECT_TRUE(j["error"].contains("param"));
        EXPECT_TRUE(j["error"].contains("code"));
        const Json a = Json::parse(anthropic_error_body(e));
        EXPECT_EQ(a["type"], "error");
        EXPECT_TRUE(a["error"]["type"].is_string());
        return e;
    }
    ADD_FAILURE() << "accepted: " << body.substr(0, 200);
    return ApiError(0, "accepted");
}

TEST(ChatRequest, RendersMessagesAndReadsTheFields) {
    const Json messages = Json::parse(R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])");
    const ApiRequest r = parse_request(Api::chat, Json{{"model", "demo"}, {"messages", messages}, {"max_tokens", 5},
                                                       {"temperature", 0}, {"top_p", 0.5}, {"top_k", 7}, {"seed", 3},
                                                       {"stop", "END"}, {"stream", true},
                                                       {"stream_options", {{"include_usage", true}}},
                                                       {"unknown_field", {1, 2}}}.dump(), info());
    EXPECT_EQ(r.generation.prompt, tok::encode_chat(demo_tokenizer(), tok::parse_chat_messages(messages)));
    EXPECT_EQ(r.generation.max_tokens, 5);
    EXPECT_EQ(r.generation.sampling.temperature, 0);
    EXPECT_EQ(r.generation.sampling.top_p, 0.5);
    EXPECT_EQ(r.generation.sampling.top_k, 7);
    EXPECT_EQ(r.generation.sampling.seed, 3u);
    EXPECT_EQ(r.generation.stop_strings, std::vector<std::string>{"END"});
    EXPECT_EQ(r.generation.stop_ids, demo_tokenizer().stop_ids());
    EXPECT_TRUE(r.stream);
    EXPECT_TRUE(r.include_usage);
    EXPECT_FALSE(r.parse_tools);
}

TEST(ChatRequest, DefaultsFillTheContextAndIgnoreEosDropsStopIds) {
    const ApiRequest r = parse_request(Api::chat, R"({"messages": [{"role": "user", "content": "Hi"}], "ignore_eos": true})",
                                       info(256));
    EXPECT_EQ(r.generation.max_tokens, 256 - int32_t(r.generation.prompt.size()));
    EXPECT_TRUE(r.generation.stop_ids.empty());
    EXPECT_EQ(r.generation.sampling.temperature, 1.0) << "OpenAI's default temperature";
    EXPECT_FALSE(r.stream);
}

TEST(ChatRequest, MaxCompletionTokensWinsAndLargeValuesAreCappedToTheContext) {
    const std::string m = R"("messages": [{"role": "user", "content": "Hi"}])";
    EXPECT_EQ(parse_request(Api::chat, "{" + m + R"(, "max_tokens": 9, "max_completion_tokens": 4})", info())
                  .generation.max_tokens, 4);
    const ApiRequest big = parse_request(Api::chat, "{" + m + R"(, "max_tokens": 100000})", info(64));
    EXPECT_EQ(big.generation.max_tokens, 64 - int32_t(big.generation.prompt.size()));
}

TEST(ChatRequest, ToolsAreRenderedAndSwitchOnToolParsing) {
    const Json tools = Json::parse(R"([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])");
    const Json messages = Json::parse(R"([{"role": "user", "content": "Weather in Paris?"}])");
    const ApiRequest r = parse_request(Api::chat, Json{{"messages", messages}, {"tools", tools}}.dump(), info(4096));
    EXPECT_TRUE(r.parse_tools);
    EXPECT_EQ(r.generation.prompt, tok::encode_chat(demo_tokenizer(), tok::parse_chat_messages(messages), tools));
    const ApiRequest none =
        parse_request(Api::chat, Json{{"messages", messages}, {"tools", tools}, {"tool_choice", "none"}}.dump(), info(4096));
    EXPECT_FALSE(none.parse_tools);
}

TEST(ChatRequest, ToolResultsAndAssistantCallsAreRenderedBack) {
    const Json messages = Json::parse(R"([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "functions.get_weather:0", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny"}])");
    const ApiRequest r = parse_request(Api::chat, Json{{"messages", messages}}.dump(), info(4096));
    const std::string prompt = demo_tokenizer().decode(r.generation.prompt);
    EXPECT_NE(prompt.find("get_weather"), std::string::npos);
    EXPECT_NE(prompt.find("sunny"), std::string::npos);
}

TEST(ChatRequest, BadInputIsRefusedWithItsField) {
    struct Case {
        std::string body;
        int status;
        std::string param;
        std::string code;
    };
    const std::string m = R"("messages": [{"role": "user", "content": "Hi"}])";
    const std::vector<Case> cases = {
        {"{", 400, "", "invalid_json"},
        {"[1, 2]", 400, "", "invalid_json"},
        {"{\"messages\": \"\xff\"}", 400, "", "invalid_json"},
        {std::string(100000, '[') + std::string(100000, ']'), 400, "", "invalid_json"},
        {R"({"messages": [], "max_tokens": 1})", 400, "messages", "invalid_value"},
        {R"({"max_tokens": 1})", 400, "messages", "invalid_value"},
        {R"({"messages": "hello"})", 400, "messages", "invalid_value"},
        {R"({"messages": [{"role": "wizard", "content": "Hi"}]})", 400, "messages[0].role", "invalid_value"},
        {R"({"messages": [{"role": "user", "content": 5}]})", 400, "messages", "invalid_value"},
        {"{" + m + R"(, "model": "gpt-4"})", 404, "model", "model_not_found"},
        {"{" + m + R"(, "model": 7})", 400, "model", "invalid_value"},
        {"{" + m + R"(, "max_tokens": -1})", 400, "max_tokens", "invalid_value"},
        {"{" + m + R"(, "max_tokens": 1e300})", 400, "max_tokens", "invalid_value"},
        {"{" + m + R"(, "max_tokens": 3000000000})", 400, "max_tokens", "invalid_value"},
        {"{" + m + R"(, "max_tokens": "10"})", 400, "max_tokens", "invalid_value"},
        {"{" + m + R"(, "max_tokens": 1.5})", 400, "max_tokens", "invalid_value"},
        {"{" + m + R"(, "n": 2})", 400, "n", "invalid_value"},
        {"{" + m + R"(, "temperature": -1})", 400, "temperature", "invalid_value"},
        {"{" + m + R"(, "temperature": "hot"})", 400, "temperature", "invalid_value"},
        {"{" + m + R"(, "top_p": 0})", 400, "top_p", "invalid_value"},
        {"{" + m + R"(, "top_k": -5})", 400, "top_k", "invalid_value"},
        {"{" + m + R"(, "stream": "yes"})", 400, "stream", "invalid_value"},
        {"{" + m + R"(, "stop": [""]})", 400, "stop", "invalid_value"},
        {"{" + m + R"(, "stop": [1]})", 400, "stop", "invalid_value"},
        {"{" + m + R"(, "stop": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]})", 400, "stop",
         "invalid_value"},
        {"{" + m + R"(, "tools": {"name": "x"}})", 400, "tools", "invalid_value"},
        {"{" + m + R"(, "tools": [{"type": "function"}]})", 400, "tools[0]", "invalid_value"},
        {"{" + m + R"(, "stream_options": 1})", 400, "stream_options", "invalid_value"},
        {"{" + m + R"(, "a": 1, "a": 2})", 400, "", "invalid_json"},
    };
    for (const auto& c : cases) {
        const ApiError e = refused(Api::chat, c.body);
        EXPECT_EQ(e.status(), c.status) << c.body.substr(0, 120) << ": " << e.what();
        EXPECT_EQ(e.param(), c.param) << c.body.substr(0, 120) << ": " << e.what();
        EXPECT_EQ(e.code(), c.code) << c.body.substr(0, 120) << ": " << e.what();
    }
}

TEST(ChatRequest, APromptLongerThanTheContextNamesBothLengths) {
    const std::string body = Json{{"messages", {{{"role", "user"}, {"content", std::string(4000, 'x') + " y z"}}}}}.dump();
    const ApiError e = refused(Api::chat, body, info(64));
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "context_length_exceeded");
    const std::string what = e.what();
    EXPECT_NE(what.find(" 64 tokens"), std::string::npos) << what;
    const size_t prompt_tokens = parse_request(Api::chat, body, info(1 << 20)).generation.prompt.size();
    EXPECT_NE(what.find(std::to_string(prompt_tokens) + " tokens"), std::string::npos) << what;
}

TEST(ChatRequest, ErrorMessagesNeverEchoUnboundedInput) {
    const std::string huge_model(1 << 20, 'm');
    const ApiError e = refused(Api::chat, Json{{"model", huge_model}, {"messages", Json::array()}}.dump());
    EXPECT_LT(std::string(e.what()).size(), 700u);
}

TEST(CompletionRequest, PromptAsStringArrayOfOneStringOrTokenIds) {
    const auto ids = demo_tokenizer().encode("Once upon a time");
    EXPECT_EQ(parse_request(Api::completions, R"({"prompt": "Once upon a time"})", info()).generation.prompt, ids);
    EXPECT_EQ(parse_request(Api::completions, R"({"prompt": ["Once upon a time"]})", info()).generation.prompt, ids);
    EXPECT_EQ(parse_request(Api::completions, Json{{"prompt", ids}}.dump(), info()).generation.prompt, ids);
    EXPECT_EQ(parse_request(Api::completions, Json{{"prompt", {ids}}}.dump(), info()).generation.prompt, ids);
    EXPECT_EQ(parse_request(Api::completions, R"({"prompt": "x"})", info()).generation.max_tokens, 16)
        << "OpenAI's default for completions";
}

TEST(CompletionRequest, BadPromptsAreRefused) {
    for (const std::string body : {R"({})", R"({"prompt": ""})", R"({"prompt": 5})", R"({"prompt": ["a", "b"]})",
                                   R"({"prompt": [1, -2]})", R"({"prompt": [1, 99999999]})", R"({"prompt": [1, 2.5]})",
                                   R"({"prompt": [1, "a"]})", R"({"prompt": {"text": "a"}})"}) {
        const ApiError e = refused(Api::completions, body);
        EXPECT_EQ(e.status(), 400) << body;
        EXPECT_EQ(e.param().rfind("prompt", 0), 0u) << body << ": " << e.param();
    }
}

TEST(MessagesRequest, AnthropicMessagesBecomeTheSameChat) {
    const Json body = Json::parse(R"({
        "model": "demo", "max_tokens": 7, "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
          {"role": "user", "content": "Weather in Paris?"},
          {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
              {"type": "tool_use", "id": "functions.get_weather:0", "name": "get_weather", "input": {"city": "Paris"}}]},
          {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "functions.get_weather:0",
              "content": [{"type": "text", "text": "sunny"}]}, {"type": "text", "text": "Thanks"}]}],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],
        "stop_sequences": ["END"], "temperature": 0.5, "top_k": 3})");
    const ApiRequest r = parse_request(Api::messages, body.dump(), info(4096));
    const Json openai_messages = Json::parse(R"([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [{"id": "functions.get_weather:0", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny"},
        {"role": "user", "content": "Thanks"}])");
    const Json openai_tools = Json::parse(R"([{"type": "function", "function": {"name": "get_weather",
        "description": "Weather", "parameters": {"type": "object"}}}])");
    EXPECT_EQ(r.generation.prompt,
              tok::encode_chat(demo_tokenizer(), tok::parse_chat_messages(openai_messages), openai_tools));
    EXPECT_EQ(r.generation.max_tokens, 7);
    EXPECT_EQ(r.generation.stop_strings, std::vector<std::string>{"END"});
    EXPECT_EQ(r.generation.sampling.temperature, 0.5);
    EXPECT_EQ(r.generation.sampling.top_k, 3);
    EXPECT_TRUE(r.parse_tools);
}

TEST(MessagesRequest, BadInputIsRefused) {
    const std::string m = R"("messages": [{"role": "user", "content": "Hi"}])";
    for (const std::string& body : std::vector<std::string>{
             "{" + m + "}",  // max_tokens is required
          "{" + m + R"(, "max_tokens": 0})", "{" + m + R"(, "max_tokens": 5, "temperature": 1.5})",
          R"({"max_tokens": 5, "messages": [{"role": "system", "content": "x"}]})",
          R"({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]})",
          R"({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]})",
          R"({"max_tokens": 5, "system": 5, "messages": [{"role": "user", "content": "x"}]})",
          "{" + m + R"(, "max_tokens": 5, "stop_sequences": "END"})",
          "{" + m + R"(, "max_tokens": 5, "tools": [{"name": "x"}]})"}) {
        const ApiError e = refused(Api::messages, body);
        EXPECT_EQ(e.status(), 400) << body;
        EXPECT_FALSE(e.param().empty()) << body;
    }
}

}  // namespace
}  // namespace halo::server
