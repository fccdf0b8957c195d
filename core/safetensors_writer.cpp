#include "core/safetensors_writer.h"

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"

namespace halo {

void SafetensorsWriter::fail(const std::string& what) const {
    throw ModelFileError("could not write " + path_.string() + ": " + what);
}

SafetensorsWriter::SafetensorsWriter(const std::filesystem::path& path, std::vector<TensorEntry> tensors)
    : path_(path) {
    nlohmann::json header = nlohmann::json::object();
    header["__metadata__"] = {{"format", "pt"}};
    for (const TensorEntry& t : tensors) {
        const uint64_t esize = safetensors_dtype_size(t.dtype);
        if (esize == 0) fail("tensor '" + t.name + "' has unknown dtype '" + t.dtype + "'");
        uint64_t numel = 1;
        for (int64_t d : t.shape) numel *= uint64_t(d);
        if (numel * esize != t.bytes)
            fail("tensor '" + t.name + "' declares " + std::to_string(t.bytes) + " bytes for " + std::to_string(numel) +
                 " elements of " + t.dtype);
        if (header.contains(t.name)) fail("tensor '" + t.name + "' is listed twice");
        header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data_bytes_, data_bytes_ + t.bytes}}};
        data_bytes_ += t.bytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
    header_bytes_ = 8 + text.size();
    file_ = std::fopen(path.string().c_str(), "wb");
    if (!file_) fail(std::strerror(errno));
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
    if (std::fwrite(len, 1, 8, file_) != 8 || std::fwrite(text.data(), 1, text.size(), file_) != text.size())
        fail(std::strerror(errno));
}

SafetensorsWriter::~SafetensorsWriter() {
    if (file_) std::fclose(file_);
}

void SafetensorsWriter::write(const void* data, uint64_t bytes) {
    if (!file_) fail("the file is already closed");
    if (written_ + bytes > data_bytes_) fail("more tensor data arrived than the header declares");
    if (bytes && std::fwrite(data, 1, bytes, file_) != bytes) fail(std::strerror(errno));
    written_ += bytes;
}

void SafetensorsWriter::finish() {
    if (!file_) fail("the file is already closed");
    if (written_ != data_bytes_)
        fail(std::to_string(data_bytes_ - written_) + " bytes of tensor data were never written");
    const bool ok = std::fflush(file_) == 0 && !std::ferror(file_);
    const int err = errno;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok || !closed) fail(std::strerror(ok ? errno : err));
    drop_written_pages(path_);
}

}  // namespace halo
