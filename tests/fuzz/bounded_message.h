// Shared check of the fuzz targets: an error raised by a parser is one bounded sentence, whatever the input.
#pragma once

#include <cstdio>
#include <cstring>
#include <exception>

namespace halo::fuzz {

// Longest error message any parser may give for the fuzz inputs (paths in them are short).
constexpr size_t kMaxMessageBytes = 600;

inline void check_message(const std::exception& e) {
    const size_t n = std::strlen(e.what());
    if (n == 0 || n > kMaxMessageBytes || std::strchr(e.what(), '\n')) {
        std::fprintf(stderr, "fuzz: an error message of %zu bytes is empty, too long or spans lines: %.600s\n", n,
                     e.what());
        __builtin_trap();
    }
}

}  // namespace halo::fuzz
