// Prefix reuse on the demo model: a request that starts with a cached prefix resumes from the longest snapshot and
// reads only the rest, with the same greedy output as a cold run on every plugin: after a whole turn (the agent's
// next message), from a stride snapshot when the prompt diverges in the middle of a block, from a prompt-end
// snapshot in the middle of an MLA page (copy-on-write of the shared page, two requests at once), and the same
// prompt again (no step at all). A resume from a stride snapshot gives bit-for-bit the cold logits. The snapshot
// budget is kept by evicting the least recently used entry, pages held by the cache go back to running requests,
// and a saved cache loads into a fresh model (and is refused, by name, for another one).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <unistd.h>

#include <gtest/gtest.h>

#include "core/prefix_cache.h"
#include "core/scheduler.h"
#include "tests/support/plugins.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Result {
    std::vector<int32_t> ids;
    GenerationEvent last;
    int64_t cached = -1;  // cached_tokens of the first event
};

Result collect(GenerationStream& s) {
    Result r;
    GenerationEvent ev;
    while (s.next(ev, 120s)) {
        if (r.cached < 0) r.cached = ev.cached_tokens;
        r.ids.insert(r.ids.end(), ev.ids.begin(), ev.ids.end());
        if (ev.finished) {
            r.last = ev;
            break;
        }
    }
    return r;
}

GenerationRequest request(std::vector<int32_t> prompt, int32_t max_tokens) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    return r;
}

// Below the demo model's special tokens (and within the tiny model's vocabulary when max_id says so).
std::vector<int32_t> random_ids(size_t n, uint32_t seed, int32_t max_id = 3900) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> id(0, max_id);
    std::vector<int32_t> p(n);
    for (auto& x : p) x = id(rng);
    return p;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

std::vector<int32_t> head(const std::vector<int32_t>& a, size_t n) { return {a.begin(), a.begin() + std::ptrdiff_t(n)}; }

constexpr int64_t kStride = 128;
constexpr int32_t kPage = 64;

class PrefixReuse : public ::testing::Test {
protected:
    void open(int32_t sequences, int64_t context, int32_t snapshots) {
        sched_.reset();
        cache_.reset();
        model_.reset();
        if (!backend_) backend_ = load_plugin("cpu");
        ModelOptions o;
        o.max_sequences = sequences;
        o.max_context = context;
        o.max_step_rows = 128;
        o.page_size = kPage;
        model_ = std::make_unique<Model>(backend_->backend(), HALO_DEMO_DIR, o);
        o.prefix_cache_bytes = uint64_t(snapshots) * model_->plan().layout.prefix_snapshot_bytes();
        model_.reset();
        model_ = std::make_unique<Model>(backend_->backend(), HALO_DEMO_DIR, o);
        ASSERT_EQ(model_->plan().layout.prefix_snapshots, snapshots);
    }
    // A scheduler with the prefix cache (or without: cold runs on the same model).
    Scheduler& scheduler(bool with_cache) {
        sched_.reset();
        if (with_cache && !cache_)
            cache_ = std::make_unique<PrefixCache>(
                *model_, PrefixCacheOptions{model_->plan().layout.prefix_snapshots, kStride});
        SchedulerOptions so;
        so.prefix_cache = with_cache ? cache_.get() : nullptr;
        sched_ = std::make_unique<Scheduler>(*model_, nullptr, so);
        return *sched_;
    }
    Result run(Scheduler& s, const std::vector<int32_t>& prompt, int32_t max_tokens) {
        return collect(*s.submit(request(prompt, max_tokens)));
    }
    void wait_idle(Scheduler& s) {
        for (int i = 0; i < 400 && (s.stats().running || s.stats().queued); ++i) std::this_thread::sleep_for(5ms);
    }

    std::unique_ptr<LoadedBackend> backend_;
    std::unique_ptr<Model> model_;
    std::unique_ptr<PrefixCache> cache_;
    std::unique_ptr<Scheduler> sched_;
};

