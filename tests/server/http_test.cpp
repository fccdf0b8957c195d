// The server in-process on the demo model, hit with an HTTP client: every endpoint, the bad-input cases with their
// status and error shape, overload (503 + Retry-After), streams that end with [DONE], and a client that goes away
// mid-stream freeing its sequence.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/input/bounded_json.h"
#include "core/model.h"
#include "core/scheduler.h"
#include "server/server.h"
#include "tests/support/plugins.h"

namespace halo::server {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kSequences = 2;
constexpr int kQueue = 2;
constexpr int64_t kContext = 4096;

// One model, scheduler and server for the whole suite (loading is the slow part).
struct Served {
    std::unique_ptr<LoadedBackend> backend;
    std::unique_ptr<Model> model;
    std::unique_ptr<tok::Tokenizer> tokenizer;
    std::unique_ptr<Scheduler> scheduler;
    std::unique_ptr<Server> server;

    explicit Served(int64_t context = kContext) {
        backend = test::load_plugin("cpu", 2);
        ModelOptions mo;
        mo.max_sequences = kSequences;
        mo.max_context = context;
        mo.max_step_rows = 256;
        model = std::make_unique<Model>(backend->backend(), HALO_DEMO_DIR, mo);
        tokenizer = std::make_unique<tok::Tokenizer>(tok::Tokenizer::load(HALO_DEMO_DIR));
        SchedulerOptions so;
        so.max_queue = kQueue;
        scheduler = std::make_unique<Scheduler>(*model, tokenizer.get(), so);
        ServerOptions o;
        o.host = "127.0.0.1";
        o.port = 0;
        o.model_name = "demo";
        o.worker_threads = 16;
        server = std::make_unique<Server>(o);
        server->bind();
        server->start();
        server->set_ready(*model, *scheduler, tokenizer.get());
    }
    ~Served() {
        server->stop();
        server.reset();
        scheduler.reset();
    }
};

class Http : public ::testing::Test {
protected:
    static void SetUpTestSuite() { served_ = new Served(); }
    static void TearDownTestSuite() {
        delete served_;
        served_ = nullptr;
    }

    static httplib::Client client() {
        httplib::Client c("127.0.0.1", served_->server->port());
        c.set_read_timeout(120, 0);
        c.set_write_timeout(120, 0);
        return c;
    }

    static httplib::Result post(const std::string& path, const std::string& body) {
        return client().Post(path.c_str(), body, "application/json");
    }

    // Waits until no request runs or waits (a freed sequence shows here).
    static bool wait_idle(std::chrono::seconds limit = 30s) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            const SchedulerStats s = served_->scheduler->stats();
            if (s.running == 0 && s.queued == 0 && s.slots_used == 0 && s.pages_used == 0) return true;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }

    static Served* served_;
};
Served* Http::served_ = nullptr;

// An OpenAI error body with the expected status, type and (when given) param and code.
void expect_openai_error(const httplib::Result& r, int status, const std::string& param = "?",
                         const std::string& code = "?") {
    ASSERT_TRUE(r) << "no response: " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, status) << r->body.substr(0, 300);
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    const Json j = Json::parse(r->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r->body.substr(0, 300);
    ASSERT_TRUE(j.contains("error")) << r->body.substr(0, 300);
    const Json& e = j["error"];
    ASSERT_TRUE(e["message"].is_string());
    EXPECT_LE(e["message"].get<std::string>().size(), 700u);
    EXPECT_TRUE(e["type"].is_string());
    ASSERT_TRUE(e.contains("param"));
    ASSERT_TRUE(e.contains("code"));
    if (param != "?") {
        EXPECT_EQ(e["param"].is_null() ? "" : e["param"].get<std::string>(), param) << r->body;
    }
    if (code != "?") {
        EXPECT_EQ(e["code"].is_null() ? "" : e["code"].get<std::string>(), code) << r->body;
    }
}

// The events of an SSE body (each "data: ..." payload), checking the framing.
std::vector<std::string> sse_payloads(const std::string& body) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < body.size()) {
        const size_t end = body.find("\n\n", pos);
        EXPECT_NE(end, std::string::npos) << "an event is not ended by a blank line";
        if (end == std::string::npos) break;
        const std::string event = body.substr(pos, end - pos);
        pos = end + 2;
        if (event.rfind(":", 0) == 0) continue;  // a comment (keep-alive)
        size_t data = event.find("data: ");
        EXPECT_NE(data, std::string::npos) << event;
        if (data != std::string::npos) out.push_back(event.substr(data + 6));
    }
    return out;
}

