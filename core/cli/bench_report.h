// The results of `engine bench` and the ways they are written: a markdown table (llama-bench's columns plus achieved
// GB/s and its share of the measured memory bandwidth; one column group per backend when there are several), CSV
// (one header row, one row per test) and JSON (an array of the same records, every repetition included); after the
// table (and in the JSON records, not in CSV) the per-op profile of each decode test.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cli/bench_tests.h"

namespace halo::cli {

// What every row shares: the build, the model and the machine's memory read bandwidth.
struct BenchSetup {
    std::string build_commit;  // git describe of the engine's sources, "unknown" outside a git checkout
    std::string model_dir;
    std::string model_name;    // the model directory's name
    double bandwidth_before_gbs = 0, bandwidth_after_gbs = 0;  // best pass, measured before and after the tests
    uint64_t bandwidth_buffer_bytes = 0;
    int32_t bandwidth_threads = 0;
    // The fractions use the better of the two measurements, so that they are not flattered by a slow moment.
    double bandwidth_gbs() const { return std::max(bandwidth_before_gbs, bandwidth_after_gbs); }
};

// One op kind of a decode profile: what its calls added up to over the profiled tokens.
struct OpProfileLine {
    std::string op;              // embedding, rms_norm, add, linear, lm_head, mlp, kda, mla, moe, row gather
    int64_t calls = 0;
    double seconds = 0;          // each call timed to its end (synchronised)
    uint64_t weight_bytes = 0;   // weights read (see op_read_bytes in core/op_timing_backend.h)
    uint64_t state_bytes = 0;    // KDA state and conv history read and written, MLA cache read
    uint64_t bytes() const { return weight_bytes + state_bytes; }
};

// The decode profile of a tg test: its tokens decoded once more after the timed repetitions, every op timed.
struct OpProfile {
    int32_t tokens = 0;               // decode tokens profiled (0: no profile)
    double wall_seconds = 0;          // wall time of those tokens, ops and the host work between them
    std::vector<OpProfileLine> ops;   // in the order of OpProfileLine::op's list, then any other kind
};

// One test on one backend with one thread count.
struct BenchRow {
    std::string backend;   // --backend name: cpu, vulkan, hip
    std::string device;    // the device the backend ran on, as it names itself
    std::string weights;   // weight formats: "float checkpoint", "... quantized at load: ..."
    uint64_t model_size = 0;           // bytes of weights in backend memory (scales included)
    uint64_t model_n_params = 0;       // parameters (elements of every tensor)
    uint64_t decode_weight_bytes = 0;  // bytes of weights one decode token reads
    // The checkpoint's mapped files after the tests: their bytes, the bytes mapped (read at least once) and of those
    // the bytes in 2 MiB pages.
    uint64_t mapped_bytes = 0, mapped_resident_bytes = 0, mapped_huge_bytes = 0;
    int32_t threads = 0;               // CPU threads the backend ran
    int32_t chunk = 0;                 // prefill tokens per forward step
    std::string cache_dtype;           // MLA cache element type
    BenchTest test;
    std::string test_time;             // when the test started, RFC 3339 UTC
    std::vector<uint64_t> samples_ns;  // wall time of each repetition
    uint64_t bytes_per_run = 0;        // bytes one repetition must read (see bench_cmd.cpp: test_bytes)
    OpProfile op_profile;              // tg tests with --op-profile only

    std::vector<double> samples_ts() const;  // tokens per second of each repetition
    double avg_ts() const;                   // mean of samples_ts
    double stddev_ts() const;                // sample standard deviation of samples_ts (0 for one repetition)
    double avg_gbs() const;                  // mean achieved GB/s (bytes_per_run over each repetition's time)
};

// The markdown report: a few lines on the model, devices and bandwidth, the table, and the build. `backends` in the
// order given: with more than one, each test is one line with t/s and GB/s per backend and each backend's speed
// relative to the first.
std::string bench_markdown(const BenchSetup& setup, const std::vector<BenchRow>& rows,
                           const std::vector<std::string>& backends);

// One record per row with every field, in a fixed order (the CSV columns and the JSON keys).
nlohmann::ordered_json bench_record(const BenchSetup& setup, const BenchRow& row);
// The record plus, for a profiled test, "op_profile": the per-op lines per token (the JSON and JSON lines outputs).
nlohmann::ordered_json bench_json_record(const BenchSetup& setup, const BenchRow& row);
// A JSON array of bench_json_record.
nlohmann::ordered_json bench_json(const BenchSetup& setup, const std::vector<BenchRow>& rows);
// A header line and one line per row; the repetitions as "a;b;c"; fields quoted where they hold a comma or a quote.
std::string bench_csv(const BenchSetup& setup, const std::vector<BenchRow>& rows);

}  // namespace halo::cli
