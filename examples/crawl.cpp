// examples/crawl.cpp: corio's flagship demo, the first thing ./scripts/demo.sh
// runs. It starts an embedded web site on 127.0.0.1 (examples/crawl/site.hpp:
// thousands of pages whose latency, size and failures are drawn from a seeded
// distribution) and crawls it with corio::http::client:
//
//   page numbers ──> map_unordered(concurrency, fetch_page) ──> batch(128, 100 ms) ──> summary
//                         │
//                         └─ per attempt: limiter (rate) -> timeout(d, client.get(url))
//                            -> retry 500s, resets and timeouts with jittered backoff
//
// - concurrency: map_unordered runs at most --concurrency fetches at once; the
//   peak number of requests in flight is measured (a counter around the
//   request) and printed in the table, next to the limit.
// - rate: one corio::limiter token per request (retries included).
// - timeout: corio::timeout around each request; a timed-out request is
//   retried like a 500 or a connection reset, after 25 ms * 2^attempt with
//   +-50 % jitter, at most --retries times. 4xx answers are not retried.
// - results flow through corio::batch into the summary; a progress task prints
//   pages/s, requests in flight and errors: one rewritten line on a terminal,
//   a plain line per second when stdout is not a TTY.
// - Ctrl-C (or SIGTERM): a task waiting in wait_for_signal() cancels a
//   cancellation_source; the page source stops and every fetch in flight is
//   cancelled through with_token(), so the stream drains in a few ms and the
//   summary is printed for what was done (exit status 130). A second Ctrl-C
//   is run()'s: it cancels everything at once.
//
// `crawl --help` lists the options; --url crawls a real server instead (pages
// URL0 .. URL<pages-1>, e.g. nginx serving files named 0, 1, 2, ...).
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include <corio/corio.hpp>
#include <corio/http.hpp>

#include "crawl/site.hpp"

namespace http = corio::http;
using corio::task;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// ----------------------------------------------------------------- options ---

struct config {
    std::size_t pages = 2000;
    std::size_t concurrency = 32;
    double rate = 4000;  // requests per second
    std::chrono::milliseconds timeout{250};
    unsigned retries = 2;
    std::uint32_t seed = 1;
    std::string url;  // empty: the embedded site
};

constexpr const char* usage_text = R"(usage: crawl [options]

Crawls a web site with corio::http::client and prints a summary table. By
default it starts its own site on 127.0.0.1 (an ephemeral port): --pages pages
whose latency (mostly a few ms, some slower than --timeout), size (256 B to
64 KiB) and failures (HTTP 500s, connection resets) are drawn from a
std::mt19937 seeded with --seed.

  --pages N         pages to fetch (default 2000)
  --concurrency N   requests in flight at most (default 32)
  --rate R          requests started per second at most, retries included
                    (a token bucket, corio::limiter; default 4000)
  --timeout MS      per-request timeout in milliseconds (default 250)
  --retries N       retries of a page after a 5xx, a transport error or a
                    timeout, with jittered exponential backoff (default 2)
  --seed S          seed of the site's distribution and of the jitter (default 1)
  --url PREFIX      crawl a real server instead: fetches PREFIX0 .. PREFIX<N-1>,
                    e.g. --url http://127.0.0.1:8080/ for nginx serving files
                    named 0, 1, 2, ... (the embedded site is not started)
  --help            this text

Options take their value as the next argument or after '=' (--pages=500).
Ctrl-C stops the crawl, cancels the requests in flight and still prints the
summary (exit status 130). A bad option exits with status 2.
)";

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <class T>
T parse_number(std::string_view name, std::string_view text, T lo, T hi) {
    T v{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size())
        throw usage_error(fmt::format("{} wants a number, got '{}'", name, text));
    if (!(v >= lo && v <= hi))
        throw usage_error(fmt::format("{} must be between {} and {}, got {}", name, lo, hi, text));
    return v;
}

