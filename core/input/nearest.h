// The nearest valid name to a mistyped one, for "did you mean" in error sentences.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace halo::input {

// Levenshtein distance: single-character insertions, deletions and substitutions.
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `name` by edit distance (the first of equals); empty when there are none.
std::string nearest(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace halo::input
