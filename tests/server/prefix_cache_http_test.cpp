// Prefix reuse through the HTTP API: a conversation's second turn re-sends the first turn and its reply, resumes
// from the first turn's snapshot, says so in usage (OpenAI prompt_tokens_details.cached_tokens, Anthropic
// cache_read_input_tokens), and its greedy reply is the one a server without a prefix cache gives; /metrics counts
// the same hits and reused tokens the responses report.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/prefix_cache.h"
#include "core/scheduler.h"
#include "server/server.h"
#include "tests/support/plugins.h"

namespace halo::server {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

// A server on the demo model, with a prefix cache (snapshots every 64 prompt tokens) or without one.
struct Served {
    std::unique_ptr<LoadedBackend> backend;
    std::unique_ptr<Model> model;
    std::unique_ptr<tok::Tokenizer> tokenizer;
    std::unique_ptr<PrefixCache> cache;
    std::unique_ptr<Scheduler> scheduler;
    std::unique_ptr<Server> server;

    explicit Served(bool with_cache, int64_t context = 2048, int32_t sequences = 2) {
        backend = test::load_plugin("cpu", 2);
        ModelOptions mo;
        mo.max_sequences = sequences;
        mo.max_context = context;
        mo.max_step_rows = 256;
        if (with_cache) mo.prefix_cache_bytes = 16 << 20;
        model = std::make_unique<Model>(backend->backend(), HALO_DEMO_DIR, mo);
        tokenizer = std::make_unique<tok::Tokenizer>(tok::Tokenizer::load(HALO_DEMO_DIR));
        SchedulerOptions so;
        if (with_cache) {
            cache = std::make_unique<PrefixCache>(
                *model, PrefixCacheOptions{.max_snapshots = model->plan().layout.prefix_snapshots, .stride = 64});
            so.prefix_cache = cache.get();
        }
        scheduler = std::make_unique<Scheduler>(*model, tokenizer.get(), so);
        ServerOptions o;
        o.port = 0;
        o.model_name = "demo";
        o.worker_threads = 8;
        server = std::make_unique<Server>(o);
        server->bind();
        server->start();
        server->set_ready(*model, *scheduler, tokenizer.get());
    }
    ~Served() {
        server->stop();
        server.reset();
        scheduler.reset();  // before the cache it uses, and the cache before the model
        cache.reset();
    }

    Json post(const std::string& path, const Json& body) const {
        httplib::Client c("127.0.0.1", server->port());
        c.set_read_timeout(120, 0);
        auto r = c.Post(path, body.dump(), "application/json");
        EXPECT_TRUE(r) << path;
        if (!r) return Json();
        EXPECT_EQ(r->status, 200) << r->body;
        return Json::parse(r->body);
    }
    std::string metrics() const {
        httplib::Client c("127.0.0.1", server->port());
        auto r = c.Get("/metrics");
        return r && r->status == 200 ? r->body : std::string();
    }
};

// The value of the sample named exactly `name` (labels included) in an exposition; -1 when absent.
double sample(const std::string& exposition, const std::string& name) {
    std::istringstream in(exposition);
    std::string line;
    while (std::getline(in, line))
        if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 && line[name.size()] == ' ')
            return std::stod(line.substr(name.size() + 1));
    return -1;
}

class PrefixCacheHttp : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        cached_ = new Served(true);
        cold_ = new Served(false);
    }
    static void TearDownTestSuite() {
        delete cached_;
        delete cold_;
    }
    static Served* cached_;
    static Served* cold_;
};
Served* PrefixCacheHttp::cached_ = nullptr;
Served* PrefixCacheHttp::cold_ = nullptr;

int64_t cached_tokens(const Json& response) { return response["usage"]["prompt_tokens_details"]["cached_tokens"]; }

