// The UTF-8 helpers (core/input/utf8.h) under the tokenizer's namespace, where its code uses them unqualified.
#pragma once

#include "core/input/utf8.h"

namespace halo::tok {

using input::append_utf8;
using input::append_utf8_replacing;
using input::is_valid_utf8;
using input::utf8_incomplete_tail;
using input::utf8_replacing;

}  // namespace halo::tok
