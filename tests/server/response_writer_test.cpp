// The response writers on synthetic generated text with tool calls (the demo model never makes one): OpenAI chat
// bodies and chunks carry tool_calls with finish_reason "tool_calls", Anthropic ones tool_use blocks with
// input_json_delta events, and streamed pieces add up to the non-streamed body.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/response_writer.h"

namespace halo::server {
namespace {

using Json = nlohmann::json;

const std::string kReply = "Let me check.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
                           "<|tool_call_argument_begin|>{\"city\": \"Paris\"}<|tool_call_end|>"
                           "<|tool_calls_section_end|>";

ApiRequest request(Api api, bool tools) {
    ApiRequest r;
    r.api = api;
    r.parse_tools = tools;
    r.stream = true;
    r.generation.prompt = {1, 2, 3};
    return r;
}

GenerationEvent final_event(FinishReason reason = FinishReason::stop) {
    GenerationEvent e;
    e.finished = true;
    e.finish_reason = reason;
    e.prompt_tokens = 3;
    e.completion_tokens = 20;
    return e;
}

// The payloads of "data: " lines.
std::vector<Json> data_events(const std::string& sse) {
    std::vector<Json> out;
    size_t pos = 0;
    while ((pos = sse.find("data: ", pos)) != std::string::npos) {
        const size_t end = sse.find("\n\n", pos);
        const std::string payload = sse.substr(pos + 6, end - pos - 6);
        if (payload != "[DONE]") out.push_back(Json::parse(payload));
        pos = end;
    }
    return out;
}

// Streams kReply in pieces of `step` bytes.
std::string stream_reply(ResponseWriter& w, size_t step, const GenerationEvent& last) {
    std::string out = w.stream_start();
    for (size_t i = 0; i < kReply.size(); i += step) out += w.stream_text(kReply.substr(i, step));
    return out + w.stream_end(last);
}

TEST(OpenAiWriter, ChatBodyWithToolCalls) {
    auto w = make_writer(request(Api::chat, true), "demo");
    const Json j = Json::parse(w->body(kReply, final_event()));
    const Json& choice = j["choices"][0];
    EXPECT_EQ(choice["finish_reason"], "tool_calls");
    EXPECT_EQ(choice["message"]["content"], "Let me check.");
    ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
    const Json& call = choice["message"]["tool_calls"][0];
    EXPECT_EQ(call["id"], "functions.get_weather:0");
    EXPECT_EQ(call["type"], "function");
    EXPECT_EQ(call["function"]["name"], "get_weather");
    EXPECT_EQ(call["function"]["arguments"], "{\"city\": \"Paris\"}");
    EXPECT_EQ(j["usage"]["total_tokens"], 23);
}

TEST(OpenAiWriter, WithoutToolsTheMarkersAreText) {
    auto w = make_writer(request(Api::chat, false), "demo");
    const Json j = Json::parse(w->body(kReply, final_event()));
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(j["choices"][0]["message"]["content"], kReply);
}

TEST(OpenAiWriter, StreamedToolCallDeltasAddUp) {
    for (size_t step : {1u, 5u, 17u, 1000u}) {
        auto w = make_writer(request(Api::chat, true), "demo");
        const std::string sse = stream_reply(*w, step, final_event());
        EXPECT_EQ(sse.substr(sse.size() - 14), "data: [DONE]\n\n");
        std::string content, arguments, name, id;
        std::string finish;
        for (const Json& e : data_events(sse)) {
            const Json& c = e["choices"][0];
            if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
            const Json& d = c["delta"];
            if (d.contains("content")) content += d["content"].get<std::string>();
            EXPECT_FALSE(d.contains("content") && d["content"].get<std::string>().find("<|") != std::string::npos)
                << "marker text leaked into content";
            if (d.contains("tool_calls")) {
                const Json& t = d["tool_calls"][0];
                EXPECT_EQ(t["index"], 0);
                if (t.contains("id")) {
                    id = t["id"];
                    EXPECT_EQ(t["type"], "function");
                    name = t["function"]["name"];
                }
                arguments += t["function"]["arguments"].get<std::string>();
            }
        }
        EXPECT_EQ(content, "Let me check.") << step;
        EXPECT_EQ(id, "functions.get_weather:0");
        EXPECT_EQ(name, "get_weather");
        EXPECT_EQ(arguments, "{\"city\": \"Paris\"}") << step;
        EXPECT_EQ(finish, "tool_calls");
    }
}

TEST(OpenAiWriter, ErrorMidStreamIsAnErrorEventThenDone) {
    auto w = make_writer(request(Api::completions, false), "demo");
    const std::string sse = w->stream_text("abc") + w->stream_error(ApiError(503, "stopping", "server_error", "cancelled"));
    const auto events = data_events(sse);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0]["choices"][0]["text"], "abc");
    EXPECT_EQ(events[1]["error"]["code"], "cancelled");
    EXPECT_EQ(sse.substr(sse.size() - 14), "data: [DONE]\n\n");
}

TEST(AnthropicWriter, BodyWithToolUse) {
    auto w = make_writer(request(Api::messages, true), "demo");
    const Json j = Json::parse(w->body(kReply, final_event()));
    EXPECT_EQ(j["stop_reason"], "tool_use");
    ASSERT_EQ(j["content"].size(), 2u);
    EXPECT_EQ(j["content"][0], Json({{"type", "text"}, {"text", "Let me check."}}));
    EXPECT_EQ(j["content"][1]["type"], "tool_use");
    EXPECT_EQ(j["content"][1]["name"], "get_weather");
    EXPECT_EQ(j["content"][1]["input"], Json({{"city", "Paris"}}));
    EXPECT_EQ(j["usage"], Json({{"input_tokens", 3},
                                {"cache_creation_input_tokens", 0},
                                {"cache_read_input_tokens", 0},
                                {"output_tokens", 20}}));
}

