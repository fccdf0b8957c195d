// What a saved prefix cache must match to be loaded again (PrefixCache::save_to / load_from): the engine build, the
// model's files, the backend plugin and device, and every option that changes the numbers a snapshot holds. A
// cache saved under one of them and loaded under another would resume requests from states the running engine
// would not have computed, so any difference refuses the whole cache, naming the key.
#pragma once

#include <filesystem>
#include <string>

#include "core/model.h"
#include "core/prefix_cache.h"

namespace halo::server {

// What the fingerprint is computed from.
struct FingerprintSource {
    std::string engine_build;           // "halo 0.1.0 commit 1a2b3c4" (version and build commit)
    std::filesystem::path model_dir;    // config.json and the safetensors checkpoint (Checkpoint::open's files)
    std::string plugin;                 // the backend plugin's name: "cpu", "vulkan"
    std::string device;                 // DeviceInfo::name
    ModelOptions options;               // cache dtype, KDA/MLA forms, MoE weighting, quantization, KDA chunk
};

// Keys: "engine", "model", "backend", "device", "cache_dtype", "kda_form", "mla_form", "moe_weighting", "quantize",
// "kda_chunk", "kv_norm_eps". Reads config.json and, of every checkpoint file, its safetensors header and a few
// sampled 64 KiB blocks of its data (milliseconds, whatever the model's size). Throws what Checkpoint::open throws
// for a directory without a checkpoint.
CacheFingerprint cache_fingerprint(const FingerprintSource& source);

// The "model" value: a digest of config.json's bytes and, per checkpoint file (in the checkpoint's order), its name,
// size, safetensors header and sampled data blocks, so that a fine-tune with the same shapes differs; the text also
// says how many files it covers: "4f1c... (config.json + 1 checkpoint file)".
std::string model_digest(const std::filesystem::path& model_dir);

}  // namespace halo::server
