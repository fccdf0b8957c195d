#include "server/cache_fingerprint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/safetensors.h"

namespace halo::server {

namespace {

constexpr uint64_t kBlockBytes = 64 * 1024;  // one sampled block of a checkpoint file's data
constexpr int kBlocksPerFile = 8;            // evenly spaced over the data section, first and last included
constexpr uint64_t kTensorSampleBytes = 64;  // from the middle of every tensor (a fine-tune of a few tensors)

// FNV-1a over bytes, each field framed by its length so that ("ab", "c") and ("a", "bc") differ.
class Digest {
public:
    void bytes(const void* p, uint64_t n) {
        number(n);
        raw(p, n);
    }
    void text(const std::string& s) { bytes(s.data(), s.size()); }
    void number(uint64_t v) { raw(&v, sizeof v); }
    std::string hex() const {
        uint64_t x = h_;  // a final mix so that similar inputs give unlike digits
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)x);
        return buf;
    }

private:
    void raw(const void* p, uint64_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        for (uint64_t i = 0; i < n; ++i) h_ = (h_ ^ b[i]) * 0x100000001b3ULL;
    }
    uint64_t h_ = 0xcbf29ce484222325ULL;
};

std::string read_whole(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string() + " to fingerprint the model");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

const char* kda_form_name(ops::KdaForm f) {
    switch (f) {
    case ops::KdaForm::recurrent: return "recurrent";
    case ops::KdaForm::chunked: return "chunked";
    default: return "auto";
    }
}

const char* mla_form_name(ops::MlaForm f) {
    switch (f) {
    case ops::MlaForm::expanded: return "expanded";
    case ops::MlaForm::absorbed: return "absorbed";
    default: return "auto";
    }
}

}  // namespace

std::string model_digest(const std::filesystem::path& model_dir) {
    Digest d;
    d.text(read_whole(model_dir / "config.json"));
    const std::unique_ptr<Checkpoint> ck = Checkpoint::open(model_dir);
    for (const auto& file : ck->files()) {
        const uint8_t* data = file->data();
        const uint64_t size = file->size();
        d.text(file->path().filename().string());
        d.number(size);
        // The header: 8 bytes of length, then its JSON (names, dtypes, shapes, offsets). Checkpoint::open checked it.
        uint64_t header = 0;
        std::memcpy(&header, data, sizeof header);
        const uint64_t data_begin = std::min(size, 8 + header);
        d.bytes(data, data_begin);
        const uint64_t data_bytes = size - data_begin;
        if (data_bytes <= kBlockBytes * kBlocksPerFile) {
            d.bytes(data + data_begin, data_bytes);
            continue;
        }
        for (int i = 0; i < kBlocksPerFile; ++i) {
            const uint64_t at = data_begin + (data_bytes - kBlockBytes) * uint64_t(i) / (kBlocksPerFile - 1);
            d.bytes(data + at, kBlockBytes);
        }
    }
    // A few bytes of every tensor: a fine-tune that changed only some tensors (attention, say) is seldom caught by
    // blocks sampled over files that experts fill.
    for (const auto& [name, t] : ck->tensors()) {
        const uint64_t n = t.end - t.begin;
        const uint64_t take = std::min(n, kTensorSampleBytes);
        d.text(name);
        d.bytes(t.data + (n - take) / 2, take);
    }
    const size_t files = ck->files().size();
    return d.hex() + " (config.json + " + std::to_string(files) + " checkpoint file" + (files == 1 ? "" : "s") + ")";
}

CacheFingerprint cache_fingerprint(const FingerprintSource& s) {
    const ModelOptions& o = s.options;
    char eps[32];
    std::snprintf(eps, sizeof eps, "%.17g", o.kv_norm_eps);
    return {
        {"engine", s.engine_build},
        {"model", model_digest(s.model_dir)},
        {"backend", s.plugin},
        {"device", s.device},
        {"cache_dtype", ops::dtype_name(o.cache_dtype)},
        {"kda_form", kda_form_name(o.kda_form)},
        {"mla_form", mla_form_name(o.mla_form)},
        {"moe_weighting", o.moe_weighting == ops::MoeWeighting::biased ? "biased" : "unbiased"},
        {"quantize", o.quantize.describe()},
        {"kda_chunk", std::to_string(o.kda_chunk)},
        {"kv_norm_eps", eps},
    };
}

}  // namespace halo::server
