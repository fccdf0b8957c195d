// The op cases of bench_ops: Kimi-Linear-48B-A3B shapes (config.json of the release), each op in a decode form
// (one row) and a prefill form (many rows), with the bytes each call must move at least (weights read once,
// activations, states and cache) and its floating-point work, for GB/s and GFLOP/s.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ops/backend.h"

namespace halo::bench {

struct Shapes {
    int64_t hidden = 2304, vocab = 163840, dense_inter = 9216;
    int64_t kda_heads = 32, kda_dim = 128, kda_rank = 128, conv = 4;
    int64_t mla_heads = 32, dn = 128, dr = 64, dv = 128, rank = 512;
    int64_t experts = 256, top_k = 8, moe_inter = 1024, shared_inter = 1024;
};

struct CaseOptions {
    int64_t rows = 1;       // rows of the step (1 = decode)
    int64_t context = 0;    // MLA: tokens already cached
    ops::DType cache_dtype = ops::DType::bf16;
};

// One prepared op call: buffers allocated and filled on the backend; run() records the op once.
struct PreparedCase {
    std::string op;
    int64_t rows = 0;
    uint64_t bytes = 0;  // minimum bytes moved per call
    double flops = 0;
    std::function<void()> run;
    std::vector<ops::Buffer*> buffers;  // released by the caller
    std::shared_ptr<void> keep;         // host data the call refers to (batch descriptors, expert tables)
};

// Ops this benchmark knows: embedding, rms_norm, add, lm_head, mlp, kda, mla, moe.
const std::vector<std::string>& op_names();

// Allocates and fills what the op needs on the backend (throws ops::OutOfMemory when it does not fit).
PreparedCase prepare(ops::Backend& backend, const std::string& op, const Shapes& s, const CaseOptions& o);

}  // namespace halo::bench
