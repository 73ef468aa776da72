// examples/asio_guide.cpp: every snippet of docs/asio.md, compiled and run.
//
// docs/asio.md shows the regions between `//! [name]` lines; the ctest test
// docs_snippets (scripts/check_snippets.sh) fails when a snippet there differs
// from its region here. Each section is one function; main() runs them in
// order on one event loop and checks what they return. Everything stays on
// 127.0.0.1 (an echo server started here) and in a temporary file.
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <tuple>
#include <unistd.h>
#include <fcntl.h>

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <corio/corio.hpp>

using namespace std::chrono_literals;
using asio::ip::tcp;

namespace {

int failures = 0;
void check(bool ok, const char* what) {
    std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) ++failures;
}

// ------------------------------------------------------- an echo server ---
//! [echo_server]
// One connection: echo every chunk until the peer closes. as_tuple turns the
// error into a value, so EOF ends the loop without an exception.
corio::task<void> echo_session(tcp::socket sock) {
    std::array<char, 4096> buf;
    for (;;) {
        auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(corio::use_task));
        if (ec) break;  // asio::error::eof, or the peer reset the connection
        co_await asio::async_write(sock, asio::buffer(buf.data(), n), corio::use_task);
    }
}

// Accepts until cancelled; each connection runs in the task group, so none
// outlives the server.
corio::task<void> echo_server(tcp::acceptor& acceptor) {
    co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<void> {
        for (;;) {
            tcp::socket sock = co_await acceptor.async_accept(corio::use_task);
            co_await corio::yield_now();  // throws if the accept completed as the server was cancelled
            g.spawn(echo_session(std::move(sock)));
        }
    });
}
//! [echo_server]

// ------------------------------------------------ resolver and client ---
corio::task<std::string> client(std::string port) {
    //! [resolve_connect]
    asio::io_context& ctx = corio::current_loop().context();
    tcp::resolver resolver(ctx);
    auto endpoints = co_await resolver.async_resolve("127.0.0.1", port, corio::use_task);
    tcp::socket sock(ctx);
    co_await asio::async_connect(sock, endpoints, corio::use_task);
    //! [resolve_connect]

    //! [read_to_eof]
    std::string request = "hello, echo\n";
    co_await asio::async_write(sock, asio::buffer(request), corio::use_task);
    sock.shutdown(tcp::socket::shutdown_send);  // the server sees EOF and closes its side

    std::string reply;
    auto [ec, n] =
        co_await asio::async_read(sock, asio::dynamic_buffer(reply), asio::experimental::as_tuple(corio::use_task));
    // async_read stops at EOF; asio::error::eof is how it says "done", not a failure.
    if (ec && ec != asio::error::eof) throw std::system_error(ec);
    //! [read_to_eof]
    (void)n;
    co_return reply;
}

// ------------------------------------------- several awaits, one deadline ---
//! [one_deadline]
// Reads a line, then a second one: 200 ms for both together, not per read.
corio::task<std::string> two_lines(tcp::socket& sock) {
    std::string buf;
    auto read_both = [&]() -> corio::task<std::string> {
        std::size_t n = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), '\n', corio::use_task);
        std::string first = buf.substr(0, n);
        buf.erase(0, n);
        n = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), '\n', corio::use_task);
        co_return first + buf.substr(0, n);
    };
    co_return co_await corio::timeout(200ms, read_both);  // corio::timeout_error when 200 ms pass
}
//! [one_deadline]