TEST_F(PrefixReuse, ResumedRequestsEqualColdRuns) {
    open(3, 1024, 32);
    const int32_t kReply = 12;
    const std::vector<int32_t> p1 = random_ids(300, 1);  // ends at token 300: 44 tokens into page 4
    // Turn 1 cold, to build the next prompts from its reply.
    Scheduler& cold = scheduler(false);
    const Result c1 = run(cold, p1, kReply);
    ASSERT_EQ(c1.ids.size(), size_t(kReply));
    // The agent's next turn: the conversation so far, the reply, a new message.
    const std::vector<int32_t> p2 = concat(concat(p1, c1.ids), random_ids(50, 2));
    // Shares 200 tokens with turn 1, then diverges: in the middle of the second 128-token block.
    const std::vector<int32_t> p3 = concat(head(p1, 200), random_ids(40, 3));
    // Shares turn 1's whole prompt, then diverges from its reply: in the middle of page 4.
    const std::vector<int32_t> p4 = concat(p1, random_ids(20, 4));
    const std::vector<int32_t> p4b = concat(p1, random_ids(33, 5));
    std::vector<Result> want;
    for (const auto* p : {&p2, &p3, &p4, &p4b}) want.push_back(run(cold, *p, kReply));
    const Result want_same = c1;

    Scheduler& s = scheduler(true);
    const Result r1 = run(s, p1, kReply);
    EXPECT_EQ(r1.ids, c1.ids);
    EXPECT_EQ(r1.cached, 0);
    wait_idle(s);
    // Snapshots at 128 and 256 (stride), 300 (prompt end) and 311 (turn end: the last reply token is not read).
    PrefixCacheStats st = s.stats().prefix;
    EXPECT_EQ(st.snapshots, 4);
    EXPECT_EQ(st.lookups, 1u);
    EXPECT_EQ(st.hits, 0u);

    const Result r2 = run(s, p2, kReply);
    EXPECT_EQ(r2.cached, int64_t(p1.size()) + kReply - 1) << "turn 2 resumes from turn 1's end";
    EXPECT_EQ(r2.ids, want[0].ids);
    EXPECT_EQ(r2.last.prompt_tokens, int64_t(p2.size()));

    const Result r3 = run(s, p3, kReply);
    EXPECT_EQ(r3.cached, kStride) << "the longest snapshot within the shared 200 tokens";
    EXPECT_EQ(r3.ids, want[1].ids);

    // Two requests at once, both resumed from turn 1's prompt end: each copies the shared page 4 before writing.
    auto s4 = s.submit(request(p4, kReply));
    auto s4b = s.submit(request(p4b, kReply));
    const Result r4 = collect(*s4), r4b = collect(*s4b);
    EXPECT_EQ(r4.cached, int64_t(p1.size()));
    EXPECT_EQ(r4b.cached, int64_t(p1.size()));
    EXPECT_EQ(r4.ids, want[2].ids);
    EXPECT_EQ(r4b.ids, want[3].ids);

    // The same prompt again: the prompt-end snapshot kept its logits, so the first token needs no step.
    const Result r5 = run(s, p1, kReply);
    EXPECT_EQ(r5.cached, int64_t(p1.size()));
    EXPECT_EQ(r5.ids, want_same.ids);
    // ... and with max_tokens 0 nothing is read at all.
    const Result r6 = run(s, p1, 0);
    EXPECT_EQ(r6.cached, int64_t(p1.size()));
    EXPECT_TRUE(r6.ids.empty());
    EXPECT_EQ(r6.last.finish_reason, FinishReason::length);

    wait_idle(s);
    st = s.stats().prefix;
    EXPECT_EQ(st.lookups, 7u);
    EXPECT_EQ(st.hits, 6u);
    EXPECT_EQ(st.tokens_reused, uint64_t(r2.cached + r3.cached + r4.cached + r4b.cached + r5.cached + r6.cached));
    EXPECT_EQ(st.evictions, 0u);
    EXPECT_EQ(st.snapshot_bytes, uint64_t(st.snapshots) * model_->snapshot_bytes());
    // Idle, no sequence holds a page; the pages in use are the cache's, free for requests that need them.
    const SchedulerStats ss = s.stats();
    EXPECT_EQ(ss.pages_used, 0);
    EXPECT_EQ(st.pages_idle, st.pages);
    EXPECT_EQ(model_->pool().total_pages() - model_->pool().free_pages(), st.pages);
    EXPECT_EQ(ss.slots_used, 0);
    // The cache's pages cover its longest entries and nothing else: dropping it frees them all.
    sched_.reset();
    cache_.reset();
    EXPECT_EQ(model_->pool().free_pages(), model_->pool().total_pages());
}


// ---- the model level: logits of a resumed sequence ------------------------------------------------------------

