#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "core/file_kind.h"
#include "core/input/bounded_json.h"
#include "core/input/excerpt.h"

namespace halo {

using nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit

// A tensor name or file name from the input, quoted for a message.
std::string named(const std::string& name) { return input::quote(name, input::kNameBytes); }

[[noreturn]] void fail(const std::string& file, const std::string& what) { throw ModelFileError(file + ": " + what); }

[[noreturn]] void fail_tensor(const std::string& file, const std::string& name, const std::string& what) {
    throw ModelFileError(file + ": tensor " + named(name) + " " + what);
}

std::string range(const TensorRecord& r) {
    return "[" + std::to_string(r.begin) + ", " + std::to_string(r.end) + ")";
}

// "1 byte", "2 bytes".
std::string byte_count(uint64_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

// The tensors must tile the data section exactly, as the reference library requires: sorted by offsets, the first
// begins at 0, each begins where the previous ended, the last ends at the data section's end. A zero-byte tensor
// may sit at any boundary between tensors. A header length that is off by a few bytes (JSON padded with spaces
// still parses) or an aliased, overlapping or stray byte range is caught here rather than as wrong numbers later.
void check_tiling(const std::vector<TensorRecord>& records, uint64_t data_size, const std::string& file) {
    std::vector<const TensorRecord*> sorted;
    for (const TensorRecord& r : records) sorted.push_back(&r);
    std::sort(sorted.begin(), sorted.end(), [](const TensorRecord* a, const TensorRecord* b) {
        return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
    });
    const TensorRecord* prev = nullptr;  // the last tensor holding bytes so far
    uint64_t covered = 0;                // bytes [0, covered) are held by tensors seen so far
    for (const TensorRecord* r : sorted) {
        if (r->begin < covered)
            fail_tensor(file, r->name,
                        "data " + range(*r) + " overlaps tensor " + named(prev->name) + " " + range(*prev));
        if (r->begin > covered)
            fail(file, "leaves a gap of " + byte_count(r->begin - covered) + " before tensor " + named(r->name) + " " +
                           range(*r) + ", " +
                           (prev ? "after tensor " + named(prev->name) + " " + range(*prev)
                                 : std::string("the first in the data section")) +
                           " (the header length or offsets are wrong)");
        if (r->end > r->begin) {
            prev = r;
            covered = r->end;
        }
    }
    if (covered != data_size) {
        const std::string extra = byte_count(data_size - covered);
        if (!prev)
            fail(file, "has a data section of " + extra + " but no tensor holding any of them "
                       "(the header length or offsets are wrong)");
        fail(file, "has a data section with " + extra + " after the last tensor " + named(prev->name) + " " +
                       range(*prev) + " (the header length or offsets are wrong)");
    }
}

}  // namespace

uint64_t safetensors_dtype_size(const std::string& dtype) {
    static const std::map<std::string, uint64_t> sizes = {
        {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2},
        {"F16", 2},  {"BF16", 2}, {"I32", 4}, {"U32", 4},     {"F32", 4},     {"I64", 8}, {"U64", 8}, {"F64", 8}};
    auto it = sizes.find(dtype);
    return it == sizes.end() ? 0 : it->second;
}

std::vector<TensorRecord> parse_safetensors(const uint8_t* bytes, uint64_t size, const std::string& file) {
    if (size < 8) fail(file, "is " + std::to_string(size) + " bytes long, too short to be a safetensors file (truncated?)");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = header_len << 8 | bytes[i];
    if (header_len > kMaxHeaderBytes)
        fail(file, "declares a " + std::to_string(header_len) + "-byte header, more than the format's 100 MB limit "
                   "(not a safetensors file, or corrupt)");
    if (header_len > size - 8)
        fail(file, "declares a " + std::to_string(header_len) + "-byte header but holds only " +
                       std::to_string(size - 8) + " bytes after the length (truncated?)");
    const char* text = reinterpret_cast<const char*>(bytes + 8);
    json header;
    try {
        header = input::parse_json(std::string_view(text, header_len), input::kSafetensorsHeader, "the header");
    } catch (const input::JsonInputError& e) {
        fail(file, std::string(e.what()) + " (corrupt, or not a safetensors file)");
    }
    if (!header.is_object()) fail(file, "has a header that is not a JSON object");

    const uint64_t data_size = size - 8 - header_len;
    std::vector<TensorRecord> out;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        if (name == "__metadata__") {
            if (!it->is_object()) fail(file, "has a '__metadata__' entry that is not an object");
            continue;
        }
        const json& e = *it;
        if (!e.is_object()) fail_tensor(file, name, "has a header entry that is not an object");
        if (!e.contains("dtype") || !e["dtype"].is_string()) fail_tensor(file, name, "has no dtype string");
        if (!e.contains("shape") || !e["shape"].is_array()) fail_tensor(file, name, "has no shape list");
        if (!e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2)
            fail_tensor(file, name, "has no [begin, end] data_offsets");
        TensorRecord r;
        r.name = name;
        r.file = file;
        r.dtype = e["dtype"].get<std::string>();
        const uint64_t esize = safetensors_dtype_size(r.dtype);
        if (esize == 0) fail_tensor(file, name, "has unknown dtype " + input::quote(r.dtype));
        uint64_t numel = 1;
        for (const json& d : e["shape"]) {
            if (!d.is_number_unsigned()) fail_tensor(file, name, "has a shape entry that is not a non-negative integer");
            const uint64_t v = d.get<uint64_t>();
            if (v != 0 && numel > (uint64_t(1) << 62) / v) fail_tensor(file, name, "has a shape too large to address");
            numel *= v;
            r.shape.push_back(int64_t(v));
        }
        if (r.shape.size() > 8) fail_tensor(file, name, "has more than 8 dimensions");
        for (const json& o : e["data_offsets"])
            if (!o.is_number_unsigned()) fail_tensor(file, name, "has data_offsets that are not non-negative integers");
        r.begin = e["data_offsets"][0].get<uint64_t>();
        r.end = e["data_offsets"][1].get<uint64_t>();
        if (r.begin > r.end) fail_tensor(file, name, "has data_offsets that end before they begin");
        if (r.end > data_size)
            fail_tensor(file, name, "has data_offsets [" + std::to_string(r.begin) + ", " + std::to_string(r.end) +
                                        "] past the end of the data (" + std::to_string(data_size) +
                                        " bytes): the file is truncated or corrupt");
        if (numel > data_size / esize)  // also keeps numel * esize from overflowing below
            fail_tensor(file, name, "has shape and dtype needing more bytes than the file's data section holds (" +
                                        std::to_string(data_size) + " bytes)");
        if (r.end - r.begin != numel * esize)
            fail_tensor(file, name, "holds " + std::to_string(r.end - r.begin) + " bytes but its shape and dtype need " +
                                        std::to_string(numel * esize));
        r.data = bytes + 8 + header_len + r.begin;
        out.push_back(std::move(r));
    }
    check_tiling(out, data_size, file);
    return out;
}

