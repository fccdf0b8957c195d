// The generation endpoints: a checked request goes to the scheduler, and its events come back as one JSON body or
// as a stream of server-sent events. A client that goes away mid-stream cancels its request (freeing its slot).
#include <chrono>

#include "core/input/excerpt.h"
#include "server/response_writer.h"
#include "server/server_impl.h"

namespace halo::server {

namespace {

using namespace std::chrono_literals;

constexpr auto kPoll = 50ms;            // how often a stream checks that its client is still there
constexpr auto kKeepAlive = 5s;         // an SSE comment after this long without output (a queued or long prompt)
constexpr auto kDirectWait = 2000ms;    // a whole-body answer that takes longer goes out chunked (see below)
constexpr auto kWholeKeepAlive = 1s;    // while it waits, a space this often shows whether the client is there

// The error for a request that ended without finishing normally.
ApiError ended_badly(const GenerationEvent& last) {
    if (last.finish_reason == FinishReason::cancelled)
        return ApiError(503, "the request was cancelled before it finished (the server is shutting down)", "server_error",
                        "cancelled");
    return ApiError(500, "the engine failed while generating: " + input::one_line(last.error, 300), "server_error",
                    "engine_error");
}

struct StreamState {
    std::shared_ptr<GenerationStream> stream;
    std::unique_ptr<ResponseWriter> writer;
    bool started = false;
    std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
};

// One call of httplib's chunked content provider: waits up to kPoll for news and writes it. Returns false to end
// the response early (the client went away, or a write failed).
bool pump(StreamState& st, httplib::DataSink& sink) {
    auto write = [&](const std::string& s) {
        if (s.empty()) return true;
        st.last_write = std::chrono::steady_clock::now();
        return sink.write(s.data(), s.size());
    };
    if (!st.started) {
        st.started = true;
        if (!write(st.writer->stream_start())) return false;
    }
    if (!sink.is_writable()) return false;
    GenerationEvent ev;
    if (!st.stream->next(ev, kPoll)) {
        // Writing is the only way to learn that a client has gone while nothing is generated yet.
        if (std::chrono::steady_clock::now() - st.last_write > kKeepAlive) return write(": keep-alive\n\n");
        return true;
    }
    std::string out = st.writer->stream_text(ev.text);
    if (!ev.finished) return write(out);
    if (ev.finish_reason == FinishReason::stop || ev.finish_reason == FinishReason::length)
        out += st.writer->stream_end(ev);
    else
        out += st.writer->stream_error(ended_badly(ev));
    const bool ok = write(out);
    sink.done();
    return ok;
}

// A request answered as one body: what has arrived so far.
struct WholeState {
    std::shared_ptr<GenerationStream> stream;
    std::unique_ptr<ResponseWriter> writer;
    bool anthropic = false;
    std::string text;
    GenerationEvent last;
    bool finished = false;
    std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();

    // Collects events for up to `limit`; true once the request has finished.
    bool collect(std::chrono::milliseconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (!finished) {
            const auto now = std::chrono::steady_clock::now();
            if (now >= end) return false;
            GenerationEvent ev;
            if (!stream->next(ev, std::chrono::duration_cast<std::chrono::milliseconds>(end - now))) continue;
            text += ev.text;
            if (ev.finished) {
                last = std::move(ev);
                finished = true;
            }
        }
        return true;
    }
    bool succeeded() const {
        return last.finish_reason == FinishReason::stop || last.finish_reason == FinishReason::length;
    }
    // The response body (or, once the status is sent, the error body).
    std::string body() {
        if (succeeded()) return writer->body(text, last);
        const ApiError e = ended_badly(last);
        return anthropic ? anthropic_error_body(e) : openai_error_body(e);
    }
};

}  // namespace

void Server::Impl::handle_generation(Api api, const httplib::Request& req, httplib::Response& res) {
    require_ready();
    ApiRequest request = parse_request(api, req.body, info);
    std::unique_ptr<ResponseWriter> writer = make_writer(request, info.model_name);
    std::shared_ptr<GenerationStream> stream;
    try {
        stream = scheduler->submit(std::move(request.generation));
    } catch (const RequestError& e) {
        throw ApiError(400, e.what(), "invalid_request_error", "invalid_value", e.param());
    } catch (const Overloaded& e) {
        ApiError busy(503, e.what(), "server_error", "overloaded");
        busy.retry_after_s = std::max(1, e.retry_after_s());
        throw busy;
    }

    if (!request.stream) {
        auto wait = std::make_shared<WholeState>();
        wait->stream = std::move(stream);
        wait->writer = std::move(writer);
        wait->anthropic = api == Api::messages;
        if (wait->collect(kDirectWait)) {
            if (!wait->succeeded()) throw ended_badly(wait->last);
            res.status = 200;
            res.set_content(wait->body(), "application/json");
            return;
        }
        // A long request: the answer goes out chunked from here, so that waiting can notice a client that has gone
        // (writing a space, which JSON allows before a value, fails). The status is 200 from now on; a request
        // that ends badly gets the error body.
        res.status = 200;
        res.set_chunked_content_provider(
            "application/json",
            [wait](size_t, httplib::DataSink& sink) {
                try {
                    if (!sink.is_writable()) return false;
                    if (wait->collect(kPoll)) {
                        const std::string body = wait->body();
                        const bool ok = sink.write(body.data(), body.size());
                        sink.done();
                        return ok;
                    }
                    if (std::chrono::steady_clock::now() - wait->last_write < kWholeKeepAlive) return true;
                    wait->last_write = std::chrono::steady_clock::now();
                    if (sink.write(" ", 1)) return true;
                } catch (...) {
                }
                wait->stream->cancel();
                return false;
            },
            [wait](bool success) {
                if (!success) wait->stream->cancel();
            });
        return;
    }

    auto st = std::make_shared<StreamState>();
    st->stream = std::move(stream);
    st->writer = std::move(writer);
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");  // proxies: pass events on as they come
    res.set_chunked_content_provider(
        "text/event-stream",
        [st](size_t, httplib::DataSink& sink) {
            try {
                if (pump(*st, sink)) return true;
            } catch (...) {
            }
            st->stream->cancel();
            return false;
        },
        [st](bool success) {
            if (!success) st->stream->cancel();
        });
}

}  // namespace halo::server
