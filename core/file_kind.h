// Why a path that should be a file cannot be read as one. Checked before opening: opening a FIFO waits for a
// writer, and a directory opens but fails on the first read with an unhelpful stream error.
#pragma once

#include <filesystem>
#include <string>

namespace halo {

// "is a directory, not a file", "is not a regular file (...)", or empty when the path is a file or does not exist
// (the caller's open then reports that).
inline std::string why_not_a_file(const std::filesystem::path& path) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (std::filesystem::is_directory(status)) return "is a directory, not a file";
    if (std::filesystem::is_other(status)) return "is not a regular file (a FIFO, socket or device)";
    return "";
}

}  // namespace halo
