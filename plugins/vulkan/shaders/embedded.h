// The SPIR-V of every shader, compiled from the GLSL beside each op at build time and embedded in the plugin.
// Names are "<source stem>" or "<source stem>.<variant>" (for example "gemv.sg" and "gemv.nosg").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace halo::vk {

struct EmbeddedShader {
    const char* name;
    const uint32_t* words;
    size_t n_words;
};

extern const EmbeddedShader kEmbeddedShaders[];
extern const size_t kEmbeddedShaderCount;

// The shader of that name, or null.
inline const EmbeddedShader* find_shader(std::string_view name) {
    for (size_t i = 0; i < kEmbeddedShaderCount; ++i)
        if (name == kEmbeddedShaders[i].name) return &kEmbeddedShaders[i];
    return nullptr;
}

}  // namespace halo::vk
