// KDA's chunkwise-parallel recurrence (KIMI_LINEAR.md 3.7, ops/reference/kda.cpp `chunked`) in two kernels: part 1
// per chunk, independent of the state, so every chunk of every run runs at once; part 2 per run, sequential over its
// chunks, carrying the state. With G_i the inclusive cumulative log decay of a chunk:
//   A_ij   = beta_i sum_d k_i k_j exp(G_i - G_j)   (j < i)     Aqk_ij = sum_d q_i k_j exp(G_i - G_j)   (j <= i)
//   (I + A) U = diag(beta) V ;  (I + A) Wm = diag(beta) (exp(G) * k)      by forward substitution
//   V' = U - Wm S0 ;  O_i = (exp(G_i) * q_i)^T S0 + sum_{j<=i} Aqk_ij V'_j
//   S  = diag(exp(G_last)) S0 + sum_j (exp(G_last - G_j) * k_j) V'_j^T
// Only exp(G_i - G_j) with j <= i is evaluated (<= 1), so strong decay cannot overflow.
#include "plugins/hip/ops/kda/kda.h"

namespace halo::hip {

namespace {

constexpr int kThreads = 256;
constexpr int kCols = 32;  // value columns per block of part 2

// The chunk record of (row, head): G [K] | Wm [K] | U [K] | Aqk [C].
__device__ __forceinline__ float* chunk_record(float* record, const KdaDims& d, int64_t row, int h) {
    return record + (row * d.heads + h) * d.stride;
}
__device__ __forceinline__ const float* chunk_record(const float* record, const KdaDims& d, int64_t row, int h) {
    return record + (row * d.heads + h) * d.stride;
}

// Part 1 for one chunk of n <= 64 rows and one head: G, A (shared), Aqk, then U and Wm column by column.
// Grid: (chunks, H).
__global__ void __launch_bounds__(kThreads) kda_chunk_prep_kernel(KdaDims d, const KdaChunk* chunks, const float* act,
                                                                  const float* gate, const float* beta,
                                                                  float* record) {
    __shared__ float A[kKdaMaxChunk][kKdaMaxChunk + 1];
    const int tid = int(threadIdx.x), h = int(blockIdx.y), K = d.head_dim, D = d.width(), H = d.heads;
    const KdaChunk ch = chunks[blockIdx.x];
    const int64_t r0 = ch.first_row;
    const int n = ch.n_tokens;

    for (int e = tid; e < K; e += int(blockDim.x)) {
        float cum = 0.0f;
        for (int i = 0; i < n; ++i) {
            cum += gate[(r0 + i) * D + int64_t(h) * K + e];
            chunk_record(record, d, r0 + i, h)[e] = cum;
        }
    }
    __syncthreads();

    for (int idx = tid; idx < n * n; idx += int(blockDim.x)) {
        const int i = idx / n, j = idx % n;
        if (j > i) continue;
        const float* Gi = chunk_record(record, d, r0 + i, h);
        const float* Gj = chunk_record(record, d, r0 + j, h);
        const float* qi = act + (r0 + i) * 3 * D + int64_t(h) * K;
        const float* ki = qi + D;
        const float* kj = act + (r0 + j) * 3 * D + D + int64_t(h) * K;
        float skk = 0.0f, sqk = 0.0f;
        for (int e = 0; e < K; ++e) {
            const float kd = kj[e] * expf(Gi[e] - Gj[e]);
            skk += ki[e] * kd;
            sqk += qi[e] * kd;
        }
        A[i][j] = j < i ? beta[(r0 + i) * H + h] * skk : 0.0f;
        chunk_record(record, d, r0 + i, h)[3 * K + j] = sqk;
    }
    __syncthreads();

    // Columns 0..K-1 solve for U (value columns), K..2K-1 for Wm (key columns); each thread owns its column.
    for (int col = tid; col < 2 * K; col += int(blockDim.x)) {
        const bool is_u = col < K;
        const int e = is_u ? col : col - K;
        const int at = is_u ? 2 * K + e : K + e;
        for (int i = 0; i < n; ++i) {
            float* rec = chunk_record(record, d, r0 + i, h);
            const float* a = act + (r0 + i) * 3 * D + int64_t(h) * K;
            const float b = beta[(r0 + i) * H + h];
            float x = is_u ? b * a[2 * D + e] : b * expf(rec[e]) * a[D + e];
            for (int j = 0; j < i; ++j) x -= A[i][j] * chunk_record(record, d, r0 + j, h)[at];
            rec[at] = x;
        }
    }
}

// Part 2: a block owns one (run, head, block of 32 value columns) and keeps that block of the F32 state in shared
// memory across the run's chunks (3 barriers per chunk). Grid: (ceil(K / 32), H, runs). K <= 128.
__global__ void __launch_bounds__(kThreads) kda_chunk_state_kernel(KdaDims d, const KdaRun* runs, const float* act,
                                                                   const float* record, float* state, float* o) {
    __shared__ float Sb[kKdaMaxChunkedHeadDim * kCols];  // [K][32]
    __shared__ float Vn[kKdaMaxChunk * kCols];           // [C][32]
    const int tid = int(threadIdx.x), h = int(blockIdx.y), e0 = int(blockIdx.x) * kCols;
    const int K = d.head_dim, D = d.width(), H = d.heads;
    const KdaRun run = runs[blockIdx.z];
    const int nb = K - e0 < kCols ? K - e0 : kCols;
    float* S = state + (int64_t(run.slot) * H + h) * K * K;

    for (int idx = tid; idx < K * kCols; idx += int(blockDim.x)) {
        const int r = idx / kCols, el = idx % kCols;
        Sb[idx] = el < nb ? S[int64_t(r) * K + e0 + el] : 0.0f;
    }
    __syncthreads();

    for (int c0 = 0; c0 < run.n_tokens; c0 += d.chunk) {
        const int n = run.n_tokens - c0 < d.chunk ? run.n_tokens - c0 : d.chunk;
        const int64_t r0 = int64_t(run.first_row) + c0;
        for (int idx = tid; idx < n * kCols; idx += int(blockDim.x)) {  // V' = U - Wm S0
            const int i = idx / kCols, el = idx % kCols;
            float acc = 0.0f;
            if (el < nb) {
                const float* rec = chunk_record(record, d, r0 + i, h);
                acc = rec[2 * K + e0 + el];
                for (int r = 0; r < K; ++r) acc -= rec[K + r] * Sb[r * kCols + el];
            }
            Vn[idx] = acc;
        }
        __syncthreads();
        for (int idx = tid; idx < n * kCols; idx += int(blockDim.x)) {  // O
            const int i = idx / kCols, el = idx % kCols;
            if (el >= nb) continue;
            const float* rec = chunk_record(record, d, r0 + i, h);
            const float* q = act + (r0 + i) * 3 * D + int64_t(h) * K;
            float acc = 0.0f;
            for (int r = 0; r < K; ++r) acc += expf(rec[r]) * q[r] * Sb[r * kCols + el];
            for (int j = 0; j <= i; ++j) acc += rec[3 * K + j] * Vn[j * kCols + el];
            o[(r0 + i) * D + int64_t(h) * K + e0 + el] = acc;
        }
        __syncthreads();
        const float* last = chunk_record(record, d, r0 + n - 1, h);
        for (int idx = tid; idx < K * kCols; idx += int(blockDim.x)) {  // S
            const int r = idx / kCols, el = idx % kCols;
            float acc = expf(last[r]) * Sb[idx];
            for (int j = 0; j < n; ++j)
                acc += expf(last[r] - chunk_record(record, d, r0 + j, h)[r]) * act[(r0 + j) * 3 * D + D + int64_t(h) * K + r] *
                       Vn[j * kCols + el];
            Sb[idx] = acc;
        }
        __syncthreads();
    }

    for (int idx = tid; idx < K * kCols; idx += int(blockDim.x)) {
        const int r = idx / kCols, el = idx % kCols;
        if (el < nb) S[int64_t(r) * K + e0 + el] = Sb[idx];
    }
}

}  // namespace

void launch_kda_chunk_prep(const Launch& l, const KdaDims& d, const KdaChunk* chunks, int32_t n_chunks,
                           const float* act, const float* gate, const float* beta, float* record) {
    if (n_chunks <= 0) return;
    hipLaunchKernelGGL(kda_chunk_prep_kernel, dim3(unsigned(n_chunks), unsigned(d.heads)), dim3(kThreads), 0,
                       l.stream, d, chunks, act, gate, beta, record);
    Execution::check_launch("kda_chunk_prep");
}

void launch_kda_chunk_state(const Launch& l, const KdaDims& d, const KdaRun* runs, int32_t n_runs, const float* act,
                            const float* record, float* state, float* o) {
    if (n_runs <= 0) return;
    const dim3 grid(unsigned((d.head_dim + kCols - 1) / kCols), unsigned(d.heads), unsigned(n_runs));
    hipLaunchKernelGGL(kda_chunk_state_kernel, grid, dim3(kThreads), 0, l.stream, d, runs, act, record, state, o);
    Execution::check_launch("kda_chunk_state");
}

}  // namespace halo::hip
