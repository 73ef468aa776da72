// examples/fetch_all.cpp: fetch many pages at once (the asyncio pattern
// `await asyncio.gather(*(fetch(u) for u in urls))` with httpx/aiohttp).
//
//   1. gather() runs every request concurrently on one http::client and
//      returns the responses in input order; the first failure would cancel
//      the rest and be rethrown.
//   2. gather_settled() keeps every outcome: a failed request (here a port
//      nobody listens on) is one result holding its http::error, the others
//      are unaffected. A 404 is a response, not an error, until
//      raise_for_status().
//
// It starts its own HTTP server on 127.0.0.1 (the test server of corio's
// tests, support/http_server.hpp), so it runs anywhere. Build: target
// `fetch_all` (links corio::http).
#include <string>
#include <vector>

#include <fmt/core.h>

#include <corio/corio.hpp>
#include <corio/http.hpp>

#include "http_server.hpp"

namespace http = corio::http;
using corio::task;

namespace {

task<void> fetch_all(corio_test::http_server& server) {
    http::client client;

    std::vector<std::string> urls;
    for (int i = 1; i <= 8; ++i) urls.push_back(server.url("/bytes/" + std::to_string(i * 1000)));
    std::vector<task<http::response>> requests;
    for (const auto& u : urls) requests.push_back(client.get(u));
    std::vector<http::response> pages = co_await corio::gather(std::move(requests));
    for (const auto& p : pages)
        fmt::print("{} {} bytes from {} in {} us\n", p.status, p.body.size(), p.effective_url, p.elapsed.count());

    // Some of these fail: gather_settled gives every outcome.
    std::vector<task<http::response>> mixed;
    mixed.push_back(client.get(server.url("/hello")));
    mixed.push_back(client.get(server.url("/missing")));
    mixed.push_back(client.get("http://127.0.0.1:1/"));  // nobody listens on port 1
    std::vector<corio::result<http::response>> results = co_await corio::gather_settled(std::move(mixed));
    for (auto& r : results) {
        try {
            const http::response& resp = r.value();
            resp.raise_for_status();
            fmt::print("ok: {:?}\n", resp.body);
        } catch (const http::status_error& e) {
            fmt::print("HTTP error {}: {}\n", e.status(), e.url());
        } catch (const http::error& e) {
            fmt::print("transport error: {}\n", e.what());
        }
    }
}

}  // namespace

int main() { corio::run(corio_test::with_http_server(fetch_all)); }
