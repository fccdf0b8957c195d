// Runs one of the built executables as a user would, under a time limit, and keeps what it printed.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace halo::test {

struct ToolRun {
    int code = -1;       // exit status; -1 when killed by a signal
    int signal = 0;      // the signal that ended it, if any
    double seconds = 0;  // wall time
    std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

inline std::string read_whole_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// Runs `exe args...` with `env` ("NAME=value" items) added to the environment, stdin empty, killed after
// `timeout_s` seconds (exit status 124 then). Scratch files go to a fresh folder per test.
inline ToolRun run_tool(const std::string& exe, const std::vector<std::string>& args,
                        const std::vector<std::string>& env = {}, int timeout_s = 120) {
    namespace fs = std::filesystem;
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    const fs::path dir = fs::temp_directory_path() /
                         ("halo_tool_" + std::to_string(::getpid()) + "_" + test->test_suite_name() + "_" + test->name());
    fs::create_directories(dir);
    std::string cmd = "env";
    for (const auto& e : env) cmd += " " + shell_quote(e);
    cmd += " timeout " + std::to_string(timeout_s) + " " + shell_quote(exe);
    for (const auto& a : args) cmd += " " + shell_quote(a);
    cmd += " </dev/null >" + shell_quote((dir / "stdout").string()) + " 2>" + shell_quote((dir / "stderr").string());
    const auto t0 = std::chrono::steady_clock::now();
    const int status = std::system(cmd.c_str());
    ToolRun r;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    r.out = read_whole_file(dir / "stdout");
    r.err = read_whole_file(dir / "stderr");
    fs::remove_all(dir);
    return r;
}

// A plain failure (not a crash or a time-out) whose stderr holds every one of `words`.
inline void expect_clear_error(const ToolRun& r, const std::vector<std::string>& words, const std::string& what) {
    EXPECT_EQ(r.signal, 0) << what << ": killed by signal " << r.signal << "\n" << r.err;
    EXPECT_NE(r.code, 0) << what << ": exited 0\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_NE(r.code, 124) << what << ": timed out";
    for (const auto& w : words) EXPECT_NE(r.err.find(w), std::string::npos) << what << ": stderr lacks '" << w << "':\n" << r.err;
}

}  // namespace halo::test