const std::string kHi = R"("messages": [{"role": "user", "content": "Hello there"}])";

TEST_F(Http, HealthAndModels) {
    auto c = client();
    auto health = c.Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(Json::parse(health->body), Json({{"status", "ok"}}));
    auto models = c.Get("/v1/models");
    ASSERT_TRUE(models);
    EXPECT_EQ(models->status, 200);
    const Json m = Json::parse(models->body);
    EXPECT_EQ(m["object"], "list");
    ASSERT_EQ(m["data"].size(), 1u);
    EXPECT_EQ(m["data"][0]["id"], "demo");
    EXPECT_EQ(m["data"][0]["object"], "model");
    EXPECT_EQ(m["data"][0]["max_model_len"], kContext);
    auto one = c.Get("/v1/models/demo");
    ASSERT_TRUE(one);
    EXPECT_EQ(one->status, 200);
    expect_openai_error(c.Get("/v1/models/other"), 404, "model", "model_not_found");
    expect_openai_error(c.Get("/no/such/path"), 404);
}

TEST_F(Http, NonStreamingChat) {
    auto r = post("/v1/chat/completions", "{" + kHi + R"(, "model": "demo", "max_tokens": 8, "temperature": 0})");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const Json j = Json::parse(r->body);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["model"], "demo");
    EXPECT_TRUE(j["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
    ASSERT_EQ(j["choices"].size(), 1u);
    EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
    EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
    const std::string finish = j["choices"][0]["finish_reason"];
    EXPECT_TRUE(finish == "stop" || finish == "length") << finish;
    const Json& u = j["usage"];
    EXPECT_GT(u["prompt_tokens"].get<int>(), 0);
    EXPECT_LE(u["completion_tokens"].get<int>(), 8);
    EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
    // Greedy output does not depend on the request's seed or on what else runs.
    auto again = post("/v1/chat/completions", "{" + kHi + R"(, "max_tokens": 8, "temperature": 0, "seed": 9})");
    ASSERT_TRUE(again);
    EXPECT_EQ(Json::parse(again->body)["choices"][0]["message"]["content"], j["choices"][0]["message"]["content"]);
}

TEST_F(Http, NonStreamingCompletionWithIgnoreEosRunsToLength) {
    auto r = post("/v1/completions", R"({"prompt": "Once upon a time", "max_tokens": 12, "ignore_eos": true,
                                         "temperature": 0.8, "top_k": 20, "seed": 1})");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const Json j = Json::parse(r->body);
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_TRUE(j["choices"][0]["text"].is_string());
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], 12);
    auto ids = post("/v1/completions", R"({"prompt": [1, 2, 3], "max_tokens": 2, "ignore_eos": true})");
    ASSERT_TRUE(ids);
    EXPECT_EQ(ids->status, 200) << ids->body;
    EXPECT_EQ(Json::parse(ids->body)["usage"]["prompt_tokens"], 3);
}

TEST_F(Http, StreamingChatEndsWithDoneAndUsage) {
    auto r = post("/v1/chat/completions", "{" + kHi + R"(, "max_tokens": 6, "ignore_eos": true, "stream": true,
                                               "stream_options": {"include_usage": true}})");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
    const auto events = sse_payloads(r->body);
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.back(), "[DONE]");
    const Json first = Json::parse(events.front());
    EXPECT_EQ(first["object"], "chat.completion.chunk");
    EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
    const Json usage = Json::parse(events[events.size() - 2]);
    EXPECT_TRUE(usage["choices"].empty());
    EXPECT_EQ(usage["usage"]["completion_tokens"], 6);
    const Json last_choice = Json::parse(events[events.size() - 3]);
    EXPECT_EQ(last_choice["choices"][0]["finish_reason"], "length");
    EXPECT_TRUE(last_choice["usage"].is_null());
    // The streamed text equals the non-streamed text of the same greedy request.
    std::string streamed;
    for (size_t i = 0; i + 1 < events.size(); ++i) {
        const Json e = Json::parse(events[i]);
        if (!e["choices"].empty() && e["choices"][0]["delta"].contains("content"))
            streamed += e["choices"][0]["delta"]["content"].get<std::string>();
    }
    auto whole = post("/v1/chat/completions", "{" + kHi + R"(, "max_tokens": 6, "ignore_eos": true, "temperature": 0})");
    auto streamed_greedy = post("/v1/chat/completions", "{" + kHi + R"(, "max_tokens": 6, "ignore_eos": true,
                                                           "temperature": 0, "stream": true})");
    ASSERT_TRUE(whole && streamed_greedy);
    std::string text;
    for (const auto& p : sse_payloads(streamed_greedy->body)) {
        if (p == "[DONE]") continue;
        const Json e = Json::parse(p);
        if (e["choices"][0]["delta"].contains("content")) text += e["choices"][0]["delta"]["content"].get<std::string>();
    }
    EXPECT_EQ(text, Json::parse(whole->body)["choices"][0]["message"]["content"]);
}