struct ModelFixture {
    void load(const std::string& plugin, const fs::path& dir = HALO_DEMO_DIR) {
        model_.reset();
        backend_ = load_plugin(plugin);
        ModelOptions o;
        o.max_sequences = 3;
        o.max_context = 512;
        o.max_step_rows = 128;
        o.page_size = kPage;
        o.prefix_cache_bytes = uint64_t(1) << 30;
        model_ = std::make_unique<Model>(backend_->backend(), dir, o);
    }
    std::vector<int32_t> ids(size_t n, uint32_t seed) const {
        return random_ids(n, seed, int32_t(std::min<int64_t>(3900, model_->config().vocab_size - 1)));
    }
    // Reads `tokens` into a fresh sequence in 128-token chunks from its start and returns the last logits.
    std::vector<float> cold(const std::vector<int32_t>& tokens) {
        Sequence s;
        model_->begin_sequence(s);
        std::vector<float> logits = model_->prefill(s, tokens, false);
        model_->end_sequence(s);
        return logits;
    }
    std::unique_ptr<LoadedBackend> backend_;
    std::unique_ptr<Model> model_;
};

// Largest |a - b| and largest |a|.
std::pair<float, float> difference(const std::vector<float>& a, const std::vector<float>& b) {
    float diff = 0, scale = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        diff = std::max(diff, std::fabs(a[i] - b[i]));
        scale = std::max(scale, std::fabs(a[i]));
    }
    return {diff, scale};
}

int64_t argmax(const std::vector<float>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); }

class PrefixCacheModel : public ::testing::Test, public ModelFixture {
protected:
    void SetUp() override { load("cpu"); }
};

// On every plugin, with the tiny golden model (lavapipe is slow).
class PrefixCacheOnPlugin : public ::testing::TestWithParam<std::string>, public ModelFixture {
protected:
    void SetUp() override { load(GetParam(), fs::path(golden_dir()) / "tiny"); }
};

TEST_P(PrefixCacheOnPlugin, StrideResumeIsBitExactAndOtherResumesAgreeToRounding) {
    PrefixCache cache(*model_, {16, kStride});
    // b shares 280 tokens with a: its prefix ends in the middle of the third 128-token block.
    const std::vector<int32_t> a = ids(300, 11), b = concat(head(a, 280), ids(70, 12));
    // Sequence A reads 256 tokens (a snapshot there, on the chunk grid), then the rest of its prompt (a snapshot at
    // its end, 300: off the grid).
    Sequence s;
    model_->begin_sequence(s);
    model_->prefill(s, std::span<const int32_t>(a).first(256), false);
    cache.save(s, std::span<const int32_t>(a).first(256));
    const std::vector<float> end_logits = model_->prefill(s, std::span<const int32_t>(a).subspan(256), false);
    cache.save(s, a, end_logits);
    model_->end_sequence(s);

    // B resumes from the 256-token snapshot, the last before its prefix ends: its chunks then fall where a cold run's
    // do, and every logit is the same bits.
    const std::vector<float> want_b = cold(b);
    Sequence t;
    model_->begin_sequence(t);
    ASSERT_EQ(cache.resume(t, b, true, nullptr), 256);
    const std::vector<float> got_b = model_->prefill(t, std::span<const int32_t>(b).subspan(256), false);
    model_->end_sequence(t);
    ASSERT_EQ(got_b.size(), want_b.size());
    EXPECT_EQ(got_b, want_b);

    // C extends A's whole prompt: resumed at 300, its first chunk starts off the grid, so its logits agree with the
    // cold ones to float32 rounding (the model's own error against float64 goldens is of this order), not bit for bit.
    const std::vector<int32_t> c = concat(a, ids(70, 13));
    const std::vector<float> want_c = cold(c);
    Sequence u;
    model_->begin_sequence(u);
    ASSERT_EQ(cache.resume(u, c, true, nullptr), 300);
    const std::vector<float> got_c = model_->prefill(u, std::span<const int32_t>(c).subspan(300), false);
    model_->end_sequence(u);
    const auto [diff, scale] = difference(got_c, want_c);
    EXPECT_LT(diff, 1e-5f * scale) << "max |logit| " << scale;
    EXPECT_EQ(argmax(got_c), argmax(want_c));

    // The whole of A again: its kept logits, the same bits as the cold run's.
    std::vector<float> kept;
    Sequence v;
    model_->begin_sequence(v);
    ASSERT_EQ(cache.resume(v, a, true, &kept), 300);
    model_->end_sequence(v);
    EXPECT_EQ(kept, cold(a));
    // Without the logits the whole prompt is not usable: one token must be read.
    Sequence w;
    model_->begin_sequence(w);
    EXPECT_EQ(cache.resume(w, head(a, 256), true, nullptr), 0) << "the 256-token entry kept no logits";
    model_->end_sequence(w);
}

