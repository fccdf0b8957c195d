// Fuzz target: the safetensors parser must reject any input with a ModelFileError, never crash or read out of range.
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/safetensors.h"
#include "tests/fuzz/bounded_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Copy so that reads past the input are caught by sanitizers instead of landing in the fuzzer's buffer.
    std::vector<uint8_t> bytes(data, data + size);
    try {
        const auto records = halo::parse_safetensors(bytes.data(), bytes.size(), "fuzz.safetensors");
        for (const auto& r : records) {
            // Every accepted record must point inside the input.
            if (r.data < bytes.data() || r.data + (r.end - r.begin) > bytes.data() + bytes.size()) __builtin_trap();
        }
    } catch (const halo::ModelFileError& e) {
        halo::fuzz::check_message(e);
    }
    return 0;
}
