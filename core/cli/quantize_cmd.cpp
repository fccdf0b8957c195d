// engine quantize: converts a float (BF16/F16/F32) Kimi-Linear checkpoint into a compressed-tensors
// `pack-quantized` one (symmetric int4/int8 weights with BF16 group scales), the layout of the published AWQ
// checkpoints, which vLLM and this engine load.
//
// Each quantized Linear module X becomes X.weight_packed (I32 [out, ceil(in / (32 / bits))]), X.weight_scale
// (BF16 [out, ceil(in / group)]) and X.weight_shape (I64 [2] = [out, in]); every other tensor is copied byte for
// byte. Tensors keep their input shard; config.json gains a quantization_config; the other files are copied. The
// output is written into a temporary folder beside --out and renamed at the end, so a failure leaves no model.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/cli/command.h"
#include "core/cli/common.h"
#include "core/cli/progress.h"
#include "core/config.h"
#include "core/input/bounded_json.h"
#include "core/input/read_file.h"
#include "core/safetensors.h"
#include "core/safetensors_writer.h"
#include "ops/reference/quantize.h"

namespace halo::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct QuantizeOptions {
    std::string model_dir, out_dir;
    bool force = false, quiet = false;
    int32_t threads = 0;
    QuantTexts quantize;
};

// One input tensor and what becomes of it.
struct Item {
    const TensorRecord* src = nullptr;
    std::string module;                  // "model.layers.1.block_sparse_moe.experts.0.w1" for a Linear weight
    ops::DType format = ops::DType::f32; // q4 / q8 when quantized, f32 when copied
    ops::DType src_dtype = ops::DType::f32;
};

