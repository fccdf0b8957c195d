// Prometheus text exposition of the server's counters and the scheduler's state (names prefixed halo_).
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/scheduler.h"

namespace halo::server {

// Bytes of one memory use in one placement (Model::plan() with the backend's placement names).
struct MemoryHeld {
    std::string use;        // "weights", "state", "cache", "scratch"
    std::string placement;  // "heap", "mmap", "device-local", ...
    uint64_t bytes = 0;
};

class Metrics {
public:
    // One finished HTTP exchange. `path` is reduced to the known endpoints ("other" for the rest), so a client
    // cannot create series without bound.
    void count_request(const std::string& method, const std::string& path, int status);

    // The whole exposition. `stats`/`memory` are null while the model loads.
    std::string render(const SchedulerStats* stats, const std::vector<MemoryHeld>* memory,
                       const std::string& model_name) const;

private:
    mutable std::mutex mu_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;  // (endpoint, status) -> count
};

// The label value for a request path: the endpoint it names, or "other".
std::string endpoint_label(const std::string& method, const std::string& path);

}  // namespace halo::server
