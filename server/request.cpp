#include "server/request.h"

#include <algorithm>
#include <atomic>
#include <random>

#include "core/input/bounded_json.h"
#include "core/input/excerpt.h"
#include "core/tokenizer/chat.h"
#include "server/api_error.h"
#include "server/request_fields.h"

namespace halo::server {

using fields::Json;

const char* api_path(Api api) {
    switch (api) {
    case Api::chat: return "/v1/chat/completions";
    case Api::completions: return "/v1/completions";
    case Api::messages: return "/v1/messages";
    }
    return "";
}

Json parse_body(std::string_view body) {
    Json j;
    try {
        j = input::parse_ordered_json(body, input::kRequestBody, "the request body");
    } catch (const input::JsonInputError& e) {
        throw ApiError(400, e.what(), "invalid_request_error", "invalid_json");
    }
    if (!j.is_object())
        throw ApiError(400, std::string("the request body must be a JSON object, not ") + fields::type_name(j),
                       "invalid_request_error", "invalid_json");
    return j;
}

namespace {

const tok::Tokenizer& need_tokenizer(const ServingInfo& info, const std::string& param) {
    if (!info.tokenizer)
        throw bad_field(param, "this model was loaded without a tokenizer, so it takes only token ids (a prompt of "
                               "token ids on /v1/completions)");
    return *info.tokenizer;
}

void check_model(const Json& body, const ServingInfo& info) {
    const std::optional<std::string> model = fields::get_string(body, "model");
    if (model && *model != info.model_name)
        throw ApiError(404, "the model " + input::quote(*model, input::kNameBytes) + " does not exist; this server serves " +
                                input::quote(info.model_name, input::kNameBytes),
                       "invalid_request_error", "model_not_found", "model");
}

// `stop` (OpenAI: a string or an array of strings) or `stop_sequences` (Anthropic: an array).
std::vector<std::string> read_stops(const Json& body, const char* name, bool allow_single_string) {
    const Json* v = fields::find(body, name);
    if (!v) return {};
    std::vector<std::string> stops;
    const std::string p = name;
    auto add = [&](const Json& s) {
        if (!s.is_string()) throw bad_field(p, p + " must hold strings, not " + fields::type_name(s));
        const std::string text = s.get<std::string>();
        if (text.empty() || text.size() > kMaxStopBytes)
            throw bad_field(p, p + ": each stop string must be 1 to " + std::to_string(kMaxStopBytes) + " bytes long");
        stops.push_back(text);
    };
    if (v->is_string() && allow_single_string) {
        add(*v);
    } else if (v->is_array()) {
        if (v->size() > kMaxStopStrings)
            throw bad_field(p, p + " holds " + std::to_string(v->size()) + " strings; at most " +
                                   std::to_string(kMaxStopStrings) + " are allowed");
        for (const Json& s : *v) add(s);
    } else {
        throw bad_field(p, p + (allow_single_string ? " must be a string or an array of strings, not "
                                                    : " must be an array of strings, not ") +
                               fields::type_name(*v));
    }
    return stops;
}

uint64_t fresh_seed() {
    static std::atomic<uint64_t> counter{std::random_device{}()};
    return counter.fetch_add(0x9E3779B97F4A7C15ull);
}

// Sampling fields shared by the APIs; `max_temperature` is 2 for OpenAI, 1 for Anthropic.
SamplingParams read_sampling(const Json& body, double max_temperature) {
    SamplingParams s;
    s.temperature = fields::get_number(body, "temperature", 0, max_temperature).value_or(1.0);
    s.top_p = fields::get_number(body, "top_p", 0, 1).value_or(1.0);
    if (s.top_p <= 0) throw bad_field("top_p", "top_p must be above 0 (and at most 1)");
    const int64_t top_k = fields::get_integer(body, "top_k", -1, INT32_MAX).value_or(0);
    s.top_k = int32_t(std::max<int64_t>(top_k, 0));  // -1 (vLLM) and 0 both mean no limit
    if (const Json* seed = fields::find(body, "seed"))
        s.seed = uint64_t(fields::as_integer(*seed, "seed", INT64_MIN, INT64_MAX));
    else
        s.seed = fresh_seed();
    return s;
}

// The prompt is in; fits it and the output into the context and sets the stop ids.
void finish_generation(ApiRequest& r, const Json& body, const ServingInfo& info, std::optional<int64_t> max_tokens,
                       int64_t default_max_tokens, const char* prompt_param) {
    GenerationRequest& g = r.generation;
    const int64_t prompt = int64_t(g.prompt.size());
    if (prompt == 0) throw bad_field(prompt_param, std::string(prompt_param) + " is empty; give at least one token");
    if (prompt + 1 > info.context_tokens)
        throw ApiError(400,
                       "the prompt is " + std::to_string(prompt) + " tokens, and this server's context is " +
                           std::to_string(info.context_tokens) +
                           " tokens per request (prompt and output together, at least one token of output); shorten "
                           "the prompt",
                       "invalid_request_error", "context_length_exceeded", prompt_param);
    const int64_t room = info.context_tokens - prompt;
    g.max_tokens = int32_t(std::min(max_tokens.value_or(default_max_tokens), room));
    if (!fields::get_bool(body, "ignore_eos", false) && info.tokenizer) g.stop_ids = info.tokenizer->stop_ids();
    g.skip_special = true;
}

void check_tools(const Json& tools) {
    if (!tools.is_array()) throw bad_field("tools", std::string("tools must be an array, not ") + fields::type_name(tools));
    for (size_t i = 0; i < tools.size(); ++i) {
        const Json& t = tools[i];
        const std::string p = "tools[" + std::to_string(i) + "]";
        const Json* f = t.is_object() ? fields::find(t, "function") : nullptr;
        const Json* name = f && f->is_object() ? fields::find(*f, "name") : nullptr;
        if (!name || !name->is_string() || name->get_ref<const std::string&>().empty())
            throw bad_field(p, p + " must be {\"type\": \"function\", \"function\": {\"name\": ..., \"parameters\": ...}}");
    }
}

// `tool_choice` "none" (OpenAI) or {"type": "none"} (Anthropic): tools are declared but not called.
bool tool_choice_none(const Json& body) {
    const Json* c = fields::find(body, "tool_choice");
    if (!c) return false;
    if (c->is_string()) return c->get_ref<const std::string&>() == "none";
    if (c->is_object()) {
        const Json* type = fields::find(*c, "type");
        return type && type->is_string() && type->get_ref<const std::string&>() == "none";
    }
    throw bad_field("tool_choice", std::string("tool_choice must be a string or an object, not ") + fields::type_name(*c));
}

void check_n(const Json& body) {
    const int64_t n = fields::get_integer(body, "n", 0, INT32_MAX).value_or(1);
    if (n != 1) throw bad_field("n", "n must be 1: this server returns one choice per request");
}

std::optional<int64_t> read_max_tokens(const Json& body) {
    // max_completion_tokens is the newer name; when both are given it wins.
    std::optional<int64_t> m = fields::get_integer(body, "max_completion_tokens", 0, INT32_MAX);
    if (!m) m = fields::get_integer(body, "max_tokens", 0, INT32_MAX);
    return m;
}

bool read_include_usage(const Json& body, bool stream) {
    const Json* o = fields::find(body, "stream_options");
    if (!o) return false;
    if (!o->is_object())
        throw bad_field("stream_options", std::string("stream_options must be an object, not ") + fields::type_name(*o));
    return fields::get_bool(*o, "include_usage", false) && stream;
}

// What every OpenAI generation request starts with: the model, n, stream and stream_options.
ApiRequest begin_openai_request(const Json& body, const ServingInfo& info, Api api) {
    ApiRequest r;
    r.api = api;
    check_model(body, info);
    check_n(body);
    r.stream = fields::get_bool(body, "stream", false);
    r.include_usage = read_include_usage(body, r.stream);
    return r;
}

ApiRequest parse_chat(const Json& body, const ServingInfo& info) {
    ApiRequest r = begin_openai_request(body, info, Api::chat);
    const Json* messages = fields::find(body, "messages");
    if (!messages) throw bad_field("messages", "messages is required: an array of {\"role\", \"content\"} objects");
    const Json* tools = fields::find(body, "tools");
    const Json no_tools;
    r.generation.prompt = encode_chat_prompt(*messages, tools ? *tools : no_tools, info);
    r.parse_tools = tools && !tools->empty() && !tool_choice_none(body);
    r.generation.sampling = read_sampling(body, 2);
    r.generation.stop_strings = read_stops(body, "stop", true);
    finish_generation(r, body, info, read_max_tokens(body), info.context_tokens, "messages");
    return r;
}

ApiRequest parse_completion(const Json& body, const ServingInfo& info) {
    ApiRequest r = begin_openai_request(body, info, Api::completions);
    const Json* prompt = fields::find(body, "prompt");
    if (!prompt) throw bad_field("prompt", "prompt is required: a string, or an array of token ids");
    const Json* p = prompt;
    if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) p = &(*p)[0];
    std::vector<int32_t>& ids = r.generation.prompt;
    if (p->is_string()) {
        ids = need_tokenizer(info, "prompt").encode(p->get_ref<const std::string&>());
    } else if (p->is_array() && std::all_of(p->begin(), p->end(), [](const Json& v) { return v.is_number(); })) {
        ids.reserve(p->size());
        for (size_t i = 0; i < p->size(); ++i) {
            const std::string param = "prompt[" + std::to_string(i) + "]";
            const int64_t id = fields::as_integer((*p)[i], param, 0, INT32_MAX);
            if (id >= info.vocab_size)
                throw bad_field("prompt", "prompt: token id " + std::to_string(id) + " (item " + std::to_string(i) +
                                              ") is outside the vocabulary (ids 0.." +
                                              std::to_string(info.vocab_size - 1) + ")");
            ids.push_back(int32_t(id));
        }
    } else if (p->is_array() && p->size() > 1 && std::all_of(p->begin(), p->end(), [](const Json& v) {
                   return v.is_string() || v.is_array();
               })) {
        throw bad_field("prompt", "prompt holds " + std::to_string(p->size()) +
                                      " prompts; this server takes one prompt per request");
    } else {
        throw bad_field("prompt", std::string("prompt must be a string, an array of one string or an array of token "
                                              "ids, not ") + fields::type_name(*p));
    }
    r.generation.sampling = read_sampling(body, 2);
    r.generation.stop_strings = read_stops(body, "stop", true);
    finish_generation(r, body, info, read_max_tokens(body), 16, "prompt");  // OpenAI's default for completions: 16
    return r;
}

ApiRequest parse_messages(const Json& body, const ServingInfo& info) {
    ApiRequest r;
    r.api = Api::messages;
    check_model(body, info);
    r.stream = fields::get_bool(body, "stream", false);
    const std::optional<int64_t> max_tokens = fields::get_integer(body, "max_tokens", 1, INT32_MAX);
    if (!max_tokens) throw bad_field("max_tokens", "max_tokens is required (a whole number of tokens from 1)");
    const Json messages = anthropic_to_openai_messages(body);
    const Json* tools = fields::find(body, "tools");
    const Json openai_tools = tools ? anthropic_to_openai_tools(*tools) : Json();
    r.generation.prompt = encode_chat_prompt(messages, openai_tools, info);
    r.parse_tools = tools && !tools->empty() && !tool_choice_none(body);
    r.generation.sampling = read_sampling(body, 1);
    r.generation.stop_strings = read_stops(body, "stop_sequences", false);
    finish_generation(r, body, info, max_tokens, *max_tokens, "messages");
    return r;
}

}  // namespace

