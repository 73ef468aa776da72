// examples/managed_connection.cpp: an async_context over a TCP connection.
//
// asyncio's
//     @asynccontextmanager
//     async def managed_connection(port):
//         reader, writer = await asyncio.open_connection("127.0.0.1", port)
//         try: yield (reader, writer)
//         finally: await say_goodbye(writer); writer.close()
// in corio: the code after co_yield is the finally. It runs exactly once
// whether the body returns, throws or is cancelled, and its awaits (the
// goodbye exchange) complete even under cancellation (it runs shielded).
//
// The program starts its own line-echo server on 127.0.0.1 (an ephemeral
// port), runs three bodies through the same context — one that returns, one
// that throws, one cut short by a timeout — and checks the server saw a
// goodbye for each. Exits 0 on success, in a few milliseconds.
#include <chrono>
#include <stdexcept>
#include <string>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>
#include <fmt/core.h>

#include <corio/corio.hpp>

using namespace std::chrono_literals;
using asio::ip::tcp;

namespace {

int goodbyes = 0;  // seen by the server

/// A connection that speaks lines.
struct line_conn {
    tcp::socket sock;
    std::string buf{};

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
};

/// One client of the echo server: echoes lines until "BYE", answers "GOODBYE".
corio::task<void> echo_session(tcp::socket s) {
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
        // the client went away
    }
}

corio::task<void> echo_server(tcp::acceptor& acceptor) {
    for (;;) {
        tcp::socket s = co_await acceptor.async_accept(corio::use_task);
        corio::spawn(echo_session(std::move(s)), "echo session");
    }
}

/// The context manager: connect, yield the connection, then always say goodbye.
corio::async_context<line_conn> managed_connection(unsigned short port) {
    line_conn c{tcp::socket(corio::current_loop().get_executor())};
    co_await c.sock.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), corio::use_task);
    fmt::print("  connected\n");

    corio::context_exit how = co_yield c;  // the body runs here

    fmt::print("  body ended: {}\n", how.ok() ? "returned" : how.cancelled() ? "cancelled" : "threw");
    // The finally. Shielded: these awaits complete even when the body was
    // cancelled; we bound them ourselves.
    auto goodbye = [&]() -> corio::task<std::string> {
        co_await c.send("BYE");
        co_return co_await c.receive();
    };
    std::optional<std::string> reply = co_await corio::move_on_after(1s, goodbye());
    fmt::print("  server said {}\n", reply ? *reply : std::string("nothing (gave up)"));
    c.sock.close();
}

corio::task<int> amain() {
    tcp::acceptor acceptor(corio::current_loop().get_executor(), tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    const unsigned short port = acceptor.local_endpoint().port();
    auto server = corio::spawn(echo_server(acceptor), "echo server");

    fmt::print("1. a body that returns\n");
    auto chat = [](line_conn& c) -> corio::task<std::string> {
        co_await c.send("hello");
        co_return co_await c.receive();
    };
    std::string echoed = co_await corio::with(managed_connection(port), chat);
    fmt::print("  with() returned \"{}\"\n", echoed);

    fmt::print("2. a body that throws\n");
    auto failing = [](line_conn& c) -> corio::task<void> {
        co_await c.send("about to fail");
        co_await c.receive();
        throw std::runtime_error("the body failed");
    };
    try {
        co_await corio::with(managed_connection(port), failing);
    } catch (const std::runtime_error& e) {
        fmt::print("  with() rethrew after the goodbye: {}\n", e.what());
    }

    fmt::print("3. a body cut short by a timeout\n");
    auto stuck = [](line_conn& c) -> corio::task<void> {
        co_await c.receive();  // the server never sends unprompted
    };
    try {
        co_await corio::timeout(50ms, corio::with(managed_connection(port), stuck));
    } catch (const corio::timeout_error&) {
        fmt::print("  timeout_error, after the goodbye\n");
    }

    server.cancel();
    co_await corio::sleep(10ms);  // let the sessions see their clients go
    fmt::print("the server saw {} goodbyes\n", goodbyes);
    co_return goodbyes == 3 && echoed == "hello" ? 0 : 1;
}

}  // namespace

int main() {
    try {
        return corio::run(amain());
    } catch (const std::exception& e) {
        fmt::print(stderr, "managed_connection: {}\n", e.what());
        return 1;
    }
}
