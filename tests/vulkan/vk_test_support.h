// Helpers of the Vulkan-specific tests: a Vulkan backend created in-process (so tests can reach its internals and
// set the HALO_VULKAN_* test overrides first), host/device tensor pairs, and comparison with the reference.
#pragma once

#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ops/batch.h"
#include "ops/mla.h"
#include "ops/reference/host_buffer.h"
#include "plugins/vulkan/backend.h"

namespace halo::test {

// Sets environment variables for its lifetime (the Vulkan device reads the HALO_VULKAN_* overrides at creation).
class ScopedEnv {
public:
    ScopedEnv(std::initializer_list<std::pair<const char*, std::string>> vars) {
        for (const auto& [k, v] : vars) {
            const char* old = std::getenv(k);
            saved_.push_back({k, old ? old : "", old != nullptr});
            ::setenv(k, v.c_str(), 1);
        }
    }
    ~ScopedEnv() {
        for (const auto& s : saved_) {
            if (s.had) ::setenv(s.key.c_str(), s.value.c_str(), 1);
            else ::unsetenv(s.key.c_str());
        }
    }

private:
    struct Saved {
        std::string key, value;
        bool had;
    };
    std::vector<Saved> saved_;
};

inline std::unique_ptr<vk::VulkanBackend> make_vulkan(ops::BackendOptions o = {}) {
    return std::make_unique<vk::VulkanBackend>(o);
}

inline std::vector<float> random_values(size_t n, uint64_t seed, float scale = 1.0f) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

// A tensor twice: in host memory (for the reference) and in a Vulkan buffer.
struct Pair {
    std::unique_ptr<ops::HostBuffer> host;
    ops::Buffer* dev = nullptr;
    ops::Tensor ref, vk;
};

class Tensors {
public:
    explicit Tensors(ops::Backend& b, int32_t placement = -1) : b_(b), placement_(placement) {}
    ~Tensors() {
        for (auto& p : pairs_) b_.release(p->dev);
    }
    Pair& make(ops::DType dt, std::initializer_list<int64_t> dims, const std::vector<float>& values,
               ops::MemoryUse use = ops::MemoryUse::weights) {
        auto p = std::make_unique<Pair>();
        int64_t n = 1;
        for (int64_t d : dims) n *= d;
        const uint64_t bytes = uint64_t(n) * ops::dtype_size(dt);
        p->host = std::make_unique<ops::HostBuffer>(use, 0, bytes);
        for (int64_t i = 0; i < n; ++i)
            ops::store_from_f32(p->host->host, dt, size_t(i), values.empty() ? 0.0f : values[size_t(i) % values.size()]);
        int32_t placement = placement_;
        if (placement < 0) {
            const auto& d = b_.device();
            for (size_t i = 0; i < d.placements.size(); ++i)
                if (d.placements[i].name == d.default_placement[int(use)]) placement = int32_t(i);
        }
        p->dev = b_.allocate(use, placement, bytes);
        b_.write(p->dev, 0, p->host->host, bytes);
        p->ref = ops::make_tensor(p->host.get(), 0, dt, dims);
        p->vk = ops::make_tensor(p->dev, 0, dt, dims);
        pairs_.push_back(std::move(p));
        return *pairs_.back();
    }
    Pair& ids(const std::vector<int32_t>& v) {
        std::vector<float> f(v.begin(), v.end());
        return make(ops::DType::i32, {int64_t(v.size())}, f, ops::MemoryUse::scratch);
    }

private:
    ops::Backend& b_;
    int32_t placement_;
    std::vector<std::unique_ptr<Pair>> pairs_;
};

// max |vk - ref| / rms(ref) over the tensor; NaN/Inf anywhere fail.
inline double normalised_error(ops::Backend& b, const Pair& p) {
    const ops::Tensor& t = p.ref;
    std::vector<uint8_t> got(t.bytes());
    b.read(p.dev, p.vk.offset, got.data(), got.size());
    double ss = 0, mx = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
        const double want = ops::load_as_f32(t.host(), t.dtype, size_t(i));
        const double have = ops::load_as_f32(got.data(), t.dtype, size_t(i));
        if (!std::isfinite(have) || !std::isfinite(want)) return INFINITY;
        ss += want * want;
        mx = std::max(mx, std::fabs(have - want));
    }
    return mx / std::max(std::sqrt(ss / double(std::max<int64_t>(t.numel(), 1))), 1e-30);
}

// A batch of token runs over a paged MLA cache: run i has run_tokens[i] new tokens after `history` cached ones, its
// rows follow the previous run's, and its page table covers history + tokens. Owns the tables the runs point into
// (so it is neither copied nor moved).
struct PagedRuns {
    enum class PageOrder { ascending, from_top };  // from_top: pages handed out downwards, tables not the identity

    PagedRuns(const std::vector<int>& run_tokens, int history, int32_t page_size, PageOrder order) {
        for (int n : run_tokens) {
            rows += n;
            pages += (history + n + page_size - 1) / page_size;
        }
        int32_t page = order == PageOrder::ascending ? 0 : int32_t(pages) - 1;
        for (int n : run_tokens) {
            tables.emplace_back();
            for (int64_t i = 0; i < (history + n + page_size - 1) / page_size; ++i)
                tables.back().push_back(order == PageOrder::ascending ? page++ : page--);
        }
        int32_t row = 0;
        for (size_t i = 0; i < run_tokens.size(); ++i) {
            ops::SeqRun s;
            s.first_row = row;
            s.n_tokens = run_tokens[i];
            s.pos = history;
            s.pages = tables[i].data();
            s.n_pages = int32_t(tables[i].size());
            runs.push_back(s);
            row += run_tokens[i];
        }
    }
    PagedRuns(const PagedRuns&) = delete;
    PagedRuns& operator=(const PagedRuns&) = delete;

    ops::SeqBatch batch() const { return {runs.data(), int32_t(runs.size()), int32_t(rows)}; }

    int64_t rows = 0;   // tokens over all runs
    int64_t pages = 0;  // cache pages the tables use, numbered [0, pages)
    std::vector<std::vector<int32_t>> tables;
    std::vector<ops::SeqRun> runs;
};

// The tensors of one MLA call, each in host memory (reference) and in a Vulkan buffer.
struct MlaPairs {
    Pair &q_proj, &kv_a, &kv_norm, &kv_b, &o_proj;
    Pair &x, &out, &cache;
};

// MLA widths as MlaParams names them: H heads, dn/dr/dv per head, r the latent rank.
struct MlaDims {
    int64_t H, dn, dr, dv, r;
};

// MlaParams over the reference's tensors (ref) or the Vulkan ones, softmax scale (dn+dr)^-0.5, default eps and form.
inline ops::MlaParams mla_params(const MlaPairs& t, const MlaDims& d, int32_t page_size, bool ref) {
    auto pick = [ref](const Pair& pr) { return ref ? pr.ref : pr.vk; };
    ops::MlaParams p;
    p.w = {pick(t.q_proj), pick(t.kv_a), pick(t.kv_norm), pick(t.kv_b), pick(t.o_proj)};
    p.n_heads = int32_t(d.H);
    p.qk_nope_dim = int32_t(d.dn);
    p.qk_rope_dim = int32_t(d.dr);
    p.v_dim = int32_t(d.dv);
    p.kv_lora_rank = int32_t(d.r);
    p.softmax_scale = float(1.0 / std::sqrt(double(d.dn + d.dr)));
    p.x = pick(t.x);
    p.out = pick(t.out);
    p.cache = pick(t.cache);
    p.page_size = page_size;
    return p;
}

}  // namespace halo::test
