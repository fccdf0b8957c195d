#include "core/sampler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace halo {

int32_t argmax(const float* logits, int64_t n) {
    int64_t best = -1;
    for (int64_t i = 0; i < n; ++i)
        if (!std::isnan(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
    if (best < 0) throw std::runtime_error("every logit is NaN: the model produced no usable output");
    return int32_t(best);
}

Sampler::Sampler(const SamplingParams& p) : params_(p), state_(p.seed ^ 0x5851f42d4c957f2dull) {
    if (!(std::isfinite(p.temperature) && p.temperature >= 0))
        throw std::invalid_argument("temperature must be a finite number: 0 (greedy) or positive");
    if (p.top_k < 0) throw std::invalid_argument("top_k must be 0 (off) or positive");
    if (!(p.top_p > 0 && p.top_p <= 1)) throw std::invalid_argument("top_p must be in (0, 1]");
}

double Sampler::uniform() {  // splitmix64, 53 random bits
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return double(z >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::sample(const float* logits, int64_t vocab) {
    if (params_.temperature == 0.0) return argmax(logits, vocab);
    const int32_t best = argmax(logits, vocab);
    const double mx = logits[best];
    if (std::isinf(mx)) return best;  // +inf dominates any distribution at any temperature
    // Candidates: tokens whose probability can matter (within T * ln(1e12) of the best logit), or the top k.
    candidates_.clear();
    const double floor = mx - params_.temperature * 27.6;
    for (int64_t i = 0; i < vocab; ++i)
        if (logits[i] >= floor) candidates_.push_back({logits[i], int32_t(i)});
    auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    size_t keep = candidates_.size();
    if (params_.top_k > 0 && size_t(params_.top_k) < keep) {
        keep = size_t(params_.top_k);
        std::partial_sort(candidates_.begin(), candidates_.begin() + long(keep), candidates_.end(), by_logit);
        candidates_.resize(keep);
    } else if (params_.top_p < 1.0) {
        std::sort(candidates_.begin(), candidates_.end(), by_logit);  // the nucleus needs the order
    }
    // Softmax at the temperature, then the nucleus (candidates are sorted whenever top_p < 1).
    probs_.resize(keep);
    double sum = 0;
    for (size_t i = 0; i < keep; ++i) sum += (probs_[i] = std::exp((candidates_[i].first - mx) / params_.temperature));
    size_t n = keep;
    if (params_.top_p < 1.0) {
        double acc = 0;
        for (size_t i = 0; i < keep; ++i) {
            acc += probs_[i] / sum;
            if (acc >= params_.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (n == 0) return best;  // only reachable through non-finite arithmetic; the best token is still a valid answer
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += probs_[i];
    double u = uniform() * total;
    for (size_t i = 0; i < n; ++i) {
        u -= probs_[i];
        if (u < 0) return candidates_[i].second;
    }
    return candidates_[n - 1].second;
}

}  // namespace halo