TEST_F(Http, StreamingCompletion) {
    auto r = post("/v1/completions", R"({"prompt": "Hello", "max_tokens": 4, "ignore_eos": true, "stream": true})");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    const auto events = sse_payloads(r->body);
    ASSERT_GE(events.size(), 2u);
    EXPECT_EQ(events.back(), "[DONE]");
    EXPECT_EQ(Json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "length");
}

TEST_F(Http, AnthropicMessages) {
    auto r = post("/v1/messages", R"({"model": "demo", "max_tokens": 5, "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "temperature": 0})");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const Json j = Json::parse(r->body);
    EXPECT_EQ(j["type"], "message");
    EXPECT_EQ(j["role"], "assistant");
    EXPECT_TRUE(j["content"].is_array());
    const std::string reason = j["stop_reason"];
    EXPECT_TRUE(reason == "end_turn" || reason == "max_tokens") << reason;
    EXPECT_GT(j["usage"]["input_tokens"].get<int>(), 0);

    auto s = post("/v1/messages", R"({"max_tokens": 4, "stream": true, "ignore_eos": true,
        "messages": [{"role": "user", "content": "Hi"}]})");
    ASSERT_TRUE(s);
    ASSERT_EQ(s->status, 200);
    std::vector<std::string> names;
    size_t pos = 0;
    while ((pos = s->body.find("event: ", pos)) != std::string::npos) {
        const size_t end = s->body.find('\n', pos);
        names.push_back(s->body.substr(pos + 7, end - pos - 7));
        pos = end;
    }
    ASSERT_GE(names.size(), 4u);
    EXPECT_EQ(names.front(), "message_start");
    EXPECT_EQ(names[names.size() - 2], "message_delta");
    EXPECT_EQ(names.back(), "message_stop");
    EXPECT_NE(s->body.find("\"stop_reason\":\"max_tokens\""), std::string::npos) << s->body;

    auto bad = post("/v1/messages", R"({"messages": [{"role": "user", "content": "Hi"}]})");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    const Json e = Json::parse(bad->body);
    EXPECT_EQ(e["type"], "error");
    EXPECT_EQ(e["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(e["error"]["message"].is_string());
}

TEST_F(Http, TokenizeDetokenizeRoundTrip) {
    auto t = post("/tokenize", R"({"prompt": "Hello, world! Ünïcödé"})");
    ASSERT_TRUE(t);
    ASSERT_EQ(t->status, 200) << t->body;
    const Json j = Json::parse(t->body);
    EXPECT_EQ(j["count"], j["tokens"].size());
    EXPECT_EQ(j["max_model_len"], kContext);
    auto d = post("/detokenize", Json{{"tokens", j["tokens"]}}.dump());
    ASSERT_TRUE(d);
    ASSERT_EQ(d->status, 200) << d->body;
    EXPECT_EQ(Json::parse(d->body)["prompt"], "Hello, world! Ünïcödé");
    auto chat = post("/tokenize", "{" + kHi + "}");
    ASSERT_TRUE(chat);
    EXPECT_EQ(chat->status, 200);
    EXPECT_GT(Json::parse(chat->body)["count"].get<int>(), 3);
    expect_openai_error(post("/detokenize", R"({"tokens": [1, 99999999]})"), 400, "tokens");
    expect_openai_error(post("/detokenize", R"({"tokens": "abc"})"), 400, "tokens");
    expect_openai_error(post("/tokenize", R"({})"), 400, "prompt");
}

TEST_F(Http, BadInputGetsJsonErrorsAndTheServerGoesOn) {
    expect_openai_error(post("/v1/chat/completions", "{not json"), 400, "", "invalid_json");
    expect_openai_error(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"\xc3\x28\"}]}"),
                        400, "", "invalid_json");
    expect_openai_error(post("/v1/chat/completions", std::string(100000, '[') + std::string(100000, ']')), 400, "",
                        "invalid_json");
    expect_openai_error(post("/v1/chat/completions", R"({"messages": 5})"), 400, "messages");
    expect_openai_error(post("/v1/chat/completions", R"({"messages": [{"role": "robot", "content": "x"}]})"), 400,
                        "messages[0].role");
    expect_openai_error(post("/v1/chat/completions", "{" + kHi + R"(, "model": "gpt-4o"})"), 404, "model",
                        "model_not_found");
    expect_openai_error(post("/v1/chat/completions", "{" + kHi + R"(, "max_tokens": -3})"), 400, "max_tokens");
    expect_openai_error(post("/v1/chat/completions", "{" + kHi + R"(, "max_tokens": 1e12})"), 400, "max_tokens");
    expect_openai_error(post("/v1/chat/completions", "{" + kHi + R"(, "n": 3})"), 400, "n");
    expect_openai_error(post("/v1/completions", R"({"prompt": [5, 1000000]})"), 400, "prompt");
    const std::string long_prompt = Json{{"prompt", std::vector<int>(kContext + 10, 7)}}.dump();
    auto too_long = post("/v1/completions", long_prompt);
    expect_openai_error(too_long, 400, "prompt", "context_length_exceeded");
    ASSERT_TRUE(too_long);
    const std::string message = Json::parse(too_long->body)["error"]["message"];
    EXPECT_NE(message.find(std::to_string(kContext + 10)), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(kContext)), std::string::npos) << message;
    // Still serving.
    auto ok = post("/v1/completions", R"({"prompt": "Hi", "max_tokens": 1})");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
}

