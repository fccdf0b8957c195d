#version 450
// KDA short causal convolutions + SiLU, one invocation per (run, channel of q|k|v): the channel's W-1 history
// values, then the run's pre-conv values in order; writes act = silu(conv) and the new history (the last W-1
// pre-conv values). Tap W-1 multiplies the current token. Grid: (ceil(3D / 64), runs).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/kda/kda_shared.h"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { KdaPush p; };
layout(binding = 0) readonly buffer Runs { RunDesc runs[]; };
layout(binding = 1) readonly buffer Qkv { float qkv[]; };
layout(binding = 2) writeonly buffer Act { float act[]; };
layout(binding = 3) buffer Conv { float conv[]; };  // [slots, 3, W-1, D]
HALO_TENSOR_RO(4, qc)
HALO_TENSOR_RO(5, kc)
HALO_TENSOR_RO(6, vc)

#define MAXW 16u

void main() {
    const uint ch = gl_GlobalInvocationID.x, D = p.width, W = p.conv_w;
    if (ch >= 3u * D) return;
    const RunDesc run = runs[gl_WorkGroupID.y];
    const uint which = ch / D, cc = ch % D;
    float w[MAXW], win[MAXW];  // taps; window of the last W inputs, oldest first
    for (uint j = 0u; j < MAXW; ++j) {
        w[j] = 0.0;
        win[j] = 0.0;
    }
    for (uint j = 0u; j < W; ++j) {
        const uint wi = cc * W + j;
        w[j] = which == 0u ? qc_load(p.qc_off + wi, p.qc_dt) : which == 1u ? kc_load(p.kc_off + wi, p.kc_dt)
                                                                          : vc_load(p.vc_off + wi, p.vc_dt);
    }
    const uint hist = p.conv_off + ((uint(run.slot) * 3u + which) * (W - 1u)) * D + cc;
    for (uint j = 0u; j + 1u < W; ++j) win[j] = conv[hist + j * D];
    for (int t = 0; t < run.n_tokens; ++t) {
        const uint row = uint(run.first_row + t);
        win[W - 1u] = qkv[row * 3u * D + ch];
        float y = 0.0;
        for (uint j = 0u; j < W; ++j) y += w[j] * win[j];
        act[row * 3u * D + ch] = silu(y);
        for (uint j = 0u; j + 1u < W; ++j) win[j] = win[j + 1u];
    }
    for (uint j = 0u; j + 1u < W; ++j) conv[hist + j * D] = win[j];
}
