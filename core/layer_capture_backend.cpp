#include "core/layer_capture_backend.h"

namespace halo {

using namespace halo::ops;

void LayerCaptureBackend::begin_step() {
    inner_.begin_step();
    mixers_in_step_ = 0;
    adds_in_layer_ = 0;
}

void LayerCaptureBackend::kda(const KdaParams& p, const SeqBatch& b) {
    ++mixers_in_step_;
    adds_in_layer_ = 0;
    inner_.kda(p, b);
}

void LayerCaptureBackend::mla(const MlaParams& p, const SeqBatch& b) {
    ++mixers_in_step_;
    adds_in_layer_ = 0;
    inner_.mla(p, b);
}

void LayerCaptureBackend::add(const AddParams& p) {
    inner_.add(p);
    if (!capturing_ || mixers_in_step_ == 0 || ++adds_in_layer_ != 2) return;
    if (p.out.dtype != DType::f32) throw Error("layer capture: the residual stream is not F32");
    const size_t layer = size_t(mixers_in_step_ - 1);
    if (layers_.size() <= layer) layers_.resize(layer + 1);
    std::vector<float>& rows = layers_[layer];
    const size_t at = rows.size();
    rows.resize(at + size_t(p.out.numel()));
    inner_.read(p.out.buffer, p.out.offset, rows.data() + at, p.out.bytes());
}

}  // namespace halo
