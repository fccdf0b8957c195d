#include "bench/serve/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace halo::bench {

double percentile(std::vector<double> samples, double q) {
    if (samples.empty()) return 0;
    std::sort(samples.begin(), samples.end());
    const double rank = q / 100.0 * double(samples.size() - 1);
    const size_t lo = size_t(std::floor(rank));
    const size_t hi = std::min(lo + 1, samples.size() - 1);
    return samples[lo] + (samples[hi] - samples[lo]) * (rank - double(lo));
}

Summary summarize(const std::vector<double>& samples) {
    Summary s;
    s.n = samples.size();
    if (samples.empty()) return s;
    s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / double(samples.size());
    s.median = percentile(samples, 50);
    s.p99 = percentile(samples, 99);
    s.max = *std::max_element(samples.begin(), samples.end());
    return s;
}

nlohmann::json to_json(const Summary& s) {
    return {{"n", s.n}, {"mean", s.mean}, {"median", s.median}, {"p99", s.p99}, {"max", s.max}};
}

}  // namespace halo::bench
