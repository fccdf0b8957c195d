// Turning VkResult failures into sentences (thrown as ops::Error).
#pragma once

#include <string>

#include <vulkan/vulkan.h>

#include "ops/backend.h"

namespace halo::vk {

const char* result_name(VkResult r);

// Throws ops::Error("vulkan: <what> failed with VK_ERROR_...") unless r is VK_SUCCESS (or VK_INCOMPLETE).
// Out-of-memory results throw ops::OutOfMemory.
void check(VkResult r, const char* what);

}  // namespace halo::vk
