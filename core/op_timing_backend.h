// A Backend decorator that times every op (synchronising after each, so GPU times are real) and counts the bytes
// each op must read from memory. Turned on with HALO_OP_TIMING=1 (prints a table of time per op kind on destruction
// or on report()), and by `engine bench` for its decode profile (switched on only for the profiled pass; switched
// off, ops go straight through untimed). Slows GPU backends down.
#pragma once

#include <compare>
#include <map>
#include <string>

#include "core/forwarding_backend.h"

namespace halo {

// Bytes one op call must read from memory, counted as `engine bench` counts a decode token's bytes (see
// Model::decode_weight_bytes and decode_state_bytes): every weight once (tensors in weights buffers; for the
// embedding only the rows looked up; for an MoE the router, the shared expert and top_k experts per row, at most
// all of them), and the sequence state (each run's KDA state and conv history, read and written; each run's MLA
// cache over its whole context). Activations are not counted.
struct OpBytes {
    uint64_t weights = 0;
    uint64_t state = 0;  // KDA state and conv history, MLA cache
};
OpBytes op_read_bytes(const ops::OpCall& call);

class OpTimingBackend final : public ForwardingBackend {
public:
    // report_at_exit: print the table on destruction (what HALO_OP_TIMING=1 wants).
    explicit OpTimingBackend(ops::Backend& inner, bool report_at_exit = true)
        : ForwardingBackend(inner), report_at_exit_(report_at_exit) {}
    ~OpTimingBackend() override;
    void report() const;  // prints to stderr

    // Off: ops run on the wrapped backend untimed and uncounted. On by default.
    void set_enabled(bool on) { enabled_ = on; }
    // A linear op with this many output columns is recorded as "lm_head" rather than "linear" (0: none is).
    void set_lm_head_width(int64_t vocab) { lm_head_width_ = vocab; }
    void clear() { entries_.clear(); }

    // What the recorded calls of one op kind add up to. The kind is the op's name, except "lm_head" (see
    // set_lm_head_width) and "row gather" (an embedding whose table is not a weight: the engine gathering the rows
    // that need logits).
    struct Key {
        std::string op;
        bool one_row = false;  // the calls had one row (decode), or many (prefill)
        auto operator<=>(const Key&) const = default;
    };
    struct Entry {
        double seconds = 0;
        int64_t calls = 0, rows = 0;
        OpBytes bytes;  // summed over the calls
    };
    const std::map<Key, Entry>& entries() const { return entries_; }

private:
    void on_op(const ops::OpCall& call) override;

    bool report_at_exit_ = true, enabled_ = true;
    int64_t lm_head_width_ = 0;
    std::map<Key, Entry> entries_;
};

}  // namespace halo
