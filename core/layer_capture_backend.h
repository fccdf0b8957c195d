// A Backend decorator that keeps the residual stream after every decoder layer: the output of each layer's second
// add, read back to the host while capturing is on. It relies on the order Model::submit_step issues a layer's ops
// ([norm, mixer, add, norm, ffn, add]; a mixer, KDA or MLA, starts the next layer), as check mode does; the caller
// checks that every layer was seen. Reading mid-step makes a GPU plugin wait, so capture only where speed does not
// matter. Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "core/forwarding_backend.h"

namespace halo {

class LayerCaptureBackend final : public ForwardingBackend {
public:
    explicit LayerCaptureBackend(ops::Backend& inner) : ForwardingBackend(inner) {}

    // While on, every layer's output rows are appended to layers()[layer].
    void set_capturing(bool on) { capturing_ = on; }
    // Per layer: [rows, hidden] F32, rows in the order the steps ran them (for one sequence: token positions).
    const std::vector<std::vector<float>>& layers() const { return layers_; }
    void clear() { layers_.clear(); }

    void begin_step() override;

private:
    void on_op(const ops::OpCall& call) override;

    bool capturing_ = false;
    int32_t mixers_in_step_ = 0;  // layers begun in this step
    int32_t adds_in_layer_ = 0;   // adds since the last mixer: the second ends the layer
    std::vector<std::vector<float>> layers_;
};

}  // namespace halo
