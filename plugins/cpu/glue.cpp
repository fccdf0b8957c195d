// CPU glue ops: embedding, RMSNorm, residual add, linear, dense SwiGLU MLP.
#include <cmath>

#include "plugins/cpu/context.h"

namespace halo::cpu {

using namespace halo::ops;

namespace {

// The ops' temporaries, taken from `a` (the arena, or an ArenaCounter when planning).
template <class A>
float* rms_norm_temps(A& a, int64_t width) {
    return a.floats(width);  // the weight as f32
}

struct MlpTemps {
    float *g, *u;  // [rows, inter] each
};
template <class A>
MlpTemps mlp_temps(A& a, int64_t rows, int64_t inter) {
    MlpTemps t;
    t.g = a.floats(rows * inter);
    t.u = a.floats(rows * inter);
    return t;
}

}  // namespace

int64_t rms_norm_arena(int64_t width) {
    ArenaCounter a;
    rms_norm_temps(a, width);
    return a.used;
}

int64_t mlp_arena(int64_t rows, int64_t inter) {
    ArenaCounter a;
    mlp_temps(a, rows, inter);
    return a.used;
}

void embedding(CpuContext& c, const EmbeddingParams& p) {
    const int64_t rows = p.ids.numel(), width = p.table.cols(), vocab = p.table.rows();
    const int32_t* ids = p.ids.host_as<int32_t>();
    for (int64_t r = 0; r < rows; ++r)
        if (ids[r] < 0 || ids[r] >= vocab)
            throw Error("embedding: token id " + std::to_string(ids[r]) + " is outside the vocabulary of " +
                        std::to_string(vocab) + " tokens");
    const char* table = static_cast<const char*>(p.table.host());
    const size_t row_bytes = size_t(width) * dtype_size(p.table.dtype);
    float* out = p.out.host_as<float>();
    c.pool.run(rows, [&](int64_t r, int) { c.k.to_f32(table + size_t(ids[r]) * row_bytes, p.table.dtype, out + r * width, width); });
}

void rms_norm(CpuContext& c, const RmsNormParams& p) {
    const int64_t rows = p.x.rows(), width = p.x.cols();
    c.arena.reset();
    float* w = rms_norm_temps(c.arena, width);
    c.k.to_f32(p.weight.host(), p.weight.dtype, w, width);
    const float* x = p.x.host_as<float>();
    float* out = p.out.host_as<float>();
    c.pool.run(rows, [&](int64_t r, int) {
        const float* xr = x + r * width;
        float* o = out + r * width;
        const float inv = 1.0f / std::sqrt(c.k.sum_squares(xr, width) / float(width) + p.eps);
        for (int64_t d = 0; d < width; ++d) o[d] = xr[d] * inv * w[d];
    });
}

void add(CpuContext& c, const AddParams& p) {
    const int64_t n = p.out.numel(), chunk = 1 << 14;
    const float* a = p.a.host_as<float>();
    const float* b = p.b.host_as<float>();
    float* out = p.out.host_as<float>();
    c.pool.run((n + chunk - 1) / chunk, [&](int64_t t, int) {
        const int64_t e = std::min(n, (t + 1) * chunk);
        for (int64_t i = t * chunk; i < e; ++i) out[i] = a[i] + b[i];
    });
}

void linear(CpuContext& c, const LinearParams& p) {
    c.matmul(p.x.rows(), p.x.host_as<float>(), p.x.cols(), p.weight, p.y.host_as<float>(), p.y.cols());
}

void mlp(CpuContext& c, const MlpParams& p) {
    const int64_t rows = p.x.rows(), width = p.x.cols(), inter = p.gate.rows();
    c.arena.reset();
    const MlpTemps tmp = mlp_temps(c.arena, rows, inter);
    float* g = tmp.g;
    float* u = tmp.u;
    const float* x = p.x.host_as<float>();
    c.matmul(p.batch, rows, x, width, p.gate, g, inter);
    c.matmul(p.batch, rows, x, width, p.up, u, inter);
    c.pool.run(rows, [&](int64_t r, int) {
        for (int64_t i = 0; i < inter; ++i) g[r * inter + i] = silu(g[r * inter + i]) * u[r * inter + i];
    });
    c.matmul(p.batch, rows, g, inter, p.down, p.out.host_as<float>(), p.out.cols());
}

}  // namespace halo::cpu
