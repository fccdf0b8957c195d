// What prefix_replay prints: the per-turn table (markdown), the summary against the targets, its consistency
// checks, and the same figures as JSON.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/prefix/replay.h"

namespace halo::bench {

struct ReplaySetup {
    std::string model_dir, device, cpu;
    int32_t threads = 0;             // the plugin's worker threads (0: all it may use)
    int64_t context = 0;             // tokens per sequence
    int32_t sequences = 1;           // KDA slots and MLA pages for this many sequences (the cache uses the spare pages)
    int64_t stride = 0;              // prompt tokens between snapshots
    uint64_t cache_bytes = 0;        // --prefix-cache
    int32_t max_snapshots = 0;       // what that budget holds
    uint64_t snapshot_bytes = 0;     // one snapshot: every KDA layer's state and conv history (Model::snapshot_bytes)
    uint64_t page_bytes = 0;         // one MLA cache page of every MLA layer (Model::page_bytes)
    int32_t page_size = 0;           // tokens per page
    int32_t total_pages = 0;         // the MLA page pool (sequences x context / page_size)
    ReplaySettings settings;
};

// A consistency check: the program exits non-zero when one fails.
struct Check {
    std::string name;
    bool ok = true;
    std::string detail;
};

// The checks: every request finished with its reply; each cold-measured turn's greedy reply equals the reuse run's
// (one check per turn, MATCH / MISMATCH); cold runs reused nothing; while nothing was evicted, every turn after the
// first resumed from the end of the previous one; the snapshot memory held is within its bound.
std::vector<Check> replay_checks(const ReplaySetup& setup, const std::vector<Turn>& turns);

// The markdown report: the setup line, the per-turn table, the summary and the checks.
std::string replay_markdown(const ReplaySetup& setup, const std::vector<Turn>& turns, const std::vector<Check>& checks);

nlohmann::json replay_json(const ReplaySetup& setup, const std::vector<Turn>& turns, const std::vector<Check>& checks);

}  // namespace halo::bench
