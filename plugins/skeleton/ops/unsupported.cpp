#include "plugins/skeleton/ops/ops.h"

namespace halo::skeleton {

void unsupported(const char* op, const std::string& why) {
    throw ops::Unsupported(std::string(op) + " is not supported by the skeleton plugin: " + why);
}

}  // namespace halo::skeleton
