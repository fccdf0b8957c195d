// Fuzz target: model.safetensors.index.json parsing rejects bad input with one bounded sentence, and what it accepts
// names only plain shard files inside the model directory.
#include <cstdint>
#include <string_view>

#include "core/safetensors.h"
#include "tests/fuzz/bounded_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const halo::SafetensorsIndex index = halo::parse_safetensors_index(
            std::string_view(reinterpret_cast<const char*>(data), size), "model.safetensors.index.json");
        for (const auto& [tensor, shard] : index.weight_map)
            if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\0') != std::string::npos)
                __builtin_trap();
    } catch (const halo::ModelFileError& e) {
        halo::fuzz::check_message(e);
    }
    return 0;
}