TEST_F(Http, BodyOverTheLimitGets413) {
    const std::string body(input::kRequestBody.max_bytes + 16, ' ');
    auto r = post("/v1/chat/completions", body);
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    expect_openai_error(r, 413, "", "payload_too_large");
}

TEST_F(Http, OverloadGets503WithRetryAfter) {
    ASSERT_TRUE(wait_idle());
    // Fill every sequence and the queue with long requests, straight through the scheduler.
    std::vector<std::shared_ptr<GenerationStream>> held;
    for (int i = 0; i < kSequences + kQueue; ++i) {
        GenerationRequest g;
        g.prompt = {1, 2, 3};
        g.max_tokens = 4000;
        held.push_back(served_->scheduler->submit(g));
    }
    auto r = post("/v1/completions", R"({"prompt": "Hi", "max_tokens": 1})");
    expect_openai_error(r, 503, "?", "overloaded");
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->get_header_value("Retry-After").empty());
    EXPECT_GE(std::stoi(r->get_header_value("Retry-After", 0).empty() ? "0" : r->get_header_value("Retry-After")), 1);
    held.clear();  // dropping the streams cancels them
    EXPECT_TRUE(wait_idle());
}

// Sends a request on a raw socket, reads until `until` arrives (nothing when empty: waits `linger` instead), then
// closes the connection.
void send_and_hang_up(int port, const std::string& path, const std::string& body, const std::string& until,
                      std::chrono::milliseconds linger = 0ms) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(uint16_t(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
    std::string got;
    char buf[4096];
    while (!until.empty() && got.find(until) == std::string::npos) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        ASSERT_GT(n, 0) << "the connection ended before " << until;
        got.append(buf, size_t(n));
    }
    std::this_thread::sleep_for(linger);
    ::close(fd);
}

TEST_F(Http, ClientDisconnectingMidStreamFreesItsSequence) {
    ASSERT_TRUE(wait_idle());
    send_and_hang_up(served_->server->port(), "/v1/chat/completions",
                     "{" + kHi + R"(, "max_tokens": 4000, "ignore_eos": true, "stream": true})", "data: ");
    EXPECT_TRUE(wait_idle()) << "the request of a client that went away still runs";
    auto m = client().Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find("\nhalo_running_sequences 0\n"), std::string::npos);
    EXPECT_NE(m->body.find("\nhalo_kda_slots_used 0\n"), std::string::npos);
    EXPECT_GE(served_->scheduler->stats().finished[size_t(FinishReason::cancelled)], 1u);
}

