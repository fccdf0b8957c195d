// Byte-pair encoding by rank (tiktoken's rule, golden README section 2 step 4) and the byte-string -> rank map it
// runs on.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace halo::tok {

// Open-addressing hash map from a token's bytes to its rank. Holds views of the token bytes: the storage they point
// into must outlive the map. Immutable after build(), so any thread may call find().
class TokenMap {
public:
    // tokens[rank] = the token's bytes. Ranks must be unique byte strings (the loader checks this).
    void build(const std::vector<std::string_view>& tokens);

    // Rank of `bytes`, or -1 when it is not a token.
    int32_t find(std::string_view bytes) const { return find(bytes, hash(bytes)); }
    // The same with hash(bytes) already computed.
    int32_t find(std::string_view bytes, uint64_t hash) const;
    // The hash find() uses.
    static uint64_t hash(std::string_view bytes);

    size_t size() const { return tokens_.size(); }

private:
    std::vector<std::string_view> tokens_;  // [rank]
    std::vector<uint64_t> slots_;           // (hash >> 32) << 32 | (rank + 1); 0 = empty
    uint64_t mask_ = 0;                     // slots_.size() - 1 (a power of two)
};

// A small direct-mapped cache of piece -> ranks for short pieces (prose repeats its words). One per thread and
// vocabulary; `owner` says which vocabulary filled it. ~300 KB.
class BpeCache {
public:
    static constexpr size_t kSlots = 4096;
    static constexpr size_t kMaxKey = 24;  // bytes
    static constexpr size_t kMaxIds = 7;

    // The ranks of `piece` via the cache (bpe_encode on a miss), appended to `out`.
    void encode(const TokenMap& map, std::string_view piece, std::vector<int32_t>& out);
    // Empties the cache when `owner` differs from the one that filled it.
    void bind(uint64_t owner);

private:
    struct Slot {
        uint8_t key_len = 0;
        uint8_t num_ids = 0;  // 0 = empty
        char key[kMaxKey];
        int32_t ids[kMaxIds];
    };
    uint64_t owner_ = 0;
    std::vector<Slot> slots_;
};

// Appends to `out` the ranks of `piece`: the whole piece's rank when it is a token; otherwise start from single
// bytes and repeatedly merge the adjacent pair whose concatenation has the lowest rank (ties: leftmost) until no
// adjacent concatenation is a token. Every single byte must be a token. O(n^2) for short pieces, O(n log n) for
// long ones.
void bpe_encode(const TokenMap& map, std::string_view piece, std::vector<int32_t>& out);

}  // namespace halo::tok
