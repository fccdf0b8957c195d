// Anthropic Messages responses: the message object, and its stream of named events (message_start,
// content_block_start/delta/stop, message_delta, message_stop).
#include "core/input/bounded_json.h"
#include "core/tokenizer/tool_calls.h"
#include "server/response_writer.h"
#include "server/tool_call_stream.h"

namespace halo::server {

using Json = nlohmann::ordered_json;

namespace {

std::string event(const char* name, const Json& data) { return std::string("event: ") + name + "\n" + sse_data(data); }

// Anthropic's input counts: the prompt is input_tokens + cache_creation_input_tokens + cache_read_input_tokens, so
// input_tokens are the prompt tokens read, and cache_read_input_tokens those resumed from the prefix cache (which
// fills itself: nothing is ever counted as written to it).
Json input_usage(int64_t prompt_tokens, int64_t cached_tokens) {
    return {{"input_tokens", prompt_tokens - cached_tokens},
            {"cache_creation_input_tokens", 0},
            {"cache_read_input_tokens", cached_tokens}};
}

// Generated arguments as the tool_use input object; arguments that are not a JSON object give {}.
Json input_of(const std::string& arguments) {
    try {
        Json j = input::parse_ordered_json(arguments, input::kToolCallArguments, "tool call arguments");
        if (j.is_object()) return j;
    } catch (const std::exception&) {
    }
    return Json::object();
}

class AnthropicWriter : public ResponseWriter {
public:
    AnthropicWriter(const ApiRequest& r, const std::string& model, int64_t prompt_tokens)
        : parse_tools_(r.parse_tools), id_(new_response_id("msg_")), model_(model), prompt_tokens_(prompt_tokens) {}

    std::string stream_start() override {
        Json message = head();
        message["content"] = Json::array();
        message["stop_reason"] = nullptr;
        message["stop_sequence"] = nullptr;
        // What comes from the cache is not known yet: the whole prompt counts as input here, and message_delta
        // gives the split (its usage counts are totals that replace these).
        message["usage"] = input_usage(prompt_tokens_, 0);
        message["usage"]["output_tokens"] = 0;
        return event("message_start", {{"type", "message_start"}, {"message", std::move(message)}});
    }

    std::string stream_text(std::string_view text) override {
        if (!parse_tools_) return text_delta(text);
        return deltas(tools_.push(text));
    }

    std::string stream_end(const GenerationEvent& last) override {
        std::string out = parse_tools_ ? deltas(tools_.finish()) : std::string();
        out += close_block();
        const auto [reason, sequence] = stop_reason(last, tools_.calls() > 0);
        Json usage = input_usage(last.prompt_tokens, last.cached_tokens);
        usage["output_tokens"] = last.completion_tokens;
        out += event("message_delta", {{"type", "message_delta"},
                                       {"delta", {{"stop_reason", reason}, {"stop_sequence", sequence}}},
                                       {"usage", std::move(usage)}});
        return out + event("message_stop", {{"type", "message_stop"}});
    }

    std::string stream_error(const ApiError& e) override {
        return close_block() + event("error", Json::parse(anthropic_error_body(e)));
    }

    std::string body(std::string_view text, const GenerationEvent& last) override {
        Json j = head();
        Json content = Json::array();
        bool calls = false;
        if (parse_tools_) {
            const tok::ParsedReply reply = tok::parse_tool_calls(text);
            if (!reply.content.empty()) content.push_back({{"type", "text"}, {"text", reply.content}});
            for (const auto& c : reply.tool_calls)
                content.push_back({{"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", input_of(c.arguments)}});
            calls = !reply.tool_calls.empty();
        } else if (!text.empty()) {
            content.push_back({{"type", "text"}, {"text", std::string(text)}});
        }
        j["content"] = std::move(content);
        const auto [reason, sequence] = stop_reason(last, calls);
        j["stop_reason"] = reason;
        j["stop_sequence"] = sequence;
        j["usage"] = input_usage(last.prompt_tokens, last.cached_tokens);
        j["usage"]["output_tokens"] = last.completion_tokens;
        return dump_json(j);
    }

private:
    Json head() const { return {{"id", id_}, {"type", "message"}, {"role", "assistant"}, {"model", model_}}; }

    static std::pair<const char*, Json> stop_reason(const GenerationEvent& last, bool calls) {
        if (last.finish_reason == FinishReason::length) return {"max_tokens", nullptr};
        if (calls) return {"tool_use", nullptr};
        if (!last.stop_string.empty()) return {"stop_sequence", last.stop_string};
        return {"end_turn", nullptr};
    }

    std::string close_block() {
        if (open_ == Block::none) return {};
        open_ = Block::none;
        return event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_++}});
    }

    std::string text_delta(std::string_view text) {
        if (text.empty()) return {};
        std::string out;
        if (open_ != Block::text) {
            out += close_block();
            open_ = Block::text;
            out += event("content_block_start", {{"type", "content_block_start"},
                                                 {"index", index_},
                                                 {"content_block", {{"type", "text"}, {"text", ""}}}});
        }
        return out + event("content_block_delta", {{"type", "content_block_delta"},
                                                   {"index", index_},
                                                   {"delta", {{"type", "text_delta"}, {"text", std::string(text)}}}});
    }

    std::string deltas(const std::vector<ToolCallDelta>& list) {
        std::string out;
        for (const ToolCallDelta& d : list) {
            switch (d.kind) {
            case ToolCallDelta::Kind::content: out += text_delta(d.text); break;
            case ToolCallDelta::Kind::call_start:
                out += close_block();
                open_ = Block::tool_use;
                out += event("content_block_start",
                             {{"type", "content_block_start"},
                              {"index", index_},
                              {"content_block",
                               {{"type", "tool_use"}, {"id", d.id}, {"name", d.name}, {"input", Json::object()}}}});
                break;
            case ToolCallDelta::Kind::arguments:
                out += event("content_block_delta",
                             {{"type", "content_block_delta"},
                              {"index", index_},
                              {"delta", {{"type", "input_json_delta"}, {"partial_json", d.text}}}});
                break;
            }
        }
        return out;
    }

    enum class Block { none, text, tool_use };
    const bool parse_tools_;
    const std::string id_, model_;
    const int64_t prompt_tokens_;
    Block open_ = Block::none;
    int index_ = 0;
    ToolCallStream tools_;
};

}  // namespace

std::unique_ptr<ResponseWriter> make_anthropic_writer(const ApiRequest& request, const std::string& model_name,
                                                      int64_t prompt_tokens) {
    return std::make_unique<AnthropicWriter>(request, model_name, prompt_tokens);
}

}  // namespace halo::server
