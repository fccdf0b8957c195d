// Helpers shared by the whole-model golden tests.
#pragma once

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace halo::test {

// The "ids" list of a golden's prompt.json or greedy.json.
inline std::vector<int32_t> json_ids(const std::string& file) {
    std::ifstream f(file);
    return nlohmann::json::parse(f).at("ids").get<std::vector<int32_t>>();
}

// Largest |a - b| over matching elements; fails on NaN/Inf mismatch.
inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    float m = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
            ADD_FAILURE() << "non-finite logit at " << i;
            return INFINITY;
        }
        m = std::max(m, std::fabs(a[i] - b[i]));
    }
    return m;
}

}  // namespace halo::test
