// Reference glue ops: embedding lookup, RMSNorm, residual add, linear, dense SwiGLU MLP.
#include <cmath>
#include <vector>

#include "ops/reference/reference.h"
#include "ops/reference/util.h"

namespace halo::ref {

using namespace halo::ops;

// out[r, :] = table[ids[r], :]
void embedding(const EmbeddingParams& p) {
    const int64_t rows = p.ids.numel(), width = p.table.cols(), vocab = p.table.rows();
    const int32_t* ids = p.ids.host_as<int32_t>();
    float* out = p.out.host_as<float>();
    for (int64_t r = 0; r < rows; ++r) {
        if (ids[r] < 0 || ids[r] >= vocab) throw Error("embedding: token id " + std::to_string(ids[r]) +
                                                       " is outside the table of " + std::to_string(vocab) + " rows");
        for (int64_t d = 0; d < width; ++d) out[r * width + d] = float(at(p.table, ids[r] * width + d));
    }
}

// out = x * rsqrt(mean(x^2) + eps) * w, per row
void rms_norm(const RmsNormParams& p) {
    const int64_t rows = p.x.rows(), width = p.x.cols();
    for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> x = row(p.x, r);
        double ss = 0;
        for (double v : x) ss += v * v;
        const double inv = 1.0 / std::sqrt(ss / double(width) + double(p.eps));
        for (int64_t d = 0; d < width; ++d) x[d] = x[d] * inv * at(p.weight, d);
        store_row(p.out, r, x.data());
    }
}

void add(const AddParams& p) {
    const int64_t n = p.out.numel();
    const float* a = p.a.host_as<float>();
    const float* b = p.b.host_as<float>();
    float* out = p.out.host_as<float>();
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

// y = x W^T
void linear(const LinearParams& p) {
    const int64_t rows = p.x.rows();
    std::vector<double> y(static_cast<size_t>(p.weight.rows()));
    for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> x = row(p.x, r);
        matvec(p.weight, x.data(), y.data());
        store_row(p.y, r, y.data());
    }
}

// out = down(silu(gate x) * up x)
void mlp(const MlpParams& p) {
    const int64_t rows = p.x.rows(), inter = p.gate.rows();
    std::vector<double> g(static_cast<size_t>(inter)), u(static_cast<size_t>(inter)), y(static_cast<size_t>(p.down.rows()));
    for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> x = row(p.x, r);
        matvec(p.gate, x.data(), g.data());
        matvec(p.up, x.data(), u.data());
        for (int64_t i = 0; i < inter; ++i) g[i] = silu(g[i]) * u[i];
        matvec(p.down, g.data(), y.data());
        store_row(p.out, r, y.data());
    }
}

}  // namespace halo::ref
