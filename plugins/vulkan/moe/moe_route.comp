#version 450
// MoE routing, one invocation per row: s = sigmoid(logits), sel = s + bias; with groups, the topk_groups groups
// with the best sum of their two best sel values are kept; the top_k experts by sel (ties: lower id first) become
// the row's pairs, weighted by s (or sel when biased), renormalised over the chosen (+1e-20) and scaled; the
// shared expert (id E, weight 1) takes the last pair. Grid: (ceil(T / 64)).
#extension GL_GOOGLE_include_directive : require
#include "plugins/vulkan/shaders/common.glsl"
#include "plugins/vulkan/moe/moe_shared.h"

#define MAXK 16u
#define MAXG 64u

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { MoePush p; };
layout(binding = 0) readonly buffer Logits { float logits[]; };
HALO_TENSOR_RO(1, bias)
layout(binding = 2) writeonly buffer Ids { int ids[]; };
layout(binding = 3) writeonly buffer Wts { float wts[]; };
layout(binding = 4) writeonly buffer OutIds { int out_ids[]; };
layout(binding = 5) writeonly buffer OutWts { float out_wts[]; };

float score(uint t, uint e) { return sigmoid(logits[t * p.n_experts + e]); }
float selection(uint t, uint e) { return score(t, e) + (p.has_bias != 0u ? bias_load(p.bias_off + e, p.bias_dt) : 0.0); }

void main() {
    const uint t = gl_GlobalInvocationID.x;
    if (t >= p.rows) return;
    const uint E = p.n_experts;
    const bool grouped = p.n_groups > 1u;
    const uint per = grouped ? E / p.n_groups : E;
    bool kept[MAXG];
    for (uint g = 0u; g < MAXG; ++g) kept[g] = !grouped;
    if (grouped) {
        for (uint gi = 0u; gi < p.topk_groups; ++gi) {
            int best = -1;
            float best_score = 0.0;
            for (uint g = 0u; g < p.n_groups; ++g) {
                if (kept[g]) continue;
                float b1 = HALO_NEG_INF, b2 = HALO_NEG_INF;
                for (uint e = g * per; e < (g + 1u) * per; ++e) {
                    const float v = selection(t, e);
                    if (v > b1) {
                        b2 = b1;
                        b1 = v;
                    } else if (v > b2) {
                        b2 = v;
                    }
                }
                const float gs = b1 + (per > 1u ? b2 : 0.0);
                if (best < 0 || gs > best_score) {
                    best = int(g);
                    best_score = gs;
                }
            }
            if (best >= 0) kept[best] = true;
        }
    }
    int chosen[MAXK];
    float w[MAXK];
    float sum = 0.0;
    for (uint k = 0u; k < p.top_k; ++k) {
        int best = -1;
        float best_v = 0.0;
        for (uint e = 0u; e < E; ++e) {
            if (grouped && (e >= p.n_groups * per || !kept[e / per])) continue;
            bool taken = false;
            for (uint j = 0u; j < k; ++j) taken = taken || chosen[j] == int(e);
            if (taken) continue;
            const float v = selection(t, e);
            if (best < 0 || v > best_v) {
                best = int(e);
                best_v = v;
            }
        }
        chosen[k] = best;
        w[k] = best < 0 ? 0.0 : (p.biased != 0u ? best_v : score(t, uint(best)));
        sum += w[k];
    }
    for (uint k = 0u; k < p.top_k; ++k) {
        const float v = (p.renormalize != 0u ? w[k] / (sum + 1e-20) : w[k]) * p.routed_scale;
        ids[t * p.slots + k] = chosen[k];
        wts[t * p.slots + k] = v;
        if (p.write_ids != 0u) out_ids[p.ids_off + t * p.top_k + k] = chosen[k];
        if (p.write_wts != 0u) out_wts[p.wts_off + t * p.top_k + k] = v;
    }
    if (p.slots > p.top_k) {
        ids[t * p.slots + p.top_k] = int(E);
        wts[t * p.slots + p.top_k] = 1.0;
    }
}
