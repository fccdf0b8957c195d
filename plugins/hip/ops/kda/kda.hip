// KDA kernels of the token-by-token path: gates, short convolutions, q/k normalisation, the recurrence, the gated
// norm. The same math as ops/reference/kda.cpp, in F32.
#include "plugins/hip/ops/kda/kda.h"

#include <algorithm>

namespace halo::hip {

namespace {

constexpr int kThreads = 256;
constexpr int kCols = 32;           // value columns per recurrent block
constexpr int kRowsPerSlice = 32;   // key rows of the state each recurrent thread keeps in registers
constexpr int kMaxSlices = kKdaMaxHeadDim / kRowsPerSlice;

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

// softplus with threshold 20 (as the reference and fla); exp alone below -15, where log1p(e) = e in F32.
__device__ __forceinline__ float softplusf(float z) { return z > 20.0f ? z : (z < -15.0f ? expf(z) : log1pf(expf(z))); }

// Grid: (ceil(max(D, H) / 256), T).
__global__ void __launch_bounds__(kThreads) kda_gate_kernel(KdaDims d, float* gate, float* beta, WeightView dt_bias,
                                                            WeightView a_log) {
    const int64_t t = blockIdx.y;
    const int c = int(blockIdx.x * blockDim.x + threadIdx.x);
    if (c < d.width()) {
        float& g = gate[t * d.width() + c];
        g = -expf(weight_at(a_log, 0, c / d.head_dim)) * softplusf(g + weight_at(dt_bias, 0, c));
    }
    if (c < d.heads) beta[t * d.heads + c] = sigmoidf(beta[t * d.heads + c]);
}

// One thread per (run, channel of q | k | v): the channel's W-1 history values then the run's values, in order, in a
// window of registers; each thread owns its channel, so act is overwritten in place. Tap W-1 multiplies the current
// token. Grid: (ceil(3D / 64), runs).
__global__ void __launch_bounds__(64) kda_conv_kernel(KdaDims d, const KdaRun* runs, float* act, float* conv_state,
                                                      WeightView q_conv, WeightView k_conv, WeightView v_conv) {
    const int D = d.width(), W = d.conv_w;
    const int ch = int(blockIdx.x * blockDim.x + threadIdx.x);
    if (ch >= 3 * D) return;
    const KdaRun run = runs[blockIdx.y];
    const int which = ch / D, c = ch % D;
    const WeightView& cw = which == 0 ? q_conv : which == 1 ? k_conv : v_conv;
    float taps[kKdaMaxConvWidth], win[kKdaMaxConvWidth];  // window: the last W inputs, oldest first
    for (int j = 0; j < kKdaMaxConvWidth; ++j) {
        taps[j] = j < W ? weight_at(cw, c, j) : 0.0f;
        win[j] = 0.0f;
    }
    float* hist = conv_state + (int64_t(run.slot) * 3 + which) * int64_t(W - 1) * D + c;  // [W-1] at stride D
    for (int j = 0; j + 1 < W; ++j) win[j] = hist[int64_t(j) * D];
    for (int t = 0; t < run.n_tokens; ++t) {
        float* a = act + int64_t(run.first_row + t) * 3 * D + ch;
        win[W - 1] = *a;
        float y = 0.0f;
        for (int j = 0; j < W; ++j) y += taps[j] * win[j];
        *a = y / (1.0f + expf(-y));
        for (int j = 0; j + 1 < W; ++j) win[j] = win[j + 1];
    }
    for (int j = 0; j + 1 < W; ++j) hist[int64_t(j) * D] = win[j];
}

// One block per row; its warps take the row's 2H (q or k, head) vectors, lanes striding over K. Grid: T.
__global__ void __launch_bounds__(kThreads) kda_l2norm_kernel(KdaDims d, float* act) {
    const int warps = int(blockDim.x) / warpSize, lane = int(threadIdx.x) % warpSize;
    const int K = d.head_dim;
    float* row = act + int64_t(blockIdx.x) * 3 * d.width();
    for (int i = int(threadIdx.x) / warpSize; i < 2 * d.heads; i += warps) {  // q heads, then k heads
        float* x = row + int64_t(i) * K;
        float ss = 0.0f;
        for (int e = lane; e < K; e += warpSize) ss += x[e] * x[e];
        ss = warp_sum(ss);
        const float s = (i < d.heads ? d.q_scale : 1.0f) / sqrtf(ss + d.l2_eps);
        for (int e = lane; e < K; e += warpSize) x[e] *= s;
    }
}

// Token by token. Value columns are independent, so a block owns one (run, head, block of 32 value columns); its
// threads are ceil(K / 32) slices of 32 key rows x 32 columns, each keeping its 32 state values in registers. Per
// token:  S <- diag(exp(g)) S ; u = beta (v - k^T S) ; S <- S + k u^T ; o = q^T S, with the sums over key rows
// finished across slices in shared memory (3 barriers per token). Grid: (ceil(K / 32), H, runs).
__global__ void __launch_bounds__(kCols * kMaxSlices) kda_recurrent_kernel(KdaDims d, const KdaRun* runs,
                                                                         const float* act, const float* gate,
                                                                         const float* beta, float* state, float* o) {
    __shared__ float qs[kKdaMaxHeadDim], ks[kKdaMaxHeadDim], gs[kKdaMaxHeadDim], vs[kCols];
    __shared__ float red_pred[kMaxSlices][kCols], red_out[kMaxSlices][kCols];
    __shared__ float beta_t;
    const int tid = int(threadIdx.x), el = tid % kCols, slice = tid / kCols, slices = int(blockDim.x) / kCols;
    const int h = int(blockIdx.y), K = d.head_dim, D = d.width(), H = d.heads;
    const KdaRun run = runs[blockIdx.z];
    const int e = int(blockIdx.x) * kCols + el;
    const bool live = e < K;
    float* S = state + (int64_t(run.slot) * H + h) * K * K;  // [K][K]: S[key][value]
    float s[kRowsPerSlice];
    for (int i = 0; i < kRowsPerSlice; ++i) {
        const int r = slice * kRowsPerSlice + i;
        s[i] = live && r < K ? S[int64_t(r) * K + e] : 0.0f;
    }
    for (int t = 0; t < run.n_tokens; ++t) {
        const int64_t row = run.first_row + t;
        const float* a = act + row * 3 * D + int64_t(h) * K;
        for (int r = tid; r < K; r += int(blockDim.x)) {
            qs[r] = a[r];
            ks[r] = a[D + r];
            gs[r] = expf(gate[row * D + int64_t(h) * K + r]);
        }
        if (tid < kCols) vs[tid] = live ? a[2 * D + e] : 0.0f;
        if (tid == 0) beta_t = beta[row * H + h];
        __syncthreads();
        float pred = 0.0f;
        for (int i = 0; i < kRowsPerSlice; ++i) {
            const int r = slice * kRowsPerSlice + i;
            if (r < K) {
                s[i] *= gs[r];
                pred += ks[r] * s[i];
            }
        }
        red_pred[slice][el] = pred;
        __syncthreads();
        pred = 0.0f;
        for (int j = 0; j < slices; ++j) pred += red_pred[j][el];  // every slice the same sum, in the same order
        const float u = beta_t * (vs[el] - pred);
        float acc = 0.0f;
        for (int i = 0; i < kRowsPerSlice; ++i) {
            const int r = slice * kRowsPerSlice + i;
            if (r < K) {
                s[i] += ks[r] * u;
                acc += qs[r] * s[i];
            }
        }
        red_out[slice][el] = acc;
        __syncthreads();  // also: every read of qs, ks, gs, vs, beta_t and red_pred of this token is done
        if (slice == 0 && live) {
            float sum = 0.0f;
            for (int j = 0; j < slices; ++j) sum += red_out[j][el];
            o[row * D + int64_t(h) * K + e] = sum;
        }
    }
    for (int i = 0; i < kRowsPerSlice; ++i) {
        const int r = slice * kRowsPerSlice + i;
        if (live && r < K) S[int64_t(r) * K + e] = s[i];
    }
}

// One block per row; its warps take the heads, lanes striding over K. Grid: T.
__global__ void __launch_bounds__(kThreads) kda_out_norm_kernel(KdaDims d, float* o, const float* ogate,
                                                                WeightView o_norm) {
    const int warps = int(blockDim.x) / warpSize, lane = int(threadIdx.x) % warpSize;
    const int K = d.head_dim;
    const int64_t base = int64_t(blockIdx.x) * d.width();
    for (int h = int(threadIdx.x) / warpSize; h < d.heads; h += warps) {
        float* x = o + base + int64_t(h) * K;
        const float* g = ogate + base + int64_t(h) * K;
        float ss = 0.0f;
        for (int e = lane; e < K; e += warpSize) ss += x[e] * x[e];
        ss = warp_sum(ss);
        const float inv = rsqrtf(ss / float(K) + d.norm_eps);
        for (int e = lane; e < K; e += warpSize) x[e] = x[e] * inv * weight_at(o_norm, 0, e) * sigmoidf(g[e]);
    }
}

}  // namespace

void launch_kda_gate(const Launch& l, const KdaDims& d, float* gate, float* beta, const WeightView& dt_bias,
                     const WeightView& a_log) {
    if (d.rows <= 0) return;
    const unsigned x = unsigned((std::max(d.width(), d.heads) + kThreads - 1) / kThreads);
    hipLaunchKernelGGL(kda_gate_kernel, dim3(x, unsigned(d.rows)), dim3(kThreads), 0, l.stream, d, gate, beta,
                       dt_bias, a_log);
    Execution::check_launch("kda_gate");
}

void launch_kda_conv(const Launch& l, const KdaDims& d, const KdaRun* runs, int32_t n_runs, float* act,
                     float* conv_state, const WeightView& q_conv, const WeightView& k_conv, const WeightView& v_conv) {
    if (n_runs <= 0) return;
    const unsigned x = unsigned((3 * d.width() + 63) / 64);
    hipLaunchKernelGGL(kda_conv_kernel, dim3(x, unsigned(n_runs)), dim3(64), 0, l.stream, d, runs, act, conv_state,
                       q_conv, k_conv, v_conv);
    Execution::check_launch("kda_conv");
}

void launch_kda_l2norm(const Launch& l, const KdaDims& d, float* act) {
    if (d.rows <= 0) return;
    hipLaunchKernelGGL(kda_l2norm_kernel, dim3(unsigned(d.rows)), dim3(kThreads), 0, l.stream, d, act);
    Execution::check_launch("kda_l2norm");
}

void launch_kda_recurrent(const Launch& l, const KdaDims& d, const KdaRun* runs, int32_t n_runs, const float* act,
                          const float* gate, const float* beta, float* state, float* o) {
    if (n_runs <= 0) return;
    const int slices = (d.head_dim + kRowsPerSlice - 1) / kRowsPerSlice;
    const dim3 grid(unsigned((d.head_dim + kCols - 1) / kCols), unsigned(d.heads), unsigned(n_runs));
    hipLaunchKernelGGL(kda_recurrent_kernel, grid, dim3(unsigned(kCols * slices)), 0, l.stream, d, runs, act, gate,
                       beta, state, o);
    Execution::check_launch("kda_recurrent");
}

void launch_kda_out_norm(const Launch& l, const KdaDims& d, float* o, const float* ogate, const WeightView& o_norm) {
    if (d.rows <= 0) return;
    hipLaunchKernelGGL(kda_out_norm_kernel, dim3(unsigned(d.rows)), dim3(kThreads), 0, l.stream, d, o, ogate, o_norm);
    Execution::check_launch("kda_out_norm");
}

}  // namespace halo::hip
