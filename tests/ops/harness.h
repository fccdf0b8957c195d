// Conformance harness: every tensor of an op case exists twice, once in host memory for the reference and once in
// the plugin's own memory (with guard bytes around it). After both ran, outputs are compared with a normalised
// error; NaN and Inf must match exactly, and the guards must be intact.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ops/backend.h"
#include "ops/reference/host_buffer.h"

namespace halo::test {

// Deterministic values for a case.
class Values {
public:
    explicit Values(uint64_t seed) : rng_(seed) {}
    std::vector<float> normal(int64_t n, float scale = 1.0f, float mean = 0.0f);
    std::vector<float> uniform(int64_t n, float lo, float hi);
    std::vector<int32_t> ints(int64_t n, int32_t lo, int32_t hi);  // [lo, hi)
    std::mt19937_64& rng() { return rng_; }

private:
    std::mt19937_64 rng_;
};

struct DualTensor {
    ops::Tensor ref;  // host memory, for the reference
    ops::Tensor dev;  // the plugin's memory
    std::string name;
    bool output = false;
};

struct Comparison {
    double max_abs = 0;       // largest |plugin - reference|
    double ref_rms = 0;       // rms of the reference
    double normalised = 0;    // max_abs / max(ref_rms, 1e-30)
    std::string problem;      // non-empty: NaN/Inf mismatch, guard damage, size mismatch
};

class OpHarness {
public:
    explicit OpHarness(ops::Backend& plugin);
    ~OpHarness();

    // A tensor holding values (converted to dtype); use is where the plugin places it.
    DualTensor& input(const std::string& name, ops::DType dtype, std::initializer_list<int64_t> dims,
                      const std::vector<float>& values, ops::MemoryUse use = ops::MemoryUse::weights);
    DualTensor& input_ids(const std::string& name, const std::vector<int32_t>& ids);
    // A quantized weight: values [rows, cols] (dims, outermost first; rows = all but the last) quantized with
    // ref::quantize_rows to format (q4 / q8) with `group` elements per scale of scale_dtype (BF16, F16 or F32).
    // Both copies hold the same packed words and scales; the plugin copy keeps its scales in a plugin buffer of
    // their own (weights use), so a plugin is tested with scales that live apart from the words.
    DualTensor& quantized(const std::string& name, ops::DType format, int32_t group, std::initializer_list<int64_t> dims,
                          const std::vector<float>& values, ops::DType scale_dtype = ops::DType::bf16);
    // An output the op must overwrite (pre-filled with garbage on both sides).
    DualTensor& output(const std::string& name, std::initializer_list<int64_t> dims);
    // State read and updated in place (KDA state, conv history, MLA cache).
    DualTensor& inout(const std::string& name, ops::DType dtype, std::initializer_list<int64_t> dims,
                      const std::vector<float>& values, ops::MemoryUse use);

    Comparison compare(const DualTensor& t);
    ops::Backend& plugin() { return plugin_; }
    // Weights made after this call start `bytes` past a 64-byte boundary in the plugin's buffer, as tensors mapped in
    // place from a safetensors file do (they start wherever the previous tensor ended: 8 + header + offset).
    void misalign_weights(uint64_t bytes) { weight_shift_ = bytes; }

private:
    DualTensor& make(const std::string& name, ops::DType dtype, std::initializer_list<int64_t> dims,
                     const std::vector<uint8_t>& bytes, ops::MemoryUse use, bool output);
    // Copies bytes into a new host buffer and a new plugin buffer (between guard bytes); returns both.
    std::pair<ops::Buffer*, ops::Buffer*> place(const std::vector<uint8_t>& bytes, ops::MemoryUse use, uint64_t shift = 0);
    ops::Backend& plugin_;
    uint64_t weight_shift_ = 0;
    std::vector<std::unique_ptr<ops::HostBuffer>> host_;
    std::vector<ops::Buffer*> dev_;
    std::deque<DualTensor> tensors_;
};

std::vector<uint8_t> encode(const std::vector<float>& v, ops::DType dtype);

}  // namespace halo::test
