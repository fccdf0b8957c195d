// OpenAI chat.completion / text_completion bodies and their streamed chunks.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

#include "server/response_writer.h"
#include "server/tool_call_stream.h"
#include "core/tokenizer/tool_calls.h"

namespace halo::server {

using Json = nlohmann::ordered_json;

std::string new_response_id(std::string_view prefix) {
    static std::atomic<uint64_t> counter{(uint64_t(std::random_device{}()) << 32) ^ std::random_device{}()};
    uint64_t x = counter.fetch_add(0x9E3779B97F4A7C15ull);
    // splitmix64 twice for 24 hex digits that do not look sequential
    auto mix = [](uint64_t z) {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    };
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx%08llx", (unsigned long long)mix(x), (unsigned long long)(mix(x + 1) >> 32));
    return std::string(prefix) + buf;
}

int64_t unix_time_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string dump_json(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string sse_data(const Json& j) { return "data: " + dump_json(j) + "\n\n"; }

namespace {

// prompt_tokens counts every prompt token; cached_tokens those of them resumed from the prefix cache (always
// present, 0 without a hit, as OpenAI reports it).
Json usage_of(const GenerationEvent& last) {
    return {{"prompt_tokens", last.prompt_tokens},
            {"completion_tokens", last.completion_tokens},
            {"total_tokens", last.prompt_tokens + last.completion_tokens},
            {"prompt_tokens_details", {{"cached_tokens", last.cached_tokens}}}};
}

const char* finish_name(const GenerationEvent& last, bool tool_calls) {
    if (last.finish_reason == FinishReason::length) return "length";
    return tool_calls ? "tool_calls" : "stop";
}

class OpenAiWriter : public ResponseWriter {
public:
    OpenAiWriter(const ApiRequest& r, const std::string& model)
        : chat_(r.api == Api::chat), parse_tools_(r.parse_tools), include_usage_(r.include_usage),
          id_(new_response_id(chat_ ? "chatcmpl-" : "cmpl-")), created_(unix_time_now()), model_(model) {}

    std::string stream_start() override {
        if (!chat_) return {};
        return chunk({{"role", "assistant"}, {"content", ""}}, nullptr);
    }

    std::string stream_text(std::string_view text) override {
        if (!chat_) return completion_chunk(std::string(text), nullptr);
        if (!parse_tools_) return text.empty() ? std::string() : chunk({{"content", std::string(text)}}, nullptr);
        return tool_deltas(tools_.push(text));
    }

    std::string stream_end(const GenerationEvent& last) override {
        std::string out;
        if (chat_ && parse_tools_) out += tool_deltas(tools_.finish());
        const char* reason = finish_name(last, tools_.calls() > 0);
        out += chat_ ? chunk(Json::object(), reason) : completion_chunk("", reason);
        if (include_usage_) {
            Json j = head(chat_ ? "chat.completion.chunk" : "text_completion");
            j["choices"] = Json::array();
            j["usage"] = usage_of(last);
            out += sse_data(j);
        }
        return out + "data: [DONE]\n\n";
    }

    std::string stream_error(const ApiError& e) override {
        return sse_data(Json::parse(openai_error_body(e))) + "data: [DONE]\n\n";
    }

    std::string body(std::string_view text, const GenerationEvent& last) override {
        Json j = head(chat_ ? "chat.completion" : "text_completion");
        Json choice = {{"index", 0}};
        bool calls = false;
        if (chat_) {
            Json message = {{"role", "assistant"}};
            if (parse_tools_) {
                const tok::ParsedReply reply = tok::parse_tool_calls(text);
                calls = !reply.tool_calls.empty();
                message["content"] = calls && reply.content.empty() ? Json(nullptr) : Json(reply.content);
                if (calls) {
                    Json list = Json::array();
                    for (const auto& c : reply.tool_calls)
                        list.push_back({{"id", c.id},
                                        {"type", "function"},
                                        {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
                    message["tool_calls"] = std::move(list);
                }
            } else {
                message["content"] = std::string(text);
            }
            choice["message"] = std::move(message);
        } else {
            choice["text"] = std::string(text);
        }
        choice["logprobs"] = nullptr;
        choice["finish_reason"] = finish_name(last, calls);
        j["choices"] = Json::array({std::move(choice)});
        j["usage"] = usage_of(last);
        return dump_json(j);
    }

private:
    Json head(const char* object) const {
        return {{"id", id_}, {"object", object}, {"created", created_}, {"model", model_}};
    }

    std::string chunk(Json delta, const char* finish_reason) const {
        Json j = head("chat.completion.chunk");
        j["choices"] = Json::array({{{"index", 0},
                                     {"delta", std::move(delta)},
                                     {"logprobs", nullptr},
                                     {"finish_reason", finish_reason ? Json(finish_reason) : Json(nullptr)}}});
        if (include_usage_) j["usage"] = nullptr;
        return sse_data(j);
    }

    std::string completion_chunk(std::string text, const char* finish_reason) const {
        if (text.empty() && !finish_reason) return {};
        Json j = head("text_completion");
        j["choices"] = Json::array({{{"text", std::move(text)},
                                     {"index", 0},
                                     {"logprobs", nullptr},
                                     {"finish_reason", finish_reason ? Json(finish_reason) : Json(nullptr)}}});
        if (include_usage_) j["usage"] = nullptr;
        return sse_data(j);
    }

    std::string tool_deltas(const std::vector<ToolCallDelta>& deltas) const {
        std::string out;
        for (const ToolCallDelta& d : deltas) {
            switch (d.kind) {
            case ToolCallDelta::Kind::content: out += chunk({{"content", d.text}}, nullptr); break;
            case ToolCallDelta::Kind::call_start:
                out += chunk({{"tool_calls", Json::array({{{"index", d.index},
                                                           {"id", d.id},
                                                           {"type", "function"},
                                                           {"function", {{"name", d.name}, {"arguments", ""}}}}})}},
                             nullptr);
                break;
            case ToolCallDelta::Kind::arguments:
                out += chunk({{"tool_calls",
                               Json::array({{{"index", d.index}, {"function", {{"arguments", d.text}}}}})}},
                             nullptr);
                break;
            }
        }
        return out;
    }

    const bool chat_, parse_tools_, include_usage_;
    const std::string id_;
    const int64_t created_;
    const std::string model_;
    ToolCallStream tools_;
};

}  // namespace

std::unique_ptr<ResponseWriter> make_openai_writer(const ApiRequest& request, const std::string& model_name) {
    return std::make_unique<OpenAiWriter>(request, model_name);
}

std::unique_ptr<ResponseWriter> make_writer(const ApiRequest& request, const std::string& model_name) {
    if (request.api == Api::messages)
        return make_anthropic_writer(request, model_name, int64_t(request.generation.prompt.size()));
    return make_openai_writer(request, model_name);
}

}  // namespace halo::server
