// Writing safetensors files tensor by tensor: the header (names, dtypes, shapes, offsets) is laid out first from
// the list of tensors, then each tensor's bytes are appended in that order, so a writer never holds more than the
// tensor it is writing. Used by `engine quantize`.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace halo {

struct TensorEntry {
    std::string name;
    std::string dtype;           // safetensors dtype name: "BF16", "F32", "I32", "I64", ...
    std::vector<int64_t> shape;
    uint64_t bytes = 0;          // must equal the shape's element count times the dtype's size
};

class SafetensorsWriter {
public:
    // Creates `path` and writes the header for `tensors`, whose data will follow in this order. Throws
    // ModelFileError naming the file (cannot be created, unknown dtype, bytes not matching the shape).
    SafetensorsWriter(const std::filesystem::path& path, std::vector<TensorEntry> tensors);
    ~SafetensorsWriter();  // closes the file if finish() was not reached (the caller removes the partial file)
    SafetensorsWriter(const SafetensorsWriter&) = delete;
    SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

    // Appends `bytes` of the current tensor's data (a tensor may arrive in several pieces). Throws ModelFileError
    // on an I/O failure or when more bytes arrive than the tensors declared.
    void write(const void* data, uint64_t bytes);
    // Checks that every tensor received all its bytes, then flushes and closes the file. Throws ModelFileError.
    void finish();

    // The whole file's size in bytes (header included), known from the constructor on.
    uint64_t file_bytes() const { return header_bytes_ + data_bytes_; }

private:
    [[noreturn]] void fail(const std::string& what) const;
    std::filesystem::path path_;
    std::FILE* file_ = nullptr;
    uint64_t header_bytes_ = 0, data_bytes_ = 0, written_ = 0;
};

}  // namespace halo
