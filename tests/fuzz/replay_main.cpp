// Stand-in for libFuzzer's driver when the compiler has none: runs every corpus file, then --runs deterministic
// mutations of them (bit flips, byte changes, truncations, insertions, splices). A crash or sanitizer report fails
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

void mutate(std::vector<uint8_t>& d, const std::vector<std::vector<uint8_t>>& corpus, uint64_t& rng) {
    const int steps = 1 + int(next(rng) % 4);
    for (int s = 0; s < steps; ++s) {
        const size_t n = d.size();
        switch (next(rng) % 7) {
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
