#include "core/op_timing_backend.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace halo {

OpTimingBackend::~OpTimingBackend() { report(); }

void OpTimingBackend::report() const {
    double total = 0;
    for (const auto& [k, e] : entries_) total += e.seconds;
    if (total == 0) return;
    std::vector<std::pair<double, std::string>> order;
    for (const auto& [k, e] : entries_) order.push_back({e.seconds, k});
    std::sort(order.rbegin(), order.rend());
    std::fprintf(stderr, "op timing: %-24s %10s %8s %10s %6s\n", "op", "seconds", "calls", "ms/call", "share");
    for (const auto& [s, k] : order) {
        const Entry& e = entries_.at(k);
        std::fprintf(stderr, "op timing: %-24s %10.3f %8lld %10.3f %5.1f%%\n", k.c_str(), e.seconds, (long long)e.calls,
                     1e3 * e.seconds / double(e.calls), 100 * e.seconds / total);
    }
}

}  // namespace halo
