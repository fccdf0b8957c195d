// Summaries of latency samples as bench_serving reports them (mean, median, p99; numpy's linear percentile).
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

namespace halo::bench {

struct Summary {
    size_t n = 0;
    double mean = 0, median = 0, p99 = 0, max = 0;  // in the samples' unit
};

// q in [0, 100]; linear interpolation between the closest ranks. 0 for no samples.
double percentile(std::vector<double> samples, double q);
Summary summarize(const std::vector<double>& samples);
nlohmann::json to_json(const Summary& s);  // {"n", "mean", "median", "p99", "max"}

}  // namespace halo::bench