// Three sequences write past a prefix that ends 44 tokens into an MLA page: the one that read it and two resumed
// from its snapshot, in the same steps. Each copies the shared page before writing its own tokens into it, so every
// one reads back only its own tokens: greedy tokens and logits as cold runs give.
TEST_P(PrefixCacheOnPlugin, SequencesThatDivergeInsideASharedPageCopyIt) {
    PrefixCache cache(*model_, {16, 0});
    const std::vector<int32_t> p = ids(300, 70);
    const std::vector<std::vector<int32_t>> tails = {ids(5, 71), ids(30, 72), ids(9, 73)};
    std::vector<std::vector<float>> want;
    for (const auto& t : tails) want.push_back(cold(concat(p, t)));
    std::vector<Sequence> seqs(3);
    model_->begin_sequence(seqs[0]);
    const std::vector<float> end_logits = model_->prefill(seqs[0], p, false);
    cache.save(seqs[0], p, end_logits);
    for (int i = 1; i < 3; ++i) {
        model_->begin_sequence(seqs[size_t(i)]);
        ASSERT_EQ(cache.resume(seqs[size_t(i)], concat(p, tails[size_t(i)]), true, nullptr), 300);
        EXPECT_EQ(seqs[size_t(i)].pages, seqs[0].pages) << "resumed sequences start on the cached pages";
    }
    const int32_t shared = seqs[0].pages[4];
    EXPECT_EQ(model_->pool().references(shared), 4);  // three sequences and the cache
    EXPECT_EQ(cache.stats().pages, 5);
    EXPECT_EQ(cache.stats().pages_idle, 0);
    std::vector<StepItem> items;
    for (int i = 0; i < 3; ++i) items.push_back({&seqs[size_t(i)], tails[size_t(i)], LogitRows::last});
    std::vector<float> logits;
    model_->step(items, logits);
    for (int i = 0; i < 3; ++i) EXPECT_NE(seqs[size_t(i)].pages[4], shared) << "sequence " << i << " copied page 4";
    EXPECT_EQ(model_->pool().references(shared), 1);  // the cache's, unchanged for the next resume
    EXPECT_EQ(seqs[0].pages[3], seqs[1].pages[3]) << "full pages before the divergence stay shared";
    const int64_t V = model_->config().vocab_size;
    for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE("sequence " + std::to_string(i));
        const std::vector<float> got(logits.begin() + i * V, logits.begin() + (i + 1) * V);
        const auto [diff, scale] = difference(got, want[size_t(i)]);
        EXPECT_LT(diff, 1e-5f * scale) << "max |logit| " << scale;
        EXPECT_EQ(argmax(got), argmax(want[size_t(i)]));
    }
    for (auto& s : seqs) model_->end_sequence(s);
}

INSTANTIATE_TEST_SUITE_P(Plugins, PrefixCacheOnPlugin, ::testing::ValuesIn(plugins_under_test()),
                         [](const auto& info) { return info.param; });

TEST_F(PrefixCacheModel, TheBudgetEvictsTheLeastRecentlyUsed) {
    PrefixCache cache(*model_, {3, 0});
    std::vector<std::vector<int32_t>> prompts;
    for (uint32_t i = 0; i < 5; ++i) prompts.push_back(random_ids(70, 20 + i));
    auto remember = [&](const std::vector<int32_t>& p) {
        Sequence s;
        model_->begin_sequence(s);
        model_->prefill(s, p, false);
        cache.save(s, p);
        model_->end_sequence(s);
    };
    auto hit = [&](const std::vector<int32_t>& p) {
        Sequence s;
        model_->begin_sequence(s);
        const int64_t n = cache.resume(s, concat(p, {7}), true, nullptr);
        model_->end_sequence(s);
        return n;
    };
    remember(prompts[0]);
    remember(prompts[1]);
    remember(prompts[2]);
    EXPECT_EQ(hit(prompts[0]), 70);  // 0 is now the most recently used
    remember(prompts[3]);            // evicts 1
    remember(prompts[4]);            // evicts 2
    const PrefixCacheStats st = cache.stats();
    EXPECT_EQ(st.snapshots, 3);
    EXPECT_EQ(st.evictions, 2u);
    EXPECT_EQ(st.snapshot_bytes, 3 * model_->snapshot_bytes());
    EXPECT_EQ(hit(prompts[0]), 70);
    EXPECT_EQ(hit(prompts[1]), 0);
    EXPECT_EQ(hit(prompts[2]), 0);
    EXPECT_EQ(hit(prompts[3]), 70);
    EXPECT_EQ(hit(prompts[4]), 70);
    // Each entry holds its two pages.
    EXPECT_EQ(st.pages, 6);
    EXPECT_EQ(model_->pool().free_pages(), model_->pool().total_pages() - 6);
}

