// Measures the machine's memory read bandwidth: all threads stream disjoint parts of one large buffer.
#pragma once

#include <cstddef>
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

// A streaming-read buffer allocated and touched once, then read again and again: for benchmarks that alternate a
// kernel with a pass over memory larger than the caches. Allocating a fresh buffer before every call (as
// measure_read_bandwidth does) costs page faults and, under some hypervisors, slows the call that follows.
class ReadStream {
public:
    ReadStream(uint64_t bytes, int threads);
    ~ReadStream();
    ReadStream(const ReadStream&) = delete;
    ReadStream& operator=(const ReadStream&) = delete;

    bool ok() const { return buf_ != nullptr; }
    uint64_t bytes() const { return uint64_t(words_) * 8; }
    // One pass with all threads; GB/s.
    double pass();

private:
    uint64_t* buf_ = nullptr;
    size_t words_ = 0;
    int threads_ = 1;
};

}  // namespace halo
