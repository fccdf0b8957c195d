// The continuous-batching scheduler on the demo model (CPU plugin): a request's greedy output is the same alone or
// batched with 15 others, prompts are read in chunks between the decode steps of running streams, stop ids and
// stop strings end the text where they should, cancellation and shutdown free every slot and page, and bad or
// oversized requests are refused without touching the others.
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "core/scheduler.h"
#include "tests/support/plugins.h"

namespace halo::test {
namespace {

using namespace std::chrono_literals;

struct Result {
    std::vector<int32_t> ids;
    std::string text;
    GenerationEvent last;
};

Result collect(GenerationStream& s) {
    Result r;
    GenerationEvent ev;
    while (s.next(ev, 60s)) {
        r.ids.insert(r.ids.end(), ev.ids.begin(), ev.ids.end());
        r.text += ev.text;
        if (ev.finished) {
            r.last = ev;
            break;
        }
    }
    return r;
}

class SchedulerTest : public ::testing::Test {
protected:
    void open(int32_t sequences, int64_t context, int32_t step_rows) {
        sched_.reset();
        model_.reset();
        if (!backend_) backend_ = load_plugin("cpu");
        ModelOptions o;
        o.max_sequences = sequences;
        o.max_context = context;
        o.max_step_rows = step_rows;
        o.page_size = 64;
        model_ = std::make_unique<Model>(backend_->backend(), HALO_DEMO_DIR, o);
        if (!tok_) tok_ = std::make_unique<tok::Tokenizer>(tok::Tokenizer::load(HALO_DEMO_DIR));
    }
    Scheduler& scheduler(SchedulerOptions so = {}) {
        sched_ = std::make_unique<Scheduler>(*model_, tok_.get(), so);
        return *sched_;
    }
    std::vector<int32_t> random_prompt(size_t n, uint32_t seed) {
        std::mt19937 rng(seed);
        std::uniform_int_distribution<int32_t> id(0, int32_t(tok_->vocab_size()) - 300);  // below the specials
        std::vector<int32_t> p(n);
        for (auto& x : p) x = id(rng);
        return p;
    }
    void expect_idle(Scheduler& s) {
        // The engine publishes its counters after each step; give it that step.
        for (int i = 0; i < 200 && (s.stats().running || s.stats().queued); ++i) std::this_thread::sleep_for(5ms);
        const SchedulerStats st = s.stats();
        EXPECT_EQ(st.running, 0);
        EXPECT_EQ(st.queued, 0);
        EXPECT_EQ(st.slots_used, 0);
        EXPECT_EQ(st.pages_used, 0);
        EXPECT_EQ(st.pages_booked, 0);
    }