TEST_F(PrefixCacheModel, PagesTheCacheHoldsGoBackToRunningSequences) {
    PrefixCache cache(*model_, {16, 0});
    const int32_t total = model_->pool().total_pages();  // 3 sequences x 512 tokens = 24 pages of 64
    ASSERT_EQ(total, 24);
    // Fill the pool with the cache's pages: 6 distinct prompts of 200 tokens (4 pages each).
    for (uint32_t i = 0; i < 6; ++i) {
        const std::vector<int32_t> p = random_ids(200, 40 + i);
        Sequence s;
        model_->begin_sequence(s);
        model_->prefill(s, p, false);
        cache.save(s, p);
        model_->end_sequence(s);
    }
    EXPECT_EQ(model_->pool().free_pages(), 0);
    EXPECT_EQ(cache.stats().pages, total);
    // Three sequences of the full context need every page: the cache gives its pages back, oldest entries first,
    // and the sequences compute what they would have computed with an empty pool.
    std::vector<std::vector<int32_t>> prompts;
    for (uint32_t i = 0; i < 3; ++i) prompts.push_back(random_ids(512, 50 + i));
    std::vector<Sequence> seqs(3);
    std::vector<std::vector<float>> got(3);
    for (int i = 0; i < 3; ++i) {
        model_->begin_sequence(seqs[size_t(i)]);
        got[size_t(i)] = model_->prefill(seqs[size_t(i)], prompts[size_t(i)], false);
        EXPECT_EQ(cache.stats().evictions, uint64_t(2 * (i + 1))) << "two 4-page entries per 8-page sequence";
    }
    EXPECT_EQ(cache.stats().snapshots, 0);
    EXPECT_EQ(model_->pool().free_pages(), 0);
    for (auto& s : seqs) model_->end_sequence(s);
    EXPECT_EQ(model_->pool().free_pages(), total);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(got[size_t(i)], cold(prompts[size_t(i)])) << "sequence " << i;
}