namespace {

// Maps a file read-only at an address that is a multiple of 2 MiB, asking for huge pages (MADV_HUGEPAGE). Where the
// kernel caches the file in 2 MiB folios (Linux 6.x reads ext4 and XFS files into them; older kernels can collapse a
// mapping that asks into huge pages in the background), each 2 MiB of the mapping is one page table entry, and decode
// streams the weights through far fewer TLB misses: on a 2-core VM the bench model's 3.3 GB read at 55 GB/s at 2
// threads this way, against 23-25 GB/s through the 4 KiB pages a freshly written file sits in (see
// drop_written_pages). Falls back to a plain mapping; MAP_FAILED (errno set) when the file cannot be mapped at all.
void* map_huge_aligned(int fd, uint64_t size) {
    constexpr uint64_t kHuge = uint64_t(2) << 20;
    const long page_size = ::sysconf(_SC_PAGESIZE);
    const uint64_t page = page_size > 0 ? uint64_t(page_size) : 4096;
    const uint64_t span = (size + page - 1) / page * page;
    void* reserve = size < kHuge ? MAP_FAILED : ::mmap(nullptr, span + kHuge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (reserve == MAP_FAILED) return ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    char* const base = static_cast<char*>(reserve);
    char* const aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + kHuge - 1) & ~uintptr_t(kHuge - 1));
    void* p = ::mmap(aligned, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        const int err = errno;
        ::munmap(base, span + kHuge);
        errno = err;
        return MAP_FAILED;
    }
    // Give back the reservation around the file's pages.
    if (aligned > base) ::munmap(base, size_t(aligned - base));
    char* const end = aligned + span;
    if (base + span + kHuge > end) ::munmap(end, size_t(base + span + kHuge - end));
    ::madvise(p, size, MADV_HUGEPAGE);  // a hint: kernels without file huge pages refuse it, and nothing changes
    return p;
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer before fstat could refuse it.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail(path.string(), std::string("cannot be opened: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        fail(path.string(), std::string("cannot be examined: ") + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(path.string(), S_ISDIR(st.st_mode) ? "is a directory, not a file"
                                                 : "is not a regular file (a FIFO, socket or device)");
    }
    size_ = uint64_t(st.st_size);
    if (size_ > 0) {
        void* p = map_huge_aligned(fd, size_);
        if (p == MAP_FAILED) {
            ::close(fd);
            fail(path.string(), std::string("cannot be memory-mapped: ") + std::strerror(errno));
        }
        data_ = static_cast<uint8_t*>(p);
    }
    ::close(fd);
}