TEST_F(Http, MetricsExposition) {
    ASSERT_TRUE(post("/v1/completions", R"({"prompt": "Hi", "max_tokens": 2, "ignore_eos": true})"));
    auto m = client().Get("/metrics");
    ASSERT_TRUE(m);
    ASSERT_EQ(m->status, 200);
    const std::string& t = m->body;
    for (const char* want : {"halo_requests_total{endpoint=\"/v1/completions\",status=\"200\"}",
                             "# TYPE halo_time_to_first_token_seconds histogram",
                             "halo_time_to_first_token_seconds_bucket{le=\"+Inf\"}",
                             "halo_inter_token_latency_seconds_count", "halo_prompt_tokens_total",
                             "halo_generated_tokens_total", "halo_queue_depth", "halo_running_sequences",
                             "\nhalo_kda_slots_total 2\n", "halo_mla_pages_total", "halo_mla_pages_used",
                             "halo_memory_bytes{use=\"weights\",placement=", "halo_memory_bytes{use=\"cache\",placement="})
        EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t.substr(0, 3000);
}

TEST(HttpLifecycle, LoadingAndDrainingAnswer503) {
    ServerOptions o;
    o.port = 0;
    o.model_name = "demo";
    o.worker_threads = 4;
    Server server(o);
    const int port = server.bind();
    server.start();
    httplib::Client c("127.0.0.1", port);
    auto health = c.Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 503);
    EXPECT_EQ(Json::parse(health->body), Json({{"status", "loading"}}));
    auto chat = c.Post("/v1/chat/completions", "{}", "application/json");
    expect_openai_error(chat, 503, "?", "model_loading");
    auto models = c.Get("/v1/models");
    ASSERT_TRUE(models);
    EXPECT_EQ(models->status, 503);
    server.begin_shutdown();
    auto draining = c.Get("/health");
    ASSERT_TRUE(draining);
    EXPECT_EQ(draining->status, 503);
    EXPECT_EQ(Json::parse(draining->body), Json({{"status", "draining"}}));
    server.stop();
}

}  // namespace
}  // namespace halo::server

namespace halo::server {
namespace {

TEST(HttpLifecycle, ClientDisconnectingFromALongNonStreamingRequestFreesItsSequence) {
    Served s(32768);  // a request long enough (seconds) to outlast the direct wait
    send_and_hang_up(s.server->port(), "/v1/completions",
                     R"({"prompt": "Hi", "max_tokens": 32000, "ignore_eos": true})", "", 300ms);
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (s.scheduler->stats().finished[size_t(FinishReason::cancelled)] == 0 && std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(20ms);
    const SchedulerStats stats = s.scheduler->stats();
    EXPECT_EQ(stats.finished[size_t(FinishReason::cancelled)], 1u);
    EXPECT_EQ(stats.finished[size_t(FinishReason::length)], 0u) << "the request ran to its end";
}

TEST(HttpLifecycle, DrainCancelsWhatRunsPastTheGraceAndRefusesNewRequests) {
    Served s;  // its own model and scheduler: drain() ends the scheduler's service for good
    std::unique_ptr<httplib::Result> streamed;
    std::thread client([&] {
        httplib::Client c("127.0.0.1", s.server->port());
        c.set_read_timeout(60, 0);
        streamed = std::make_unique<httplib::Result>(c.Post("/v1/completions", R"({"prompt": "Hi", "max_tokens": 4000, "ignore_eos": true, "stream": true})",
                          "application/json"));
    });
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (s.scheduler->stats().running == 0 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(5ms);
    ASSERT_EQ(s.scheduler->stats().running, 1);
    s.server->begin_shutdown();
    httplib::Client c("127.0.0.1", s.server->port());
    expect_openai_error(c.Post("/v1/completions", R"({"prompt": "Hi"})", "application/json"), 503, "?", "shutting_down");
    EXPECT_EQ(s.scheduler->drain(100ms), 1);
    client.join();
    ASSERT_TRUE(streamed && *streamed);
    EXPECT_EQ((*streamed)->status, 200);
    const auto events = sse_payloads((*streamed)->body);
    ASSERT_GE(events.size(), 2u);
    EXPECT_EQ(events.back(), "[DONE]");
    EXPECT_EQ(Json::parse(events[events.size() - 2])["error"]["code"], "cancelled");
    s.server->stop();
}

}  // namespace
}  // namespace halo::server
