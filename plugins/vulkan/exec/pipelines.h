// Compute pipelines built from the embedded SPIR-V, created on first use and cached.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <vulkan/vulkan.h>

#include "plugins/vulkan/device/device.h"

namespace halo::vk {

struct PipelineSpec {
    const char* shader = nullptr;       // embedded shader name without variant suffix
    bool subgroup_variants = false;     // the shader exists as "<name>.sg" and "<name>.nosg"
    std::vector<uint32_t> bindings;     // descriptor count of storage-buffer bindings 0, 1, ... (1, or an array size)
    uint32_t push_bytes = 0;            // size of the push-constant struct
    std::vector<uint32_t> constants;    // specialization constants 0, 1, ... (uint32)
};

struct Pipeline {
    std::string name;  // variant name, for errors
    VkPipeline pipeline = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    std::vector<uint32_t> bindings;
    uint32_t n_descriptors = 0;
    uint32_t push_bytes = 0;
};

class Pipelines {
public:
    explicit Pipelines(const Device& device);
    ~Pipelines();
    Pipelines(const Pipelines&) = delete;
    Pipelines& operator=(const Pipelines&) = delete;

    const Pipeline& get(const PipelineSpec& spec);

private:
    const Pipeline& create(const PipelineSpec& spec);

    const Device& device_;
    VkPipelineCache cache_ = VK_NULL_HANDLE;
    std::map<std::string, std::unique_ptr<Pipeline>> pipelines_;
    // Fast path: (shader name pointer, first constant) -> pipeline, for the specs ops keep as constants.
    std::map<std::pair<const char*, uint64_t>, const Pipeline*> by_spec_[2];
};

}  // namespace halo::vk
