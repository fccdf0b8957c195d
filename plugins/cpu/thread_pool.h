// A fixed set of worker threads that run one parallel loop at a time. The calling thread takes part, so a pool of
// n threads starts n - 1 workers. Not reentrant: run() must not be called from inside a task.
//
// Work is handed out through one atomic ticket (loop generation << 32 | next index). The caller waits for the
// loop's tasks to finish, not for the workers to wake up: a worker that is descheduled when a loop starts simply
// misses it, so an oversubscribed machine slows a loop down but never stalls it.
//
// Idle threads poll briefly before they sleep, but only when every thread of the pool can have a CPU of its own
// (size() <= usable_cpu_count()): with more threads than CPUs, a polling thread would take the CPU from the very
// thread it waits for, so then they sleep at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace halo::cpu {

// CPUs this process may run on (its sched_getaffinity mask: taskset, cpusets of containers), at least 1.
int usable_cpu_count();

// A reference to a callable task(i, thread), not a copy: what ThreadPool::run takes, so that handing a lambda to a
// parallel loop allocates nothing (a std::function would allocate for captures beyond its small buffer, on every
// loop of a decode step). The callable must outlive the reference: a lambda passed to run() does.
class TaskRef {
public:
    template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, TaskRef>>>
    TaskRef(F&& f)  // NOLINT: implicit, so run(n, [&](int64_t i, int t) { ... }) reads as before
        : object_(const_cast<void*>(static_cast<const void*>(&f))),
          call_([](void* o, int64_t i, int thread) { (*static_cast<std::remove_reference_t<F>*>(o))(i, thread); }) {}
    void operator()(int64_t i, int thread) const { call_(object_, i, thread); }

private:
    void* object_;
    void (*call_)(void*, int64_t, int);
};

class ThreadPool {
public:
    // Throws std::runtime_error (a sentence) when the threads cannot be started; none is left running then.
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return int(workers_.size()) + 1; }
    // Whether idle threads poll before sleeping (decided once, when the pool starts).
    bool spins() const { return spin_polls_ > 0; }

    // Calls task(i, thread) for every i in [0, n), spread over the threads; thread is in [0, size()).
    // Returns when all calls are done. The first exception thrown by a task is rethrown here.
    void run(int64_t n, TaskRef task);

private:
    // One loop: which function, how many tasks. Two slots alternate by generation, so a worker that read the
    // ticket of an old loop can never see the descriptor being rewritten for the next one (see run()).
    struct Loop {
        std::atomic<const TaskRef*> task{nullptr};
        std::atomic<int64_t> n{0};
    };

    void worker_loop(int thread);
    void work(int thread);  // claims and runs tasks of the current loop until none is left
    void shutdown();

    int spin_polls_ = 0;  // polls of an idle thread before it sleeps; 0 when the pool outnumbers the CPUs
    std::vector<std::thread> workers_;
    Loop loops_[2];
    std::atomic<uint64_t> ticket_{0};      // generation << 32 | next task index
    std::atomic<int64_t> remaining_{0};    // tasks of the current loop not finished yet
    uint32_t generation_ = 0;              // caller thread only
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::exception_ptr error_;             // guarded by mutex_
};

}  // namespace halo::cpu
