#include "core/layer_capture_backend.h"

namespace halo {

using namespace halo::ops;

void LayerCaptureBackend::begin_step() {
    inner_.begin_step();
    mixers_in_step_ = 0;
    adds_in_layer_ = 0;
}

void LayerCaptureBackend::on_op(const OpCall& call) {
    if (call.traits().role == OpRole::mixer) {
        ++mixers_in_step_;
        adds_in_layer_ = 0;
    }
    run_op(inner_, call);
    if (call.op() != Op::add || !capturing_ || mixers_in_step_ == 0 || ++adds_in_layer_ != 2) return;
    const Tensor& out = call.output();
    if (out.dtype != DType::f32) throw Error("layer capture: the residual stream is not F32");
    const size_t layer = size_t(mixers_in_step_ - 1);
    if (layers_.size() <= layer) layers_.resize(layer + 1);
    std::vector<float>& rows = layers_[layer];
    const size_t at = rows.size();
    rows.resize(at + size_t(out.numel()));
    inner_.read(out.buffer, out.offset, rows.data() + at, out.bytes());
}

}  // namespace halo
