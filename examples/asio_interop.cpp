// examples/asio_interop.cpp: adopting corio in an existing Asio program, both
// ways round.
//
// - The server is plain Asio: an asio::awaitable TCP line server on
//   127.0.0.1 (ephemeral port) started with asio::co_spawn. Its connection
//   handler calls corio code, a lookup limited by a corio::semaphore and cut
//   short by corio::timeout, through corio::co_spawn(..., asio::use_awaitable).
//   The corio event_loop is created on first use, on the program's own
//   io_context: main() still just calls io_context::run().
// - The client is corio: tasks connect with corio::use_task and read each
//   reply line through an asio::awaitable helper, which a corio task awaits
//   directly.
//
// It sends a few keys over several connections, checks every reply ("slow"
// takes longer than the lookup's timeout, so it answers "timeout") and exits 0.
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <fmt/core.h>

#include <corio/corio.hpp>

using namespace std::chrono_literals;
using asio::ip::tcp;

namespace {

// ------------------------------------------------ corio: the lookup service
corio::semaphore lookups_in_flight(2);  // at most two lookups at a time

corio::task<std::string> slow_lookup(std::string key) {
    auto permit = co_await lookups_in_flight.acquire();
    co_await corio::sleep(key == "slow" ? 500ms : 2ms);  // stands for a database call
    co_return fmt::format("{}:{}", key, key.size());
}

/// What the Asio handler calls: the lookup, or "timeout" after 100 ms.
corio::task<std::string> lookup(std::string key) {
    try {
        co_return co_await corio::timeout(100ms, slow_lookup(key));
    } catch (const corio::timeout_error&) {
        co_return key + ":timeout";
    }
}

// ------------------------------------------------ Asio: the existing server
asio::awaitable<void> session(tcp::socket sock) {
    auto ex = co_await asio::this_coro::executor;
    std::string buf;
    try {
        for (;;) {
            std::size_t n = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), '\n', asio::use_awaitable);
            std::string key = buf.substr(0, n - 1);
            buf.erase(0, n);
            std::string reply = co_await corio::co_spawn(ex, lookup(key), asio::use_awaitable);
            reply += '\n';
            co_await asio::async_write(sock, asio::buffer(reply), asio::use_awaitable);
        }
    } catch (const std::system_error&) {
        // the client closed the connection
    }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor) {
    try {
        for (;;) {
            tcp::socket sock = co_await acceptor.async_accept(asio::use_awaitable);
            asio::co_spawn(acceptor.get_executor(), session(std::move(sock)), asio::detached);
        }
    } catch (const std::system_error&) {
        // the acceptor was closed: the program is done
    }
}

/// An Asio helper the corio client awaits directly.
asio::awaitable<std::string> read_line(tcp::socket& sock, std::string& buf) {
    std::size_t n = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), '\n', asio::use_awaitable);
    std::string line = buf.substr(0, n - 1);
    buf.erase(0, n);
    co_return line;
}

// ------------------------------------------------ corio: the client
corio::task<int> client(tcp::endpoint server, std::vector<std::string> keys) {
    tcp::socket sock(corio::current_loop().get_executor());
    co_await sock.async_connect(server, corio::use_task);
    std::string buf;
    int wrong = 0;
    for (const std::string& key : keys) {
        std::string request = key + '\n';
        co_await asio::async_write(sock, asio::buffer(request), corio::use_task);
        std::string reply = co_await read_line(sock, buf);  // an asio::awaitable, awaited by corio
        std::string expected = key == "slow" ? "slow:timeout" : fmt::format("{}:{}", key, key.size());
        if (reply != expected) {
            fmt::print("wrong reply for {}: {} (expected {})\n", key, reply, expected);
            ++wrong;
        }
    }
    co_return wrong;
}

corio::task<int> run_clients(tcp::endpoint server) {
    std::vector<corio::task<int>> clients;
    for (int i = 0; i < 6; ++i) {
        std::vector<std::string> keys{"k" + std::to_string(i), "key-" + std::to_string(i * 10), "x"};
        if (i == 0) keys.push_back("slow");
        clients.push_back(client(server, std::move(keys)));
    }
    std::vector<int> wrong = co_await corio::gather(std::move(clients));
    int total = 0;
    for (int w : wrong) total += w;
    co_return total;
}

}  // namespace

int main() {
    asio::io_context ctx;
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    asio::co_spawn(ctx, listen(acceptor), asio::detached);

    int status = 1;
    corio::co_spawn(ctx, run_clients(acceptor.local_endpoint()), [&](std::exception_ptr e, int wrong) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                fmt::print("clients failed: {}\n", ex.what());
            }
        } else {
            fmt::print("6 clients, {} wrong replies\n", wrong);
            status = wrong == 0 ? 0 : 1;
        }
        acceptor.close();  // ends listen(); the sessions end at their clients' EOF
    });
    ctx.run();
    return status;
}
