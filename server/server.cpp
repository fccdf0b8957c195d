#include "server/server.h"

#include <csignal>
#include <stdexcept>

#include "core/input/bounded_json.h"
#include "core/input/excerpt.h"
#include "core/tokenizer/chat.h"
#include "server/request_fields.h"
#include "server/response_writer.h"
#include "server/server_impl.h"

namespace halo::server {

using Json = nlohmann::ordered_json;

void send_error(const httplib::Request& req, httplib::Response& res, const ApiError& e) {
    res.status = e.status();
    if (e.retry_after_s > 0) res.set_header("Retry-After", std::to_string(e.retry_after_s));
    const bool anthropic = req.path == api_path(Api::messages);
    res.set_content(anthropic ? anthropic_error_body(e) : openai_error_body(e), "application/json");
}

// Runs `handler`, turning any exception into an error response: the request fails, the server goes on.
template <class F>
void guarded(const httplib::Request& req, httplib::Response& res, F&& handler) {
    try {
        handler();
    } catch (const ApiError& e) {
        send_error(req, res, e);
    } catch (const std::bad_alloc&) {
        send_error(req, res, ApiError(500, "the server ran out of memory handling this request", "server_error"));
    } catch (const std::exception& e) {
        send_error(req, res, ApiError(500, std::string("the server failed: ") + e.what(), "server_error"));
    } catch (...) {
        send_error(req, res, ApiError(500, "the server failed with an unknown error", "server_error"));
    }
}

void Server::Impl::require_ready() const {
    switch (phase.load(std::memory_order_acquire)) {
    case Phase::ready: return;
    case Phase::loading: {
        ApiError e(503, "the model is still loading; try again shortly", "server_error", "model_loading");
        e.retry_after_s = 1;
        throw e;
    }
    case Phase::draining: {
        ApiError e(503, "the server is shutting down and takes no new requests", "server_error", "shutting_down");
        e.retry_after_s = 1;
        throw e;
    }
    }
}

namespace {

void send_json(httplib::Response& res, const Json& j, int status = 200) {
    res.status = status;
    res.set_content(dump_json(j), "application/json");
}

}  // namespace

nlohmann::ordered_json Server::Impl::model_card() const {
    return {{"id", info.model_name},
            {"object", "model"},
            {"created", started},
            {"owned_by", "halo"},
            {"max_model_len", info.context_tokens}};
}

void Server::Impl::add_routes() {
    http.Get("/health", [this](const httplib::Request& req, httplib::Response& res) {
        switch (phase.load(std::memory_order_acquire)) {
        case Phase::loading: send_json(res, {{"status", "loading"}}, 503); break;
        case Phase::ready: send_json(res, {{"status", "ok"}}); break;
        case Phase::draining: send_json(res, {{"status", "draining"}}, 503); break;
        }
    });
    http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] {
            require_ready();
            send_json(res, {{"object", "list"}, {"data", Json::array({model_card()})}});
        });
    });
    http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] {
            require_ready();
            if (req.matches[1] != info.model_name)
                throw ApiError(404, "the model " + input::quote(req.matches[1].str(), input::kNameBytes) +
                                        " does not exist; this server serves " + input::quote(info.model_name),
                               "invalid_request_error", "model_not_found", "model");
            send_json(res, model_card());
        });
    });
    http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] {
            require_ready();
            const SchedulerStats stats = scheduler->stats();
            res.set_content(metrics.render(&stats, &memory, info.model_name), "text/plain; version=0.0.4");
        });
    });
    for (Api api : {Api::chat, Api::completions, Api::messages})
        http.Post(api_path(api), [this, api](const httplib::Request& req, httplib::Response& res) {
            guarded(req, res, [&] { handle_generation(api, req, res); });
        });
    http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] {
            require_ready();
            const Json body = parse_body(req.body);
            if (const auto model = fields::get_string(body, "model"); model && *model != info.model_name)
                throw ApiError(404, "the model " + input::quote(*model, input::kNameBytes) + " does not exist",
                               "invalid_request_error", "model_not_found", "model");
            if (!info.tokenizer) throw bad_field("prompt", "this model was loaded without a tokenizer");
            std::vector<int32_t> ids;
            if (const Json* messages = fields::find(body, "messages")) {
                const Json* tools = fields::find(body, "tools");
                ids = encode_chat_prompt(*messages, tools ? *tools : Json(), info,
                                         fields::get_bool(body, "add_generation_prompt", true));
            } else if (const auto prompt = fields::get_string(body, "prompt")) {
                ids = info.tokenizer->encode(*prompt, fields::get_bool(body, "allow_special", false));
            } else {
                throw bad_field("prompt", "give \"prompt\" (a string) or \"messages\" (a chat)");
            }
            send_json(res, {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", info.context_tokens}});
        });
    });
    http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] {
            require_ready();
            const Json body = parse_body(req.body);
            if (!info.tokenizer) throw bad_field("tokens", "this model was loaded without a tokenizer");
            const Json* tokens = fields::find(body, "tokens");
            if (!tokens || !tokens->is_array()) throw bad_field("tokens", "tokens must be an array of token ids");
            std::vector<int32_t> ids;
            ids.reserve(tokens->size());
            for (size_t i = 0; i < tokens->size(); ++i) {
                const int64_t id = fields::as_integer((*tokens)[i], "tokens[" + std::to_string(i) + "]", 0, INT32_MAX);
                if (id >= info.tokenizer->vocab_size())
                    throw bad_field("tokens", "tokens[" + std::to_string(i) + "] = " + std::to_string(id) +
                                                  " is outside the vocabulary (ids 0.." +
                                                  std::to_string(info.tokenizer->vocab_size() - 1) + ")");
                ids.push_back(int32_t(id));
            }
            send_json(res, {{"prompt", info.tokenizer->decode(ids, fields::get_bool(body, "skip_special", false))}});
        });
    });

    // Whatever reaches the client with an error status and no body yet (unknown paths, 413 for a body over the
    // limit, httplib's own 400s) gets a JSON error too.
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.is_chunked_content_provider_) return;
        std::string message;
        std::string code;
        switch (res.status) {
        case 404:
            message = "there is no " + input::quote(req.method, 16) + " " + input::quote(req.path, 120) +
                      " here; the endpoints are POST /v1/chat/completions, /v1/completions, /v1/messages, /tokenize, "
                      "/detokenize and GET /v1/models, /health, /metrics";
            code = "not_found";
            break;
        case 413:
            message = "the request body is over the limit of " + std::to_string(input::kRequestBody.max_bytes >> 20) +
                      " MiB";
            code = "payload_too_large";
            break;
        default:
            message = "the request could not be handled (HTTP " + std::to_string(res.status) + ")";
        }
        send_error(req, res, ApiError(res.status, message, res.status >= 500 ? "server_error" : "invalid_request_error", code));
    });
    http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
        send_error(req, res, ApiError(500, "the server failed handling this request", "server_error"));
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
        metrics.count_request(req.method, req.path, res.status);
    });
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
    std::signal(SIGPIPE, SIG_IGN);  // a client that goes away is a failed write, not the end of the process
    Impl& s = *impl_;
    s.info.model_name = s.options.model_name;
    const size_t threads = size_t(std::max(4, s.options.worker_threads));
    s.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    s.http.set_payload_max_length(input::kRequestBody.max_bytes);
    s.http.set_keep_alive_timeout(s.options.keep_alive_s);
    s.http.set_read_timeout(s.options.read_timeout_s, 0);
    s.http.set_write_timeout(s.options.write_timeout_s, 0);
    s.add_routes();
}

