// Picks the next token from a row of logits: greedy (temperature 0), or temperature with optional top-k and
// top-p, from a seeded generator so that a seed reproduces a run exactly.
#pragma once

#include <cstdint>
#include <vector>

namespace halo {

struct SamplingParams {
    double temperature = 0.0;  // 0 = greedy (argmax; the lowest id wins a tie)
    int32_t top_k = 0;         // keep the k most likely tokens; 0 = all
    double top_p = 1.0;        // keep the smallest set of tokens whose probability reaches top_p
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const SamplingParams& params);
    int32_t sample(const float* logits, int64_t vocab);

private:
    double uniform();  // [0, 1)
    SamplingParams params_;
    uint64_t state_;
    std::vector<std::pair<float, int32_t>> candidates_;
    std::vector<double> probs_;
};

// Index of the largest logit (the lowest id on a tie), ignoring NaN; throws when every logit is NaN.
int32_t argmax(const float* logits, int64_t n);

}  // namespace halo