// Prompt tokens resumed from the prefix cache: OpenAI counts them inside prompt_tokens (prompt_tokens_details), in
// the body and in a stream's usage chunk; Anthropic's input_tokens leave them out (the prompt is input_tokens +
// cache_creation_input_tokens + cache_read_input_tokens), and a stream's message_delta gives the split that
// message_start could not know yet.
GenerationEvent cached_event() {
    GenerationEvent e = final_event();
    e.prompt_tokens = 300;
    e.cached_tokens = 256;
    return e;
}

TEST(OpenAiWriter, UsageCountsCachedPromptTokens) {
    for (Api api : {Api::chat, Api::completions}) {
        ApiRequest r = request(api, false);
        r.include_usage = true;
        auto w = make_writer(r, "demo");
        const Json whole = Json::parse(w->body("text", cached_event()));
        EXPECT_EQ(whole["usage"], Json({{"prompt_tokens", 300},
                                        {"completion_tokens", 20},
                                        {"total_tokens", 320},
                                        {"prompt_tokens_details", {{"cached_tokens", 256}}}}));
        const std::string sse = w->stream_start() + w->stream_text("text") + w->stream_end(cached_event());
        const std::vector<Json> events = data_events(sse);
        ASSERT_FALSE(events.empty());
        EXPECT_EQ(events.back()["usage"], whole["usage"]);
        // Without a hit the detail is still there, as OpenAI sends it.
        EXPECT_EQ(Json::parse(w->body("text", final_event()))["usage"]["prompt_tokens_details"],
                  Json({{"cached_tokens", 0}}));
    }
}

TEST(AnthropicWriter, UsageSplitsCachedInputTokens) {
    auto w = make_writer(request(Api::messages, false), "demo");
    EXPECT_EQ(Json::parse(w->body("text", cached_event()))["usage"], Json({{"input_tokens", 44},
                                                                           {"cache_creation_input_tokens", 0},
                                                                           {"cache_read_input_tokens", 256},
                                                                           {"output_tokens", 20}}));
    ApiRequest r = request(Api::messages, false);
    r.generation.prompt.assign(300, 1);
    auto s = make_writer(r, "demo");
    const std::string sse = s->stream_start() + s->stream_text("text") + s->stream_end(cached_event());
    Json start, delta;
    for (const Json& e : data_events(sse)) {
        if (e["type"] == "message_start") start = e["message"]["usage"];
        if (e["type"] == "message_delta") delta = e["usage"];
    }
    EXPECT_EQ(start, Json({{"input_tokens", 300},
                           {"cache_creation_input_tokens", 0},
                           {"cache_read_input_tokens", 0},
                           {"output_tokens", 0}}));
    EXPECT_EQ(delta, Json({{"input_tokens", 44},
                           {"cache_creation_input_tokens", 0},
                           {"cache_read_input_tokens", 256},
                           {"output_tokens", 20}}));
}

TEST(AnthropicWriter, StopSequenceAndMaxTokens) {
    auto w = make_writer(request(Api::messages, false), "demo");
    GenerationEvent e = final_event();
    e.stop_string = "END";
    const Json j = Json::parse(w->body("text", e));
    EXPECT_EQ(j["stop_reason"], "stop_sequence");
    EXPECT_EQ(j["stop_sequence"], "END");
    EXPECT_EQ(Json::parse(w->body("text", final_event(FinishReason::length)))["stop_reason"], "max_tokens");
    EXPECT_EQ(Json::parse(w->body("text", final_event()))["stop_reason"], "end_turn");
}

TEST(AnthropicWriter, StreamedEventsInOrder) {
    for (size_t step : {1u, 7u, 1000u}) {
        auto w = make_writer(request(Api::messages, true), "demo");
        const std::string sse = stream_reply(*w, step, final_event());
        std::vector<std::string> names;
        for (size_t pos = 0; (pos = sse.find("event: ", pos)) != std::string::npos;) {
            const size_t end = sse.find('\n', pos);
            names.push_back(sse.substr(pos + 7, end - pos - 7));
            pos = end;
        }
        ASSERT_GE(names.size(), 8u);
        EXPECT_EQ(names.front(), "message_start");
        EXPECT_EQ(names[1], "content_block_start");
        EXPECT_EQ(names.back(), "message_stop");
        std::string text, json;
        int starts = 0, stops = 0;
        for (const Json& e : data_events(sse)) {
            if (e["type"] == "content_block_start") {
                EXPECT_EQ(e["index"], starts++);
                if (e["content_block"]["type"] == "tool_use") {
                    EXPECT_EQ(e["content_block"]["name"], "get_weather");
                    EXPECT_EQ(e["content_block"]["id"], "functions.get_weather:0");
                }
            }
            if (e["type"] == "content_block_stop") {
                EXPECT_EQ(e["index"], stops++);
            }
            if (e["type"] == "content_block_delta") {
                if (e["delta"]["type"] == "text_delta") text += e["delta"]["text"].get<std::string>();
                if (e["delta"]["type"] == "input_json_delta") json += e["delta"]["partial_json"].get<std::string>();
            }
            if (e["type"] == "message_delta") {
                EXPECT_EQ(e["delta"]["stop_reason"], "tool_use");
                EXPECT_EQ(e["usage"]["output_tokens"], 20);
            }
        }
        EXPECT_EQ(starts, 2);
        EXPECT_EQ(stops, 2);
        EXPECT_EQ(text, "Let me check.");
        EXPECT_EQ(Json::parse(json), Json({{"city", "Paris"}})) << step;
    }
}

}  // namespace
}  // namespace halo::server
