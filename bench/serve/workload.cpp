#include "bench/serve/workload.h"

namespace halo::bench {

std::vector<int32_t> random_prompt(std::mt19937_64& rng, int len, int vocab) {
    std::uniform_int_distribution<int32_t> id(0, vocab - 1);
    std::vector<int32_t> p(static_cast<size_t>(len));
    for (int32_t& t : p) t = id(rng);
    return p;
}

nlohmann::json completion_body(const BenchOptions& o, const std::vector<int32_t>& prompt, int max_tokens) {
    return {{"model", o.model},    {"prompt", prompt},   {"max_tokens", max_tokens},
            {"temperature", 0},    {"ignore_eos", true}, {"stream", true},
            {"stream_options", {{"include_usage", true}}}};
}

std::unique_ptr<httplib::Client> make_client(const BenchOptions& o) {
    auto http = std::make_unique<httplib::Client>(o.url);
    http->set_connection_timeout(10);
    http->set_read_timeout(o.timeout_s);
    http->set_write_timeout(o.timeout_s);
    return http;
}

}  // namespace halo::bench
