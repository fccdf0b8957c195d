// What every CPU op needs: the kernel table, the thread pool, per-thread packing scratch and a scratch arena.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "ops/backend.h"
#include "plugins/cpu/kernels.h"
#include "plugins/cpu/thread_pool.h"

namespace halo::cpu {

// Floats one Arena::floats(n) call takes (64-byte granules).
inline int64_t arena_take(int64_t n) { return (std::max<int64_t>(n, 1) + 15) / 16 * 16; }

// Bump allocator for one op's temporaries; reset() at the start of each op. Grows by adding blocks and, on the next
// reset, replaces them with one block of the largest demand seen in one op, so steady state is a single allocation
// of held_for(largest demand) floats.
class Arena {
public:
    static constexpr int64_t kMinBlockFloats = int64_t(1) << 16;
    // Floats held once the largest demand of one op (the sum of its arena_take) was `demand`.
    static int64_t held_for(int64_t demand) { return std::max(demand, kMinBlockFloats); }

    float* floats(int64_t n);  // 64-byte aligned, uninitialised
    void reset();
    // Holds held_for(demand) floats in one block now (a block at least that large stays).
    void reserve(int64_t demand);
    uint64_t bytes() const { return uint64_t(total_) * 4; }
    ~Arena();

private:
    struct Block {
        float* data;
        int64_t size, used;
    };
    void replace_blocks(int64_t size);
    std::vector<Block> blocks_;
    int64_t total_ = 0;
    int64_t demand_ = 0;  // floats taken since the last reset
    int64_t peak_ = 0;    // the largest demand of one op so far
};

// Stands in for the Arena in an op's sizing function: counts what the same floats() calls would take.
struct ArenaCounter {
    int64_t used = 0;
    float* floats(int64_t n) {
        used += arena_take(n);
        return nullptr;
    }
};

// Runs of a step with at most this many tokens (decode tokens, short prompt chunks) take the few-row summation order
// under batch invariance, longer runs the packed kernels: a row's result depends on its own run's length only. Short
// chunks stay cheap (packing the weights for a few rows costs about a decode step).
constexpr int32_t kFewRowRun = 32;

struct CpuContext {
    explicit CpuContext(int threads);

    const Kernels& k;
    ThreadPool pool;
    std::vector<std::vector<float>> pack;  // per thread, kPackBufferFloats each (use pack_buffer)
    Arena arena;
    // Projections sum each row in one fixed order whatever the number of rows (Kernels::matmul_rows), so a
    // sequence's tokens come out the same alone or batched; HALO_CPU_BATCH_INVARIANT=0 turns it off (faster prefill).
    bool batch_invariant = true;

    // The calling pool thread's 64-byte aligned kPackBufferFloats scratch for the Kernels' products.
    float* pack_buffer(int thread) {
        float* p = pack[size_t(thread)].data();
        return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
    }

    using MatmulKernel = decltype(Kernels::matmul);
    // y[M, N] (+)= x[M, K] W^T, parallel over output columns (and rows when M is large). Rows of unknown origin:
    // with batch_invariant every row is summed in the few-row order.
    void matmul(int64_t M, const float* x, int64_t ldx, const Matrix& w, float* y, int64_t ldy, bool accumulate = false);
    // The same for a forward step's rows (batch may be null). With batch_invariant, rows of runs of at most
    // kFewRowRun tokens (decode) are summed in the few-row order and longer runs by packed panels: each row's result
    // depends on its own run's length only, never on what else is in the step, and prompts keep the packed speed.
    void matmul(const ops::SeqBatch* batch, int64_t M, const float* x, int64_t ldx, const Matrix& w, float* y,
                int64_t ldy, bool accumulate = false);
    void matmul(const ops::SeqBatch* batch, int64_t M, const float* x, int64_t ldx, const ops::Tensor& w, float* y,
                int64_t ldy, bool accumulate = false) {
        matmul(batch, M, x, ldx, as_matrix(w), y, ldy, accumulate);
    }
    // Several products over the same M rows, each with its own x, W and y: y_i[M, N_i] = x_i[M, K_i] W_i^T.
    // Decode rows (M <= kFewRowRun, under batch invariance runs of at most kFewRowRun tokens) go through one
    // parallel loop over the column chunks of all of them, so small matrices do not each cost a loop of their own
    // and the threads stream one matrix after another without waiting at each; other rows run as separate matmul
    // calls. Every column is summed as matmul(batch, ...) would sum it.
    struct Product {
        const float* x;
        int64_t ldx;
        Matrix w;
        float* y;
        int64_t ldy;
    };
    void matmul_group(const ops::SeqBatch* batch, int64_t M, const Product* products, int n_products);
    // matmul with a chosen kernel.
    void matmul_with(MatmulKernel kernel, int64_t M, const float* x, int64_t ldx, const Matrix& w, float* y, int64_t ldy,
                     bool accumulate);
    // The kernel for rows of unknown origin.
    MatmulKernel default_matmul() const { return batch_invariant ? k.matmul_rows : k.matmul; }
    void matmul(int64_t M, const float* x, int64_t ldx, const ops::Tensor& w, float* y, int64_t ldy,
                bool accumulate = false) {
        matmul(M, x, ldx, as_matrix(w), y, ldy, accumulate);
    }
    static Matrix as_matrix(const ops::Tensor& w);
    // Rows [first, first + count) of a weight tensor seen as a matrix [rows, cols].
    static Matrix row_block(const ops::Tensor& w, int64_t first, int64_t count);
};

// Bytes of the per-thread packing scratch (CpuContext::pack) of a pool of `threads`.
inline uint64_t pack_bytes(int threads) { return uint64_t(threads) * uint64_t(kPackBufferFloats + 16) * 4; }

// What each op takes from the arena for a step, from the sizing code the op itself allocates with (plan.cpp picks
// the largest steps the core will run).
int64_t rms_norm_arena(int64_t width);
int64_t mlp_arena(int64_t rows, int64_t inter);
int64_t kda_arena(const ops::StepShape& s, int64_t rows, int threads);
// runs: the step's sequences (n_tokens and pos are read); each takes the form the op would choose.
int64_t mla_arena(const ops::StepShape& s, const std::vector<ops::SeqRun>& runs, int threads);
// rows: the step's rows; experts: how many distinct routed experts they reach (1..min(E, rows * top_k)), with the
// rows' choices spread over them as evenly as possible.
int64_t moe_arena(const ops::StepShape& s, int64_t rows, int64_t experts);
// The plugin's own memory once steps up to `s` have run: the arena (its largest op) and the packing scratch.
std::vector<ops::InternalUse> plan_internal(const ops::StepShape& s, int threads);
// Reserves the arena plan_internal counts.
void reserve_arena(Arena& arena, const ops::StepShape& s, int threads);

// Ops, one file each (glue.cpp holds the row-wise ones): for each op of ops/op_list.h, a function taking the context
// and what Backend::<op> takes, e.g. void kda(CpuContext& c, const KdaParams& p, const SeqBatch& batch);
#define HALO_CPU_OP(name, Params, call, ...) void name(CpuContext& c, HALO_OP_SIGNATURE(Params, call));
HALO_OPS(HALO_CPU_OP)
#undef HALO_CPU_OP

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace halo::cpu