Server::~Server() { stop(); }

int Server::bind() {
    Impl& s = *impl_;
    const std::string where = s.options.host + ":" + std::to_string(s.options.port);
    if (s.options.port == 0) {
        s.port = s.http.bind_to_any_port(s.options.host);
        if (s.port <= 0) s.port = -1;
    } else if (s.http.bind_to_port(s.options.host, s.options.port)) {
        s.port = s.options.port;
    }
    if (s.port < 0)
        throw std::runtime_error("could not listen on " + where +
                                 " (the port is in use, the host is not an address of this machine, or the port needs "
                                 "privileges); choose another --host or --port");
    return s.port;
}

void Server::start() {
    Impl& s = *impl_;
    if (s.port < 0) bind();
    s.listener = std::thread([&s] { s.http.listen_after_bind(); });
    // stop() does nothing to a server that is not running yet: wait until it is, so that stop() always ends it.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!s.http.is_running() && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Server::set_ready(Model& model, Scheduler& scheduler, const tok::Tokenizer* tokenizer) {
    Impl& s = *impl_;
    s.model = &model;
    s.scheduler = &scheduler;
    s.info.context_tokens = scheduler.context_tokens();
    s.info.tokenizer = tokenizer;
    s.info.vocab_size = model.config().vocab_size;
    const ops::DeviceInfo& device = model.backend().device();
    const MemoryPlan& plan = model.plan();
    s.memory.clear();
    for (int u = 0; u < ops::kMemoryUseCount; ++u) {
        const size_t p = size_t(plan.placement[u]);
        std::string placement = p < device.placements.size() ? device.placements[p].name : std::to_string(p);
        if (u == int(ops::MemoryUse::weights) && plan.weights_zero_copy) placement += " (in place)";
        s.memory.push_back({ops::memory_use_name(ops::MemoryUse(u)), placement, plan.bytes[u]});
    }
    // The plugin's own temporaries (arenas, workspaces, staging), as sized by the warm-up step at load.
    if (plan.plugin_bytes) s.memory.push_back({"plugin", "plugin", plan.plugin_bytes});
    s.phase.store(Phase::ready, std::memory_order_release);
}

void Server::begin_shutdown() { impl_->phase.store(Phase::draining, std::memory_order_release); }

void Server::stop() {
    Impl& s = *impl_;
    if (s.listener.joinable()) {
        s.http.stop();
        s.listener.join();
    }
}

int Server::port() const { return impl_->port; }

std::string Server::url() const {
    const std::string& h = impl_->options.host;
    const bool v6 = h.find(':') != std::string::npos;
    return "http://" + (v6 ? "[" + h + "]" : h) + ":" + std::to_string(impl_->port);
}

}  // namespace halo::server