corio::task<void> deadline_demo(tcp::endpoint server) {
    tcp::socket sock(corio::current_loop().context());
    co_await sock.async_connect(server, corio::use_task);
    std::string one = "one\ntwo\n";
    co_await asio::async_write(sock, asio::buffer(one), corio::use_task);
    std::string both = co_await two_lines(sock);
    check(both == "one\ntwo\n", "two reads under one deadline return both lines");

    // Only one line arrives: the second read is cut short by the shared deadline.
    std::string half = "three\n";
    co_await asio::async_write(sock, asio::buffer(half), corio::use_task);
    auto t0 = corio::now();
    bool timed_out = false;
    try {
        co_await two_lines(sock);
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    auto took = corio::now() - t0;
    check(timed_out && took >= 200ms && took < 2s, "the deadline covers both reads (timeout_error after 200 ms)");

    //! [move_on_after]
    // The same with a fallback instead of an exception: an empty optional.
    std::array<char, 64> buf;
    std::optional<std::size_t> got =
        co_await corio::move_on_after(50ms, sock.async_read_some(asio::buffer(buf), corio::use_task));
    if (!got) std::puts("nothing within 50 ms");
    //! [move_on_after]
    check(!got, "move_on_after gives an empty optional when nothing arrives");
}

// ------------------------------------------------------- timers, signals ---
corio::task<void> timers_and_signals() {
    //! [steady_timer]
    asio::steady_timer timer(corio::current_loop().context(), 20ms);
    co_await timer.async_wait(corio::use_task);  // cancellable like any corio await
    //! [steady_timer]

    //! [signal_set]
    asio::signal_set signals(corio::current_loop().context(), SIGUSR1);
    std::raise(SIGUSR1);                                       // the set queues a signal that arrives before the wait
    int signo = co_await signals.async_wait(corio::use_task);  // the signal's number
    //! [signal_set]
    check(signo == SIGUSR1, "asio::signal_set delivers SIGUSR1 to a corio task");
}

// ---------------------------------------------------------------- files ---
corio::task<std::string> read_file(const char* path) {
    //! [stream_descriptor]
    // A regular file through posix::stream_descriptor: epoll cannot watch
    // regular files, Asio knows it and reads them directly (they never block
    // for long). Pipes, terminals and character devices work the same way.
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), path);
    asio::posix::stream_descriptor file(corio::current_loop().context(), fd);  // owns fd now
    std::string contents;
    auto [ec, n] =
        co_await asio::async_read(file, asio::dynamic_buffer(contents), asio::experimental::as_tuple(corio::use_task));
    if (ec && ec != asio::error::eof) throw std::system_error(ec);
    //! [stream_descriptor]
    (void)n;
    co_return contents;
}

corio::task<std::string> read_pipe() {
    int fds[2];
    if (::pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    asio::io_context& ctx = corio::current_loop().context();
    asio::posix::stream_descriptor reader(ctx, fds[0]), writer(ctx, fds[1]);
    auto feed = [&]() -> corio::task<void> {
        co_await corio::sleep(10ms);
        std::string msg = "through a pipe";
        co_await asio::async_write(writer, asio::buffer(msg), corio::use_task);
        writer.close();
    };
    auto feeder = corio::spawn(feed);
    std::string got;
    auto [ec, n] =
        co_await asio::async_read(reader, asio::dynamic_buffer(got), asio::experimental::as_tuple(corio::use_task));
    co_await feeder;
    (void)n;
    check(ec == asio::error::eof, "a pipe read ends with eof, as a value");
    co_return got;
}

// ------------------------------------------- asio::awaitable, both ways ---
//! [await_asio]
// Asio code you already have: a helper written for asio::awaitable.
asio::awaitable<std::string> read_line(tcp::socket& sock, std::string& buf) {
    std::size_t n = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), '\n', asio::use_awaitable);
    std::string line = buf.substr(0, n - 1);
    buf.erase(0, n);
    co_return line;
}

// A corio task awaits it directly; timeout() and cancellation reach its
// pending read.
corio::task<std::string> first_line(tcp::socket& sock) {
    std::string buf;
    co_return co_await corio::timeout(1s, read_line(sock, buf));
}
//! [await_asio]

//! [co_spawn]
corio::task<int> corio_lookup(std::string key) {
    co_await corio::sleep(5ms);
    co_return static_cast<int>(key.size());
}

