// The server's state shared by its source files (server.cpp: lifecycle, routing, small endpoints; generate.cpp:
// the generation endpoints). Internal.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "server/api_error.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/server.h"

namespace halo::server {

enum class Phase { loading, ready, draining };

struct Server::Impl {
    explicit Impl(ServerOptions o) : options(std::move(o)) {}

    ServerOptions options;
    httplib::Server http;
    std::thread listener;
    int port = -1;
    Metrics metrics;
    const int64_t started = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch()).count();

    // Set once by set_ready (before phase becomes ready; read only after seeing ready).
    std::atomic<Phase> phase{Phase::loading};
    Model* model = nullptr;
    Scheduler* scheduler = nullptr;
    ServingInfo info;
    std::vector<MemoryHeld> memory;

    void add_routes();
    nlohmann::ordered_json model_card() const;  // the /v1/models entry
    // Throws ApiError 503 unless requests are being served.
    void require_ready() const;
    void handle_generation(Api api, const httplib::Request& req, httplib::Response& res);
};

// Writes `e` as the response (JSON for the API of the request's path; Retry-After when set).
void send_error(const httplib::Request& req, httplib::Response& res, const ApiError& e);

}  // namespace halo::server
