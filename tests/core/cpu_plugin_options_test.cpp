// The CPU plugin's options: a thread count above the hardware threads is capped with a warning (thousands of
// threads made every parallel loop wake thousands of threads), a pool with more threads than the CPUs this process
// may use says so, and an HALO_CPU_ISA the plugin cannot honour stops it with a sentence listing the valid values.
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "core/plugin_loader.h"
#include "ops/reference/host_buffer.h"
#include "ops/reference/quantize.h"
#include "ops/reference/reference.h"

namespace halo::test {

namespace {

// Sets an environment variable for the life of the object, then puts back what was there.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        ::setenv(name, value, 1);
    }
    ~ScopedEnv() {
        if (old_)
            ::setenv(name_, old_->c_str(), 1);
        else
            ::unsetenv(name_);
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

std::unique_ptr<LoadedBackend> cpu_backend(int threads) {
    ops::BackendOptions o;
    o.threads = threads;
    return load_backend("cpu", o);
}

// The thread count in the device name, "... (N threads, avx512 kernels)".
int threads_in_name(const std::string& name) {
    const size_t at = name.rfind(" threads, ");
    const size_t open = name.rfind('(', at);
    if (at == std::string::npos || open == std::string::npos) return -1;
    return std::stoi(name.substr(open + 1, at - open - 1));
}

bool has_note(const ops::DeviceInfo& d, const std::string& text) {
    return std::any_of(d.notes.begin(), d.notes.end(), [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

int hardware_threads() { return int(std::max(1u, std::thread::hardware_concurrency())); }

TEST(CpuPluginOptions, ThreadsAboveTheHardwareAreCappedWithAWarning) {
    ::testing::internal::CaptureStderr();
    auto b = cpu_backend(4096);
    const std::string err = ::testing::internal::GetCapturedStderr();
    const ops::DeviceInfo& d = b->backend().device();
    const int used = threads_in_name(d.name);
    EXPECT_GE(used, 1) << d.name;
    EXPECT_LE(used, hardware_threads()) << d.name;
    const std::string warning = "--threads 4096 exceeds the " + std::to_string(hardware_threads()) + " hardware thread";
    EXPECT_NE(err.find(warning), std::string::npos) << "stderr: " << err;
    EXPECT_NE(err.find("using " + std::to_string(used)), std::string::npos) << "stderr: " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one line: " << err;
    EXPECT_TRUE(has_note(d, warning)) << "`engine backends` shows the cap as a note";
}

TEST(CpuPluginOptions, ThreadsWithinTheHardwareAreKeptSilently) {
    ::testing::internal::CaptureStderr();
    auto b = cpu_backend(1);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    EXPECT_EQ(threads_in_name(b->backend().device().name), 1);
}

TEST(CpuPluginOptions, ANegativeThreadCountIsAnError) {
    try {
        cpu_backend(-3);
        FAIL() << "-3 threads accepted";
    } catch (const PluginError& e) {
        EXPECT_NE(std::string(e.what()).find("-3"), std::string::npos) << e.what();
    }
}

// More threads than the affinity mask allows (taskset, a container's cpuset): the pool is told so and its idle
// threads sleep instead of polling the one CPU the busy thread needs.
TEST(CpuPluginOptions, MoreThreadsThanUsableCpusIsNoted) {
    if (hardware_threads() < 2) GTEST_SKIP() << "needs 2 hardware threads to run 2 threads on 1 CPU";
    cpu_set_t saved, one;
    ASSERT_EQ(::sched_getaffinity(0, sizeof saved, &saved), 0);
    int first = 0;
    while (!CPU_ISSET(first, &saved)) ++first;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
    std::unique_ptr<LoadedBackend> b;
    std::string error;
    try {
        b = cpu_backend(2);
    } catch (const std::exception& e) {
        error = e.what();
    }
    ASSERT_EQ(::sched_setaffinity(0, sizeof saved, &saved), 0);
    ASSERT_TRUE(b) << error;
    const ops::DeviceInfo& d = b->backend().device();
    EXPECT_EQ(threads_in_name(d.name), 2) << "an explicit count within the hardware threads is kept";
    EXPECT_TRUE(has_note(d, "2 threads share the 1 CPU")) << "notes lack the oversubscription";
    EXPECT_TRUE(has_note(d, "sleep instead of polling"));
}

TEST(CpuPluginOptions, AnUnknownIsaIsAnErrorListingTheValidOnes) {
    ScopedEnv isa("HALO_CPU_ISA", "avx2");
    try {
        cpu_backend(1);
        FAIL() << "HALO_CPU_ISA=avx2 was ignored";
    } catch (const PluginError& e) {
        const std::string m = e.what();
        for (const char* word : {"HALO_CPU_ISA=avx2", "generic", "avx512", "unset"})
            EXPECT_NE(m.find(word), std::string::npos) << "'" << m << "' lacks '" << word << "'";
    }
    bool reported = false;
    for (const PluginReport& r : discover_plugins())
        if (r.name == "cpu") {
            reported = true;
            EXPECT_FALSE(r.usable);
            EXPECT_NE(r.reason.find("HALO_CPU_ISA=avx2"), std::string::npos) << r.reason;
        }
    EXPECT_TRUE(reported) << "`engine backends` shows why the CPU plugin cannot start";
}

TEST(CpuPluginOptions, ABatchInvarianceValueOtherThan0Or1IsAnError) {
    ScopedEnv inv("HALO_CPU_BATCH_INVARIANT", "yes");
    try {
        cpu_backend(1);
        FAIL() << "HALO_CPU_BATCH_INVARIANT=yes was ignored";
    } catch (const PluginError& e) {
        const std::string m = e.what();
        for (const char* word : {"HALO_CPU_BATCH_INVARIANT=yes", "0 or 1"})
            EXPECT_NE(m.find(word), std::string::npos) << "'" << m << "' lacks '" << word << "'";
    }
}

TEST(CpuPluginOptions, GenericIsaIsHonoured) {
    ScopedEnv isa("HALO_CPU_ISA", "generic");
    auto b = cpu_backend(1);
    EXPECT_NE(b->backend().device().name.find("generic kernels"), std::string::npos) << b->backend().device().name;
}

TEST(CpuPluginOptions, AQuantDotValueOtherThanExactOrInt8IsAnError) {
    ScopedEnv dot("HALO_CPU_QUANT_DOT", "fast");
    try {
        cpu_backend(1);
        FAIL() << "HALO_CPU_QUANT_DOT=fast was ignored";
    } catch (const PluginError& e) {
        const std::string m = e.what();
        for (const char* word : {"HALO_CPU_QUANT_DOT=fast", "exact", "int8"})
            EXPECT_NE(m.find(word), std::string::npos) << "'" << m << "' lacks '" << word << "'";
    }
}

// HALO_CPU_QUANT_DOT=int8 rounds activations to int8 per 32 inputs. With activations that are exactly int8 times a
// power of two per group (and each group's largest |x| = 127 steps), the rounding is exact, so the integer dot must
// give the reference's result to float rounding; with arbitrary activations it must stay within the rounding's
// bound, sum over k of |w| * scale_x / 2.
TEST(CpuPluginOptions, Int8QuantDotMatchesTheReference) {
    ScopedEnv dot("HALO_CPU_QUANT_DOT", "int8");
    std::unique_ptr<LoadedBackend> b;
    try {
        b = cpu_backend(2);
    } catch (const PluginError& e) {
        GTEST_SKIP() << e.what();  // no AVX512-VNNI here
    }
    ops::Backend& be = b->backend();
    const int64_t N = 37, K = 384;
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    for (ops::DType fmt : {ops::DType::q4, ops::DType::q8}) {
        for (bool representable : {true, false}) {
            for (int64_t M : {1, 3, 6}) {
                std::vector<float> w(size_t(N * K)), x(size_t(M * K));
                for (float& v : w) v = normal(rng);
                std::uniform_int_distribution<int> step(-127, 127);
                for (int64_t g = 0; g < M * K / 32; ++g) {
                    const float unit = std::ldexp(1.0f, int(g % 5) - 6);
                    for (int64_t j = 0; j < 32; ++j)
                        x[size_t(g * 32 + j)] = representable ? unit * float(j == 7 ? 127 : step(rng)) : normal(rng) * 20;
                }
                const uint64_t wb = uint64_t(N) * ops::row_bytes(fmt, K), sb = uint64_t(N * (K / 32)) * 2;
                std::vector<uint8_t> packed(wb), scales(sb);
                ref::quantize_rows(w.data(), ops::DType::f32, N, K, fmt, 32, ops::DType::bf16, packed.data(), scales.data());
                // Plugin side.
                ops::Buffer* wbuf = be.allocate(ops::MemoryUse::weights, 0, wb + sb);
                ops::Buffer* act = be.allocate(ops::MemoryUse::scratch, 0, uint64_t(M * (K + N)) * 4);
                be.write(wbuf, 0, packed.data(), wb);
                be.write(wbuf, wb, scales.data(), sb);
                be.write(act, 0, x.data(), uint64_t(M * K) * 4);
                ops::LinearParams p;
                p.x = ops::make_tensor(act, 0, ops::DType::f32, {M, K});
                p.y = ops::make_tensor(act, uint64_t(M * K) * 4, ops::DType::f32, {M, N});
                p.weight = ops::make_tensor(wbuf, 0, fmt, {N, K});
                p.weight.scale = {wbuf, wb, ops::DType::bf16, 32};
                be.linear(p);
                std::vector<float> got(size_t(M * N));
                be.read(act, uint64_t(M * K) * 4, got.data(), got.size() * 4);
                be.release(wbuf);
                be.release(act);
                // Reference side.
                ops::HostBuffer hw(ops::MemoryUse::weights, 0, wb + sb), hx(ops::MemoryUse::scratch, 0, uint64_t(M * (K + N)) * 4);
                std::memcpy(hw.host, packed.data(), wb);
                std::memcpy(static_cast<char*>(hw.host) + wb, scales.data(), sb);
                std::memcpy(hx.host, x.data(), uint64_t(M * K) * 4);
                ops::LinearParams r = p;
                r.x.buffer = r.y.buffer = &hx;
                r.weight.buffer = r.weight.scale.buffer = &hw;
                ref::linear(r);
                const float* want = reinterpret_cast<const float*>(static_cast<char*>(hx.host) + M * K * 4);
                for (int64_t m = 0; m < M; ++m)
                    for (int64_t n = 0; n < N; ++n) {
                        double bound = 0, mag = 0;
                        for (int64_t g = 0; g < K / 32; ++g) {
                            float amax = 0;
                            for (int64_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[size_t(m * K + g * 32 + j)]));
                            for (int64_t j = 0; j < 32; ++j) {
                                const double wv = ops::weight_at(r.weight, n, g * 32 + j);
                                bound += std::fabs(wv) * amax / 127.0 / 2.0;
                                mag += std::fabs(wv * x[size_t(m * K + g * 32 + j)]);
                            }
                        }
                        const double err = std::fabs(double(got[size_t(m * N + n)]) - double(want[m * N + n]));
                        const double tol = representable ? 1e-5 * mag + 1e-6 : bound * 1.01 + 1e-5 * mag;
                        EXPECT_LE(err, tol) << ops::dtype_name(fmt) << (representable ? " representable" : " arbitrary")
                                            << " x, M " << M << ", row " << m << ", output " << n;
                    }
            }
        }
    }
}

}  // namespace

}  // namespace halo::test
