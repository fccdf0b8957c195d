// A forward step works on a batch of sequences. Each sequence contributes one run of consecutive rows of the
// step's activation matrices (a prefill chunk, or one decode token) and names its own state: a KDA state slot
// and the pages of its MLA latent cache.
#pragma once

#include <cstdint>

namespace halo::ops {

struct SeqRun {
    int32_t first_row = 0;          // first row of this run in the step's [rows, ...] activations
    int32_t n_tokens = 0;           // rows in this run (>= 1)
    int32_t slot = 0;               // KDA state / conv history slot of this sequence
    int64_t pos = 0;                // tokens the sequence had consumed before this run (its cache length)
    const int32_t* pages = nullptr; // MLA cache page table: page of token t is pages[t / page_size]
    int32_t n_pages = 0;            // entries in pages; must cover pos + n_tokens tokens
};

// Runs are ordered by first_row and tile [0, n_rows) without gaps. Host memory; the plugin copies what it needs
// before the op returns, so the caller may reuse it right after.
struct SeqBatch {
    const SeqRun* runs = nullptr;
    int32_t n_runs = 0;
    int32_t n_rows = 0;
};

}  // namespace halo::ops