TEST_F(PrefixCacheHttp, SecondTurnResumesFromTheFirstAndMatchesAServerWithoutCache) {
    const std::string before = cached_->metrics();
    const double lookups0 = sample(before, "halo_prefix_cache_lookups_total");
    const double hits0 = sample(before, "halo_prefix_cache_hits_total");
    const double reused0 = sample(before, "halo_prefix_cache_tokens_reused_total");
    ASSERT_GE(lookups0, 0) << before;

    Json turn1 = {{"messages", {{{"role", "user"}, {"content", "Tell me a story about a lighthouse keeper and his cat."}}}},
                  {"max_tokens", 16},
                  {"temperature", 0},
                  {"ignore_eos", true}};
    const Json r1 = cached_->post("/v1/chat/completions", turn1);
    const Json r1_cold = cold_->post("/v1/chat/completions", turn1);
    const std::string reply1 = r1["choices"][0]["message"]["content"];
    EXPECT_EQ(reply1, r1_cold["choices"][0]["message"]["content"]);
    EXPECT_EQ(cached_tokens(r1_cold), 0);

    Json turn2 = turn1;
    turn2["messages"].push_back({{"role", "assistant"}, {"content", reply1}});
    turn2["messages"].push_back({{"role", "user"}, {"content", "What was the cat's name, and where did they live?"}});
    // The chat template renders turn 1 as the start of turn 2, so turn 1's prompt-end snapshot is a prefix of it.
    const std::vector<int32_t> ids1 = cached_->post("/tokenize", {{"messages", turn1["messages"]}})["tokens"];
    const std::vector<int32_t> ids2 = cached_->post("/tokenize", {{"messages", turn2["messages"]}})["tokens"];
    ASSERT_LT(ids1.size(), ids2.size());
    ASSERT_TRUE(std::equal(ids1.begin(), ids1.end(), ids2.begin()));

    const Json r2 = cached_->post("/v1/chat/completions", turn2);
    const Json r2_cold = cold_->post("/v1/chat/completions", turn2);
    EXPECT_EQ(r2["usage"]["prompt_tokens"], int64_t(ids2.size()));
    EXPECT_GE(cached_tokens(r2), int64_t(ids1.size()));
    EXPECT_LT(cached_tokens(r2), int64_t(ids2.size()));  // the new user message was read
    EXPECT_EQ(cached_tokens(r2_cold), 0);
    EXPECT_EQ(r2["choices"][0]["message"]["content"], r2_cold["choices"][0]["message"]["content"]);

    // Turn 2 again, streamed: the whole prompt comes from the cache (with its last logits), the reply is the same.
    Json again = turn2;
    again["stream"] = true;
    again["stream_options"] = {{"include_usage", true}};
    httplib::Client c("127.0.0.1", cached_->server->port());
    c.set_read_timeout(120, 0);
    auto streamed = c.Post("/v1/chat/completions", again.dump(), "application/json");
    ASSERT_TRUE(streamed);
    std::string text;
    Json usage;
    for (size_t pos = 0; (pos = streamed->body.find("data: ", pos)) != std::string::npos;) {
        const size_t end = streamed->body.find("\n\n", pos);
        const std::string payload = streamed->body.substr(pos + 6, end - pos - 6);
        pos = end;
        if (payload == "[DONE]") break;
        const Json chunk = Json::parse(payload);
        if (chunk.contains("usage") && !chunk["usage"].is_null()) usage = chunk["usage"];
        for (const Json& choice : chunk["choices"])
            if (choice["delta"].contains("content")) text += choice["delta"]["content"].get<std::string>();
    }
    EXPECT_EQ(text, r2_cold["choices"][0]["message"]["content"]);
    EXPECT_EQ(usage["prompt_tokens"], int64_t(ids2.size()));
    EXPECT_EQ(usage["prompt_tokens_details"]["cached_tokens"], int64_t(ids2.size()));

    // Anthropic counts the same hit as cache_read_input_tokens, apart from input_tokens.
    const Json m = cached_->post("/v1/messages", {{"messages", turn2["messages"]}, {"max_tokens", 4}});
    EXPECT_EQ(m["usage"]["cache_read_input_tokens"], int64_t(ids2.size()));
    EXPECT_EQ(m["usage"]["input_tokens"], 0);
    EXPECT_EQ(m["usage"]["cache_creation_input_tokens"], 0);

    // /metrics: four lookups, and the hits and reused tokens the four responses reported (published after the
    // engine's step, so it may lag the responses by a moment: wait until it shows nothing running).
    const int64_t reported = cached_tokens(r1) + cached_tokens(r2) + usage["prompt_tokens_details"]["cached_tokens"].get<int64_t>() +
                             m["usage"]["cache_read_input_tokens"].get<int64_t>();
    const int hits = (cached_tokens(r1) > 0) + (cached_tokens(r2) > 0) + 2;
    std::string after;
    for (auto end = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < end;) {
        after = cached_->metrics();
        if (sample(after, "halo_prefix_cache_lookups_total") >= lookups0 + 4 &&
            sample(after, "halo_running_sequences") == 0)
            break;
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(sample(after, "halo_prefix_cache_lookups_total"), lookups0 + 4) << after;
    EXPECT_EQ(sample(after, "halo_prefix_cache_hits_total"), hits0 + hits);
    EXPECT_EQ(sample(after, "halo_prefix_cache_tokens_reused_total"), reused0 + double(reported));
    const double snapshots = sample(after, "halo_prefix_cache_snapshots");
    EXPECT_GE(snapshots, 2);  // turn 1's and turn 2's prompt ends at least
    EXPECT_EQ(sample(after, "halo_prefix_cache_snapshot_bytes{memory=\"device\"}"),
              snapshots * double(cached_->model->snapshot_bytes()));
    EXPECT_GT(sample(after, "halo_prefix_cache_snapshot_bytes{memory=\"host\"}"), 0);
    EXPECT_GE(sample(after, "halo_prefix_cache_snapshots_taken_total"), snapshots);
    EXPECT_GT(sample(after, "halo_prefix_cache_pages"), 0);
    // Idle, every page the cache holds is one no request holds.
    EXPECT_EQ(sample(after, "halo_prefix_cache_pages_idle"), sample(after, "halo_prefix_cache_pages"));
    EXPECT_EQ(sample(after, "halo_prefix_cache_max_snapshots"), cached_->model->plan().layout.prefix_snapshots);
    EXPECT_EQ(sample(after, "halo_prefix_cache_evictions_total"), 0);
    for (const char* name : {"halo_prefix_cache_lookups_total", "halo_prefix_cache_snapshot_bytes"})
        EXPECT_NE(after.find(std::string("# TYPE ") + name), std::string::npos) << name;
}

TEST_F(PrefixCacheHttp, WithoutACacheMetricsHaveNoPrefixSeries) {
    const std::string m = cold_->metrics();
    ASSERT_NE(m.find("halo_prompt_tokens_total"), std::string::npos);
    EXPECT_EQ(m.find("halo_prefix_cache"), std::string::npos);
}

// One sequence of one 256-token page: the page a finished prompt shares with its snapshot cannot be copied (there is
// no other), so writing the first generated token must evict the snapshot and keep the page, not fail the request.
TEST(PrefixCacheHttpOnePage, TheOnlyPageIsTakenBackFromTheCache) {
    Served one(true, 256, 1);
    const Json request = {{"prompt", {1, 2, 3}}, {"max_tokens", 4}, {"temperature", 0}, {"ignore_eos", true}};
    const Json first = one.post("/v1/completions", request);
    const Json second = one.post("/v1/completions", request);
    ASSERT_FALSE(first.is_null());
    ASSERT_FALSE(second.is_null());
    EXPECT_EQ(second["choices"][0]["text"], first["choices"][0]["text"]);
    EXPECT_EQ(second["usage"]["completion_tokens"], 4);
}

}  // namespace
}  // namespace halo::server