// Asio code awaits a corio task with corio::co_spawn and any completion token.
asio::awaitable<int> asio_caller() {
    auto ex = co_await asio::this_coro::executor;
    int v = co_await corio::co_spawn(ex, corio_lookup("seven!!"), asio::use_awaitable);
    co_return v;
}
//! [co_spawn]

corio::task<void> awaitable_demo(tcp::endpoint server) {
    tcp::socket sock(corio::current_loop().context());
    co_await sock.async_connect(server, corio::use_task);
    std::string msg = "a line\n";
    co_await asio::async_write(sock, asio::buffer(msg), corio::use_task);
    std::string line = co_await first_line(sock);
    check(line == "a line", "a corio task awaits an asio::awaitable");

    // From corio, an asio::awaitable that itself co_spawns a corio task.
    int v = co_await asio_caller();
    check(v == 7, "asio::awaitable awaits a corio task through corio::co_spawn");
}

// ---------------------------------------------------------------- lifetimes ---
corio::task<void> lifetimes(tcp::endpoint server) {
    tcp::socket sock(corio::current_loop().context());
    co_await sock.async_connect(server, corio::use_task);

    //! [lambda_lifetime]
    std::string greeting = "ping\n";
    // Right: pass the lambda itself; the task keeps it (and its captures) alive.
    auto writer = corio::spawn([&sock, greeting]() -> corio::task<void> {
        co_await asio::async_write(sock, asio::buffer(greeting), corio::use_task);
    });
    // Wrong: `corio::spawn([&sock, greeting]() -> corio::task<void> {...}())`
    // calls the lambda, which dies at the end of the statement while its
    // coroutine still reads `greeting` from it.
    co_await writer;
    //! [lambda_lifetime]

    //! [cancel_waits]
    // A cancelled Asio operation is waited for: the task resumes only once
    // Asio has finished with `buf`, so buffers on the frame are safe.
    std::array<char, 5> buf;
    co_await asio::async_read(sock, asio::buffer(buf), corio::use_task);  // "ping\n" comes back
    auto idle = corio::spawn([&]() -> corio::task<void> {
        co_await sock.async_read_some(asio::buffer(buf), corio::use_task);  // nothing more will come
    });
    co_await corio::sleep(10ms);
    idle.cancel();  // emits a terminal cancellation into the pending read
    bool cancelled = false;
    try {
        co_await idle;
    } catch (const corio::cancelled_error&) {
        cancelled = true;  // the read completed with operation_aborted first
    }
    //! [cancel_waits]
    check(cancelled && std::string(buf.data(), 5) == "ping\n",
          "a cancelled read is cancelled_error, its buffer intact");
}

corio::task<int> amain() {
    asio::io_context& ctx = corio::current_loop().context();
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    tcp::endpoint server = acceptor.local_endpoint();
    auto srv = corio::spawn([&]() -> corio::task<void> { co_await echo_server(acceptor); });

    std::string reply = co_await client(std::to_string(server.port()));
    check(reply == "hello, echo\n", "resolve, connect, write, read to EOF");
    co_await deadline_demo(server);
    co_await timers_and_signals();

    char path[] = "/tmp/corio_asio_guide_XXXXXX";
    int fd = ::mkstemp(path);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "mkstemp");
    const char text[] = "a regular file\n";
    bool wrote = ::write(fd, text, sizeof text - 1) == static_cast<ssize_t>(sizeof text - 1);
    ::close(fd);
    std::string contents = co_await read_file(path);
    ::unlink(path);
    check(wrote && contents == text, "a regular file read through posix::stream_descriptor");
    std::string piped = co_await read_pipe();
    check(piped == "through a pipe", "a pipe read through posix::stream_descriptor");

    co_await awaitable_demo(server);
    co_await lifetimes(server);

    srv.cancel();  // the server and its sessions end; nothing outlives run()
    try {
        co_await srv;
    } catch (const corio::cancelled_error&) {
    }
    std::printf("%s\n", failures == 0 ? "all checks passed" : "some checks FAILED");
    co_return failures == 0 ? 0 : 1;
}

}  // namespace

int main() { return corio::run(amain()); }
