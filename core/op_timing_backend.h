// A Backend decorator that times every op (synchronising after each, so GPU times are real) and prints a table of
// time per op kind on destruction or on report(). Turned on with HALO_OP_TIMING=1; slows GPU backends down.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "core/forwarding_backend.h"

namespace halo {

class OpTimingBackend final : public ForwardingBackend {
public:
    explicit OpTimingBackend(ops::Backend& inner) : ForwardingBackend(inner) {}
    ~OpTimingBackend() override;
    void report() const;  // prints to stderr

    void embedding(const ops::EmbeddingParams& p) override { time("embedding", p.out.rows(), [&] { inner_.embedding(p); }); }
    void rms_norm(const ops::RmsNormParams& p) override { time("rms_norm", p.x.rows(), [&] { inner_.rms_norm(p); }); }
    void add(const ops::AddParams& p) override { time("add", p.out.rows(), [&] { inner_.add(p); }); }
    void linear(const ops::LinearParams& p) override { time("linear", p.x.rows(), [&] { inner_.linear(p); }); }
    void mlp(const ops::MlpParams& p) override { time("mlp", p.x.rows(), [&] { inner_.mlp(p); }); }
    void kda(const ops::KdaParams& p, const ops::SeqBatch& b) override { time("kda", b.n_rows, [&] { inner_.kda(p, b); }); }
    void mla(const ops::MlaParams& p, const ops::SeqBatch& b) override { time("mla", b.n_rows, [&] { inner_.mla(p, b); }); }
    void moe(const ops::MoeParams& p) override { time("moe", p.x.rows(), [&] { inner_.moe(p); }); }

private:
    template <class F>
    void time(const char* op, int64_t rows, F&& f) {
        inner_.begin_step();
        const auto t0 = std::chrono::steady_clock::now();
        f();
        inner_.end_step();
        inner_.synchronize();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        Entry& e = entries_[std::string(op) + (rows == 1 ? " (1 row)" : " (many rows)")];
        e.seconds += s;
        e.calls += 1;
        e.rows += rows;
    }
    struct Entry {
        double seconds = 0;
        int64_t calls = 0, rows = 0;
    };
    std::map<std::string, Entry> entries_;
};

}  // namespace halo