std::vector<int32_t> encode_chat_prompt(const Json& messages, const Json& tools, const ServingInfo& info,
                                        bool add_generation_prompt) {
    if (!messages.is_array() || messages.empty())
        throw bad_field("messages", std::string("messages must be a non-empty array of {\"role\", \"content\"} objects, "
                                                "not ") + (messages.is_array() ? "an empty array" : fields::type_name(messages)));
    if (!tools.is_null()) check_tools(tools);
    const tok::Tokenizer& tokenizer = need_tokenizer(info, "messages");
    // Roles first, so that a bad one is reported with its own field (the renderer names only the message).
    for (size_t i = 0; i < messages.size(); ++i) {
        const Json* role = messages[i].is_object() ? fields::find(messages[i], "role") : nullptr;
        if (!role) continue;  // the renderer says what is missing
        const std::string p = "messages[" + std::to_string(i) + "].role";
        if (!role->is_string() ||
            (*role != "system" && *role != "user" && *role != "assistant" && *role != "tool" && *role != "developer"))
            throw bad_field(p, p + " is " + (role->is_string() ? input::quote(role->get_ref<const std::string&>())
                                                              : std::string(fields::type_name(*role))) +
                                   "; it must be system, developer, user, assistant or tool");
    }
    // OpenAI's newer "developer" role is the system role of older models.
    Json renamed;
    const Json* to_render = &messages;
    for (size_t i = 0; i < messages.size(); ++i)
        if (messages[i].is_object() && messages[i].value("role", Json()) == "developer") {
            if (to_render != &renamed) renamed = messages;
            renamed[i]["role"] = "system";
            to_render = &renamed;
        }
    try {
        return tok::encode_chat(tokenizer, tok::parse_chat_messages(*to_render), tools, add_generation_prompt);
    } catch (const tok::ChatError& e) {
        throw bad_field("messages", e.what());
    }
}

ApiRequest parse_request(Api api, std::string_view body, const ServingInfo& info) {
    const Json j = parse_body(body);
    switch (api) {
    case Api::chat: return parse_chat(j, info);
    case Api::completions: return parse_completion(j, info);
    case Api::messages: return parse_messages(j, info);
    }
    throw ApiError(500, "unknown API", "server_error");
}

}  // namespace halo::server
