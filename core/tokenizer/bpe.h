// Byte-pair encoding by rank (tiktoken's rule, golden README section 2 step 4) and the byte-string -> rank map it
// runs on.
#pragma once

#include <cstdint>
#include <cstring>
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
    int32_t find(std::string_view bytes) const {
        if (bytes.size() == 2) return pair_rank_[size_t(uint8_t(bytes[0])) << 8 | uint8_t(bytes[1])];
        return find(bytes, hash(bytes));
    }
    // The same with hash(bytes) already computed.
    int32_t find(std::string_view bytes, uint64_t h) const {
        if (slots_.empty()) return -1;
        const uint64_t tag = h & kTagMask;
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            const uint64_t s = slots_[i];
            if (!s) return -1;
            if ((s & kTagMask) == tag) {
                const std::string_view t = tokens_[size_t(s & ~kTagMask) - 1];
                if (t.size() == bytes.size() && std::memcmp(t.data(), bytes.data(), t.size()) == 0)
                    return int32_t((s & ~kTagMask) - 1);
            }
        }
    }

    // The hash find() uses: a few loads and one 64x64->128-bit multiply for keys up to 16 bytes.
    static uint64_t hash(std::string_view bytes) {
        const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
        const size_t n = bytes.size();
        uint64_t a = 0, b = 0, seed = 0x2D358DCCAA6C78A5ull ^ n;
        if (n <= 16) {
            if (n >= 4) {  // overlapping 4-byte loads cover every byte
                const size_t mid = (n >> 3) << 2;
                a = load32(p) << 32 | load32(p + mid);
                b = load32(p + n - 4) << 32 | load32(p + n - 4 - mid);
            } else if (n > 0) {
                a = uint64_t(p[0]) << 16 | uint64_t(p[n >> 1]) << 8 | p[n - 1];
            }
        } else {
            size_t i = 0;
            for (; i + 16 < n; i += 16) seed = mix(load64(p + i) ^ 0xA0761D6478BD642Full, load64(p + i + 8) ^ seed);
            a = load64(p + n - 16);
            b = load64(p + n - 8);
        }
        return mix(a ^ 0xE7037ED1A0B428DBull, b ^ seed);
    }

    size_t size() const { return tokens_.size(); }

private:
    static constexpr uint64_t kTagMask = 0xFFFFFFFF00000000ull;
    static uint64_t load32(const uint8_t* p) {
        uint32_t v;
        std::memcpy(&v, p, 4);
        return v;
    }
    static uint64_t load64(const uint8_t* p) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        return v;
    }
    static uint64_t mix(uint64_t x, uint64_t y) {
        const __uint128_t r = __uint128_t(x) * y;
        return uint64_t(r) ^ uint64_t(r >> 64);
    }

    std::vector<std::string_view> tokens_;  // [rank]
    std::vector<uint64_t> slots_;           // hash's high 32 bits << 32 | (rank + 1); 0 = empty
    uint64_t mask_ = 0;                     // slots_.size() - 1 (a power of two)
    std::vector<int32_t> pair_rank_;        // [65536]: rank of each 2-byte token, -1 if none (the hottest lookup)
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
