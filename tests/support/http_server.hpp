// tests/support/http_server.hpp: a small HTTP/1.1 server on 127.0.0.1 for
// the http::client tests and examples, written with corio over Asio sockets.
//
//   co_await with_http_server([&](http_server& srv) -> corio::task<void> {
//       auto r = co_await client.get(srv.url("/hello"));
//   });
//
// It listens on an ephemeral port of 127.0.0.1, runs on the calling loop,
// keeps connections alive (HTTP/1.1), and counts what it sees (connections
// accepted, open at once, closed by the peer, requests). with_http_server
// stops it (cancels and awaits every connection) before returning, whatever
// the body did. Routes:
//   /hello            200 "hello world"
//   /bytes/N          200, N bytes of a-z
//   /status/N         status N, body "status N"
//   /delay/MS         waits MS ms, then 200 "waited MS"
//   /chunked/N        200, chunked: N chunks "chunk-<i>;"
//   /lines/N[/MS]     200, chunked JSON lines {"n":i,"name":"item-i"}, cut into
//                     7-byte chunks (lines straddle chunks), MS ms between lines
//   /redirect/N       N > 0: 302 to /redirect/N-1; N == 0: 200 "arrived"
//   /reset            promises 100000 bytes, sends 100, then resets (RST)
//   /stall            promises 1000 bytes, sends 10, then waits for the peer to close
//   /drip/N/MS        200, N bytes of a-z written one at a time, MS ms apart
//   /big/N            200, N bytes written in 64 KiB pieces (big_sent counts them)
//   /echo             200, body "<METHOD>\n<request body>", request headers
//                     X-Foo echoed back as X-Echo-Foo
//   /headers          200, one line "lowercase-name: value" per request header
//   /close            200 "bye", then closes the connection
//   anything else     404 "not found"
// A HEAD request to any path gets the head of /hello.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <corio/corio.hpp>

namespace corio_test {

struct http_request {
    std::string method, path, body;
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercased

    std::string_view header(std::string_view name) const {
        for (const auto& [k, v] : headers)
            if (k == name) return v;
        return {};
    }
};

class http_server {
public:
    using tcp = asio::ip::tcp;

