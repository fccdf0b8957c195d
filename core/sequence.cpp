#include "core/sequence.h"

namespace halo {

StatePool::StatePool(int32_t slots, int32_t pages, int32_t page_size)
    : page_size_(page_size), total_slots_(slots), total_pages_(pages), refs_(size_t(pages), 0) {
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

bool StatePool::ensure_free(int64_t n) {
    while (int64_t(free_pages_.size()) < n)
        if (!reclaim_ || !reclaim_()) return false;
    return true;
}

void StatePool::reserve(Sequence& seq, int64_t tokens) {
    const int64_t need = (tokens + page_size_ - 1) / page_size_ - int64_t(seq.pages.size());
    if (need <= 0) return;
    if (!ensure_free(need))
        throw CapacityError("the context cache is full: " + std::to_string(tokens) + " tokens need " +
                            std::to_string(need) + " more pages of " + std::to_string(page_size_) + " tokens but " +
                            std::to_string(free_pages_.size()) + " are free; raise the context length");
    for (int64_t i = 0; i < need; ++i) {
        const int32_t p = free_pages_.back();
        free_pages_.pop_back();
        refs_[size_t(p)] = 1;
        seq.pages.push_back(p);
    }
}

void StatePool::detach(Sequence& seq) {
    if (seq.slot >= 0) free_slots_.push_back(seq.slot);
    release(seq.pages);
    seq.slot = -1;
    seq.pages.clear();
    seq.n_tokens = 0;
}

void StatePool::retain(std::span<const int32_t> pages) {
    for (int32_t p : pages) {
        if (p < 0 || p >= total_pages_ || refs_[size_t(p)] <= 0)
            throw std::logic_error("StatePool::retain: page " + std::to_string(p) + " is not held");
        ++refs_[size_t(p)];
    }
}

void StatePool::release(std::span<const int32_t> pages) {
    // In reverse, so that a sequence's pages come back in the order they were handed out.
    for (auto it = pages.rbegin(); it != pages.rend(); ++it) {
        const int32_t p = *it;
        if (p < 0 || p >= total_pages_ || refs_[size_t(p)] <= 0)
            throw std::logic_error("StatePool::release: page " + std::to_string(p) + " is not held");
        if (--refs_[size_t(p)] == 0) free_pages_.push_back(p);
    }
}

int32_t StatePool::take_page() {
    if (!ensure_free(1))
        throw CapacityError("the context cache is full: no free page of " + std::to_string(page_size_) +
                            " tokens; raise the context length");
    const int32_t p = free_pages_.back();
    free_pages_.pop_back();
    refs_[size_t(p)] = 1;
    return p;
}

}  // namespace halo
