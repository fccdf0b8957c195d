#include "bench/serve/sse_client.h"

#include <chrono>

namespace halo::bench {

double steady_now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

namespace {

// Incremental parser of the event stream: complete events are handed on; a partial one stays buffered.
class SseReader {
public:
    SseReader(StreamResult& r, const ChunkCallback& on_chunk) : r_(r), on_chunk_(on_chunk) {}

    // Returns false to stop reading (cancelled by the callback, or the stream is malformed).
    bool feed(const char* data, size_t n) {
        buffer_.append(data, n);
        for (;;) {
            size_t end = buffer_.find("\n\n");
            size_t sep = 2;
            const size_t crlf = buffer_.find("\r\n\r\n");
            if (crlf != std::string::npos && crlf < end) end = crlf, sep = 4;
            if (end == std::string::npos) return true;
            const std::string event = buffer_.substr(0, end);
            buffer_.erase(0, end + sep);
            if (!handle_event(event)) return false;
        }
    }
    bool done() const { return done_; }
    bool cancelled() const { return cancelled_; }

private:
    bool handle_event(const std::string& event) {
        std::string data;
        size_t pos = 0;
        while (pos < event.size()) {
            size_t eol = event.find('\n', pos);
            if (eol == std::string::npos) eol = event.size();
            std::string line = event.substr(pos, eol - pos);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.rfind("data:", 0) == 0) data += line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
            pos = eol + 1;
        }
        if (data.empty()) return true;  // a comment or keep-alive
        if (data == "[DONE]") {
            done_ = true;
            return true;
        }
        const double t = steady_now_s() - r_.start_s;
        nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return fail("a stream event that is not a JSON object: " + data.substr(0, 200));
        if (j.contains("error")) return fail("error event in the stream: " + data.substr(0, 300));
        if (j.contains("usage") && j["usage"].is_object()) {
            r_.prompt_tokens = j["usage"].value("prompt_tokens", int64_t(0));
            r_.completion_tokens = j["usage"].value("completion_tokens", int64_t(0));
        }
        if (!j.contains("choices") || !j["choices"].is_array()) return fail("a stream event without choices: " + data.substr(0, 200));
        for (const auto& c : j["choices"]) {
            // A token arrived: text, or (completions) a chunk that is not the final one, whose text may be empty
            // because its bytes complete no character yet or the token has no text.
            const bool final_chunk = c.contains("finish_reason") && c["finish_reason"].is_string();
            bool token = false;
            if (c.contains("text") && c["text"].is_string()) token = !c["text"].get<std::string>().empty() || !final_chunk;
            if (c.contains("delta") && c["delta"].contains("content") && c["delta"]["content"].is_string())
                token = !c["delta"]["content"].get<std::string>().empty();
            if (c.contains("delta") && c["delta"].contains("tool_calls")) token = true;
            if (final_chunk) r_.finish_reason = c["finish_reason"].get<std::string>();
            if (!token) continue;
            if (r_.chunk_times_s.empty()) r_.ttft_s = t;
            r_.chunk_times_s.push_back(t);
            if (on_chunk_ && !on_chunk_(t)) {
                cancelled_ = true;
                return false;
            }
        }
        return true;
    }
    bool fail(std::string why) {
        r_.error = std::move(why);
        return false;
    }

    StreamResult& r_;
    const ChunkCallback& on_chunk_;
    std::string buffer_;
    bool done_ = false, cancelled_ = false;
};

}  // namespace

StreamResult stream_request(httplib::Client& http, const std::string& path, const nlohmann::json& body,
                            const ChunkCallback& on_chunk) {
    StreamResult r;
    SseReader reader(r, on_chunk);
    int status = 0;
    std::string error_body;
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
    req.response_handler = [&](const httplib::Response& res) {
        status = res.status;
        return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        if (status != 200) {
            if (error_body.size() < 4096) error_body.append(data, n);
            return true;
        }
        return reader.feed(data, n);
    };
    r.start_s = steady_now_s();
    const httplib::Result res = http.send(req);
    r.latency_s = steady_now_s() - r.start_s;
    if (reader.cancelled()) {
        r.ok = true;
        return r;
    }
    if (!r.error.empty()) return r;
    if (status != 0 && status != 200) {
        r.error = "HTTP " + std::to_string(status) + ": " + error_body.substr(0, 400);
        return r;
    }
    if (!res) {
        r.error = "request failed: " + httplib::to_string(res.error());
        return r;
    }
    if (!reader.done()) {
        r.error = "the stream ended without data: [DONE]";
        return r;
    }
    r.ok = true;
    return r;
}

}  // namespace halo::bench
