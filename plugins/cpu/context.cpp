#include "plugins/cpu/context.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <stdexcept>

namespace halo::cpu {

float* Arena::floats(int64_t n) {
    const int64_t need = arena_take(n);
    demand_ += need;
    for (Block& b : blocks_)
        if (b.size - b.used >= need) {
            float* p = b.data + b.used;
            b.used += need;
            return p;
        }
    const int64_t size = std::max<int64_t>(need, kMinBlockFloats);
    float* data = static_cast<float*>(std::aligned_alloc(64, size_t(size) * 4));
    if (!data) throw std::bad_alloc();
    blocks_.push_back({data, size, need});
    total_ += size;
    return data;
}

void Arena::replace_blocks(int64_t size) {
    for (Block& b : blocks_) std::free(b.data);
    blocks_.clear();
    total_ = 0;
    float* data = static_cast<float*>(std::aligned_alloc(64, size_t(size) * 4));
    if (!data) throw std::bad_alloc();
    blocks_.push_back({data, size, 0});
    total_ = size;
}

void Arena::reset() {
    peak_ = std::max(peak_, demand_);
    demand_ = 0;
    if (blocks_.size() > 1) replace_blocks(held_for(peak_));  // one block for the largest op seen so far
    for (Block& b : blocks_) b.used = 0;
}

void Arena::reserve(int64_t demand) {
    peak_ = std::max(peak_, demand);
    if (blocks_.size() != 1 || blocks_[0].size < held_for(peak_)) replace_blocks(held_for(peak_));
    blocks_[0].used = 0;
    demand_ = 0;
}

Arena::~Arena() {
    for (Block& b : blocks_) std::free(b.data);
}

namespace {

bool batch_invariant_from_env() {
    const char* env = std::getenv("HALO_CPU_BATCH_INVARIANT");
    const std::string v = env ? env : "";
    if (v.empty() || v == "1") return true;
    if (v == "0") return false;
    throw std::runtime_error("HALO_CPU_BATCH_INVARIANT=" + (v.size() > 40 ? v.substr(0, 40) + "..." : v) +
                             " is not 0 or 1; set 1 (the default: a sequence computes the same bits alone or batched) "
                             "or 0 (kernels chosen by the rows of each call: results depend on the batch in the last "
                             "bits)");
}

QuantDot quant_dot_from_env() {
    const char* env = std::getenv("HALO_CPU_QUANT_DOT");
    const std::string v = env ? env : "";
    if (v.empty() || v == "exact") return QuantDot::exact;
    if (v == "int8") {
        const char* isa = std::getenv("HALO_CPU_ISA");
        if (!cpu_has_avx512_vnni() || (isa && std::string(isa) == "generic"))
            throw std::runtime_error("HALO_CPU_QUANT_DOT=int8 needs the AVX-512 kernels with VNNI, which this processor "
                                     "(or HALO_CPU_ISA) does not provide; unset it or set exact");
        return QuantDot::int8;
    }
    throw std::runtime_error("HALO_CPU_QUANT_DOT=" + (v.size() > 40 ? v.substr(0, 40) + "..." : v) +
                             " is not exact or int8; set exact (the default: quantized weights dequantized exactly, "
                             "activations in f32) or int8 (activations rounded to int8 per 32 inputs for integer dot "
                             "products: faster decode, results off by the activations' rounding)");
}

}  // namespace

CpuContext::CpuContext(int threads) : k(best_kernels()), pool(threads), batch_invariant(batch_invariant_from_env()) {
    g_quant_dot = quant_dot_from_env();
    pack.resize(static_cast<size_t>(pool.size()));
    for (auto& p : pack) p.resize(size_t(kPackBufferFloats) + 16);
}

Matrix CpuContext::as_matrix(const ops::Tensor& w) {
    Matrix m;
    m.data = w.host();
    m.dtype = w.dtype;
    m.rows = w.shape[0];
    m.cols = w.numel() / std::max<int64_t>(w.shape[0], 1);
    m.ld = m.cols;
    if (w.quantized()) {
        m.scales = w.scale_host();
        m.scale_dtype = w.scale.dtype;
        m.group = w.scale.group;
    }
    return m;
}

Matrix CpuContext::row_block(const ops::Tensor& w, int64_t first, int64_t count) {
    Matrix m = as_matrix(w);
    m.data = static_cast<const char*>(m.data) + size_t(first) * m.stored_row_bytes();
    if (m.quantized())
        m.scales = static_cast<const char*>(m.scales) + size_t(first) * size_t(m.scale_ld()) * ops::dtype_size(m.scale_dtype);
    m.rows = count;
    return m;
}

void CpuContext::matmul(int64_t M, const float* x, int64_t ldx, const Matrix& w, float* y, int64_t ldy, bool acc) {
    matmul_with(default_matmul(), M, x, ldx, w, y, ldy, acc);
}

void CpuContext::matmul(const ops::SeqBatch* batch, int64_t M, const float* x, int64_t ldx, const Matrix& w, float* y,
                        int64_t ldy, bool acc) {
    if (!batch_invariant || !batch || batch->n_rows != M || batch->n_runs <= 0) {
        matmul(M, x, ldx, w, y, ldy, acc);
        return;
    }
    // Runs tile the rows in order: one call per stretch of runs of the same kind.
    for (int32_t i = 0; i < batch->n_runs;) {
        const bool decode = batch->runs[i].n_tokens <= kFewRowRun;
        int32_t j = i + 1;
        while (j < batch->n_runs && (batch->runs[j].n_tokens <= kFewRowRun) == decode) ++j;
        const int64_t r0 = batch->runs[i].first_row, r1 = batch->runs[j - 1].first_row + batch->runs[j - 1].n_tokens;
        matmul_with(decode ? k.matmul_rows : k.matmul_packed, r1 - r0, x + r0 * ldx, ldx, w, y + r0 * ldy, ldy, acc);
        i = j;
    }
}

void CpuContext::matmul_group(const ops::SeqBatch* batch, int64_t M, const Product* products, int n_products) {
    if (M <= 0 || n_products <= 0) return;
    // Which kernel sums every row as matmul(batch, ...) would, when one kernel does: without batch invariance the
    // default one for M rows, with it the few-row one when every run is a decode run.
    MatmulKernel kernel = nullptr;
    if (!batch_invariant)
        kernel = k.matmul;
    else if (!batch || batch->n_rows != M || batch->n_runs <= 0)
        kernel = k.matmul_rows;
    else {
        bool all_decode = true;
        for (int32_t i = 0; i < batch->n_runs; ++i) all_decode = all_decode && batch->runs[i].n_tokens <= kFewRowRun;
        if (all_decode) kernel = k.matmul_rows;
    }
    if (!kernel || M > kFewRowRun) {
        for (int i = 0; i < n_products; ++i) {
            const Product& p = products[i];
            matmul(batch, M, p.x, p.ldx, p.w, p.y, p.ldy);
        }
        return;
    }
    // Column chunks of one size for all products, multiples of the unit matmul_with uses, about four per thread.
    const int threads = pool.size();
    const int64_t unit = M <= 4 ? 16 : 32;
    int64_t units = 0;
    for (int i = 0; i < n_products; ++i) units += (products[i].w.rows + unit - 1) / unit;
    const int64_t per = std::max<int64_t>(1, units / (threads * 4)) * unit;
    constexpr int kMaxChunks = 4096;  // on the stack: a decode step allocates nothing
    struct Chunk {
        int product;
        int64_t n0;
    };
    Chunk chunks[kMaxChunks];
    int n_chunks = 0;
    for (int i = 0; i < n_products; ++i)
        for (int64_t n0 = 0; n0 < products[i].w.rows; n0 += per) {
            if (n_chunks == kMaxChunks) throw std::runtime_error("cpu: matmul_group over more than 4096 chunks");
            chunks[n_chunks++] = {i, n0};
        }
    pool.run(n_chunks, [&](int64_t t, int thread) {
        const Chunk& c = chunks[t];
        const Product& p = products[c.product];
        kernel(M, p.x, p.ldx, p.w, c.n0, std::min(p.w.rows, c.n0 + per), p.y, p.ldy, false, pack_buffer(thread));
    });
}

void CpuContext::matmul_with(MatmulKernel kernel, int64_t M, const float* x, int64_t ldx, const Matrix& w, float* y,
                             int64_t ldy, bool acc) {
    const int64_t N = w.rows;
    if (M <= 0 || N <= 0) return;
    const int threads = pool.size();
    // Column chunks: multiples of the 32-wide panel, about 4 per thread for balance (64 rows for matvec shapes).
    const int64_t unit = M <= 4 && !w.kn ? 16 : 32;
    const int64_t units = (N + unit - 1) / unit;
    int64_t per = std::max<int64_t>(1, units / (threads * 4));
    const int64_t n_chunks = (units + per - 1) / per;
    // Row blocks when there are many rows and few column chunks.
    const int64_t row_block = (n_chunks >= threads * 2 || M <= 64) ? M : std::max<int64_t>(64, (M + threads * 2 - 1) / (threads * 2) / 8 * 8);
    const int64_t m_blocks = (M + row_block - 1) / row_block;
    pool.run(n_chunks * m_blocks, [&](int64_t t, int thread) {
        const int64_t ci = t % n_chunks, mi = t / n_chunks;
        const int64_t n0 = ci * per * unit, n1 = std::min(N, n0 + per * unit);
        const int64_t m0 = mi * row_block, m1 = std::min(M, m0 + row_block);
        float* pk = pack_buffer(thread);
        kernel(m1 - m0, x + m0 * ldx, ldx, w, n0, n1, y + m0 * ldy, ldy, acc, pk);
    });
}

}  // namespace halo::cpu
