#include "plugins/cpu/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>

namespace halo::cpu {

namespace {

// Polls before a thread sleeps: a decode step issues hundreds of short loops back to back, and waking a sleeping
// thread costs several microseconds each time.
constexpr int kSpinPolls = 4000;

inline void cpu_relax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

}  // namespace

int usable_cpu_count() {
    // The mask may be larger than the default cpu_set_t (more than 1024 CPUs): grow it until the kernel accepts it.
    for (int cpus = 1024; cpus <= (1 << 20); cpus *= 2) {
        cpu_set_t* set = CPU_ALLOC(size_t(cpus));
        if (!set) break;
        const size_t bytes = CPU_ALLOC_SIZE(size_t(cpus));
        CPU_ZERO_S(bytes, set);
        const int rc = sched_getaffinity(0, bytes, set);
        const int count = rc == 0 ? CPU_COUNT_S(bytes, set) : 0;
        CPU_FREE(set);
        if (rc == 0) return std::max(1, count);
        if (errno != EINVAL) break;
    }
    return int(std::max(1u, std::thread::hardware_concurrency()));
}

ThreadPool::ThreadPool(int threads) : spin_polls_(std::max(threads, 1) <= usable_cpu_count() ? kSpinPolls : 0) {
    try {
        for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
    } catch (const std::exception& e) {
        const size_t started = workers_.size();
        shutdown();
        throw std::runtime_error("cpu: could start only " + std::to_string(started + 1) + " of " + std::to_string(threads) +
                                 " threads (" + e.what() + "); lower --threads");
    }
}

ThreadPool::~ThreadPool() { shutdown(); }

void ThreadPool::shutdown() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_.store(true);
    }
    wake_.notify_all();
    for (auto& w : workers_)
        if (w.joinable()) w.join();
    workers_.clear();
}

void ThreadPool::work(int thread) {
    for (;;) {
        uint64_t t = ticket_.load(std::memory_order_acquire);
        const uint32_t gen = uint32_t(t >> 32);
        const int64_t i = int64_t(t & 0xffffffffu);
        const Loop& loop = loops_[gen & 1];
        const auto* task = loop.task.load(std::memory_order_acquire);
        const int64_t n = loop.n.load(std::memory_order_acquire);
        if (i >= n || !task) return;
        // Claim index i of loop `gen`. Success means the ticket still named this loop, so the descriptor read
        // above was this loop's (the caller rewrites a slot only two loops later).
        if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) continue;
        try {
            (*task)(i, thread);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
        }
        if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mutex_);
            done_.notify_one();
        }
    }
}

void ThreadPool::worker_loop(int thread) {
    uint64_t seen_gen = 0;
    for (;;) {
        auto fresh = [&] { return (ticket_.load(std::memory_order_acquire) >> 32) != seen_gen || stop_.load(); };
        for (int p = 0; p < spin_polls_ && !fresh(); ++p) cpu_relax();
        if (!fresh()) {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, fresh);
        }
        if (stop_.load()) return;
        seen_gen = ticket_.load(std::memory_order_acquire) >> 32;
        work(thread);
    }
}

void ThreadPool::run(int64_t n, TaskRef task) {
    if (n <= 0) return;
    if (workers_.empty() || n == 1) {
        for (int64_t i = 0; i < n; ++i) task(i, 0);
        return;
    }
    if (n > int64_t(0xffffffffu)) throw std::runtime_error("cpu: a parallel loop of more than 2^32 tasks");
    ++generation_;
    Loop& loop = loops_[generation_ & 1];
    loop.task.store(&task, std::memory_order_release);
    loop.n.store(n, std::memory_order_release);
    remaining_.store(n, std::memory_order_release);
    {
        std::lock_guard<std::mutex> lock(mutex_);  // pairs with the workers' wait predicate: no lost wake-up
        error_ = nullptr;
        ticket_.store(uint64_t(generation_) << 32, std::memory_order_release);
    }
    wake_.notify_all();
    work(0);
    for (int p = 0; p < spin_polls_ && remaining_.load(std::memory_order_acquire) != 0; ++p) cpu_relax();
    if (remaining_.load(std::memory_order_acquire) != 0) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
    }
    std::exception_ptr e;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        e = error_;
    }
    if (e) std::rethrow_exception(e);
}

}  // namespace halo::cpu
