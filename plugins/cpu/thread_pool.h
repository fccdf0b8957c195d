// A fixed set of worker threads that run one parallel loop at a time. The calling thread takes part, so a pool of
// n threads starts n - 1 workers. Not reentrant: run() must not be called from inside a task.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace halo::cpu {

class ThreadPool {
public:
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return int(workers_.size()) + 1; }

    // Calls task(i, thread) for every i in [0, n), spread over the threads; thread is in [0, size()).
    // Returns when all calls are done. The first exception thrown by a task is rethrown here.
    void run(int64_t n, const std::function<void(int64_t i, int thread)>& task);

private:
    void worker_loop(int thread);
    void drain(int thread);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    const std::function<void(int64_t, int)>* task_ = nullptr;
    int64_t n_ = 0;
    std::atomic<int64_t> next_{0};
    std::atomic<int> busy_{0};
    uint64_t generation_ = 0;
    bool stop_ = false;
    std::exception_ptr error_;
};

}  // namespace halo::cpu
