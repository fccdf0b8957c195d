#include "core/sequence.h"

namespace halo {

StatePool::StatePool(int32_t slots, int32_t pages, int32_t page_size)
    : page_size_(page_size), total_slots_(slots), total_pages_(pages) {
    for (int32_t s = slots - 1; s >= 0; --s) free_slots_.push_back(s);
    for (int32_t p = pages - 1; p >= 0; --p) free_pages_.push_back(p);
}

void StatePool::attach(Sequence& seq) {
    if (seq.slot >= 0) return;
    if (free_slots_.empty())
        throw CapacityError("all sequence slots are in use; raise the number of concurrent sequences or wait");
    seq.slot = free_slots_.back();
    free_slots_.pop_back();
}

void StatePool::reserve(Sequence& seq, int64_t tokens) {
    const int64_t need = (tokens + page_size_ - 1) / page_size_ - int64_t(seq.pages.size());
    if (need <= 0) return;
    if (need > int64_t(free_pages_.size()))
        throw CapacityError("the context cache is full: " + std::to_string(tokens) + " tokens need " +
                            std::to_string(need) + " more pages of " + std::to_string(page_size_) + " tokens but " +
                            std::to_string(free_pages_.size()) + " are free; raise the context length");
    for (int64_t i = 0; i < need; ++i) {
        seq.pages.push_back(free_pages_.back());
        free_pages_.pop_back();
    }
}

void StatePool::detach(Sequence& seq) {
    if (seq.slot >= 0) free_slots_.push_back(seq.slot);
    for (auto it = seq.pages.rbegin(); it != seq.pages.rend(); ++it) free_pages_.push_back(*it);
    seq.slot = -1;
    seq.pages.clear();
    seq.n_tokens = 0;
}

}  // namespace halo
