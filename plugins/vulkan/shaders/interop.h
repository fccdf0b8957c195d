// Definitions shared by the GLSL shaders and the C++ host code, included by both (GLSL through
// GL_GOOGLE_include_directive). Shared structs hold only 4-byte scalars (int, uint, float), so the GLSL std430 and
// push-constant layouts equal the C++ layout field by field; the C++ side checks offsets with HALO_LAYOUT. (GLSL
// rejects stray semicolons at file scope, so HALO_LAYOUT and HALO_SIZE lines carry none.)
#ifndef HALO_VK_INTEROP_H
#define HALO_VK_INTEROP_H

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>
#define HALO_GLSL_BEGIN namespace halo::vk::glsl { using uint = uint32_t;
#define HALO_GLSL_END }
#define HALO_LAYOUT(T, field, offset) \
    static_assert(offsetof(halo::vk::glsl::T, field) == offset, #T "." #field " must sit at byte " #offset " as in GLSL");
#define HALO_SIZE(T, size) static_assert(sizeof(halo::vk::glsl::T) == size, #T " must be " #size " bytes as in GLSL");
#else
#define HALO_GLSL_BEGIN
#define HALO_GLSL_END
#define HALO_LAYOUT(T, field, offset)
#define HALO_SIZE(T, size)
#endif

// Element type codes, equal to ops::DType.
#define HALO_DT_F32 0
#define HALO_DT_F16 1
#define HALO_DT_BF16 2
#define HALO_DT_I32 3
#define HALO_DT_Q4 4
#define HALO_DT_Q8 5

HALO_GLSL_BEGIN

// One sequence's run in a step as the shaders see it: ops::SeqRun with the page table moved into a device buffer.
struct RunDesc {
    int first_row;  // first row of the run in the step's activations
    int n_tokens;   // rows in the run
    int slot;       // KDA state / conv history slot
    int pos;        // tokens the sequence consumed before this run
    int page_base;  // index of the run's first page-table entry in the step's page buffer
    int n_pages;    // page-table entries of the run
    int pad0;
    int pad1;
};

HALO_GLSL_END

HALO_LAYOUT(RunDesc, first_row, 0)
HALO_LAYOUT(RunDesc, n_tokens, 4)
HALO_LAYOUT(RunDesc, slot, 8)
HALO_LAYOUT(RunDesc, pos, 12)
HALO_LAYOUT(RunDesc, page_base, 16)
HALO_LAYOUT(RunDesc, n_pages, 20)
HALO_SIZE(RunDesc, 32)

#endif
