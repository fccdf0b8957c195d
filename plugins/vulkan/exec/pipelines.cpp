#include "plugins/vulkan/exec/pipelines.h"

#include "plugins/vulkan/device/check.h"
#include "plugins/vulkan/shaders/embedded.h"

namespace halo::vk {

Pipelines::Pipelines(const Device& device) : device_(device) {
    VkPipelineCacheCreateInfo ci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    check(vkCreatePipelineCache(device_.handle(), &ci, nullptr, &cache_), "creating a pipeline cache");
}

Pipelines::~Pipelines() {
    VkDevice dev = device_.handle();
    for (auto& [key, p] : pipelines_) {
        vkDestroyPipeline(dev, p->pipeline, nullptr);
        vkDestroyPipelineLayout(dev, p->layout, nullptr);
        vkDestroyDescriptorSetLayout(dev, p->set_layout, nullptr);
    }
    vkDestroyPipelineCache(dev, cache_, nullptr);
}

const Pipeline& Pipelines::get(const PipelineSpec& spec) {
    const bool fast = spec.constants.size() <= 1;
    const auto fast_key = std::make_pair(spec.shader, spec.constants.empty() ? ~uint64_t(0) : uint64_t(spec.constants[0]));
    auto& fast_map = by_spec_[device_.caps().subgroup_ops ? 1 : 0];
    if (fast)
        if (auto it = fast_map.find(fast_key); it != fast_map.end()) return *it->second;
    const Pipeline& p = create(spec);
    if (fast) fast_map[fast_key] = &p;
    return p;
}

const Pipeline& Pipelines::create(const PipelineSpec& spec) {
    std::string name = spec.shader;
    if (spec.subgroup_variants) name += device_.caps().subgroup_ops ? ".sg" : ".nosg";
    std::string key = name;
    for (uint32_t c : spec.constants) key += "/" + std::to_string(c);
    if (auto it = pipelines_.find(key); it != pipelines_.end()) return *it->second;

    const EmbeddedShader* code = find_shader(name);
    if (!code) throw ops::Error("vulkan: shader '" + name + "' is not embedded in the plugin (a build problem; rebuild it)");
    VkDevice dev = device_.handle();
    auto p = std::make_unique<Pipeline>();
    p->name = name;
    p->bindings = spec.bindings;
    p->push_bytes = spec.push_bytes;

    std::vector<VkDescriptorSetLayoutBinding> b(spec.bindings.size());
    for (size_t i = 0; i < b.size(); ++i) {
        b[i].binding = uint32_t(i);
        b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        b[i].descriptorCount = spec.bindings[i];
        b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
        p->n_descriptors += spec.bindings[i];
    }
    VkDescriptorSetLayoutCreateInfo dl{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    if (device_.caps().push_descriptors) dl.flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR;
    dl.bindingCount = uint32_t(b.size());
    dl.pBindings = b.data();
    check(vkCreateDescriptorSetLayout(dev, &dl, nullptr, &p->set_layout), "creating a descriptor set layout");

    VkPushConstantRange pc{VK_SHADER_STAGE_COMPUTE_BIT, 0, spec.push_bytes};
    VkPipelineLayoutCreateInfo pl{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    pl.setLayoutCount = 1;
    pl.pSetLayouts = &p->set_layout;
    pl.pushConstantRangeCount = spec.push_bytes ? 1 : 0;
    pl.pPushConstantRanges = &pc;
    check(vkCreatePipelineLayout(dev, &pl, nullptr, &p->layout), "creating a pipeline layout");

    VkShaderModuleCreateInfo sm{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    sm.codeSize = code->n_words * 4;
    sm.pCode = code->words;
    VkShaderModule module = VK_NULL_HANDLE;
    check(vkCreateShaderModule(dev, &sm, nullptr, &module), ("loading shader " + name).c_str());

    std::vector<VkSpecializationMapEntry> entries(spec.constants.size());
    for (size_t i = 0; i < entries.size(); ++i) entries[i] = {uint32_t(i), uint32_t(i * 4), 4};
    VkSpecializationInfo si{uint32_t(entries.size()), entries.data(), spec.constants.size() * 4, spec.constants.data()};
    VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    ci.stage.module = module;
    ci.stage.pName = "main";
    ci.stage.pSpecializationInfo = entries.empty() ? nullptr : &si;
    ci.layout = p->layout;
    const VkResult r = vkCreateComputePipelines(dev, cache_, 1, &ci, nullptr, &p->pipeline);
    vkDestroyShaderModule(dev, module, nullptr);
    check(r, ("creating the compute pipeline of shader " + name).c_str());
    return *pipelines_.emplace(key, std::move(p)).first->second;
}

}  // namespace halo::vk
