// Safetensors checkpoints: one file or several shards with model.safetensors.index.json, memory-mapped.
// Every structural problem is reported as a sentence naming the file (and the tensor where there is one).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace halo {

class ModelFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct TensorRecord {
    std::string name;
    std::string dtype;            // as written in the file: "BF16", "F16", "F32", "I64", ...
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // byte offsets into the file's data section
    const uint8_t* data = nullptr;  // begin in the mapping (set once the file is mapped)
    std::string file;             // file name, for messages
};

// Parses the header of a safetensors file held in memory (8-byte little-endian header length, JSON header, data).
// Checks: the length fits the file, the JSON is an object of tensors with known dtypes, integer shapes and offsets
// inside the data section whose size matches the shape. Throws ModelFileError naming `file` and the tensor.
std::vector<TensorRecord> parse_safetensors(const uint8_t* bytes, uint64_t size, const std::string& file);

// The weight_map of a model.safetensors.index.json: which shard holds each tensor.
struct SafetensorsIndex {
    std::map<std::string, std::string> weight_map;  // tensor name -> shard file name (a plain name, no folders)
    std::vector<std::string> shards;                // each shard once, in order of first mention
};

// Parses the index file's text (bounded: size, depth and duplicate keys are checked first). Throws ModelFileError
// naming `file` when it is not JSON, has no weight_map object, or maps a tensor to anything but a plain file name.
SafetensorsIndex parse_safetensors_index(std::string_view text, const std::string& file);

// Bytes per element of a safetensors dtype name, or 0 when unknown.
uint64_t safetensors_dtype_size(const std::string& dtype);

// A read-only memory mapping of a whole file.
class MappedFile {
public:
    explicit MappedFile(const std::filesystem::path& path);  // throws ModelFileError
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    const std::filesystem::path& path() const { return path_; }
    // Bytes of the mapping that are mapped now (read at least once), and of those, the bytes mapped in 2 MiB pages
    // (Linux's Rss and FilePmdMapped for it in /proc/self/smaps; zeros where that is unknown). The file is mapped
    // asking for huge pages; pages the page cache already held in smaller pieces stay small until it drops them.
    struct PageUse {
        uint64_t resident = 0, huge = 0;
    };
    PageUse page_use() const;

private:
    std::filesystem::path path_;
    uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

// For a file just written (of 64 MiB or more): writes its pages to disk and drops them from the page cache, best
// effort. Pages that writes leave in the cache are 4 KiB ones, and the cache keeps serving them to every later
// mapping of the file; read back from disk, the file comes into the large folios the kernel uses for reads (2 MiB on
// Linux 6.x with ext4 or XFS), which a mapped checkpoint streams much faster (see MappedFile). The checkpoint writers
// call it, so the first run after them does not map the small pages.
void drop_written_pages(const std::filesystem::path& path);

// All tensors of a checkpoint directory, by name.
class Checkpoint {
public:
    // Opens model.safetensors.index.json when present, else model.safetensors, else the only *.safetensors file.
    static std::unique_ptr<Checkpoint> open(const std::filesystem::path& model_dir);

    const TensorRecord* find(const std::string& name) const;
    const std::map<std::string, TensorRecord>& tensors() const { return tensors_; }
    const std::vector<std::unique_ptr<MappedFile>>& files() const { return files_; }

private:
    std::vector<std::unique_ptr<MappedFile>> files_;
    std::map<std::string, TensorRecord> tensors_;
};

}  // namespace halo
