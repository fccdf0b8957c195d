// Per-sequence state bookkeeping: which KDA state slot a sequence owns and which MLA cache pages hold its tokens.
// The memory itself belongs to the backend (see Model); this only hands out indices.
//
// Pages are reference-counted: a sequence that resumes from a cached prefix shares that prefix's pages with the
// prefix cache (and with other sequences resumed from it). A shared page is never written: Model copies it to a page
// of the sequence's own first (copy-on-write, see StatePool::shared and replace).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
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
    std::vector<int32_t> pages;  // MLA cache pages, in token order (one reference each)
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
    // when the pool cannot cover them, even after asking the reclaimer.
    void reserve(Sequence& seq, int64_t tokens);
    // Returns the slot and drops the sequence's page references.
    void detach(Sequence& seq);

    // ---- shared pages (the prefix cache) ------------------------------------------------------------------
    // One more reference to each page; `pages` must be held already.
    void retain(std::span<const int32_t> pages);
    // One reference less to each page; a page nobody holds is free again.
    void release(std::span<const int32_t> pages);
    // A free page with one reference (for a copy-on-write or a page read back from disk). Throws CapacityError.
    int32_t take_page();
    // Whether someone beside the caller holds the page (it must be copied before it is written).
    bool shared(int32_t page) const { return refs_[size_t(page)] > 1; }
    int32_t references(int32_t page) const { return refs_[size_t(page)]; }
    // Called when a page is needed and none is free: frees at least one page (the prefix cache evicts its least
    // recently used entry) and returns true, or returns false when it cannot.
    void set_reclaimer(std::function<bool()> reclaim) { reclaim_ = std::move(reclaim); }

private:
    bool ensure_free(int64_t n);  // asks the reclaimer until n pages are free; false when it cannot

    int32_t page_size_, total_slots_, total_pages_;
    std::vector<int32_t> free_slots_, free_pages_;
    std::vector<int32_t> refs_;  // per page
    std::function<bool()> reclaim_;
};

}  // namespace halo
