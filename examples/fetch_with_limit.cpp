// examples/fetch_with_limit.cpp: fetch many pages with at most N requests in
// flight (the asyncio pattern `async with semaphore: await client.get(url)`
// around a gather of every URL).
//
//   1. semaphore: every page is a task of the gather, and each one first
//      takes a permit (RAII: given back when the permit dies), so at most
//      `limit` requests run at once however many tasks wait.
//   2. gather_limited(limit, requests) does the same without the semaphore:
//      it starts a request only when one of the `limit` running finished.
//   Either way the results come back in input order, and the client keeps
//   `limit` connections alive (max_connections_per_host) instead of opening
//   one per page.
//
// With no arguments it starts its own HTTP server on 127.0.0.1 and fetches
// 200 pages, 10 at a time. `fetch_with_limit URL_PREFIX PAGES LIMIT FILES`
// is the benchmark mode of bench/http/run.sh: it fetches URL_PREFIX<i % FILES>
// for i < PAGES and prints pages/s and latency percentiles.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <corio/corio.hpp>
#include <corio/http.hpp>

#include "http_server.hpp"

namespace http = corio::http;
using corio::task;
using steady = std::chrono::steady_clock;

namespace {

/// One page under the semaphore; records how long the request itself took.
task<std::size_t> fetch_one(http::client& client, corio::semaphore& limit, std::string url, double& latency_ms) {
    auto permit = co_await limit.acquire();
    auto t0 = steady::now();
    http::response r = co_await client.get(std::move(url));
    r.raise_for_status();
    latency_ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
    co_return r.body.size();
}

struct run_stats {
    std::size_t pages = 0, bytes = 0;
    double seconds = 0;
    std::vector<double> latency_ms;
};

task<run_stats> fetch_with_semaphore(std::vector<std::string> urls, std::size_t limit) {
    http::client client(http::options{.max_connections_per_host = limit});
    corio::semaphore sem(static_cast<std::ptrdiff_t>(limit));
    run_stats st;
    st.latency_ms.resize(urls.size());
    std::vector<task<std::size_t>> pages;
    pages.reserve(urls.size());
    for (std::size_t i = 0; i < urls.size(); ++i)
        pages.push_back(fetch_one(client, sem, std::move(urls[i]), st.latency_ms[i]));
    auto t0 = steady::now();
    std::vector<std::size_t> sizes = co_await corio::gather(std::move(pages));
    st.seconds = std::chrono::duration<double>(steady::now() - t0).count();
    st.pages = sizes.size();
    for (std::size_t n : sizes) st.bytes += n;
    co_return st;
}

task<std::size_t> fetch_with_gather_limited(std::vector<std::string> urls, std::size_t limit) {
    http::client client(http::options{.max_connections_per_host = limit});
    std::vector<task<http::response>> requests;
    for (auto& u : urls) requests.push_back(client.get(std::move(u)));
    std::vector<http::response> pages = co_await corio::gather_limited(limit, std::move(requests));
    std::size_t bytes = 0;
    for (const auto& p : pages) bytes += p.body.size();
    co_return bytes;
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

task<void> demo(corio_test::http_server& server) {
    std::vector<std::string> urls;
    for (int i = 0; i < 200; ++i) urls.push_back(server.url("/bytes/" + std::to_string(512 + i * 37)));
    run_stats st = co_await fetch_with_semaphore(urls, 10);
    fmt::print("semaphore(10): {} pages, {} bytes, over {} connections (at most {} at once)\n", st.pages, st.bytes,
               server.accepted, server.max_open);
    std::size_t bytes = co_await fetch_with_gather_limited(urls, 10);
    fmt::print("gather_limited(10): {} bytes\n", bytes);
}

int bench(const std::string& prefix, std::size_t pages, std::size_t limit, std::size_t files) {
    std::vector<std::string> urls;
    urls.reserve(pages);
    for (std::size_t i = 0; i < pages; ++i) urls.push_back(prefix + std::to_string(i % files));
    run_stats st = corio::run(fetch_with_semaphore(std::move(urls), limit));
    fmt::print("pages={} bytes={} seconds={:.3f} pages_per_s={:.0f} p50_ms={:.3f} p99_ms={:.3f}\n", st.pages, st.bytes,
               st.seconds, static_cast<double>(st.pages) / st.seconds, percentile(st.latency_ms, 0.50),
               percentile(st.latency_ms, 0.99));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 5)
        return bench(argv[1], std::strtoul(argv[2], nullptr, 10), std::strtoul(argv[3], nullptr, 10),
                     std::strtoul(argv[4], nullptr, 10));
    corio::run(corio_test::with_http_server(demo));
}