    explicit http_server(asio::io_context& ctx) : acceptor_(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {}

    unsigned short port() const { return acceptor_.local_endpoint().port(); }
    std::string url(std::string_view path = "/") const {
        return "http://127.0.0.1:" + std::to_string(port()) + std::string(path);
    }

    // What the server saw.
    std::size_t accepted = 0;     // connections accepted
    std::size_t open = 0;         // connections open now
    std::size_t max_open = 0;     // most connections open at once
    std::size_t peer_closed = 0;  // connections the client closed (EOF or reset)
    std::size_t requests = 0;     // requests read
    std::size_t stalled = 0;      // /stall requests that reached their stall
    std::size_t big_sent = 0;     // bytes of /big bodies written so far

    /// Accepts connections until cancelled; each runs as a child task.
    corio::task<void> serve() {
        auto body = [this](corio::task_group& tg) -> corio::task<void> {
            for (;;) {
                tcp::socket s = co_await acceptor_.async_accept(corio::use_task);
                tg.spawn(connection(std::move(s)));
            }
        };
        co_await corio::with_task_group(body);
    }

private:
    corio::task<void> connection(tcp::socket s) {
        ++accepted;
        max_open = std::max(max_open, ++open);
        std::string buf;
        try {
            while (co_await serve_one(s, buf)) {
            }
        } catch (const std::exception&) {
            ++peer_closed;  // EOF or reset from the client: it closed the connection
        }
        --open;
        std::error_code ignored;
        s.shutdown(tcp::socket::shutdown_both, ignored);
        s.close(ignored);
    }

    static std::string lower(std::string s) {
        for (char& c : s)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        return s;
    }

    static http_request parse_head(std::string_view head) {
        http_request r;
        auto eol = head.find("\r\n");
        std::string_view line = head.substr(0, eol);
        auto sp1 = line.find(' ');
        auto sp2 = line.find(' ', sp1 + 1);
        r.method = std::string(line.substr(0, sp1));
        r.path = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
        std::size_t pos = eol + 2;
        while (pos < head.size()) {
            auto end = head.find("\r\n", pos);
            std::string_view h = head.substr(pos, end - pos);
            pos = end + 2;
            auto colon = h.find(':');
            if (colon == std::string_view::npos) continue;
            std::string_view v = h.substr(colon + 1);
            while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
            r.headers.emplace_back(lower(std::string(h.substr(0, colon))), std::string(v));
        }
        return r;
    }

    /// Reads one request from `s` (bytes after it stay in `buf`).
    corio::task<http_request> read_request(tcp::socket& s, std::string& buf) {
        std::size_t n = co_await asio::async_read_until(s, asio::dynamic_buffer(buf), "\r\n\r\n", corio::use_task);
        http_request r = parse_head(std::string_view(buf).substr(0, n - 2));
        buf.erase(0, n);
        std::size_t len = 0;
        if (auto cl = r.header("content-length"); !cl.empty()) len = std::stoul(std::string(cl));
        if (buf.size() < len)
            co_await asio::async_read(s, asio::dynamic_buffer(buf), asio::transfer_exactly(len - buf.size()),
                                      corio::use_task);
        r.body = buf.substr(0, len);
        buf.erase(0, len);
        ++requests;
        co_return r;
    }

    static std::string reason(int status) {
        switch (status) {
            case 200: return "OK";
            case 302: return "Found";
            case 404: return "Not Found";
            case 500: return "Internal Server Error";
            default: return "Status";
        }
    }

    static std::string head(int status, std::string_view extra) {
        return "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n" + std::string(extra);
    }

    static corio::task<void> write(tcp::socket& s, std::string data) {
        co_await asio::async_write(s, asio::buffer(data), corio::use_task);
    }

    static corio::task<void> respond(tcp::socket& s, int status, std::string body, std::string extra = {}) {
        std::string msg = head(status, extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n");
        msg += body;
        co_await write(s, std::move(msg));
    }

    static std::size_t number_after(std::string_view path, std::string_view prefix) {
        std::string rest(path.substr(prefix.size()));
        return rest.empty() ? 0 : std::stoul(rest);
    }

    static std::string letters(std::size_t n) {
        std::string b(n, 'a');
        for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<char>('a' + i % 26);
        return b;
    }

    /// Serves one request; false when the connection is to be closed.
    corio::task<bool> serve_one(tcp::socket& s, std::string& buf) {
        http_request r = co_await read_request(s, buf);
        const std::string& p = r.path;
        if (r.method == "HEAD") {  // the head /hello would have, no body
            co_await write(s, head(200, "Content-Length: 11\r\n\r\n"));
            co_return true;
        }
        if (p == "/hello") co_await respond(s, 200, "hello world");
        else if (p.starts_with("/bytes/")) co_await respond(s, 200, letters(number_after(p, "/bytes/")));
        else if (p.starts_with("/status/")) {
            auto st = static_cast<int>(number_after(p, "/status/"));
            co_await respond(s, st, "status " + std::to_string(st));
        } else if (p.starts_with("/delay/")) {
            auto ms = number_after(p, "/delay/");
            co_await corio::sleep(std::chrono::milliseconds(ms));
            co_await respond(s, 200, "waited " + std::to_string(ms));
        } else if (p.starts_with("/chunked/")) co_await chunked(s, number_after(p, "/chunked/"));
        else if (p.starts_with("/lines/")) co_await lines(s, p.substr(7));
        else if (p.starts_with("/redirect/")) co_await redirect(s, number_after(p, "/redirect/"));
        else if (p == "/reset") co_return co_await reset(s);
        else if (p == "/stall") co_return co_await stall(s);
        else if (p.starts_with("/drip/")) co_await drip(s, p.substr(6));
        else if (p.starts_with("/big/")) co_await big(s, number_after(p, "/big/"));
        else if (p == "/echo") co_await echo(s, r);
        else if (p == "/headers") co_await headers(s, r);
        else if (p == "/close") {
            co_await respond(s, 200, "bye", "Connection: close\r\n");
            co_return false;
        } else co_await respond(s, 404, "not found");
        co_return true;
    }

    static corio::task<void> chunked(tcp::socket& s, std::size_t n) {
        co_await write(s, head(200, "Transfer-Encoding: chunked\r\n\r\n"));
        for (std::size_t i = 0; i < n; ++i) co_await write(s, chunk("chunk-" + std::to_string(i) + ";"));
        co_await write(s, "0\r\n\r\n");
    }

    static std::string chunk(std::string_view data) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", data.size());
        return size + std::string(data) + "\r\n";
    }

    static corio::task<void> lines(tcp::socket& s, std::string_view spec) {
        auto slash = spec.find('/');
        std::size_t n = std::stoul(std::string(spec.substr(0, slash)));
        std::size_t ms = slash == std::string_view::npos ? 0 : std::stoul(std::string(spec.substr(slash + 1)));
        co_await write(s, head(200, "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"));
        std::string pending;
        for (std::size_t i = 0; i < n; ++i) {
            if (ms) co_await corio::sleep(std::chrono::milliseconds(ms));
            pending += "{\"n\":" + std::to_string(i) + ",\"name\":\"item-" + std::to_string(i) + "\"}\n";
            while (pending.size() >= 7) {
                co_await write(s, chunk(pending.substr(0, 7)));
                pending.erase(0, 7);
            }
        }
        if (!pending.empty()) co_await write(s, chunk(pending));
        co_await write(s, "0\r\n\r\n");
    }

    static corio::task<void> redirect(tcp::socket& s, std::size_t n) {
        if (n == 0) co_await respond(s, 200, "arrived");
        else co_await respond(s, 302, "", "Location: /redirect/" + std::to_string(n - 1) + "\r\n");
    }

    static corio::task<bool> reset(tcp::socket& s) {
        co_await write(s, head(200, "Content-Length: 100000\r\n\r\n") + letters(100));
        co_await corio::sleep(std::chrono::milliseconds(20));  // let the client read the first bytes
        s.set_option(asio::socket_base::linger(true, 0));      // close() now sends RST
        s.close();
        co_return false;
    }

    corio::task<bool> stall(tcp::socket& s) {
        co_await write(s, head(200, "Content-Length: 1000\r\n\r\n") + letters(10));
        ++stalled;
        char c;
        for (;;) co_await s.async_read_some(asio::buffer(&c, 1), corio::use_task);  // until the peer closes
    }

    static corio::task<void> drip(tcp::socket& s, std::string_view spec) {
        auto slash = spec.find('/');
        std::size_t n = std::stoul(std::string(spec.substr(0, slash)));
        std::size_t ms = slash == std::string_view::npos ? 0 : std::stoul(std::string(spec.substr(slash + 1)));
        co_await write(s, head(200, "Content-Length: " + std::to_string(n) + "\r\n\r\n"));
        const std::string body = letters(n);
        for (char c : body) {
            co_await corio::sleep(std::chrono::milliseconds(ms));
            co_await asio::async_write(s, asio::buffer(&c, 1), corio::use_task);
        }
    }

    corio::task<void> big(tcp::socket& s, std::size_t n) {
        co_await write(s, head(200, "Content-Length: " + std::to_string(n) + "\r\n\r\n"));
        const std::string piece = letters(65536);
        for (std::size_t done = 0; done < n;) {
            std::size_t k = std::min(piece.size(), n - done);
            co_await asio::async_write(s, asio::buffer(piece.data(), k), corio::use_task);
            done += k;
            big_sent += k;
        }
    }

    static corio::task<void> echo(tcp::socket& s, const http_request& r) {
        std::string extra = "X-Method: " + r.method + "\r\n";
        for (const auto& [k, v] : r.headers)
            if (k.starts_with("x-")) extra += "X-Echo-" + k.substr(2) + ": " + v + "\r\n";
        co_await respond(s, 200, r.method + "\n" + r.body, extra);
    }

    static corio::task<void> headers(tcp::socket& s, const http_request& r) {
        std::string body;
        for (const auto& [k, v] : r.headers) body += k + ": " + v + "\n";
        co_await respond(s, 200, body);
    }

    tcp::acceptor acceptor_;
};

/// Runs body(server) with a server listening on 127.0.0.1, then stops the
/// server (every connection cancelled and awaited) and returns body's value
/// or rethrows its exception.
template <class F>
auto with_http_server(F body) -> decltype(body(std::declval<http_server&>())) {
    using R = typename decltype(body(std::declval<http_server&>()))::value_type;
    http_server srv(corio::current_loop().context());
    auto h = corio::spawn(srv.serve(), "http_server");
    std::exception_ptr failed;
    std::optional<std::conditional_t<std::is_void_v<R>, int, R>> value;
    try {
        if constexpr (std::is_void_v<R>) co_await body(srv);
        else value.emplace(co_await body(srv));
    } catch (...) {
        failed = std::current_exception();
    }
    h.cancel();
    try {
        co_await corio::shield(h);
    } catch (const corio::cancelled_error&) {
    }
    if (failed) std::rethrow_exception(failed);
    if constexpr (!std::is_void_v<R>) co_return std::move(*value);
}

}  // namespace corio_test
