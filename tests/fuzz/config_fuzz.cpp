// Fuzz target: config.json parsing (bounded JSON, then the Kimi-Linear checks) rejects bad input with one bounded
// sentence, never a crash.
#include <cstdint>
#include <string_view>

#include "core/config.h"
#include "core/input/bounded_json.h"
#include "core/weights.h"
#include "tests/fuzz/bounded_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto doc = halo::input::parse_json(std::string_view(reinterpret_cast<const char*>(data), size),
                                                 halo::input::kConfigJson, "config.json");
        const halo::ModelConfig c = halo::parse_model_config(doc, "config.json");
        // Accepted configs must give a consistent tensor list (bounded, so huge sizes are not enumerated).
        if (c.num_hidden_layers <= 64 && c.num_experts <= 512 && c.hidden_size < (1 << 20) && c.vocab_size < (1 << 24) &&
            c.intermediate_size < (1 << 20) && c.moe_intermediate_size < (1 << 20) && c.kda_num_heads < 4096 &&
            c.kda_head_dim < 4096 && c.num_attention_heads < 4096 && c.kv_lora_rank < 65536 &&
            c.qk_nope_head_dim < 4096 && c.qk_rope_head_dim < 4096 && c.v_head_dim < 4096)
            (void)halo::count_parameters(c);
    } catch (const halo::input::JsonInputError& e) {
        halo::fuzz::check_message(e);
    } catch (const halo::ConfigError& e) {
        halo::fuzz::check_message(e);
    }
    return 0;
}
