// examples/connection_pool.cpp: 1,000 concurrent requests through a pool of
// 8 TCP connections.
//
// The pool creates connections on demand with its factory (at most 8 exist
// at any time), hands them to waiting requests in FIFO order, and on close()
// awaits each connection's aclose() (a goodbye exchange with the server).
// The program starts its own line-echo server on 127.0.0.1, checks every
// reply, prints the pool's stats while loaded and after close, and exits 0.
#include <chrono>
#include <string>
#include <vector>

#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>
#include <fmt/core.h>

#include <corio/corio.hpp>

using namespace std::chrono_literals;
using asio::ip::tcp;

namespace {

int server_connections = 0, goodbyes = 0;

struct line_conn {
    tcp::socket sock;
    std::string buf{};
    int requests = 0;

    corio::task<void> send(std::string line) {
        line += '\n';
        co_await asio::async_write(sock, asio::buffer(line), corio::use_task);
    }
    corio::task<std::string> receive() {
        std::size_t n = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), '\n', corio::use_task);
        std::string line = buf.substr(0, n - 1);
        buf.erase(0, n);
        co_return line;
    }
    /// Called by the pool when it closes this connection.
    corio::task<void> aclose() {
        try {
            co_await send("BYE");
            co_await receive();
        } catch (const std::system_error&) {
        }
        sock.close();
    }
};

corio::task<void> echo_session(tcp::socket s) {
    ++server_connections;
    line_conn c{std::move(s)};
    try {
        for (;;) {
            std::string line = co_await c.receive();
            if (line == "BYE") {
                ++goodbyes;
                co_await c.send("GOODBYE");
                co_return;
            }
            co_await c.send(line);
        }
    } catch (const std::system_error&) {
    }
}

corio::task<void> echo_server(tcp::acceptor& acceptor) {
    for (;;) {
        tcp::socket s = co_await acceptor.async_accept(corio::use_task);
        corio::spawn(echo_session(std::move(s)), "echo session");
    }
}

/// The pool's factory: one new connection per call.
struct connect_to {
    unsigned short port;
    corio::task<line_conn> operator()() const {
        line_conn c{tcp::socket(corio::current_loop().get_executor())};
        co_await c.sock.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), corio::use_task);
        co_return c;
    }
};

void print_stats(const char* when, const corio::pool_stats& s) {
    fmt::print("{:>12}: size {} idle {} in_use {} waiters {} created {} closed {}\n", when, s.size, s.idle, s.in_use,
               s.waiters, s.created, s.closed);
}

corio::task<int> amain() {
    tcp::acceptor acceptor(corio::current_loop().get_executor(), tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    auto server = corio::spawn(echo_server(acceptor), "echo server");

    corio::pool<line_conn> connections(connect_to{acceptor.local_endpoint().port()},
                                       corio::pool_options<line_conn>{.max_size = 8});
    int bad_replies = 0;
    auto request = [&](int i) -> corio::task<void> {
        auto c = co_await connections.acquire();
        ++c->requests;
        const std::string text = "request " + std::to_string(i);
        co_await c->send(text);
        std::string reply = co_await c->receive();
        if (reply != text) ++bad_replies;
    };
    auto monitor = [&]() -> corio::task<void> {
        for (int i = 0; i < 100000 && connections.stats().in_use == 0; ++i) co_await corio::yield_now();
        print_stats("under load", connections.stats());
    };
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<corio::task<void>> requests;
    for (int i = 0; i < 1000; ++i) requests.push_back(request(i));
    auto mon = corio::spawn(monitor());
    co_await corio::gather(std::move(requests));
    co_await mon;
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
    print_stats("after", connections.stats());
    fmt::print("1000 requests through {} connections in {} us, {} bad replies\n", connections.stats().created,
               took.count(), bad_replies);

    co_await connections.close();
    print_stats("closed", connections.stats());
    server.cancel();
    co_await corio::sleep(10ms);
    fmt::print("the server saw {} connections and {} goodbyes\n", server_connections, goodbyes);
    const auto s = connections.stats();
    co_return bad_replies == 0 && s.created == 8 && s.closed == 8 && goodbyes == 8 ? 0 : 1;
}

}  // namespace

int main() {
    try {
        return corio::run(amain());
    } catch (const std::exception& e) {
        fmt::print(stderr, "connection_pool: {}\n", e.what());
        return 1;
    }
}
