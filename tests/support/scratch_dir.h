// A scratch folder for the running test: <temp>/<prefix>_<pid>_<test name>, empty at the start of the test.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace halo::test {

inline std::filesystem::path scratch_dir(const std::string& prefix) {
    const auto dir = std::filesystem::temp_directory_path() /
                     (prefix + "_" + std::to_string(::getpid()) + "_" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    return dir;
}

}  // namespace halo::test
