// Push constants of the KDA shaders, shared by GLSL and C++. Activations live in the op's workspace, each bound
// at element 0: qkv/act [T, 3D] (q | k | v per row), gate [T, D], ogate [T, D], beta [T, H], o [T, D], and the
// chunked form's per-(row, head) workspace of ws_stride floats: G [K] | Wm [K] | U [V] | Aqk [C].
#ifndef HALO_VK_KDA_SHARED_H
#define HALO_VK_KDA_SHARED_H

#include "plugins/vulkan/shaders/interop.h"

HALO_GLSL_BEGIN

struct KdaPush {
    uint rows;       // T
    uint heads;      // H
    uint head_dim;   // K (= V)
    uint width;      // D = H * K
    uint conv_w;     // W
    uint chunk;      // C, tokens per chunk (chunked form)
    uint n_items;    // entries of the run or chunk list of this dispatch
    uint state_off;  // element offsets of the state tensors and small weights in their windows
    uint conv_off;
    uint qc_off;
    uint kc_off;
    uint vc_off;
    uint qc_dt;
    uint kc_dt;
    uint vc_dt;
    uint dt_off;
    uint dt_dt;
    uint alog_off;
    uint alog_dt;
    uint onorm_off;
    uint onorm_dt;
    float q_scale;   // K^-0.5
    float l2_eps;
    float norm_eps;
    uint ws_stride;  // floats per (row, head) of the chunk workspace: 2K + V + C
    uint pad0;
    uint pad1;
    uint pad2;
};

HALO_GLSL_END

HALO_LAYOUT(KdaPush, state_off, 28)
HALO_LAYOUT(KdaPush, onorm_dt, 80)
HALO_LAYOUT(KdaPush, q_scale, 84)
HALO_LAYOUT(KdaPush, ws_stride, 96)
HALO_SIZE(KdaPush, 112)

#endif
