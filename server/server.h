// The HTTP API: OpenAI (/v1/chat/completions, /v1/completions, /v1/models), Anthropic (/v1/messages), /tokenize,
// /detokenize, /health and Prometheus /metrics, served by cpp-httplib worker threads in front of one Scheduler.
//
//   Server server(options);
//   int port = server.bind();     // listening (throws when the address is taken); every request but /health: 503
//   server.start();               // serves on its own thread
//   ... load the model, start the scheduler ...
//   server.set_ready(model, scheduler, &tokenizer);
//   ... on SIGTERM:
//   server.begin_shutdown();      // new requests: 503
//   scheduler.drain(grace);       // running requests finish or are cancelled
//   server.stop();                // closes the listener once the streams have ended
//
// Every request is handled on its own worker thread; a bad request gets a JSON error and never affects the others.
// The model, scheduler and tokenizer must outlive the server (or stop()).
#pragma once

#include <memory>
#include <string>

#include "core/model.h"
#include "core/scheduler.h"
#include "core/tokenizer/tokenizer.h"

namespace halo::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;                 // 0: any free port (bind() says which)
    std::string model_name = "model";  // what /v1/models lists and requests may name
    int worker_threads = 80;         // HTTP handler threads: a streaming request holds one while it runs
    int keep_alive_s = 5;            // idle time before a kept-alive connection is closed
    int read_timeout_s = 30;         // reading a request
    int write_timeout_s = 30;        // writing to a client that does not read
};

class Server {
public:
    explicit Server(ServerOptions options);
    ~Server();  // stop()
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds the listening socket; returns the port. Throws std::runtime_error naming the address when it cannot.
    int bind();
    // Accepts connections on a background thread.
    void start();
    // From now on requests are served by `scheduler` (which runs `model`); tokenizer may be null.
    void set_ready(Model& model, Scheduler& scheduler, const tok::Tokenizer* tokenizer);
    // New requests get 503 (and /health says "draining"); running ones go on.
    void begin_shutdown();
    // Stops accepting and waits for the handler threads to end (call after Scheduler::drain so streams end).
    void stop();

    int port() const;
    // "http://HOST:PORT" (IPv6 hosts in brackets).
    std::string url() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace halo::server
