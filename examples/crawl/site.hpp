// examples/crawl/site.hpp: the crawl demo's embedded web site, an HTTP/1.1
// server on 127.0.0.1 (ephemeral port) written with corio over Asio sockets.
//
// It serves /page/N for N < pages. What each request does is drawn from a
// std::mt19937 seeded with (seed, N, attempt), so a run is reproducible for a
// given --seed while a retried request can go differently from the first:
//   ~89% of pages are healthy: 1-40 ms (mostly a few ms), 256 B - 64 KiB;
//    4% are flaky: each request fails with a 500 with probability 0.6;
//    1% are broken: every request gets a 500;
//    2% reset: each request has a 50% chance to promise a body, send part
//      of it and reset the connection (RST);
//    4% are slow: each request has a 70% chance to take 400-1200 ms, longer
//      than the crawl's default timeout (250 ms).
// Connections are kept alive; the server runs on the calling loop until
// cancelled (serve() awaits every connection before it returns).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <corio/corio.hpp>

namespace crawl_demo {

class site {
public:
    using tcp = asio::ip::tcp;

    site(asio::io_context& ctx, std::size_t pages, std::uint32_t seed)
        : acceptor_(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0)), pages_(pages), seed_(seed) {}

    std::string url_prefix() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/page/";
    }

    std::size_t requests = 0;  // requests answered or cut short

    /// Accepts connections until cancelled; each is a child task of the group.
    corio::task<void> serve() {
        auto body = [this](corio::task_group& tg) -> corio::task<void> {
            for (;;) {
                tcp::socket s = co_await acceptor_.async_accept(corio::use_task);
                // An accept that completed as the group was cancelled (Ctrl-C)
                // still returns its socket; yield_now() throws cancelled_error
                // then, instead of spawning into a group that is shutting down.
                co_await corio::yield_now();
                s.set_option(tcp::no_delay(true));
                tg.spawn(connection(std::move(s)));
            }
        };
        co_await corio::with_task_group(body);
    }

private:
    enum class kind { healthy, flaky, broken, resets, slow };

    struct plan {
        int status = 200;
        bool reset = false;
        std::chrono::milliseconds delay{0};
        std::size_t size = 0;
    };

    std::mt19937 rng_for(std::uint64_t page, std::uint64_t attempt) const {
        std::seed_seq seq{seed_, static_cast<std::uint32_t>(page), static_cast<std::uint32_t>(page >> 32),
                          static_cast<std::uint32_t>(attempt)};
        return std::mt19937(seq);
    }

    kind kind_of(std::uint64_t page) const {
        auto rng = rng_for(page, 0xffffffffu);
        double u = std::uniform_real_distribution<double>(0, 1)(rng);
        if (u < 0.04) return kind::flaky;
        if (u < 0.05) return kind::broken;
        if (u < 0.07) return kind::resets;
        if (u < 0.11) return kind::slow;
        return kind::healthy;
    }

    /// What request number `attempt` of `page` does.
    plan plan_for(std::uint64_t page, std::uint64_t attempt) const {
        auto rng = rng_for(page, attempt);
        std::uniform_real_distribution<double> u(0, 1);
        plan p;
        // Sizes log-uniform in [256 B, 64 KiB]; latency 1 ms + exponential(mean 4 ms), at most 40 ms.
        p.size = static_cast<std::size_t>(256.0 * std::pow(256.0, u(rng)));
        double ms = 1 + std::min(39.0, std::exponential_distribution<double>(0.25)(rng));
        switch (kind_of(page)) {
            case kind::healthy: break;
            case kind::flaky:
                if (u(rng) < 0.6) p.status = 500;
                break;
            case kind::broken: p.status = 500; break;
            case kind::resets: p.reset = u(rng) < 0.5; break;
            case kind::slow:
                if (u(rng) < 0.7) ms = 400 + 800 * u(rng);
                break;
        }
        p.delay = std::chrono::milliseconds(static_cast<long>(ms));
        return p;
    }

    corio::task<void> connection(tcp::socket s) {
        std::string buf;
        try {
            while (co_await serve_one(s, buf)) {
            }
        } catch (const std::exception&) {
            // the client closed the connection (EOF, reset, or it gave up on a slow page)
        }
        std::error_code ignored;
        s.close(ignored);
    }

    /// Serves one request; false when the connection is to be closed.
    corio::task<bool> serve_one(tcp::socket& s, std::string& buf) {
        std::size_t n = co_await asio::async_read_until(s, asio::dynamic_buffer(buf), "\r\n\r\n", corio::use_task);
        std::string_view line = std::string_view(buf).substr(0, buf.find("\r\n"));
        std::string path(line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1));
        buf.erase(0, n);
        ++requests;
        std::uint64_t page = pages_;
        if (path.starts_with("/page/")) page = std::strtoull(path.c_str() + 6, nullptr, 10);
        if (page >= pages_) {
            co_await write(s, response(404, "not found"));
            co_return true;
        }
        plan p = plan_for(page, attempts_[page]++);
        co_await corio::sleep(p.delay);
        if (p.status != 200) {
            co_await write(s, response(p.status, "try again later"));
            co_return true;
        }
        std::string body = content(page, p.size);
        if (p.reset) {  // promise the whole body, send a part, then RST
            std::string head = response(200, body);
            co_await write(s, head.substr(0, head.size() - body.size() / 2));
            s.set_option(asio::socket_base::linger(true, 0));
            s.close();
            co_return false;
        }
        co_await write(s, response(200, body));
        co_return true;
    }

    static std::string response(int status, std::string_view body) {
        std::string r = "HTTP/1.1 " + std::to_string(status) +
                        (status == 200   ? " OK"
                         : status == 404 ? " Not Found"
                                         : " Internal Server Error");
        r += "\r\nContent-Type: text/html\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
        r += body;
        return r;
    }

    static std::string content(std::uint64_t page, std::size_t size) {
        std::string b = "<html><!-- page " + std::to_string(page) + " -->";
        b.resize(std::max(size, b.size()), 'x');
        return b;
    }

    static corio::task<void> write(tcp::socket& s, std::string data) {
        co_await asio::async_write(s, asio::buffer(data), corio::use_task);
    }

    tcp::acceptor acceptor_;
    std::size_t pages_;
    std::uint32_t seed_;
    std::unordered_map<std::uint64_t, std::uint64_t> attempts_;  // requests seen per page
};

}  // namespace crawl_demo
