#include "core/tokenizer/pretokenizer.h"

#include <algorithm>
#include <cstdint>

#include "core/tokenizer/unicode_classes.h"

namespace halo::tok {
namespace {

// Reads characters of a well-formed UTF-8 slice: flags and byte length of the character at a byte offset.
class Scanner {
public:
    explicit Scanner(std::string_view text)
        : s_(reinterpret_cast<const uint8_t*>(text.data())), n_(text.size()), classes_(CharClasses::get()) {}

    size_t size() const { return n_; }
    uint8_t byte(size_t i) const { return s_[i]; }

    // Flags of the character at i (< size()); sets `len` to its byte length.
    uint8_t at(size_t i, size_t& len) const {
        const uint8_t b = s_[i];
        if (b < 0x80) {
            len = 1;
            return classes_.ascii(b);
        }
        len = b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        if (i + len > n_) {  // truncated sequence (the input broke the well-formed contract): one "other" byte
            len = 1;
            return 0;
        }
        uint32_t cp;
        if (len == 2) {
            cp = (uint32_t(b & 0x1F) << 6) | (s_[i + 1] & 0x3F);
        } else if (len == 3) {
            cp = (uint32_t(b & 0x0F) << 12) | (uint32_t(s_[i + 1] & 0x3F) << 6) | (s_[i + 2] & 0x3F);
        } else {
            cp = (uint32_t(b & 0x07) << 18) | (uint32_t(s_[i + 1] & 0x3F) << 12) | (uint32_t(s_[i + 2] & 0x3F) << 6) |
                 (s_[i + 3] & 0x3F);
        }
        return classes_.of(cp);
    }

    // End of the longest run of characters having any of `mask`, starting at i.
    size_t run_end(size_t i, uint8_t mask) const {
        size_t len;
        while (i < n_ && (at(i, len) & mask)) i += len;
        return i;
    }

    // U* W+ starting at j (alternative 2 after its prefix): end offset, or 0 when it cannot match.
    // U* is greedy; when no W follows the U run, U* gives back characters until the last W inside the run, which
    // then forms W+ on its own (anything after it in the run is U but not W).
    size_t upper_star_lower_plus(size_t j) const {
        size_t k = j, len, last_lower_end = 0;
        while (k < n_) {
            const uint8_t f = at(k, len);
            if (!(f & kUpperClass)) break;
            k += len;
            if (f & kLowerClass) last_lower_end = k;
        }
        if (k < n_ && (at(k, len) & kLowerClass)) return run_end(k, kLowerClass);
        return last_lower_end;
    }

    // U+ W* starting at j (alternative 3 after its prefix): end offset, or 0 when it cannot match.
    size_t upper_plus_lower_star(size_t j) const {
        const size_t k = run_end(j, kUpperClass);
        if (k == j) return 0;
        return run_end(k, kLowerClass);
    }

