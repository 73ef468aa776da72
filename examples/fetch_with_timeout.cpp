// examples/fetch_with_timeout.cpp: bound how long a request may take (the
// asyncio pattern `await asyncio.wait_for(client.get(url), timeout=...)`).
//
//   1. timeout(d, client.get(url)) returns the response, or throws
//      corio::timeout_error at the deadline; the transfer is then removed
//      from libcurl at once (its connection is closed).
//   2. move_on_after(d, client.get(url)) returns std::optional<response>:
//      empty when the deadline cut it short, so a fallback is one line.
//   3. A timeout can also be an option of the request (request_options).
//
// Starts its own HTTP server on 127.0.0.1 (/delay/MS answers after MS ms).
#include <chrono>
#include <optional>
#include <string>

#include <fmt/core.h>

#include <corio/corio.hpp>
#include <corio/http.hpp>

#include "http_server.hpp"

namespace http = corio::http;
using corio::task;
using namespace std::chrono_literals;

namespace {

task<void> fetch_with_timeout(corio_test::http_server& server) {
    http::client client;

    http::response quick = co_await corio::timeout(2s, client.get(server.url("/delay/10")));
    fmt::print("in time: {:?}\n", quick.body);

    try {
        co_await corio::timeout(100ms, client.get(server.url("/delay/5000")));
    } catch (const corio::timeout_error&) {
        fmt::print("too slow: gave up after 100 ms ({} transfers left)\n", client.active_transfers());
    }

    // A fallback: the cached page when the fresh one does not come in time.
    const std::string cached = "cached page";
    std::optional<http::response> fresh = co_await corio::move_on_after(100ms, client.get(server.url("/delay/5000")));
    fmt::print("showing: {:?}\n", fresh ? fresh->body : cached);

    http::request_options opts{.timeout = 50ms};
    try {
        co_await client.get(server.url("/delay/5000"), opts);
    } catch (const corio::timeout_error& e) {
        fmt::print("request_options::timeout: {}\n", e.what());
    }
}

}  // namespace

int main() { corio::run(corio_test::with_http_server(fetch_with_timeout)); }
