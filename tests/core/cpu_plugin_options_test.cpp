// The CPU plugin's options: a thread count above the hardware threads is capped with a warning (thousands of
// threads made every parallel loop wake thousands of threads), a pool with more threads than the CPUs this process
// may use says so, and an HALO_CPU_ISA the plugin cannot honour stops it with a sentence listing the valid values.
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "core/plugin_loader.h"

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

}  // namespace

}  // namespace halo::test