void apply_option(config& c, std::string_view name, std::string_view v) {
    if (name == "--pages") c.pages = parse_number<std::size_t>(name, v, 1, 10'000'000);
    else if (name == "--concurrency") c.concurrency = parse_number<std::size_t>(name, v, 1, 10'000);
    else if (name == "--rate") c.rate = parse_number<double>(name, v, 0.001, 1e9);
    else if (name == "--timeout") c.timeout = std::chrono::milliseconds(parse_number<long>(name, v, 1, 3'600'000));
    else if (name == "--retries") c.retries = parse_number<unsigned>(name, v, 0, 20);
    else if (name == "--seed") c.seed = parse_number<std::uint32_t>(name, v, 0, UINT32_MAX);
    else if (name == "--url") {
        if (!v.starts_with("http://") && !v.starts_with("https://"))
            throw usage_error(fmt::format("--url wants an http:// or https:// prefix, got '{}'", v));
        c.url = std::string(v);
    } else throw usage_error(fmt::format("unknown option '{}'", name));
}

/// The configuration, or nothing when --help was printed.
std::optional<config> parse_args(int argc, char** argv) {
    config c;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--help" || a == "-h") {
            std::fputs(usage_text, stdout);
            return std::nullopt;
        }
        if (!a.starts_with("--")) throw usage_error(fmt::format("unexpected argument '{}'", a));
        auto eq = a.find('=');
        std::string_view name = a.substr(0, eq);
        if (name != "--pages" && name != "--concurrency" && name != "--rate" && name != "--timeout" &&
            name != "--retries" && name != "--seed" && name != "--url")
            throw usage_error(fmt::format("unknown option '{}'", name));
        if (eq != std::string_view::npos) apply_option(c, name, a.substr(eq + 1));
        else if (i + 1 < argc) apply_option(c, name, argv[++i]);
        else throw usage_error(fmt::format("{} needs a value", name));
    }
    return c;
}

// ------------------------------------------------------------------ crawl ---

enum class outcome { fetched, timed_out, failed, cancelled };

struct page_result {
    std::size_t page = 0;
    outcome what = outcome::cancelled;
    unsigned attempts = 0;
    std::size_t bytes = 0;
    double latency_ms = 0;  // of the request that got the page
};

struct summary {
    std::size_t done = 0, fetched = 0, timed_out = 0, failed = 0, cancelled = 0, retried = 0, bytes = 0;
    std::vector<double> latency_ms;

    void add(const std::vector<page_result>& batch) {
        for (const page_result& r : batch) {
            ++done;
            retried += r.attempts > 1 ? r.attempts - 1 : 0;
            switch (r.what) {
                case outcome::fetched:
                    ++fetched;
                    bytes += r.bytes;
                    latency_ms.push_back(r.latency_ms);
                    break;
                case outcome::timed_out: ++timed_out; break;
                case outcome::failed: ++failed; break;
                case outcome::cancelled: ++cancelled; break;
            }
        }
    }
};

class crawler {
public:
    crawler(const config& cfg, std::string prefix, http::client& client)
        : cfg_(cfg),
          prefix_(std::move(prefix)),
          client_(client),
          rate_(cfg.rate, std::max<std::size_t>(cfg.concurrency, 1)),
          jitter_(cfg.seed) {}

    std::size_t in_flight() const { return in_flight_; }
    std::size_t peak_in_flight() const { return peak_; }
    bool stopping() const { return stop_.cancelled(); }
    void stop() { stop_.cancel(); }

    /// Every page's result, in completion order, in batches.
    corio::async_generator<std::vector<page_result>> results() {
        auto fetch = [this](std::size_t page) { return fetch_or_cancelled(page); };
        return page_numbers() | corio::map_unordered(cfg_.concurrency, fetch) | corio::batch(128, 100ms);
    }

private:
    corio::async_generator<std::size_t> page_numbers() {
        for (std::size_t i = 0; i < cfg_.pages && !stopping(); ++i) co_yield i;
    }

