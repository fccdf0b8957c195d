#include "core/input/nearest.h"

#include <algorithm>
#include <cstdint>

namespace halo::input {

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);  // distances from a's first i characters to each prefix of b
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = up;
        }
    }
    return row[b.size()];
}

std::string nearest(const std::string& name, const std::vector<std::string>& candidates) {
    std::string best;
    size_t best_distance = SIZE_MAX;
    for (const std::string& c : candidates)
        if (const size_t d = edit_distance(name, c); d < best_distance) {
            best = c;
            best_distance = d;
        }
    return best;
}

}  // namespace halo::input
