#include "core/input/read_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace halo::input {

std::string too_large(const std::string& source, uint64_t size, size_t max_bytes, const char* what_is_it) {
    return source + " is " + std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) + " (" +
           byte_size_text(max_bytes) + ") allowed for " + what_is_it + "; check that it is the right file";
}

std::string read_bounded_file(const std::filesystem::path& path, size_t max_bytes, const char* what_is_it) {
    const std::string source = path.string();
    std::error_code ec;
    if (const uintmax_t size = std::filesystem::file_size(path, ec); !ec && size > max_bytes)
        throw InputError(too_large(source, size, max_bytes, what_is_it));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(source + " cannot be opened: " + std::strerror(errno));
    std::string text;
    char block[1 << 16];
    while (in) {  // at most max_bytes + 1, whatever the file's size said
        in.read(block, sizeof block);
        text.append(block, size_t(in.gcount()));
        if (text.size() > max_bytes) throw InputError(too_large(source, text.size(), max_bytes, what_is_it));
    }
    if (in.bad()) throw InputError(source + " cannot be read: " + std::strerror(errno));
    return text;
}

std::string byte_size_text(uint64_t bytes) {
    char buf[48];
    if (bytes >= 1000ull * 1000 * 1000) {
        std::snprintf(buf, sizeof buf, "%.1f GB", double(bytes) / 1e9);
    } else if (bytes >= 1000ull * 1000) {
        std::snprintf(buf, sizeof buf, "%.1f MB", double(bytes) / 1e6);
    } else if (bytes >= 10000) {
        std::snprintf(buf, sizeof buf, "%.0f KB", double(bytes) / 1e3);
    } else {
        std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
    }
    return buf;
}

}  // namespace halo::input