    /// fetch_page under the stop token: Ctrl-C turns it into a cancelled result.
    task<page_result> fetch_or_cancelled(std::size_t page) {
        try {
            co_return co_await corio::with_token(stop_.token(), fetch_page(page));
        } catch (const corio::cancelled_error&) {
            if (!stopping()) throw;  // not ours: let it cancel the crawl
        }
        co_return page_result{.page = page, .what = outcome::cancelled};
    }

    struct in_flight_guard {
        crawler& c;
        explicit in_flight_guard(crawler& cr) : c(cr) { c.peak_ = std::max(c.peak_, ++c.in_flight_); }
        ~in_flight_guard() { --c.in_flight_; }
    };

    /// One attempt: a rate-limit token, then the request under the timeout.
    task<http::response> attempt(const std::string& url, double& latency_ms) {
        co_await rate_.acquire();
        in_flight_guard g(*this);
        auto t0 = steady::now();
        http::response r = co_await corio::timeout(cfg_.timeout, client_.get(url));
        latency_ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
        co_return r;
    }

    task<page_result> fetch_page(std::size_t page) {
        page_result r{.page = page};
        const std::string url = prefix_ + std::to_string(page);
        for (unsigned n = 0;; ++n) {
            r.attempts = n + 1;
            try {
                http::response resp = co_await attempt(url, r.latency_ms);
                r.what = resp.ok() ? outcome::fetched : outcome::failed;
                r.bytes = resp.body.size();
                if (resp.status < 500) co_return r;  // 2xx/3xx, or a 4xx that a retry will not fix
            } catch (const corio::timeout_error&) {
                r.what = outcome::timed_out;
            } catch (const http::error&) {  // reset, refused, malformed answer...
                r.what = outcome::failed;
            }
            if (n == cfg_.retries) co_return r;
            co_await corio::sleep(backoff(n));
        }
    }

    /// 25 ms * 2^n, at most 1 s, times a jitter in [0.5, 1.5).
    std::chrono::microseconds backoff(unsigned n) {
        double base_ms = std::min(1000.0, 25.0 * std::pow(2.0, n));
        double j = std::uniform_real_distribution<double>(0.5, 1.5)(jitter_);
        return std::chrono::microseconds(static_cast<long>(base_ms * j * 1000));
    }

    const config& cfg_;
    std::string prefix_;
    http::client& client_;
    corio::limiter rate_;
    corio::cancellation_source stop_;
    std::mt19937 jitter_;
    std::size_t in_flight_ = 0, peak_ = 0;
};

// ---------------------------------------------------------------- display ---

double seconds_since(steady::time_point t0) { return std::chrono::duration<double>(steady::now() - t0).count(); }

double percentile(std::vector<double>& v, double q) {
    if (v.empty()) return 0;
    auto k = std::min(v.size() - 1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1);
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
}

std::string progress_line(const summary& s, const crawler& c, const config& cfg, double secs) {
    return fmt::format("[{:>6}/{}] {:>6.0f} pages/s  in flight {:>3}  errors {} (timeouts {})  retried {}  {:.1f} s",
                       s.done, cfg.pages, static_cast<double>(s.done) / std::max(secs, 1e-9), c.in_flight(),
                       s.failed + s.timed_out, s.timed_out, s.retried, secs);
}

/// On a terminal, rewrites one line every 100 ms; otherwise one line a second.
task<void> show_progress(const summary& s, const crawler& c, const config& cfg, steady::time_point t0, bool tty) {
    for (;;) {
        co_await corio::sleep(tty ? 100ms : 1000ms);
        if (tty) fmt::print("\r\033[K{}", progress_line(s, c, cfg, seconds_since(t0)));
        else fmt::print("progress {}\n", progress_line(s, c, cfg, seconds_since(t0)));
        std::fflush(stdout);
    }
}

