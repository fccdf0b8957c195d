// Scalar conversions, the sampler, the state pool and .npy round trips.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "core/npy.h"
#include "core/sampler.h"
#include "core/sequence.h"
#include "ops/dtype.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace halo::test {

using namespace halo::ops;

TEST(Dtype, F16RoundTripsEveryValue) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = f16_to_f32(uint16_t(h));
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
            continue;
        }
        EXPECT_EQ(f32_to_f16(f), uint16_t(h)) << h;
    }
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f) {
    return uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

TEST(Dtype, F16MatchesHardwareConversion) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C on this processor";
    uint64_t s = 1;
    for (int i = 0; i < 2000000; ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t bits = uint32_t(s >> 32);
        float f;
        std::memcpy(&f, &bits, 4);
        if (std::isnan(f)) continue;
        ASSERT_EQ(f32_to_f16(f), hw_f32_to_f16(f)) << f;
    }
    for (uint32_t h = 0; h < 65536; ++h) {
        const float a = f16_to_f32(uint16_t(h)), b = hw_f16_to_f32(uint16_t(h));
        if (std::isnan(a)) EXPECT_TRUE(std::isnan(b));
        else EXPECT_EQ(a, b) << h;
    }
}
#endif

TEST(Dtype, Bf16RoundsToNearestEven) {
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
    uint32_t bits = 0x3f808000;  // exactly halfway between 0x3f80 and 0x3f81: ties to even
    float f;
    std::memcpy(&f, &bits, 4);
    EXPECT_EQ(f32_to_bf16(f), 0x3f80);
    bits = 0x3f818000;  // halfway, odd below: rounds up
    std::memcpy(&f, &bits, 4);
    EXPECT_EQ(f32_to_bf16(f), 0x3f82);
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(INFINITY)), INFINITY);
}

TEST(Sampler, GreedyTakesLowestIdOnTies) {
    const float logits[] = {0.5f, 2.0f, -1.0f, 2.0f};
    Sampler s({});
    EXPECT_EQ(s.sample(logits, 4), 1);
}

TEST(Sampler, NonFiniteLogits) {
    const float nan_first[] = {NAN, 1.0f, 3.0f, NAN};
    EXPECT_EQ(argmax(nan_first, 4), 2);
    const float with_inf[] = {1.0f, INFINITY, 3.0f};
    SamplingParams p;
    p.temperature = 0.8;
    Sampler s(p);
    EXPECT_EQ(s.sample(with_inf, 3), 1);
    const float all_nan[] = {NAN, NAN};
    EXPECT_THROW(argmax(all_nan, 2), std::runtime_error);
}

TEST(Sampler, SeedReproducesAndFrequenciesFollowSoftmax) {
    const float logits[] = {1.0f, 2.0f, 0.0f, 1.5f};
    SamplingParams p;
    p.temperature = 0.7;
    p.seed = 42;
    Sampler a(p), b(p);
    std::map<int, int> counts;
    const int n = 40000;
    for (int i = 0; i < n; ++i) {
        const int x = a.sample(logits, 4);
        ASSERT_EQ(x, b.sample(logits, 4));
        ++counts[x];
    }
    double z = 0;
    for (float l : logits) z += std::exp(l / 0.7);
    for (int i = 0; i < 4; ++i) {
        const double want = std::exp(logits[i] / 0.7) / z;
        EXPECT_NEAR(double(counts[i]) / n, want, 0.01) << "token " << i;
    }
}

TEST(Sampler, TopKAndTopPRestrictTheSupport) {
    const float logits[] = {3.0f, 2.9f, 0.0f, -1.0f, 2.8f};
    SamplingParams p;
    p.temperature = 1.0;
    p.top_k = 2;
    Sampler k(p);
    for (int i = 0; i < 2000; ++i) {
        const int x = k.sample(logits, 5);
        EXPECT_TRUE(x == 0 || x == 1) << x;
    }
    p.top_k = 0;
    p.top_p = 0.5;  // token 0 alone has ~0.36, 0+1 ~0.69: the nucleus is {0, 1}
    Sampler t(p);
    for (int i = 0; i < 2000; ++i) {
        const int x = t.sample(logits, 5);
        EXPECT_TRUE(x == 0 || x == 1) << x;
    }
    p.temperature = -1;
    EXPECT_THROW(Sampler{p}, std::invalid_argument);
    for (double t : {std::nan(""), double(INFINITY)}) {  // NaN once slipped through and crashed the sampler
        p.temperature = t;
        EXPECT_THROW(Sampler{p}, std::invalid_argument) << t;
    }
    p.temperature = 1;
    p.top_p = std::nan("");
    EXPECT_THROW(Sampler{p}, std::invalid_argument);
}

TEST(StatePool, SlotsAndPagesAreReturnedAndLimitsAreSentences) {
    StatePool pool(2, 3, 16);
    Sequence a, b, c;
    pool.attach(a);
    pool.attach(b);
    EXPECT_THROW(pool.attach(c), CapacityError);
    pool.reserve(a, 33);  // 3 pages
    EXPECT_EQ(a.pages.size(), 3u);
    try {
        pool.reserve(b, 1);
        FAIL() << "reserve beyond the pages succeeded";
    } catch (const CapacityError& e) {
        EXPECT_NE(std::string(e.what()).find("context"), std::string::npos);
    }
    EXPECT_TRUE(b.pages.empty());  // nothing allocated on failure
    pool.detach(a);
    EXPECT_EQ(pool.free_pages(), 3);
    pool.attach(c);
    pool.reserve(b, 48);
    EXPECT_EQ(b.pages.size(), 3u);
}

TEST(Npy, WriteThenRead) {
    const auto path = std::filesystem::temp_directory_path() / "halo_npy_test.npy";
    std::vector<float> v = {1.5f, -2.0f, 3.25f, 0.0f, 1e-7f, 42.0f};
    write_npy_f32(path, v.data(), {2, 3});
    const NpyArray a = read_npy(path);
    EXPECT_EQ(a.dtype, "<f4");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a.as_floats(), v);
    std::filesystem::remove(path);
}

}  // namespace halo::test
