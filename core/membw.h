// Measures the machine's memory read bandwidth: all threads stream disjoint parts of one large buffer.
#pragma once

#include <cstdint>

namespace halo {

struct BandwidthResult {
    double best_gbs = 0;    // best pass
    double median_gbs = 0;  // median pass
    uint64_t bytes = 0;     // buffer size
    int threads = 0;
    int passes = 0;
};

BandwidthResult measure_read_bandwidth(uint64_t bytes, int threads, int passes);

}  // namespace halo
