// A decode step allocates nothing: not the model (its step's runs, ids, logit rows), not the CPU plugin (parallel
// loops, MoE and MLA bookkeeping). Counted by malloc itself: this test binary replaces malloc, calloc and realloc
// with counting versions that forward to glibc's, and the plugin's allocations (through libstdc++) reach them too.
// Under the sanitizers (which own malloc) it is not built with the counters and reports itself as not run.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <vector>

#include "core/model.h"
#include "tests/support/plugins.h"

#if defined(__SANITIZE_ADDRESS__)
#define HALO_COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HALO_COUNT_MALLOC 0
#endif
#endif
#ifndef HALO_COUNT_MALLOC
#define HALO_COUNT_MALLOC 1
#endif

namespace {
std::atomic<long> g_allocations{0};
}

#if HALO_COUNT_MALLOC
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* malloc(size_t n) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, n);
}
}
#endif

namespace halo::test {
namespace {

TEST(DecodeAllocations, ADecodeStepOnTheCpuPluginAllocatesNothing) {
#if !HALO_COUNT_MALLOC
    GTEST_SKIP() << "NOT RUN: the sanitizers replace malloc, so this build cannot count allocations";
#endif
    auto backend = load_plugin("cpu", 2);
    ModelOptions o;
    o.max_sequences = 4;
    o.max_context = 512;
    o.max_step_rows = 64;
    Model m(backend->backend(), HALO_DEMO_DIR, o);
    std::vector<Sequence> seqs(3);
    std::vector<int32_t> prompt(40);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t(7 + 13 * i);
    for (Sequence& s : seqs) {
        m.begin_sequence(s);
        m.prefill(s, prompt, false);
    }
    std::vector<int32_t> ids = {11, 12, 13};
    std::vector<StepItem> items;
    for (size_t i = 0; i < seqs.size(); ++i)
        items.push_back({&seqs[i], std::span<const int32_t>(&ids[i], 1), LogitRows::last});
    std::vector<float> logits;
    for (int warm = 0; warm < 3; ++warm) {  // vectors reach their sizes
        logits.clear();  // step() appends
        m.step(items, logits);
    }

    for (int batch : {3, 1}) {
        const std::span<const StepItem> step(items.data(), size_t(batch));
        const long before = g_allocations.load();
        for (int t = 0; t < 16; ++t) {
            logits.clear();
            m.step(step, logits);
        }
        EXPECT_EQ(g_allocations.load() - before, 0) << "allocations in 16 decode steps of " << batch << " sequences";
    }
    for (Sequence& s : seqs) m.end_sequence(s);
}

}  // namespace
}  // namespace halo::test
