// A Backend that runs ops/reference on host memory: the "truth" side of conformance tests and check mode.
#pragma once

#include <memory>

#include "ops/backend.h"

namespace halo::ref {

std::unique_ptr<ops::Backend> make_reference_backend();

}  // namespace halo::ref