TEST_F(PrefixCacheModel, SavedCacheLoadsIntoAFreshModelAndIsRefusedForAnother) {
    const fs::path dir = fs::temp_directory_path() / ("halo_prefix_cache_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    const CacheFingerprint print = {{"engine", "test 1"}, {"model", "demo"}};
    const std::vector<int32_t> a = random_ids(300, 60), b = random_ids(150, 61);
    const std::vector<int32_t> a_next = concat(a, random_ids(30, 62));
    const std::vector<float> want = cold(a_next);
    {
        PrefixCache cache(*model_, {16, kStride});
        for (const auto* p : {&a, &b}) {
            Sequence s;
            model_->begin_sequence(s);
            model_->prefill(s, std::span<const int32_t>(*p).first(128), false);
            cache.save(s, std::span<const int32_t>(*p).first(128));
            const std::vector<float> l = model_->prefill(s, std::span<const int32_t>(*p).subspan(128), false);
            cache.save(s, *p, l);
            model_->end_sequence(s);
        }
        const PrefixCache::SaveResult r = cache.save_to(dir, print);
        EXPECT_EQ(r.entries, 4);
        EXPECT_EQ(r.pages, 5 + 3);  // a: 5 pages (its 128-token entry shares the first 2), b: 3
        EXPECT_TRUE(fs::exists(dir / "manifest.json"));
        EXPECT_EQ(fs::file_size(dir / "prefix-cache.bin"), r.bytes);
    }
    EXPECT_EQ(model_->pool().free_pages(), model_->pool().total_pages());
    // A fresh model: load, resume, same logits as cold to rounding, and the same greedy token.
    load("cpu");
    {
        PrefixCache cache(*model_, {16, kStride});
        EXPECT_EQ(cache.load_from(dir, print), 4);
        EXPECT_EQ(cache.stats().pages, 8);
        Sequence s;
        model_->begin_sequence(s);
        ASSERT_EQ(cache.resume(s, a_next, true, nullptr), 300);
        const std::vector<float> got = model_->prefill(s, std::span<const int32_t>(a_next).subspan(300), false);
        model_->end_sequence(s);
        ASSERT_EQ(got.size(), want.size());
        EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(),
                  std::max_element(want.begin(), want.end()) - want.begin());
        float diff = 0;
        for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::fabs(got[i] - want[i]));
        EXPECT_LT(diff, 1e-4f);
        // The whole of b with its kept logits.
        std::vector<float> kept;
        Sequence t;
        model_->begin_sequence(t);
        EXPECT_EQ(cache.resume(t, b, true, &kept), 150);
        model_->end_sequence(t);
        EXPECT_EQ(kept, cold(b));
    }
    // A model with a shorter context skips the entries longer than it and keeps the rest.
    {
        ModelOptions o = model_->options();
        o.max_context = 256;
        Model shorter(backend_->backend(), HALO_DEMO_DIR, o);
        PrefixCache cache(shorter, {16, kStride});
        EXPECT_EQ(cache.load_from(dir, print), 3);  // a's 300-token entry does not fit
        EXPECT_EQ(cache.stats().pages, 2 + 3);
    }
    // Another model (or engine): refused, naming what differs; nothing is loaded.
    {
        PrefixCache cache(*model_, {16, kStride});
        try {
            cache.load_from(dir, {{"engine", "test 1"}, {"model", "another"}});
            ADD_FAILURE() << "a cache of another model was loaded";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find("stale: it was written for model 'demo', and this server has model "
                                                 "'another'"),
                      std::string::npos)
                << e.what();
        }
        EXPECT_EQ(cache.stats().snapshots, 0);
    }
    // A damaged file: refused; every page it took is free again.
    fs::resize_file(dir / "prefix-cache.bin", fs::file_size(dir / "prefix-cache.bin") - 100);
    {
        PrefixCache cache(*model_, {16, kStride});
        EXPECT_THROW(cache.load_from(dir, print), std::runtime_error);
        EXPECT_EQ(cache.stats().snapshots, 0);
    }
    EXPECT_EQ(model_->pool().free_pages(), model_->pool().total_pages());
    // No cache in the folder: nothing loaded, no error.
    fs::remove_all(dir);
    PrefixCache empty(*model_, {16, kStride});
    EXPECT_EQ(empty.load_from(dir, print), 0);
}

TEST(StatePool, SharedPagesAreCountedAndReclaimed) {
    StatePool pool(2, 4, 16);
    Sequence a, b;
    pool.attach(a);
    pool.attach(b);
    pool.reserve(a, 40);  // 3 pages
    EXPECT_EQ(pool.free_pages(), 1);
    // b shares a's first two pages, as a resumed sequence does.
    pool.retain(std::span<const int32_t>(a.pages).first(2));
    b.pages.assign(a.pages.begin(), a.pages.begin() + 2);
    EXPECT_TRUE(pool.shared(a.pages[0]));
    EXPECT_FALSE(pool.shared(a.pages[2]));
    pool.detach(a);
    EXPECT_EQ(pool.free_pages(), 2);  // a's third page; the shared two stay with b
    EXPECT_FALSE(pool.shared(b.pages[0]));
    // Out of pages: the reclaimer is asked, and a failing one ends in a sentence.
    std::vector<int32_t> held = {pool.take_page(), pool.take_page()};
    int asked = 0;
    pool.set_reclaimer([&] {
        ++asked;
        if (held.empty()) return false;
        pool.release(std::span<const int32_t>(&held.back(), 1));
        held.pop_back();
        return true;
    });
    pool.reserve(b, 64);  // 2 more pages: both from the reclaimer
    EXPECT_EQ(asked, 2);
    EXPECT_EQ(b.pages.size(), 4u);
    try {
        pool.take_page();
        ADD_FAILURE() << "a page beyond the pool";
    } catch (const CapacityError& e) {
        EXPECT_NE(std::string(e.what()).find("no free page"), std::string::npos) << e.what();
    }
    EXPECT_THROW(pool.release(std::vector<int32_t>{3, 3, 3, 3, 3}), std::logic_error);
}

}  // namespace
}  // namespace halo::test
