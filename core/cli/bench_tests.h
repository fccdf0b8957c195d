// The tests `engine bench` runs, as llama-bench names and orders them: pp<N> (prefill N tokens), tg<N> (decode N
// tokens one at a time), pp<N>+tg<M> (both, timed together), each optionally at a depth d (d tokens already in the
// sequence, prefilled untimed): "pp512 @ d4096".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace halo::cli {

struct BenchTest {
    int32_t n_prompt = 0;  // tokens prefilled in the timed part
    int32_t n_gen = 0;     // tokens decoded one by one in the timed part, after the prompt
    int32_t n_depth = 0;   // tokens prefilled (untimed) before the timed part

    std::string name() const;                 // "pp512", "tg128", "pp512+tg128", "tg128 @ d4096"
    int64_t tokens() const { return int64_t(n_prompt) + n_gen; }  // tokens the timed part processes
    int64_t context() const { return tokens() + n_depth; }        // tokens in the sequence at the end
};

// What -p, -n, -pg and -d asked for (comma lists already split, zeros kept: -p 0 means no pp test).
struct BenchGrid {
    std::vector<int32_t> prompts = {512};  // -p
    std::vector<int32_t> gens = {128};     // -n
    std::vector<std::pair<int32_t, int32_t>> pairs;  // -pg PP,TG
    std::vector<int32_t> depths = {0};     // -d
};

// Every test of the grid in llama-bench's order: per depth, the pp tests, then the tg tests, then the pp+tg tests;
// zero lengths are skipped. Empty when every length is zero.
std::vector<BenchTest> bench_tests(const BenchGrid& grid);

// Comma lists as given to a flag (one item per occurrence, e.g. {"512,1024", "64"}) -> counts. Throws
// std::runtime_error naming `flag` for an empty item or one that is not a whole number from `min` to `max`.
std::vector<int32_t> parse_counts(const std::vector<std::string>& items, const std::string& flag, int32_t min,
                                  int32_t max);

// One "PP,TG" pair of -pg. Throws std::runtime_error naming `flag` unless it is two whole numbers, not both zero.
std::pair<int32_t, int32_t> parse_pair(const std::string& text, const std::string& flag);

// The results of the -p option, read with CLI11 separating occurrences by an empty item: llama-bench's -pg reaches
// CLI11 as -p with the value "g" (CLI11 has no multi-letter short options), so an occurrence whose first item starts
// with 'g' is a -pg occurrence (its pair is the rest of that item or the next item). Returns the -p items; appends
// the -pg pairs to `pairs`. Throws std::runtime_error for a -pg without exactly one pair.
std::vector<std::string> split_prompt_results(const std::vector<std::string>& results,
                                              std::vector<std::pair<int32_t, int32_t>>& pairs);

}  // namespace halo::cli