// Regular expressions (compressed-tensors "re:" targets) matching the modules of each weight class, as
// halo::weight_class sorts them; used when several formats need several config groups.
const char* class_pattern(WeightClass c) {
    switch (c) {
    case WeightClass::experts: return "re:.*\\.experts\\..*";
    case WeightClass::shared: return "re:.*\\.(shared_experts|mlp)\\..*";
    case WeightClass::attention:
        return "re:.*\\.self_attn\\.(q_proj|k_proj|v_proj|f_a_proj|f_b_proj|b_proj|g_a_proj|g_b_proj|o_proj|"
               "kv_a_proj_with_mqa|kv_b_proj)";
    case WeightClass::lm_head: return "lm_head";
    case WeightClass::other: break;
    }
    return "";
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

ops::DType float_dtype(const TensorRecord& r) {
    if (r.dtype == "BF16") return ops::DType::bf16;
    if (r.dtype == "F16") return ops::DType::f16;
    if (r.dtype == "F32") return ops::DType::f32;
    throw std::runtime_error("tensor '" + r.name + "' in " + r.file + " is " + r.dtype +
                             "; only BF16, F16 and F32 weights can be quantized");
}

std::string mb(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MB", double(bytes) / 1e6);
    return buf;
}

// Refuses an output folder that exists and is not empty (unless --force), or that is the input itself.
void check_output_dir(const fs::path& out, const fs::path& in, bool force) {
    std::error_code ec;
    if (fs::exists(out, ec) && fs::equivalent(out, in, ec))
        throw std::runtime_error("--out " + out.string() + " is the input model directory; write the quantized model "
                                 "to another folder");
    if (fs::exists(out, ec) && !fs::is_directory(out, ec))
        throw std::runtime_error("--out " + out.string() + " exists and is not a directory; give a folder name");
    if (fs::is_directory(out, ec) && !fs::is_empty(out, ec) && !force)
        throw std::runtime_error("--out " + out.string() + " exists and is not empty; choose a new folder, or pass "
                                 "--force to replace it");
    const fs::path parent = fs::absolute(out).parent_path();
    if (!fs::is_directory(parent, ec))
        throw std::runtime_error("--out " + out.string() + ": its parent folder " + parent.string() +
                                 " does not exist; create it first");
}

// A temporary folder beside the output, removed unless release() was called.
class TempDir {
public:
    explicit TempDir(const fs::path& out) {
        const fs::path abs = fs::absolute(out);
        path_ = abs.parent_path() / ("." + abs.filename().string() + ".partial-" + std::to_string(::getpid()));
        fs::remove_all(path_);
        fs::create_directory(path_);
    }
    ~TempDir() {
        if (!path_.empty()) {
            std::error_code ec;
            fs::remove_all(path_, ec);
        }
    }
    const fs::path& path() const { return path_; }
    void release() { path_.clear(); }

private:
    fs::path path_;
};

// Quantizes rows [0, rows) of a tensor on `threads` threads (rows are independent).
void quantize_parallel(const Item& it, int64_t rows, int64_t cols, int32_t group, uint8_t* packed, uint8_t* scales,
                       int32_t threads) {
    const uint64_t src_row = uint64_t(cols) * ops::dtype_size(it.src_dtype);
    const uint64_t packed_row = ops::row_bytes(it.format, cols);
    const uint64_t scale_row = uint64_t((cols + group - 1) / group) * 2;
    const int64_t n = std::max<int64_t>(1, std::min<int64_t>(threads, rows / 16));
    std::vector<std::thread> pool;
    std::exception_ptr error;
    std::mutex error_lock;
    for (int64_t t = 0; t < n; ++t)
        pool.emplace_back([&, t] {
            const int64_t r0 = rows * t / n, r1 = rows * (t + 1) / n;
            try {
                ref::quantize_rows(it.src->data + uint64_t(r0) * src_row, it.src_dtype, r1 - r0, cols, it.format,
                                   group, ops::DType::bf16, packed + uint64_t(r0) * packed_row,
                                   scales + uint64_t(r0) * scale_row);
            } catch (...) {
                std::lock_guard<std::mutex> g(error_lock);
                error = std::current_exception();
            }
        });
    for (auto& th : pool) th.join();
    if (error) std::rethrow_exception(error);
}

json quantization_config(const QuantChoice& choice, const std::vector<std::string>& ignore) {
    // One config group per format used, int4 first; "Linear" when a single format covers every quantized module
    // (the unquantized ones are in `ignore`), else the class patterns of the classes in each format.
    std::vector<ops::DType> formats;
    for (ops::DType f : {ops::DType::q4, ops::DType::q8})
        for (ops::DType c : {choice.experts, choice.shared, choice.attention, choice.lm_head})
            if (c == f && std::find(formats.begin(), formats.end(), f) == formats.end()) formats.push_back(f);
    json groups = json::object();
    for (size_t i = 0; i < formats.size(); ++i) {
        json targets = json::array();
        if (formats.size() == 1) {
            targets.push_back("Linear");
        } else {
            const std::pair<WeightClass, ops::DType> classes[] = {{WeightClass::experts, choice.experts},
                                                                  {WeightClass::shared, choice.shared},
                                                                  {WeightClass::attention, choice.attention},
                                                                  {WeightClass::lm_head, choice.lm_head}};
            for (const auto& [cls, fmt] : classes)
                if (fmt == formats[i]) targets.push_back(class_pattern(cls));
        }
        const int bits = formats[i] == ops::DType::q4 ? 4 : 8;
        groups["group_" + std::to_string(i)] = {
            {"format", "pack-quantized"},
            {"input_activations", nullptr},
            {"output_activations", nullptr},
            {"targets", targets},
            {"weights",
             {{"actorder", nullptr}, {"block_structure", nullptr}, {"dynamic", false}, {"group_size", choice.group},
              {"num_bits", bits}, {"observer", "minmax"}, {"observer_kwargs", json::object()}, {"strategy", "group"},
              {"symmetric", true}, {"type", "int"}}}};
    }
    return {{"config_groups", groups},
            {"format", "pack-quantized"},
            {"global_compression_ratio", nullptr},
            {"ignore", ignore},
            {"kv_cache_scheme", nullptr},
            {"quant_method", "compressed-tensors"},
            {"quantization_status", "compressed"},
            {"sparsity_config", json::object()},
            {"transform_config", json::object()},
            {"version", "0.12.2"}};
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
    f.close();
    if (!f) throw std::runtime_error("could not write " + path.string());
}

int run_quantize(const QuantizeOptions& o) {
    const auto t0 = std::chrono::steady_clock::now();
    const QuantChoice choice = o.quantize.choice();
    if (!choice.any())
        throw std::runtime_error("nothing to quantize: choose at least one class, e.g. --quantize-experts int4 (also "
                                 "--quantize-shared, --quantize-attention, --quantize-lm-head: int4 or int8)");
    const fs::path in = o.model_dir;
    fs::path out = fs::absolute(o.out_dir).lexically_normal();  // "dir/" names the folder dir, not a file in it
    if (out.filename().empty()) out = out.parent_path();
    const fs::path config_path = in / "config.json";
    if (fs::is_regular_file(config_path) &&
        input::read_json_file(config_path, input::kConfigJson).contains("quantization_config"))
        throw std::runtime_error(config_path.string() + " has a quantization_config: the model is already quantized; "
                                 "quantize the float (BF16) release instead");
    const ModelConfig config = load_model_config(in);  // a sentence for a missing or malformed config.json
    json doc = input::read_json_file(config_path, input::kConfigJson);
    check_output_dir(out, in, o.force);
    const auto ck = Checkpoint::open(in);

    // What becomes of each tensor, shard by shard in the input's order.
    std::map<std::string, std::vector<Item>> shards;
    std::vector<std::string> shard_order;
    uint64_t bytes_in = 0, bytes_to_quantize = 0;
    for (const auto& f : ck->files()) {
        shard_order.push_back(f->path().filename().string());
        bytes_in += f->size();
    }
    std::vector<std::string> ignore;
    int modules = 0;
    for (const auto& [name, r] : ck->tensors()) {
        if (ends_with(name, ".weight_packed") || ends_with(name, ".weight_scale"))
            throw std::runtime_error(r.file + " holds " + name + ": the model is already quantized; quantize the "
                                     "float (BF16) release instead");
        Item it;
        it.src = &r;
        const WeightClass cls = weight_class(name);
        if (ends_with(name, ".weight") && cls != WeightClass::other && r.shape.size() == 2) {
            it.module = name.substr(0, name.size() - 7);
            const bool tied_head = cls == WeightClass::lm_head && config.tie_word_embeddings;
            it.format = tied_head ? ops::DType::f32 : choice.format_for(name);
            if (ops::is_quantized(it.format)) {
                it.src_dtype = float_dtype(r);
                bytes_to_quantize += r.end - r.begin;
                ++modules;
            } else {
                ignore.push_back(it.module);
            }
        }
        shards[fs::path(r.file).filename().string()].push_back(it);
    }
    if (modules == 0)
        throw std::runtime_error("the checkpoint in " + in.string() + " has no weights of the chosen classes (" +
                                 choice.describe() + ")");

    TempDir tmp(out);
    const int32_t threads = o.threads > 0 ? o.threads : int32_t(std::max(1u, std::thread::hardware_concurrency()));
    Progress progress("quantize", !o.quiet && (stderr_is_terminal() || bytes_to_quantize > (uint64_t(1) << 30)));
    uint64_t done = 0, bytes_out = 0;
    std::map<std::string, std::string> weight_map;
    for (const std::string& shard : shard_order) {
        auto& items = shards[shard];
        std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.src->begin < b.src->begin; });
        std::vector<TensorEntry> entries;
        for (const Item& it : items) {
            const TensorRecord& r = *it.src;
            if (!ops::is_quantized(it.format)) {
                entries.push_back({r.name, r.dtype, r.shape, r.end - r.begin});
                weight_map[r.name] = shard;
                continue;
            }
            const int64_t rows = r.shape[0], cols = r.shape[1];
            entries.push_back({it.module + ".weight_packed", "I32",
                               {rows, int64_t(ops::row_bytes(it.format, cols) / 4)},
                               uint64_t(rows) * ops::row_bytes(it.format, cols)});
            const int64_t groups = (cols + choice.group - 1) / choice.group;
            entries.push_back({it.module + ".weight_scale", "BF16", {rows, groups}, uint64_t(rows * groups) * 2});
            entries.push_back({it.module + ".weight_shape", "I64", {2}, 16});
            for (const char* t : {".weight_packed", ".weight_scale", ".weight_shape"}) weight_map[it.module + t] = shard;
        }
        SafetensorsWriter writer(tmp.path() / shard, std::move(entries));
        for (const Item& it : items) {
            const TensorRecord& r = *it.src;
            if (!ops::is_quantized(it.format)) {
                writer.write(r.data, r.end - r.begin);
                continue;
            }
            const int64_t rows = r.shape[0], cols = r.shape[1];
            std::vector<uint8_t> packed(size_t(rows) * ops::row_bytes(it.format, cols));
            std::vector<uint8_t> scales(size_t(rows * ((cols + choice.group - 1) / choice.group)) * 2);
            quantize_parallel(it, rows, cols, choice.group, packed.data(), scales.data(), threads);
            writer.write(packed.data(), packed.size());
            writer.write(scales.data(), scales.size());
            const int64_t shape[2] = {rows, cols};
            writer.write(shape, sizeof shape);
            done += r.end - r.begin;
            progress.update(done, bytes_to_quantize,
                            std::to_string(done * 100 / std::max<uint64_t>(bytes_to_quantize, 1)) + "% (" + mb(done) +
                                " of " + mb(bytes_to_quantize) + ")");
        }
        bytes_out += writer.file_bytes();
        writer.finish();
    }
    progress.finish();

    if (fs::exists(in / "model.safetensors.index.json") || shard_order.size() > 1) {
        uint64_t total = 0;
        for (const std::string& shard : shard_order) total += fs::file_size(tmp.path() / shard);
        json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
        write_text(tmp.path() / "model.safetensors.index.json", index.dump(2) + "\n");
    }
    doc["quantization_config"] = quantization_config(choice, ignore);
    write_text(tmp.path() / "config.json", doc.dump(2) + "\n");
    // Tokenizer files, generation config, chat template and anything else the model folder holds.
    for (const auto& e : fs::recursive_directory_iterator(in)) {
        const fs::path rel = fs::relative(e.path(), in);
        if (rel == "config.json" || rel == "model.safetensors.index.json" ||
            (rel.parent_path().empty() && rel.extension() == ".safetensors"))
            continue;
        if (e.is_directory()) {
            fs::create_directory(tmp.path() / rel);
        } else if (e.is_regular_file()) {
            fs::copy_file(e.path(), tmp.path() / rel);
        } else {
            throw std::runtime_error(e.path().string() + " is not a regular file or folder (a FIFO, socket or "
                                     "device), so it cannot be copied into the quantized model; remove it");
        }
    }

    if (fs::exists(out)) fs::remove_all(out);  // only reached for an empty folder or with --force
    fs::rename(tmp.path(), out);
    tmp.release();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("quantized %d modules (%s) into %s: %s of safetensors in, %s out (%.2fx smaller) in %.1f s\n", modules,
                choice.describe().c_str(), out.string().c_str(), mb(bytes_in).c_str(), mb(bytes_out).c_str(),
                double(bytes_in) / double(std::max<uint64_t>(bytes_out, 1)), seconds);
    return 0;
}

}  // namespace

Command add_quantize_command(CLI::App& app) {
    auto o = std::make_shared<QuantizeOptions>();
    CLI::App* sub = app.add_subcommand(
        "quantize", "Convert a float checkpoint to a compressed-tensors int4/int8 one (pack-quantized, BF16 scales)");
    sub->add_option("--model", o->model_dir, "The float (BF16, F16 or F32) model directory to convert")
        ->required()
        ->check(kNonEmpty);
    sub->add_option("--out", o->out_dir, "The folder to write the quantized model into (new or empty)")
        ->required()
        ->check(kNonEmpty);
    sub->add_flag("--force", o->force, "Replace --out when it exists and is not empty");
    sub->add_option("--threads", o->threads, "Threads that quantize (0 = one per CPU)")
        ->check(CLI::Range(0, 4096))
        ->capture_default_str();
    sub->add_flag("--quiet", o->quiet, "Print no progress");
    add_quantize_options(*sub, o->quantize);
    return {sub, [o] { return run_quantize(*o); }};
}

}  // namespace halo::cli
