#include "core/input/utf8.h"

namespace halo::input {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The WHATWG decoder's view of a lead byte: how many continuation bytes follow and the allowed range of the first
// one (later ones are always 80..BF). need == -1: the byte cannot start a sequence.
struct Lead {
    int need;
    uint8_t lo, hi;
};

Lead lead_of(uint8_t b) {
    if (b < 0x80) return {0, 0, 0};
    if (b >= 0xC2 && b <= 0xDF) return {1, 0x80, 0xBF};
    if (b == 0xE0) return {2, 0xA0, 0xBF};
    if (b == 0xED) return {2, 0x80, 0x9F};
    if (b >= 0xE1 && b <= 0xEF) return {2, 0x80, 0xBF};
    if (b == 0xF0) return {3, 0x90, 0xBF};
    if (b >= 0xF1 && b <= 0xF3) return {3, 0x80, 0xBF};
    if (b == 0xF4) return {3, 0x80, 0x8F};
    return {-1, 0, 0};
}

// Length of the well-formed prefix of the sequence starting at s[i] (1 + continuation bytes accepted), and
// whether it is complete.
struct SeqCheck {
    size_t len;
    bool complete;
};

SeqCheck check_sequence(const uint8_t* s, size_t n, size_t i) {
    const Lead lead = lead_of(s[i]);
    if (lead.need < 0) return {0, false};
    size_t k = 1;
    for (int c = 0; c < lead.need; ++c, ++k) {
        if (i + k >= n) return {k, false};
        const uint8_t lo = c == 0 ? lead.lo : 0x80, hi = c == 0 ? lead.hi : 0xBF;
        if (s[i + k] < lo || s[i + k] > hi) return {k, false};
    }
    return {k, true};
}

}  // namespace

bool is_valid_utf8(std::string_view bytes) {
    const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t n = bytes.size();
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) {  // ASCII fast path, 8 bytes at a time
            uint64_t w;
            __builtin_memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) {
            ++i;
            continue;
        }
        const SeqCheck c = check_sequence(s, n, i);
        if (!c.complete) return false;
        i += c.len;
    }
    return true;
}

void append_utf8_replacing(std::string& out, std::string_view bytes) {
    const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t n = bytes.size();
    size_t i = 0, run = 0;  // [run, i) is well-formed and not yet copied
    while (i < n) {
        if (s[i] < 0x80) {
            ++i;
            continue;
        }
        const SeqCheck c = check_sequence(s, n, i);
        if (c.complete) {
            i += c.len;
            continue;
        }
        out.append(bytes.substr(run, i - run));
        out.append(kReplacement);
        i += c.len == 0 ? 1 : c.len;  // a maximal ill-formed subsequence: the accepted prefix, or the bad byte
        run = i;
    }
    out.append(bytes.substr(run, n - run));
}

std::string utf8_replacing(std::string_view bytes) {
    if (is_valid_utf8(bytes)) return std::string(bytes);
    std::string out;
    out.reserve(bytes.size() + 16);
    append_utf8_replacing(out, bytes);
    return out;
}

size_t utf8_sequence_length(std::string_view bytes, size_t i) {
    const SeqCheck c = check_sequence(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), i);
    return c.complete ? c.len : 0;
}

size_t utf8_incomplete_tail(std::string_view bytes) {
    const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t n = bytes.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        const size_t i = n - back;
        if (s[i] >= 0x80 && s[i] <= 0xBF) continue;  // continuation byte: the lead is further back
        const SeqCheck c = check_sequence(s, n, i);
        return (!c.complete && c.len == back) ? back : 0;
    }
    return 0;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

}  // namespace halo::input
