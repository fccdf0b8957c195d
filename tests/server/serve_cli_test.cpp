// `engine serve` as a user runs it: on port 0 it prints where it listens, /health turns 200 once the model is
// loaded, and SIGTERM drains and exits 0.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;

struct Child {
    pid_t pid = -1;
    int err_fd = -1;  // the child's stderr
    std::string err;

    // Reads what stderr has (waiting up to `wait`); false at end of file.
    bool read_some(std::chrono::milliseconds wait) {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(err_fd, &set);
        timeval tv{long(wait.count() / 1000), long(wait.count() % 1000) * 1000};
        if (::select(err_fd + 1, &set, nullptr, nullptr, &tv) <= 0) return true;
        char buf[4096];
        const ssize_t n = ::read(err_fd, buf, sizeof buf);
        if (n <= 0) return false;
        err.append(buf, size_t(n));
        return true;
    }
    ~Child() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (err_fd >= 0) ::close(err_fd);
    }
};

TEST(EngineServe, ListensOnAFreePortBecomesReadyAndStopsOnSigterm) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    Child child;
    child.pid = ::fork();
    ASSERT_GE(child.pid, 0);
    if (child.pid == 0) {
        ::dup2(fds[1], STDERR_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
        ::execl(HALO_ENGINE_EXE, HALO_ENGINE_EXE, "serve", "--model", HALO_DEMO_DIR, "--port", "0", "--parallel", "2",
                "--context", "512", "--threads", "2", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(fds[1]);
    child.err_fd = fds[0];

    const std::regex listening(R"(engine: listening on http://127\.0\.0\.1:(\d+)\n)");
    std::smatch m;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (!std::regex_search(child.err, m, listening)) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no 'listening on' line:\n" << child.err;
        ASSERT_TRUE(child.read_some(100ms)) << "engine serve ended:\n" << child.err;
    }
    const int port = std::stoi(m[1]);
    httplib::Client c("127.0.0.1", port);
    int status = 0;
    while (status != 200) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "never ready:\n" << child.err;
        auto r = c.Get("/health");
        ASSERT_TRUE(r) << "no answer from /health";
        status = r->status;
        if (status != 200) {
            EXPECT_EQ(status, 503);
            EXPECT_EQ(r->body, R"({"status":"loading"})");
            child.read_some(50ms);
        }
    }
    auto models = c.Get("/v1/models");
    ASSERT_TRUE(models);
    EXPECT_NE(models->body.find("\"id\":\"demo\""), std::string::npos) << models->body;
    auto gen = c.Post("/v1/completions", R"({"prompt": "Hi", "max_tokens": 3})", "application/json");
    ASSERT_TRUE(gen);
    EXPECT_EQ(gen->status, 200) << gen->body;

    ASSERT_EQ(::kill(child.pid, SIGTERM), 0);
    while (child.read_some(100ms)) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "did not stop:\n" << child.err;
    }
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child.pid, &wstatus, 0), child.pid);
    child.pid = -1;
    ASSERT_TRUE(WIFEXITED(wstatus)) << "killed by a signal:\n" << child.err;
    EXPECT_EQ(WEXITSTATUS(wstatus), 0) << child.err;
    EXPECT_NE(child.err.find("engine: ready: model demo, 2 sequences x 512 tokens"), std::string::npos) << child.err;
    const size_t first = child.err.find("engine: listening on");
    EXPECT_EQ(child.err.find("engine: listening on", first + 1), std::string::npos) << "exactly one listening line";
}

}  // namespace
