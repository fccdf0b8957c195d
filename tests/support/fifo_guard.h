// A FIFO standing where a file should be, for tests that a loader refuses it instead of blocking in open().
// If the code under test is still inside the call after a few seconds, the guard keeps opening the FIFO for writing,
// which releases a reader blocked in open(), and records that it had to: the test then fails instead of hanging.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

namespace halo::test {

// Replaces `path` by a FIFO and runs `call`; returns true when `call` returned (or threw) without being released.
inline bool returns_without_blocking_on_fifo(const std::filesystem::path& path, const std::function<void()>& call) {
    std::filesystem::remove_all(path);
    if (::mkfifo(path.c_str(), 0600) != 0) throw std::runtime_error("cannot create FIFO " + path.string());
    std::atomic<bool> done{false}, released{false};
    std::thread guard([&] {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!done && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        while (!done) {
            released = true;
            const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);  // succeeds only while a reader waits
            if (fd >= 0) ::close(fd);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    try {
        call();
    } catch (...) {
        done = true;
        guard.join();
        throw;
    }
    done = true;
    guard.join();
    return !released;
}

}  // namespace halo::test