    std::unique_ptr<LoadedBackend> backend_;
    std::unique_ptr<Model> model_;
    std::unique_ptr<tok::Tokenizer> tok_;
    std::unique_ptr<Scheduler> sched_;
};

GenerationRequest request(std::vector<int32_t> prompt, int32_t max_tokens) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    return r;
}

TEST_F(SchedulerTest, BatchedOutputEqualsAloneOutput) {
    open(16, 1024, 128);  // small steps: long prompts are read in several chunks, between other streams' tokens
    Scheduler& s = scheduler();
    std::vector<GenerationRequest> reqs;
    for (int i = 0; i < 16; ++i) {
        // Request 0 only reads its prompt (max_tokens 0): it asks for no logits row, and the rows of the requests
        // after it in the step must still be theirs.
        GenerationRequest r = request(random_prompt(size_t(1 + i * 37), uint32_t(i)), i == 0 ? 0 : 10 + i % 5);
        if (i % 4 == 3) {  // a few sampled ones: the seed alone decides their tokens
            r.sampling.temperature = 0.8;
            r.sampling.top_p = 0.9;
            r.sampling.seed = uint64_t(100 + i);
        }
        reqs.push_back(r);
    }
    std::vector<Result> alone;
    for (const auto& r : reqs) alone.push_back(collect(*s.submit(r)));
    expect_idle(s);

    std::vector<std::shared_ptr<GenerationStream>> streams;
    for (const auto& r : reqs) streams.push_back(s.submit(r));
    std::vector<Result> batched(streams.size());
    std::vector<std::thread> readers;
    for (size_t i = 0; i < streams.size(); ++i) readers.emplace_back([&, i] { batched[i] = collect(*streams[i]); });
    for (auto& t : readers) t.join();
    for (size_t i = 0; i < reqs.size(); ++i) {
        SCOPED_TRACE("request " + std::to_string(i));
        ASSERT_EQ(alone[i].ids.size(), size_t(reqs[i].max_tokens));
        EXPECT_EQ(batched[i].ids, alone[i].ids);
        EXPECT_EQ(batched[i].text, alone[i].text);
        EXPECT_EQ(batched[i].last.finish_reason, FinishReason::length);
        EXPECT_EQ(batched[i].last.completion_tokens, reqs[i].max_tokens);
        EXPECT_EQ(batched[i].last.prompt_tokens, int64_t(reqs[i].prompt.size()));
    }
    expect_idle(s);
    const SchedulerStats st = s.stats();
    EXPECT_EQ(st.finished[size_t(FinishReason::length)], 32u);
    EXPECT_EQ(st.time_to_first_token.count, 30u);  // request 0 generates nothing, alone or batched
}

TEST_F(SchedulerTest, LongPromptIsReadBetweenDecodeSteps) {
    open(2, 4096, 128);
    SchedulerOptions so;
    so.prefill_tokens_while_decoding = 64;
    Scheduler& s = scheduler(so);
    auto running = s.submit(request(random_prompt(8, 1), 200));
    GenerationEvent ev;
    ASSERT_TRUE(running->next(ev, 60s));  // it is decoding now
    const int64_t before = ev.completion_tokens;
    auto long_prompt = s.submit(request(random_prompt(2000, 2), 1));
    const Result r = collect(*long_prompt);
    ASSERT_EQ(r.ids.size(), 1u);
    // 2,000 prompt tokens at 64 per step: the running stream got a token in each of those ~31 steps.
    int64_t during = 0;
    while (running->next(ev, 0ms)) during = ev.completion_tokens;
    EXPECT_GE(during - before, 2000 / 64 - 1);
    running->cancel();
    collect(*running);
    expect_idle(s);
}

TEST_F(SchedulerTest, StopIdsAndStopStringsEndTheText) {
    open(4, 512, 128);
    Scheduler& s = scheduler();
    const std::vector<int32_t> prompt = tok_->encode("Once upon a time");
    const Result free_run = collect(*s.submit(request(prompt, 24)));
    ASSERT_EQ(free_run.ids.size(), 24u);

    GenerationRequest by_id = request(prompt, 24);
    by_id.stop_ids = {free_run.ids[5]};
    const Result r1 = collect(*s.submit(by_id));
    const size_t first = size_t(std::find(free_run.ids.begin(), free_run.ids.end(), free_run.ids[5]) - free_run.ids.begin());
    EXPECT_EQ(r1.ids, std::vector<int32_t>(free_run.ids.begin(), free_run.ids.begin() + long(first) + 1));
    EXPECT_EQ(r1.last.finish_reason, FinishReason::stop);
    EXPECT_EQ(r1.last.completion_tokens, int64_t(first + 1));

    // A stop string from the middle of the free run's text: the text ends right before its first occurrence.
    ASSERT_GE(free_run.text.size(), 12u);
    size_t cut = free_run.text.size() / 2;
    while (cut > 0 && (static_cast<unsigned char>(free_run.text[cut]) & 0xC0) == 0x80) --cut;  // a character start
    size_t end = cut + 3;
    while (end < free_run.text.size() && (static_cast<unsigned char>(free_run.text[end]) & 0xC0) == 0x80) ++end;
    const std::string stop = free_run.text.substr(cut, end - cut);
    GenerationRequest by_text = request(prompt, 24);
    by_text.stop_strings = {"never appears \x01", stop};
    const Result r2 = collect(*s.submit(by_text));
    EXPECT_EQ(r2.text, free_run.text.substr(0, free_run.text.find(stop)));
    EXPECT_EQ(r2.last.finish_reason, FinishReason::stop);
    EXPECT_EQ(r2.last.stop_string, stop);
    expect_idle(s);
}

TEST_F(SchedulerTest, ContextBoundsTheOutput) {
    open(2, 128, 64);
    Scheduler& s = scheduler();
    // Prompt longer than the context: refused, naming both lengths.
    try {
        s.submit(request(random_prompt(129, 3), 1));
        FAIL() << "a prompt longer than the context was accepted";
    } catch (const RequestError& e) {
        EXPECT_NE(std::string(e.what()).find("129"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("128"), std::string::npos) << e.what();
    }
    EXPECT_THROW(s.submit(request(random_prompt(4, 3), 129)), RequestError);  // max_tokens beyond the context
    EXPECT_THROW(s.submit(request(random_prompt(4, 3), -1)), RequestError);
    EXPECT_THROW(s.submit(request({}, 4)), RequestError);
    EXPECT_THROW(s.submit(request({1, int32_t(model_->config().vocab_size)}, 4)), RequestError);
    GenerationRequest bad_sampling = request({1, 2}, 4);
    bad_sampling.sampling.top_p = 0;
    try {
        s.submit(bad_sampling);
        FAIL();
    } catch (const RequestError& e) {
        EXPECT_EQ(e.param(), "top_p");
    }
    // Prompt + max_tokens past the context: the output stops when the cache is full.
    const Result r = collect(*s.submit(request(random_prompt(100, 4), 100)));
    EXPECT_EQ(r.last.finish_reason, FinishReason::length);
    EXPECT_EQ(r.ids.size(), 128u - 100u + 1u);  // the last token is sampled, never fed
    // A max_tokens = 0 request reads its prompt and ends.
    const Result zero = collect(*s.submit(request(random_prompt(10, 5), 0)));
    EXPECT_TRUE(zero.ids.empty());
    EXPECT_EQ(zero.last.finish_reason, FinishReason::length);
    expect_idle(s);
}

TEST_F(SchedulerTest, CancelledAndDroppedStreamsFreeTheirSlots) {
    open(2, 1024, 128);
    SchedulerOptions so;
    so.max_queue = 1;
    Scheduler& s = scheduler(so);
    auto a = s.submit(request(random_prompt(16, 1), 1000));
    auto b = s.submit(request(random_prompt(16, 2), 1000));
    auto c = s.submit(request(random_prompt(16, 3), 4));  // waits: both slots taken
    EXPECT_THROW(s.submit(request(random_prompt(16, 4), 4)), Overloaded);
    GenerationEvent ev;
    ASSERT_TRUE(a->next(ev, 60s));
    a->cancel();
    const Result ra = collect(*a);
    EXPECT_EQ(ra.last.finish_reason, FinishReason::cancelled);
    b.reset();  // a client that went away
    const Result rc = collect(*c);  // admitted once a slot is free
    EXPECT_EQ(rc.ids.size(), 4u);
    expect_idle(s);
    EXPECT_GE(s.stats().finished[size_t(FinishReason::cancelled)], 2u);
}

TEST_F(SchedulerTest, DrainCancelsWhatOutlivesTheGrace) {
    open(2, 1024, 128);
    Scheduler& s = scheduler();
    auto quick = s.submit(request(random_prompt(8, 1), 2));
    auto slow = s.submit(request(random_prompt(8, 2), 1000));
    GenerationEvent ev;
    ASSERT_TRUE(slow->next(ev, 60s));
    EXPECT_EQ(s.drain(100ms), 1);
    EXPECT_EQ(collect(*quick).last.finish_reason, FinishReason::length);
    EXPECT_EQ(collect(*slow).last.finish_reason, FinishReason::cancelled);
    EXPECT_THROW(s.submit(request(random_prompt(8, 3), 2)), Overloaded);
    expect_idle(s);
}

// The bits behind BatchedOutputEqualsAloneOutput: a sequence's decode logits are exactly the same alone and in a
// step with 15 other sequences' decode tokens and another sequence's 100-token prompt chunk (the CPU plugin sums
// each projection row and each attention split in an order that does not depend on the rest of the step).
TEST_F(SchedulerTest, DecodeLogitsDoNotDependOnTheBatch) {
    open(17, 1024, 512);
    Model& m = *model_;
    const int64_t V = m.config().vocab_size;
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < 16; ++i) prompts.push_back(random_prompt(size_t(20 + 53 * i), uint32_t(i)));
    const int kSteps = 4;
    auto decode_ids = [](int t) { return int32_t(100 + 7 * t); };
    std::vector<std::vector<float>> alone(16);  // [sequence][step * V]
    for (int i = 0; i < 16; ++i) {
        Sequence s;
        m.begin_sequence(s);
        m.prefill(s, prompts[size_t(i)], false);
        for (int t = 0; t < kSteps; ++t) {
            const int32_t id = decode_ids(t);
            StepItem it{&s, std::span<const int32_t>(&id, 1), LogitRows::last};
            m.step(std::span<const StepItem>(&it, 1), alone[size_t(i)]);
        }
        m.end_sequence(s);
    }
    std::vector<Sequence> seqs(16);
    for (int i = 0; i < 16; ++i) {
        m.begin_sequence(seqs[size_t(i)]);
        m.prefill(seqs[size_t(i)], prompts[size_t(i)], false);
    }
    Sequence other;
    m.begin_sequence(other);
    const std::vector<int32_t> chunk = random_prompt(100, 99);
    for (int t = 0; t < kSteps; ++t) {
        const int32_t id = decode_ids(t);
        std::vector<StepItem> items;
        for (int i = 0; i < 16; ++i) {
            items.push_back({&seqs[size_t(i)], std::span<const int32_t>(&id, 1), LogitRows::last});
            if (i == 7) items.push_back({&other, chunk, LogitRows::none});
        }
        std::vector<float> logits;
        m.step(items, logits);
        ASSERT_EQ(logits.size(), size_t(16 * V));
        for (int i = 0; i < 16; ++i) {
            SCOPED_TRACE("sequence " + std::to_string(i) + ", step " + std::to_string(t));
            const float* a = alone[size_t(i)].data() + t * V;
            const float* b = logits.data() + i * V;
            int64_t differ = 0;
            for (int64_t v = 0; v < V; ++v) differ += a[v] != b[v];
            EXPECT_EQ(differ, 0);
        }
    }
}

TEST_F(SchedulerTest, WarmUpCountsThePluginsTemporariesInThePlan) {
    backend_ = load_plugin("cpu");
    ModelOptions o;
    o.max_sequences = 4;
    o.max_context = 512;
    o.max_step_rows = 256;
    o.warm_up = true;
    Model m(backend_->backend(), HALO_DEMO_DIR, o);
    const uint64_t after_warm_up = backend_->backend().internal_bytes();
    EXPECT_GT(m.plan().plugin_bytes, 0u);
    EXPECT_EQ(m.plan().plugin_bytes, after_warm_up);
    EXPECT_NE(m.plan().describe(backend_->backend().device()).find("plugin temporaries"), std::string::npos);
    // Full steps, prompt and batched decode, need nothing more than the warm-up step took.
    Scheduler s(m, nullptr);
    std::vector<std::shared_ptr<GenerationStream>> streams;
    for (int i = 0; i < 4; ++i) streams.push_back(s.submit(request(std::vector<int32_t>(size_t(200 + i), 7), 8)));
    for (auto& st : streams) EXPECT_EQ(collect(*st).ids.size(), 8u);
    EXPECT_LE(backend_->backend().internal_bytes(), after_warm_up);
}

}  // namespace
}  // namespace halo::test
