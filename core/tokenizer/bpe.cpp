#include "core/tokenizer/bpe.h"

#include <cstring>
#include <limits>
#include <queue>

namespace halo::tok {
namespace {

constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();
constexpr size_t kSmallPiece = 64;  // pieces up to this many bytes use the quadratic loop (faster when short)

int32_t rank_of(const TokenMap& map, std::string_view piece, size_t begin, size_t end) {
    const int32_t r = map.find(piece.substr(begin, end - begin));
    return r < 0 ? kNoRank : r;
}

// The quadratic loop: boundaries start[0..m] (start[m] = n) and pair ranks rank[k] of bytes
// [start[k], start[k+2]).
void bpe_small(const TokenMap& map, std::string_view piece, std::vector<int32_t>& out) {
    const size_t n = piece.size();
    uint32_t start[kSmallPiece + 1];
    int32_t rank[kSmallPiece];
    size_t m = n;  // number of parts
    for (size_t k = 0; k <= n; ++k) start[k] = uint32_t(k);
    for (size_t k = 0; k + 1 < n; ++k) rank[k] = rank_of(map, piece, k, k + 2);
    while (m > 1) {
        size_t best = 0;
        int32_t best_rank = kNoRank;
        for (size_t k = 0; k + 1 < m; ++k)
            if (rank[k] < best_rank) best_rank = rank[k], best = k;
        if (best_rank == kNoRank) break;
        // Merge parts best and best+1: drop boundary best+1 and the pair that started there.
        std::memmove(start + best + 1, start + best + 2, (m - best - 1) * sizeof start[0]);
        if (best + 3 <= m) std::memmove(rank + best + 1, rank + best + 2, (m - best - 3) * sizeof rank[0]);
        --m;
        if (best + 1 < m) rank[best] = rank_of(map, piece, start[best], start[best + 2]);
        if (best > 0) rank[best - 1] = rank_of(map, piece, start[best - 1], start[best + 1]);
    }
    for (size_t k = 0; k < m; ++k) out.push_back(map.find(piece.substr(start[k], start[k + 1] - start[k])));
}

// The heap version. Parts are named by their first byte offset (a part absorbs its right neighbour, so its name
// never changes); next[i] is the offset of the following part (n at the end).
void bpe_large(const TokenMap& map, std::string_view piece, std::vector<int32_t>& out) {
    const uint32_t n = uint32_t(piece.size());
    std::vector<uint32_t> next(n), prev(n);
    std::vector<bool> alive(n, true);
    for (uint32_t i = 0; i < n; ++i) next[i] = i + 1, prev[i] = i - 1;  // prev[0] wraps: never read

    struct Candidate {
        int32_t rank;
        uint32_t left;  // first part of the pair
        uint32_t end;   // end of the pair's bytes when it was pushed: stale once either part has grown
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto pair_end = [&](uint32_t left) { const uint32_t r = next[left]; return r < n ? next[r] : n + 1; };
    auto push_pair = [&](uint32_t left) {
        const uint32_t end = pair_end(left);
        if (end > n) return;
        const int32_t r = rank_of(map, piece, left, end);
        if (r != kNoRank) heap.push({r, left, end});
    };
    for (uint32_t i = 0; i + 1 < n; ++i) push_pair(i);
    while (!heap.empty()) {
        const Candidate c = heap.top();
        heap.pop();
        if (!alive[c.left] || pair_end(c.left) != c.end) continue;
        const uint32_t right = next[c.left];
        alive[right] = false;
        next[c.left] = next[right];
        if (next[c.left] < n) prev[next[c.left]] = c.left;
        if (c.left > 0) push_pair(prev[c.left]);
        push_pair(c.left);
    }
    for (uint32_t i = 0; i < n; i = next[i]) out.push_back(map.find(piece.substr(i, next[i] - i)));
}

}  // namespace

void BpeCache::bind(uint64_t owner) {
    if (owner == owner_ && !slots_.empty()) return;
    owner_ = owner;
    slots_.assign(kSlots, Slot{});
}

void BpeCache::encode(const TokenMap& map, std::string_view piece, std::vector<int32_t>& out) {
    if (piece.size() > kMaxKey || slots_.empty()) {
        bpe_encode(map, piece, out);
        return;
    }
    const uint64_t h = TokenMap::hash(piece);  // also picks the cache slot
    const int32_t whole = map.find(piece, h);  // the common case with a large vocabulary
    if (whole >= 0) {
        out.push_back(whole);
        return;
    }
    Slot& s = slots_[(h >> 20) & (kSlots - 1)];
    if (s.num_ids && s.key_len == piece.size() && std::memcmp(s.key, piece.data(), piece.size()) == 0) {
        out.insert(out.end(), s.ids, s.ids + s.num_ids);
        return;
    }
    const size_t first = out.size();
    bpe_encode(map, piece, out);
    const size_t n = out.size() - first;
    if (n == 0 || n > kMaxIds) return;
    s.key_len = uint8_t(piece.size());
    s.num_ids = uint8_t(n);
    std::memcpy(s.key, piece.data(), piece.size());
    std::memcpy(s.ids, out.data() + first, n * sizeof(int32_t));
}

void TokenMap::build(const std::vector<std::string_view>& tokens) {
    tokens_ = tokens;
    pair_rank_.assign(65536, -1);
    size_t cap = 16;
    while (cap < tokens.size() * 2) cap *= 2;
    slots_.assign(cap, 0);
    mask_ = cap - 1;
    for (size_t r = 0; r < tokens.size(); ++r) {
        const uint64_t h = hash(tokens[r]);
        size_t i = h & mask_;
        while (slots_[i]) i = (i + 1) & mask_;
        slots_[i] = (h & kTagMask) | uint64_t(r + 1);
        if (tokens[r].size() == 2) pair_rank_[size_t(uint8_t(tokens[r][0])) << 8 | uint8_t(tokens[r][1])] = int32_t(r);
    }
}

void bpe_encode(const TokenMap& map, std::string_view piece, std::vector<int32_t>& out) {
    if (piece.empty()) return;
    const int32_t whole = map.find(piece);
    if (whole >= 0) {
        out.push_back(whole);
        return;
    }
    if (piece.size() <= kSmallPiece)
        bpe_small(map, piece, out);
    else
        bpe_large(map, piece, out);
}

}  // namespace halo::tok
