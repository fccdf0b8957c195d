// Stand-in for libFuzzer's driver when the compiler has none: runs every corpus file, then --runs deterministic
// mutations of them (bit flips, byte changes, truncations, insertions, splices, and structure-aware ones: deep
// nesting, huge numbers, long strings, ill-formed UTF-8, duplicated keys). A crash or sanitizer report fails
// the test; a clean return means the target survived these inputs.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

uint64_t next(uint64_t& s) {  // splitmix64
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

std::vector<uint8_t> read_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Appends `n` random bytes of `alphabet` to `out`.
void append_random(std::vector<uint8_t>& out, size_t n, const char* alphabet, uint64_t& rng) {
    const size_t k = std::strlen(alphabet);
    for (size_t i = 0; i < n; ++i) out.push_back(uint8_t(alphabet[next(rng) % k]));
}

// A piece of structure that breaks parsers: deep nesting, huge or odd numbers, long strings, ill-formed UTF-8, or a
// duplicated "key": value member.
std::vector<uint8_t> hostile_piece(const std::vector<uint8_t>& d, uint64_t& rng) {
    std::vector<uint8_t> p;
    auto add = [&](const char* s) {
        for (; *s; ++s) p.push_back(static_cast<uint8_t>(*s));
    };
    switch (next(rng) % 6) {
    case 0: {  // deep nesting, closed or not, of arrays or objects
        static const size_t depths[] = {33, 64, 1000, 20000};
        const size_t depth = depths[next(rng) % 4];
        const bool object = next(rng) % 2, closed = next(rng) % 2;
        for (size_t i = 0; i < depth; ++i) add(object ? "{\"a\":" : "[");
        add("1");
        if (closed)
            for (size_t i = 0; i < depth; ++i) add(object ? "}" : "]");
        break;
    }
    case 1: {  // numbers at and past every limit
        static const char* numbers[] = {"1e999", "-1e999", "18446744073709551616", "-9223372036854775809",
                                        "9223372036854775807", "2147483648", "4294967296", "1e-999", "-0", "0.5",
                                        "1E+2", "00", "NaN", "Infinity"};
        add(numbers[next(rng) % (sizeof numbers / sizeof *numbers)]);
        if (next(rng) % 4 == 0) append_random(p, 1 + next(rng) % 5000, "0123456789", rng);  // thousands of digits
        break;
    }
    case 2: {  // a long string
        const size_t n = next(rng) % 2 ? 1 + next(rng) % 300 : 1000 + next(rng) % 20000;
        add("\"");
        append_random(p, n, next(rng) % 2 ? "a" : "ab\\\"\n\t{}[],:", rng);
        if (next(rng) % 2) add("\"");
        break;
    }
    case 3: {  // ill-formed UTF-8: overlong, surrogate, stray continuation, cut-off sequence, bytes never valid
        static const char* bad[] = {"\xC0\xAF", "\xED\xA0\x80", "\x80", "\xE2\x82", "\xF8\x88\x80\x80\x80",
                                    "\xFF", "\xF4\x90\x80\x80", "\\uD800", "\\uDFFF\\uD800", "\\u0000"};
        add("\"");
        add(bad[next(rng) % (sizeof bad / sizeof *bad)]);
        add("\"");
        break;
    }
    case 4: {  // a member of the input duplicated: from a quote to the next comma or closing brace
        if (d.empty()) break;
        const size_t q = next(rng) % d.size();
        size_t a = q;
        while (a < d.size() && d[a] != '"') ++a;
        size_t b = a;
        while (b < d.size() && d[b] != ',' && d[b] != '}') ++b;
        if (a < b && b - a < 4096) {
            p.assign(d.begin() + long(a), d.begin() + long(b));
            p.push_back(',');
        }
        break;
    }
    default:  // empty containers and nulls where values belong
        static const char* values[] = {"[]", "{}", "null", "true", "\"\"", "[[]]", "{\"\":{}}"};
        add(values[next(rng) % (sizeof values / sizeof *values)]);
        break;
    }
    return p;
}

void mutate(std::vector<uint8_t>& d, const std::vector<std::vector<uint8_t>>& corpus, uint64_t& rng) {
    const int steps = 1 + int(next(rng) % 4);
    for (int s = 0; s < steps; ++s) {
        const size_t n = d.size();
        switch (next(rng) % 9) {
        case 0: if (n) d[next(rng) % n] ^= uint8_t(1u << (next(rng) % 8)); break;
        case 1: if (n) d[next(rng) % n] = uint8_t(next(rng)); break;
        case 2: if (n) d.resize(next(rng) % n); break;
        case 3: d.insert(d.begin() + long(n ? next(rng) % (n + 1) : 0), uint8_t(next(rng))); break;
        case 4: {  // interesting bytes
            static const uint8_t special[] = {0, 0xff, 0x7f, 0x80, '"', '{', '}', '[', ']', ',', ':', '0', '9', '-'};
            if (n) d[next(rng) % n] = special[next(rng) % sizeof(special)];
            break;
        }
        case 5: {  // splice in a piece of another corpus entry
            if (corpus.empty()) break;
            const auto& o = corpus[next(rng) % corpus.size()];
            if (o.empty()) break;
            const size_t a = next(rng) % o.size(), len = 1 + next(rng) % std::min<size_t>(64, o.size() - a);
            d.insert(d.begin() + long(n ? next(rng) % (n + 1) : 0), o.begin() + long(a), o.begin() + long(a + len));
            break;
        }
        case 6: {  // duplicate a block
            if (n < 2) break;
            const size_t a = next(rng) % n, len = 1 + next(rng) % std::min<size_t>(32, n - a);
            std::vector<uint8_t> block(d.begin() + long(a), d.begin() + long(a + len));
            d.insert(d.begin() + long(next(rng) % (n + 1)), block.begin(), block.end());
            break;
        }
        case 7: {  // a hostile piece of structure in place of a value: after a ':' or '[' when there is one
            const std::vector<uint8_t> p = hostile_piece(d, rng);
            size_t at = n ? next(rng) % (n + 1) : 0;
            for (size_t k = at; k < n; ++k)
                if (d[k] == ':' || d[k] == '[') {
                    at = k + 1;
                    break;
                }
            size_t end = at;  // replace the old value up to the next , } or ]
            while (end < n && d[end] != ',' && d[end] != '}' && d[end] != ']') ++end;
            if (next(rng) % 2) end = at;  // or insert without replacing
            d.erase(d.begin() + long(at), d.begin() + long(end));
            d.insert(d.begin() + long(at), p.begin(), p.end());
            break;
        }
        default: {  // a hostile piece anywhere
            const std::vector<uint8_t> p = hostile_piece(d, rng);
            d.insert(d.begin() + long(n ? next(rng) % (n + 1) : 0), p.begin(), p.end());
            break;
        }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    long runs = 10000;
    std::vector<std::vector<uint8_t>> corpus;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = std::atol(argv[++i]);
            continue;
        }
        std::filesystem::path p(argv[i]);
        if (std::filesystem::is_directory(p)) {
            for (auto& e : std::filesystem::recursive_directory_iterator(p))
                if (e.is_regular_file()) corpus.push_back(read_file(e.path()));
        } else if (std::filesystem::exists(p)) {
            corpus.push_back(read_file(p));
        }
    }
    if (corpus.empty()) corpus.push_back({});
    for (const auto& c : corpus) LLVMFuzzerTestOneInput(c.data(), c.size());
    uint64_t rng = 0x48616c6f;  // fixed seed: failures reproduce
    for (long r = 0; r < runs; ++r) {
        std::vector<uint8_t> d = corpus[next(rng) % corpus.size()];
        mutate(d, corpus, rng);
        LLVMFuzzerTestOneInput(d.data(), d.size());
    }
    std::printf("fuzz replay: %zu corpus inputs and %ld mutations ran cleanly\n", corpus.size(), runs);
    return 0;
}
