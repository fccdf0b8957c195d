// Anthropic Messages requests rewritten as OpenAI chat messages and function tools, so that one renderer
// (tok::parse_chat_messages + encode_chat) serves both APIs.
#include "core/input/excerpt.h"
#include "server/request.h"
#include "server/request_fields.h"

namespace halo::server {

using fields::Json;

namespace {

// Text of a string or of an array of {"type": "text", "text"} blocks (`param` names it in messages).
std::string text_of(const Json& v, const std::string& param) {
    if (v.is_string()) return v.get<std::string>();
    if (!v.is_array()) throw bad_field(param, param + " must be a string or an array of text blocks, not " + fields::type_name(v));
    std::string text;
    for (size_t i = 0; i < v.size(); ++i) {
        const Json& b = v[i];
        const std::string p = param + "[" + std::to_string(i) + "]";
        const Json* type = b.is_object() ? fields::find(b, "type") : nullptr;
        if (!type || !type->is_string() || *type != "text")
            throw bad_field(p, p + " must be a {\"type\": \"text\", \"text\": ...} block");
        const Json* t = fields::find(b, "text");
        if (!t || !t->is_string()) throw bad_field(p + ".text", p + ".text must be a string");
        text += t->get_ref<const std::string&>();
    }
    return text;
}

const std::string& block_string(const Json& b, const char* name, const std::string& p) {
    const Json* v = fields::find(b, name);
    if (!v || !v->is_string()) throw bad_field(p + "." + name, p + "." + name + " must be a string");
    return v->get_ref<const std::string&>();
}

// One Anthropic message -> one or more OpenAI messages appended to `out`.
void convert_message(const Json& m, size_t index, Json& out) {
    const std::string p = "messages[" + std::to_string(index) + "]";
    if (!m.is_object()) throw bad_field(p, p + " must be an object with role and content");
    const Json* role_v = fields::find(m, "role");
    if (!role_v || !role_v->is_string() || (*role_v != "user" && *role_v != "assistant"))
        throw bad_field(p + ".role", p + ".role must be \"user\" or \"assistant\"");
    const std::string role = role_v->get<std::string>();
    const Json* content = fields::find(m, "content");
    if (!content) throw bad_field(p + ".content", p + ".content is required");
    if (content->is_string()) {
        out.push_back({{"role", role}, {"content", *content}});
        return;
    }
    if (!content->is_array())
        throw bad_field(p + ".content", p + ".content must be a string or an array of blocks, not " +
                                            fields::type_name(*content));
    std::string text;
    Json tool_calls = Json::array();
    for (size_t i = 0; i < content->size(); ++i) {
        const Json& b = (*content)[i];
        const std::string bp = p + ".content[" + std::to_string(i) + "]";
        const Json* type_v = b.is_object() ? fields::find(b, "type") : nullptr;
        if (!type_v || !type_v->is_string()) throw bad_field(bp, bp + " must be an object with a \"type\"");
        const std::string& type = type_v->get_ref<const std::string&>();
        if (type == "text") {
            text += block_string(b, "text", bp);
        } else if (type == "tool_use" && role == "assistant") {
            const Json* input = fields::find(b, "input");
            if (input && !input->is_object()) throw bad_field(bp + ".input", bp + ".input must be an object");
            tool_calls.push_back({{"id", block_string(b, "id", bp)},
                                  {"type", "function"},
                                  {"function", {{"name", block_string(b, "name", bp)},
                                                {"arguments", input ? *input : Json::object()}}}});
        } else if (type == "tool_result" && role == "user") {
            const Json* result = fields::find(b, "content");
            out.push_back({{"role", "tool"},
                           {"tool_call_id", block_string(b, "tool_use_id", bp)},
                           {"content", result ? text_of(*result, bp + ".content") : std::string()}});
        } else if (type == "thinking" || type == "redacted_thinking") {
            // Earlier reasoning is not rendered back (as the K2 template drops it).
        } else {
            throw bad_field(bp + ".type", bp + ": a " + input::quote(type) + " block is not supported in a " + role +
                                              " message (text" + (role == "user" ? ", tool_result" : ", tool_use") +
                                              " are)");
        }
    }
    if (role == "assistant") {
        Json a = {{"role", "assistant"}, {"content", text}};
        if (!tool_calls.empty()) a["tool_calls"] = std::move(tool_calls);
        out.push_back(std::move(a));
    } else if (!text.empty() || content->empty()) {
        out.push_back({{"role", "user"}, {"content", text}});
    }
}

}  // namespace

Json anthropic_to_openai_messages(const Json& body) {
    Json out = Json::array();
    if (const Json* system = fields::find(body, "system")) out.push_back({{"role", "system"}, {"content", text_of(*system, "system")}});
    const Json* messages = fields::find(body, "messages");
    if (!messages || !messages->is_array() || messages->empty())
        throw bad_field("messages", "messages must be a non-empty array of {\"role\", \"content\"} objects");
    for (size_t i = 0; i < messages->size(); ++i) convert_message((*messages)[i], i, out);
    return out;
}

Json anthropic_to_openai_tools(const Json& tools) {
    if (!tools.is_array()) throw bad_field("tools", std::string("tools must be an array, not ") + fields::type_name(tools));
    Json out = Json::array();
    for (size_t i = 0; i < tools.size(); ++i) {
        const Json& t = tools[i];
        const std::string p = "tools[" + std::to_string(i) + "]";
        if (!t.is_object()) throw bad_field(p, p + " must be an object with name and input_schema");
        if (const Json* type = fields::find(t, "type"); type && *type != "custom")
            throw bad_field(p + ".type", p + ": only client tools (name, description, input_schema) are supported");
        const Json* name = fields::find(t, "name");
        if (!name || !name->is_string() || name->get_ref<const std::string&>().empty())
            throw bad_field(p + ".name", p + ".name must be a non-empty string");
        Json f = {{"name", *name}};
        if (const Json* d = fields::find(t, "description")) {
            if (!d->is_string()) throw bad_field(p + ".description", p + ".description must be a string");
            f["description"] = *d;
        }
        const Json* schema = fields::find(t, "input_schema");
        if (!schema || !schema->is_object()) throw bad_field(p + ".input_schema", p + ".input_schema must be an object");
        f["parameters"] = *schema;
        out.push_back({{"type", "function"}, {"function", std::move(f)}});
    }
    return out;
}

}  // namespace halo::server