    // (?i:'s|'t|'re|'ve|'m|'ll|'d)? at e: the end after the optional contraction. Case folding as Rust's regex:
    // 's' also matches U+017F (long s).
    size_t contraction(size_t e) const {
        if (e + 1 >= n_ || s_[e] != '\'') return e;
        const uint8_t c = s_[e + 1] | 0x20;
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return e + 2;
        if (s_[e + 1] == 0xC5 && e + 2 < n_ && s_[e + 2] == 0xBF) return e + 3;  // 'ſ
        if (e + 2 < n_) {
            const uint8_t c2 = s_[e + 2] | 0x20;
            if ((c == 'r' || c == 'v') && c2 == 'e') return e + 3;
            if (c == 'l' && c2 == 'l') return e + 3;
        }
        return e;
    }

private:
    const uint8_t* s_;
    size_t n_;
    const CharClasses& classes_;
};

}  // namespace

size_t next_piece_end(std::string_view slice, size_t i) {
    const Scanner sc(slice);
    const size_t n = sc.size();
    size_t len;
    const uint8_t f = sc.at(i, len);

    // 1: [\p{Han}]+
    if (f & kHan) return sc.run_end(i, kHan);

    // 2 and 3: an optional prefix [^\r\n\p{L}\p{N}], then letters, then an optional contraction. The prefix is
    // tried first (greedy ?), then without it; alternative 2 is exhausted before 3 is tried.
    const bool can_prefix = !(f & (kLetter | kNumber | kNewline));
    if (f & (kUpperClass | kLowerClass) || can_prefix) {
        size_t e = 0;
        if (can_prefix && i + len < n) e = sc.upper_star_lower_plus(i + len);
        if (!e) e = sc.upper_star_lower_plus(i);
        if (!e && can_prefix && i + len < n) e = sc.upper_plus_lower_star(i + len);
        if (!e) e = sc.upper_plus_lower_star(i);
        if (e) return sc.contraction(e);
    }

    // 4: \p{N}{1,3}
    if (f & kNumber) {
        size_t e = i + len;
        for (int count = 1; count < 3 && e < n; ++count) {
            size_t l2;
            if (!(sc.at(e, l2) & kNumber)) break;
            e += l2;
        }
        return e;
    }

    // 5: " ?[^\s\p{L}\p{N}]+[\r\n]*"
    constexpr uint8_t kNotPunct = kSpace | kLetter | kNumber;
    {
        size_t j = i;
        if (sc.byte(i) == ' ' && i + 1 < n) j = i + 1;
        size_t l2;
        if (!(sc.at(j, l2) & kNotPunct)) {
            size_t e = j;
            while (e < n && !(sc.at(e, l2) & kNotPunct)) e += l2;
            while (e < n && (sc.byte(e) == '\r' || sc.byte(e) == '\n')) ++e;
            return e;
        }
    }

    // 6, 7, 8: a whitespace run [i, k).
    if (f & kSpace) {
        size_t k = i, l2, last_newline_end = 0, last_start = i;
        while (k < n) {
            const uint8_t g = sc.at(k, l2);
            if (!(g & kSpace)) break;
            last_start = k;
            k += l2;
            if (g & kNewline) last_newline_end = k;
        }
        if (last_newline_end) return last_newline_end;  // 6: \s* backs off to the last CR/LF of the run
        if (k == n) return k;                            // 7: (?!\S) holds at the end of the slice
        if (last_start > i) return last_start;           // 7: leave the last whitespace to the next piece
        return k;                                        // 8: a single whitespace character
    }

    // Unreachable: every character is a letter, number, whitespace or in [^\s\p{L}\p{N}]. Keep progress anyway.
    return i + len;
}

std::vector<ByteSpan> split_slices(std::string_view text) {
    const CharClasses& classes = CharClasses::get();
    const auto* s = reinterpret_cast<const uint8_t*>(text.data());
    const size_t n = text.size();
    std::vector<ByteSpan> slices;
    size_t i = 0;
    do {
        // One window of at most kMaxWindowChars code points, starting at i.
        size_t slice_start = i, window_chars = 0, run_chars = 0;
        bool run_is_space = false;
        while (i < n && window_chars < kMaxWindowChars) {
            const uint8_t b = s[i];
            bool is_space;
            size_t len;
            if (b < 0x80) {
                is_space = classes.ascii(b) & kPySpace;
                len = 1;
            } else {
                // Every non-ASCII Python space is 2 or 3 bytes: U+0085, U+00A0, U+1680, U+2000.., U+3000.
                len = std::min<size_t>(b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4, n - i);
                const uint32_t cp =
                    len == 2   ? ((uint32_t(b & 0x1F) << 6) | (s[i + 1] & 0x3F))
                    : len == 3 ? ((uint32_t(b & 0x0F) << 12) | (uint32_t(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F))
                               : 0x10000;
                is_space = classes.of(cp) & kPySpace;
            }
            if (window_chars == 0 || is_space != run_is_space) {
                run_is_space = is_space;
                run_chars = 1;
            } else if (++run_chars > kMaxRunChars) {
                slices.push_back({slice_start, i});
                slice_start = i;
                run_chars = 1;
            }
            ++window_chars;
            i += len;
        }
        slices.push_back({slice_start, i});
    } while (i < n);
    return slices;
}

std::vector<std::string_view> pre_tokenize(std::string_view text) {
    std::vector<std::string_view> pieces;
    for (const ByteSpan& span : split_slices(text)) {
        const std::string_view slice = text.substr(span.begin, span.end - span.begin);
        for (size_t pos = 0; pos < slice.size();) {
            const size_t end = next_piece_end(slice, pos);
            pieces.push_back(slice.substr(pos, end - pos));
            pos = end;
        }
    }
    return pieces;
}

}  // namespace halo::tok
