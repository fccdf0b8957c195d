// `engine serve` as a user runs it: on port 0 it prints where it listens, /health turns 200 once the model is
// loaded, and SIGTERM drains and exits 0. With --prefix-cache-dir the prefix cache outlives a restart; a stale one is
// not loaded and says why; bad prefix-cache settings are refused naming the switch or profile key.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/scratch_dir.h"

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

// ---- the prefix cache on disk ----------------------------------------------------------------------------------

namespace fs = std::filesystem;
using Json = nlohmann::json;

// `engine serve ARGS` with its stderr read through a pipe.
void spawn(Child& child, const std::vector<std::string>& args) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::vector<std::string> argv = {HALO_ENGINE_EXE, "serve"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c_argv;
    for (std::string& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    child.pid = ::fork();
    ASSERT_GE(child.pid, 0);
    if (child.pid == 0) {
        ::dup2(fds[1], STDERR_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
        ::execv(HALO_ENGINE_EXE, c_argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    child.err_fd = fds[0];
}

// Reads stderr to its end and returns the exit status (-1 when killed by a signal or too slow).
int wait_exit(Child& child, std::chrono::seconds limit = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (child.read_some(100ms))
        if (std::chrono::steady_clock::now() > deadline) return -1;
    int wstatus = 0;
    if (::waitpid(child.pid, &wstatus, 0) != child.pid) return -1;
    child.pid = -1;
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

// Waits for /health to answer 200; returns the port (0 when the server ended or never became ready).
int wait_ready(Child& child) {
    const std::regex listening(R"(engine: listening on http://127\.0\.0\.1:(\d+)\n)");
    std::smatch m;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (!std::regex_search(child.err, m, listening))
        if (std::chrono::steady_clock::now() > deadline || !child.read_some(100ms)) return 0;
    const int port = std::stoi(m[1]);
    httplib::Client c("127.0.0.1", port);
    for (;;) {
        if (std::chrono::steady_clock::now() > deadline) return 0;
        auto r = c.Get("/health");
        if (r && r->status == 200) return port;
        if (!child.read_some(50ms)) return 0;
    }
}

// One run of the server on the demo model with its prefix cache kept in `dir`: serves `request` once, stops on
// SIGTERM. Returns the response and leaves the run's stderr in *err.
Json serve_once(const fs::path& dir, const std::string& request, std::string* err) {
    Child child;
    spawn(child, {"--model", HALO_DEMO_DIR, "--port", "0", "--parallel", "1", "--context", "512", "--threads", "2",
                  "--prefix-cache", "64MiB", "--prefix-stride", "64", "--prefix-cache-dir", dir.string()});
    const int port = wait_ready(child);
    EXPECT_GT(port, 0) << "never ready:\n" << child.err;
    Json response;
    if (port > 0) {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(60, 0);
        auto r = c.Post("/v1/completions", request, "application/json");
        EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
        if (r && r->status == 200) response = Json::parse(r->body);
        ::kill(child.pid, SIGTERM);
    }
    EXPECT_EQ(wait_exit(child), 0) << child.err;
    *err = child.err;
    return response;
}

// The number in "engine: prefix cache: <verb> N entr..." (-1 when there is no such line).
int entries_line(const std::string& err, const std::string& verb) {
    std::smatch m;
    if (!std::regex_search(err, m, std::regex("engine: prefix cache: " + verb + " (\\d+) entr"))) return -1;
    return std::stoi(m[1]);
}

TEST(EngineServe, PrefixCacheDirSurvivesARestartAndAStaleOneIsNotLoaded) {
    const fs::path dir = halo::test::scratch_dir("serve_prefix") / "cache";
    const std::string request =
        R"({"prompt": "Once upon a time a lighthouse keeper lived by the sea with his cat", "max_tokens": 8,
            "temperature": 0, "ignore_eos": true})";
    auto cached = [](const Json& r) { return r["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>(); };

    std::string err;
    const Json first = serve_once(dir, request, &err);
    ASSERT_FALSE(first.is_null());
    EXPECT_EQ(cached(first), 0);
    EXPECT_NE(err.find("engine: prefix cache: up to "), std::string::npos) << err;
    EXPECT_NE(err.find("a snapshot every 64 prompt tokens"), std::string::npos) << err;
    const int saved = entries_line(err, "saved");
    EXPECT_GT(saved, 0) << err;
    EXPECT_TRUE(fs::is_regular_file(dir / "manifest.json"));
    EXPECT_TRUE(fs::is_regular_file(dir / "prefix-cache.bin"));

    // The restart loads what was saved; the same request reads nothing and answers the same.
    const Json second = serve_once(dir, request, &err);
    ASSERT_FALSE(second.is_null());
    EXPECT_EQ(entries_line(err, "loaded"), saved) << err;
    EXPECT_EQ(cached(second), second["usage"]["prompt_tokens"].get<int64_t>());
    EXPECT_EQ(second["choices"][0]["text"], first["choices"][0]["text"]);

    // A cache written for another model is not loaded: the warning names the key, and the server starts empty.
    Json manifest;
    {
        std::ifstream in(dir / "manifest.json");
        manifest = Json::parse(in);
    }
    const std::string model = manifest["fingerprint"]["model"];
    manifest["fingerprint"]["model"] = "0123456789abcdef (another model)";
    std::ofstream(dir / "manifest.json", std::ios::trunc) << manifest.dump(2);
    const Json third = serve_once(dir, request, &err);
    ASSERT_FALSE(third.is_null());
    EXPECT_NE(err.find("engine: warning: the prefix cache in " + dir.string() + " is stale: it was written for model "
                       "'0123456789abcdef (another model)'"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("starting with an empty cache (it is replaced when the server stops)"), std::string::npos) << err;
    EXPECT_EQ(entries_line(err, "loaded"), -1) << err;
    EXPECT_EQ(cached(third), 0);
    EXPECT_EQ(third["choices"][0]["text"], first["choices"][0]["text"]);
    // ... and its save replaced the stale one.
    std::ifstream in(dir / "manifest.json");
    EXPECT_EQ(Json::parse(in)["fingerprint"]["model"], model);
    fs::remove_all(dir.parent_path());
}

TEST(EngineServe, BadPrefixCacheSettingsAreRefusedByName) {
    const fs::path scratch = halo::test::scratch_dir("serve_prefix");
    fs::create_directories(scratch);
    const fs::path profile = scratch / "stride.toml";
    std::ofstream(profile) << "[prefix_cache]\nstride = 96\n";
    const fs::path file = scratch / "a-file";
    std::ofstream(file) << "x";
    const struct {
        std::vector<std::string> args;
        std::string says;
    } cases[] = {
        {{"--prefix-cache", "lots"}, "--prefix-cache: 'lots' is not a size"},
        {{"--prefix-stride", "10"}, "--prefix-stride: '10' is not a multiple of 64"},
        {{"--prefix-stride", "100"}, "--prefix-stride: '100' is not a multiple of 64"},
        {{"--profile", profile.string()}, "stride.toml line 2: key 'prefix_cache.stride': '96' is not a multiple of 64"},
        {{"--prefix-cache-dir", file.string()}, "--prefix-cache-dir: '" + file.string() + "' is a file; name a folder"},
    };
    for (const auto& c : cases) {
        Child child;
        std::vector<std::string> args = {"--model", HALO_DEMO_DIR, "--port", "0"};
        args.insert(args.end(), c.args.begin(), c.args.end());
        spawn(child, args);
        EXPECT_EQ(wait_exit(child), 1) << c.args[0] << ":\n" << child.err;
        EXPECT_NE(child.err.find(c.says), std::string::npos) << child.err;
        EXPECT_EQ(child.err.find("engine: loading"), std::string::npos) << "refused only after loading:\n" << child.err;
    }
    fs::remove_all(scratch);
}

}  // namespace