std::string mib(std::size_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0)); }

void print_table(summary& s, const crawler& c, const config& cfg, const std::string& where, double secs) {
    fmt::print("\ncrawl of {} ({} pages, concurrency {}, rate {}/s, timeout {} ms, retries {}, seed {})\n", where,
               cfg.pages, cfg.concurrency, cfg.rate, cfg.timeout.count(), cfg.retries, cfg.seed);
    auto row = [](std::string_view k, const std::string& v) { fmt::print("  {:<16} {}\n", k, v); };
    row("fetched", fmt::format("{} pages", s.fetched));
    row("timed out", fmt::format("{} pages (after their retries)", s.timed_out));
    row("failed", fmt::format("{} pages (HTTP errors, resets, refused)", s.failed));
    row("retried", fmt::format("{} requests", s.retried));
    if (s.cancelled || s.done < cfg.pages)
        row("not done", fmt::format("{} pages (interrupted)", cfg.pages - s.fetched - s.timed_out - s.failed));
    row("bytes", fmt::format("{} ({} bytes)", mib(s.bytes), s.bytes));
    auto latency = [&](double q) {
        return s.latency_ms.empty() ? std::string("- (no page fetched)")
                                    : fmt::format("{:.2f} ms", percentile(s.latency_ms, q));
    };
    row("latency p50", latency(0.50));
    row("latency p90", latency(0.90));
    row("latency p99", latency(0.99));
    row("throughput", fmt::format("{:.0f} pages/s, {}/s ({:.2f} s)", static_cast<double>(s.done - s.cancelled) / secs,
                                  mib(static_cast<std::size_t>(static_cast<double>(s.bytes) / secs)), secs));
    row("peak in flight", fmt::format("{} (limit {})", c.peak_in_flight(), cfg.concurrency));
}

// ------------------------------------------------------------------- main ---

task<void> stop_on_signal(crawler& c) {
    int sig = co_await corio::wait_for_signal(SIGINT, SIGTERM);
    fmt::print(stderr, "\ncrawl: signal {}: stopping, cancelling the requests in flight\n", sig);
    c.stop();
}

task<int> crawl(config cfg) {
    std::optional<crawl_demo::site> site;
    if (cfg.url.empty()) site.emplace(corio::current_loop().context(), cfg.pages, cfg.seed);
    const std::string prefix = site ? site->url_prefix() : cfg.url;
    http::client client(http::options{.max_connections_per_host = cfg.concurrency});
    crawler c(cfg, prefix, client);
    summary s;
    const bool tty = isatty(STDOUT_FILENO) == 1;
    auto t0 = steady::now();
    auto body = [&](corio::task_group& tg) -> task<void> {
        if (site) tg.spawn(site->serve(), "site");
        tg.spawn(stop_on_signal(c), "signals");
        tg.spawn(show_progress(s, c, cfg, t0, tty), "progress");
        auto batches = c.results();
        while (auto b = co_await batches.next()) s.add(*b);
        tg.cancel();  // the site, the signal watcher and the progress line
    };
    co_await corio::with_task_group(body);
    double secs = seconds_since(t0);
    if (tty) fmt::print("\r\033[K{}\n", progress_line(s, c, cfg, secs));
    print_table(s, c, cfg, site ? prefix + "N (embedded site)" : prefix + "N", secs);
    co_return c.stopping() ? 130 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::optional<config> cfg;
    try {
        cfg = parse_args(argc, argv);
    } catch (const usage_error& e) {
        fmt::print(stderr, "crawl: {}\nTry 'crawl --help'.\n", e.what());
        return 2;
    }
    if (!cfg) return 0;
    try {
        return corio::run(crawl(std::move(*cfg)));
    } catch (const corio::cancelled_error&) {  // a second Ctrl-C: run() cancelled everything
        return 130;
    }
}
