// examples/stream_lines.cpp: consume a streamed JSON-lines response as it
// arrives (the httpx pattern `async with client.stream(...) as r:
// async for line in r.aiter_lines(): ...`).
//
//   1. client.stream(url) returns once the response head arrived:
//      status and headers, no body yet.
//   2. lines() is an async_generator of the body's text lines; each is
//      handled as soon as it arrived (the server sends one every 20 ms).
//      A consumer that does not pull pauses the transfer (backpressure).
//   3. Breaking out early destroys the generator, which aborts the transfer.
//
// Starts its own HTTP server on 127.0.0.1 (/lines/N/MS: N lines, MS apart).
#include <string>
#include <string_view>

#include <fmt/core.h>

#include <corio/corio.hpp>
#include <corio/http.hpp>

#include "http_server.hpp"

namespace http = corio::http;
using corio::task;

namespace {

/// The value of "name" in a flat JSON object such as {"n":3,"name":"item-3"}.
std::string_view name_of(std::string_view json) {
    auto key = json.find("\"name\":\"");
    if (key == std::string_view::npos) return {};
    auto start = key + 8;
    return json.substr(start, json.find('"', start) - start);
}

task<void> stream_lines(corio_test::http_server& server) {
    http::client client;
    http::stream_response r = co_await client.stream(server.url("/lines/10/20"));
    r.raise_for_status();
    fmt::print("{} {}\n", r.status, r.headers.value_or("content-type", "?"));
    auto lines = r.lines();
    int seen = 0;
    while (std::optional<std::string> line = co_await lines.next()) {
        fmt::print("record {}: {}\n", ++seen, name_of(*line));
    }

    // Only the first three records of a long stream: the rest is never read.
    http::stream_response big = co_await client.stream(server.url("/lines/100000"));
    {
        auto head = big.lines();
        for (int i = 0; i < 3; ++i) {
            std::optional<std::string> line = co_await head.next();
            if (!line) break;
            fmt::print("first records: {}\n", *line);
        }
    }  // the generator is destroyed here: the transfer is aborted
    fmt::print("transfers still running: {}\n", client.active_transfers());
}

}  // namespace

int main() { corio::run(corio_test::with_http_server(stream_lines)); }
