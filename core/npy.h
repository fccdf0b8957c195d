// Minimal .npy (NumPy format 1.0/2.0) reading and writing for little-endian float32 / int32 arrays.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace halo {

struct NpyArray {
    std::string dtype;            // "<f4", "<i4", "<f8", ...
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;    // raw little-endian elements, C order
    std::vector<float> as_floats() const;  // converts <f4, <f8, <i4, <i8
};

NpyArray read_npy(const std::filesystem::path& path);  // throws std::runtime_error naming the file
// Reads one member of an uncompressed .npz (zip, stored) archive.
NpyArray read_npz_member(const std::filesystem::path& path, const std::string& member);
void write_npy_f32(const std::filesystem::path& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace halo
