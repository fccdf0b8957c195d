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

private:
    // Every op: timed under its name and whether it had one row (decode) or many (prefill).
    void on_op(const ops::OpCall& call) override {
        time(call.traits().name, call.output().rows(), [&] { ops::run_op(inner_, call); });
    }

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
