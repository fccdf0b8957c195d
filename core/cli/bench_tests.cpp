#include "core/cli/bench_tests.h"

#include <stdexcept>

#include "core/input/excerpt.h"
#include "core/profile/options.h"

namespace halo::cli {

std::string BenchTest::name() const {
    std::string s;
    if (n_prompt > 0 && n_gen == 0)
        s = "pp" + std::to_string(n_prompt);
    else if (n_prompt == 0)
        s = "tg" + std::to_string(n_gen);
    else
        s = "pp" + std::to_string(n_prompt) + "+tg" + std::to_string(n_gen);
    if (n_depth > 0) s += " @ d" + std::to_string(n_depth);
    return s;
}

std::vector<BenchTest> bench_tests(const BenchGrid& grid) {
    std::vector<BenchTest> tests;
    for (int32_t depth : grid.depths) {
        for (int32_t p : grid.prompts)
            if (p > 0) tests.push_back({p, 0, depth});
        for (int32_t n : grid.gens)
            if (n > 0) tests.push_back({0, n, depth});
        for (const auto& [p, n] : grid.pairs)
            if (p > 0 || n > 0) tests.push_back({p, n, depth});
    }
    return tests;
}

namespace {

// Splits "a,b,c" at commas, keeping empty items (so that "1,,2" can be refused).
std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> items;
    size_t pos = 0;
    while (true) {
        const size_t comma = text.find(',', pos);
        items.push_back(text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        if (comma == std::string::npos) return items;
        pos = comma + 1;
    }
}

int32_t parse_count(const std::string& item, const std::string& flag, int32_t min, int32_t max) {
    if (item.empty())
        throw std::runtime_error(flag + ": an empty item in the list (give numbers separated by single commas, like "
                                 "128,512)");
    const std::optional<uint64_t> v = parse_decimal(item);
    if (!v)
        throw std::runtime_error(flag + ": " + input::quote(item) + " is not a whole number (give one, or a comma list like "
                                 "128,512)");
    if (*v < uint64_t(min) || *v > uint64_t(max))
        throw std::runtime_error(flag + ": " + input::quote(item) + " is outside " + std::to_string(min) + ".." +
                                 std::to_string(max));
    return int32_t(*v);
}

}  // namespace

std::vector<int32_t> parse_counts(const std::vector<std::string>& items, const std::string& flag, int32_t min,
                                  int32_t max) {
    std::vector<int32_t> counts;
    for (const std::string& text : items)
        for (const std::string& item : split_commas(text)) counts.push_back(parse_count(item, flag, min, max));
    return counts;
}

std::pair<int32_t, int32_t> parse_pair(const std::string& text, const std::string& flag) {
    const std::vector<std::string> items = split_commas(text);
    if (items.size() != 2)
        throw std::runtime_error(flag + ": " + input::quote(text) +
                                 " is not one prompt,generation pair; give two numbers like 512,128");
    const int32_t p = parse_count(items[0], flag, 0, 1 << 24), n = parse_count(items[1], flag, 0, 1 << 24);
    if (p == 0 && n == 0) throw std::runtime_error(flag + ": 0,0 is an empty test; give lengths like 512,128");
    return {p, n};
}

std::vector<std::string> split_prompt_results(const std::vector<std::string>& results,
                                              std::vector<std::pair<int32_t, int32_t>>& pairs) {
    std::vector<std::string> prompts;
    size_t i = 0;
    while (i < results.size()) {
        size_t end = i;
        while (end < results.size() && !results[end].empty()) ++end;
        if (end > i && results[i][0] == 'g') {  // -pg
            std::vector<std::string> values;
            if (results[i].size() > 1) values.push_back(results[i].substr(1));
            values.insert(values.end(), results.begin() + long(i) + 1, results.begin() + long(end));
            if (values.size() != 1)
                throw std::runtime_error(std::string("-pg needs one prompt,generation pair, like -pg 512,128") +
                                         (values.empty() ? "" : " (got " + std::to_string(values.size()) + " values)"));
            pairs.push_back(parse_pair(values[0], "-pg"));
        } else {
            prompts.insert(prompts.end(), results.begin() + long(i), results.begin() + long(end));
        }
        i = end + 1;
    }
    return prompts;
}

}  // namespace halo::cli