void drop_written_pages(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && uint64_t(st.st_size) >= (uint64_t(64) << 20) &&
        ::fdatasync(fd) == 0)
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
}

MappedFile::PageUse MappedFile::page_use() const {
    PageUse use;
    if (!data_) return use;
    std::FILE* f = std::fopen("/proc/self/smaps", "r");
    if (!f) return use;
    const uintptr_t start = reinterpret_cast<uintptr_t>(data_);
    char line[8192];  // longer than a path, so a mapping's first line is read whole
    bool inside = false;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long lo = 0, hi = 0;
        char dash = 0;
        if (std::sscanf(line, "%lx%c%lx", &lo, &dash, &hi) == 3 && dash == '-') {  // a mapping's first line
            if (inside) break;
            inside = lo == start;
            continue;
        }
        unsigned long long kb = 0;
        if (inside && std::sscanf(line, "Rss: %llu kB", &kb) == 1) use.resident = uint64_t(kb) * 1024;
        if (inside && std::sscanf(line, "FilePmdMapped: %llu kB", &kb) == 1) use.huge = uint64_t(kb) * 1024;
    }
    std::fclose(f);
    return use;
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(data_, size_);
}

SafetensorsIndex parse_safetensors_index(std::string_view text, const std::string& file) {
    json index;
    try {
        index = input::parse_json(text, input::kIndexJson, file);
    } catch (const input::JsonInputError& e) {
        throw ModelFileError(e.what());
    }
    if (!index.is_object()) fail(file, "does not hold a JSON object");
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) fail(file, "has no 'weight_map' object");
    SafetensorsIndex out;
    std::set<std::string> seen;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
        if (!it->is_string()) fail(file, "maps tensor " + named(it.key()) + " to something that is not a file name");
        const std::string shard = it->get<std::string>();
        const bool control = std::any_of(shard.begin(), shard.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
        if (shard.empty() || control || shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
            fail(file, "maps tensor " + named(it.key()) + " to " + named(shard) +
                           ", which is not a plain file name in the model directory");
        out.weight_map[it.key()] = shard;
        if (seen.insert(shard).second) out.shards.push_back(shard);
    }
    return out;
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    auto ck = std::make_unique<Checkpoint>();
    std::vector<std::string> shard_names;
    std::map<std::string, std::string> weight_map;  // tensor -> shard, when an index exists
    const fs::path index_path = dir / "model.safetensors.index.json";
    if (fs::exists(index_path)) {
        const std::string why = why_not_a_file(index_path);
        if (!why.empty()) fail(index_path.string(), why);
        std::string text;
        try {
            text = input::read_bounded_file(index_path, input::kIndexJson.max_bytes, input::kIndexJson.what_is_it);
        } catch (const input::InputError& e) {
            throw ModelFileError(e.what());
        }
        SafetensorsIndex index = parse_safetensors_index(text, index_path.string());
        weight_map = std::move(index.weight_map);
        shard_names = std::move(index.shards);
    } else if (fs::exists(dir / "model.safetensors")) {
        shard_names.push_back("model.safetensors");
    } else {
        if (!fs::is_directory(dir)) throw ModelFileError("model directory " + dir.string() + " does not exist");
        for (const auto& e : fs::directory_iterator(dir))
            if (e.path().extension() == ".safetensors") shard_names.push_back(e.path().filename().string());
        if (shard_names.size() != 1)
            throw ModelFileError("model directory " + dir.string() + " has " + std::to_string(shard_names.size()) +
                                 " .safetensors files and no model.safetensors.index.json to say which to use");
    }

    for (const std::string& shard : shard_names) {
        const fs::path path = dir / shard;
        if (!fs::exists(path))
            fail("model directory " + dir.string(), "the index names the shard " + named(shard) + ", which does not exist");
        ck->files_.push_back(std::make_unique<MappedFile>(path));
        const MappedFile& mf = *ck->files_.back();
        for (TensorRecord& r : parse_safetensors(mf.data(), mf.size(), path.string())) {
            if (!weight_map.empty()) {
                auto w = weight_map.find(r.name);
                if (w == weight_map.end() || w->second != shard) continue;  // the index says it lives elsewhere
            }
            if (ck->tensors_.count(r.name)) fail(path.string(), "holds tensor " + named(r.name) + " a second time");
            ck->tensors_.emplace(r.name, std::move(r));
        }
    }
    for (const auto& [name, shard] : weight_map)
        if (!ck->tensors_.count(name))
            fail((dir / shard).string(), "does not hold tensor " + named(name) + ", which the index places there");
    return ck;
}

const TensorRecord* Checkpoint::find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace halo
