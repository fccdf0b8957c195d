// Per-sequence state bookkeeping: which KDA state slot a sequence owns and which MLA cache pages hold its tokens.
// The memory itself belongs to the backend (see Model); this only hands out indices.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace halo {

class CapacityError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Move-only: a copy would hand the same slot and pages back to the pool twice.
struct Sequence {
    Sequence() = default;
    Sequence(const Sequence&) = delete;
    Sequence& operator=(const Sequence&) = delete;
    Sequence(Sequence&&) = default;
    Sequence& operator=(Sequence&&) = default;

    int32_t slot = -1;           // KDA state / conv history slot
    std::vector<int32_t> pages;  // MLA cache pages, in token order
    int64_t n_tokens = 0;        // tokens consumed so far (= MLA cache length)
};

// Hands out slot and page indices. Not thread-safe: owned by the engine thread.
class StatePool {
public:
    StatePool(int32_t slots, int32_t pages, int32_t page_size);

    int32_t page_size() const { return page_size_; }
    int32_t total_slots() const { return total_slots_; }
    int32_t total_pages() const { return total_pages_; }
    int32_t free_slots() const { return int32_t(free_slots_.size()); }
    int32_t free_pages() const { return int32_t(free_pages_.size()); }

    // Gives the sequence a slot. Throws CapacityError when every slot is taken.
    void attach(Sequence& seq);
    // Makes sure the sequence has pages for `tokens` tokens in total. Throws CapacityError (allocating nothing)
    // when the pool cannot cover them.
    void reserve(Sequence& seq, int64_t tokens);
    // Returns the slot and the pages.
    void detach(Sequence& seq);

private:
    int32_t page_size_, total_slots_, total_pages_;
    std::vector<int32_t> free_slots_, free_pages_;
};

}  // namespace halo
