// Whole files read under a size limit, so that a model directory holding a huge or endless file (a 50 GB
// config.json, /dev/zero behind a symlink) is refused in one sentence instead of filling memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace halo::input {

// An input refused by a limit or unreadable. The message is a full sentence naming the source.
class InputError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The bytes of the file at `path`. Throws InputError when it cannot be opened or read, or when it holds more than
// `max_bytes` (judged by its size first, then by what is read), naming it as `what_is_it` ("a model config.json").
std::string read_bounded_file(const std::filesystem::path& path, size_t max_bytes, const char* what_is_it);

// The sentence for `source` of `size` bytes over the limit: "X is N bytes, more than the M (1.0 MB) allowed for Y;
// check that it is the right file".
std::string too_large(const std::string& source, uint64_t size, size_t max_bytes, const char* what_is_it);

// "12.5 MB", "300 KB", "17 bytes".
std::string byte_size_text(uint64_t bytes);

}  // namespace halo::input
