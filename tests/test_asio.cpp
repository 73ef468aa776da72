// Tests for corio/asio.hpp: use_task makes Asio operations awaitable. Values,
// tuples, error codes as std::system_error, exception_ptr signatures, void
// signatures, cancellation through the operation's slot (join_handle::cancel,
// timeout, an already-cancelled scope) and completion on the loop's thread for
// I/O objects of another io_context. Real time, loopback only; each case
// takes well under 200 ms.
#include <corio/asio.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include "support/corio_test.hpp"

using namespace std::chrono_literals;
using asio::ip::tcp;
using corio::task;

namespace {

using steady = std::chrono::steady_clock;

/// An address on the current stack frame: compares stack depths.
[[gnu::noinline]] std::uintptr_t stack_depth_marker() {
    return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

/// A connected pair of loopback sockets on the running loop's io_context.
struct socket_pair {
    tcp::socket server;
    tcp::socket client;
};

task<socket_pair> connect_pair() {
    auto ex = corio::current_loop().get_executor();
    tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    tcp::socket client(ex);
    auto accept_one = [&]() -> task<tcp::socket> { co_return co_await acceptor.async_accept(corio::use_task); };
    auto accepting = corio::spawn(accept_one());
    co_await client.async_connect(acceptor.local_endpoint(), corio::use_task);
    tcp::socket server = co_await accepting;
    co_return socket_pair{std::move(server), std::move(client)};
}

/// A user-written operation with signature void(error_code, int, std::string)
/// that completes by posting its handler to the handler's executor.
template <class Token>
auto async_pair(asio::io_context::executor_type ex, std::error_code ec, int n, std::string s, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, int, std::string)>(
        [ex](auto handler, std::error_code ec, int n, std::string s) {
            auto hex = asio::get_associated_executor(handler, ex);
            asio::post(hex, [h = std::move(handler), ec, n, s = std::move(s)]() mutable {
                std::move(h)(ec, n, std::move(s));
            });
        },
        token, ec, n, std::move(s));
}

/// void(std::exception_ptr, int), posted.
template <class Token>
auto async_may_throw(asio::io_context::executor_type ex, std::exception_ptr e, int n, Token&& token) {
    return asio::async_initiate<Token, void(std::exception_ptr, int)>(
        [ex](auto handler, std::exception_ptr e, int n) {
            auto hex = asio::get_associated_executor(handler, ex);
            asio::post(hex, [h = std::move(handler), e, n]() mutable { std::move(h)(e, n); });
        },
        token, e, n);
}

/// void(error_code) that records whether it was ever started.
template <class Token>
auto async_flag(asio::io_context::executor_type ex, bool& started, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [ex, &started](auto handler) {
            started = true;
            auto hex = asio::get_associated_executor(handler, ex);
            asio::post(hex, [h = std::move(handler)]() mutable { std::move(h)(std::error_code{}); });
        },
        token);
}

}  // namespace

CORIO_TEST_CASE_WITH(corio::testing::real_time,
                     "asio: steady_timer async_wait returns after the expiry, in real time") {
    asio::steady_timer timer(corio::current_loop().get_executor(), 15ms);
    const auto start = steady::now();
    co_await timer.async_wait(corio::use_task);
    static_assert(std::is_void_v<decltype(timer.async_wait(corio::use_task).await_resume())>);
    CHECK(steady::now() - start >= 15ms);
}

CORIO_TEST_CASE_WITH(corio::testing::real_time, "asio: TCP echo over loopback returns byte counts and data") {
    auto ex = corio::current_loop().get_executor();
    tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    const auto endpoint = acceptor.local_endpoint();
    REQUIRE(endpoint.port() != 0);

    auto echo_once = [&]() -> task<std::size_t> {
        tcp::socket peer = co_await acceptor.async_accept(corio::use_task);
        char buf[64];
        std::size_t n = co_await peer.async_read_some(asio::buffer(buf), corio::use_task);
        std::size_t written = co_await asio::async_write(peer, asio::buffer(buf, n), corio::use_task);
        co_return written;
    };
    auto server = corio::spawn(echo_once(), "echo");

    tcp::socket client(ex);
    co_await client.async_connect(endpoint, corio::use_task);
    const std::string message = "hello, corio";
    std::size_t sent = co_await asio::async_write(client, asio::buffer(message), corio::use_task);
    CHECK(sent == message.size());

    std::string reply(message.size(), '\0');
    std::size_t got = co_await asio::async_read(client, asio::buffer(reply), corio::use_task);
    CHECK(got == message.size());
    CHECK(reply == message);

    std::size_t echoed = co_await server;
    CHECK(echoed == message.size());

    // The peer closed: the next read reports eof as a std::system_error.
    char more[8];
    std::error_code code;
    try {
        co_await client.async_read_some(asio::buffer(more), corio::use_task);
    } catch (const std::system_error& e) {
        code = e.code();
    }
    CHECK(code == asio::error::eof);
}

CORIO_TEST_CASE_WITH(corio::testing::real_time, "asio: an error code becomes std::system_error with that code") {
    auto ex = corio::current_loop().get_executor();
    tcp::endpoint closed;
    {
        // Take a free port, then close it: nothing listens there.
        tcp::acceptor probe(ex, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        closed = probe.local_endpoint();
    }
    tcp::socket s(ex);
    std::error_code code;
    bool other = false;
    try {
        co_await s.async_connect(closed, corio::use_task);
    } catch (const std::system_error& e) {
        code = e.code();
    } catch (...) {
        other = true;
    }
    CHECK_FALSE(other);
    CHECK(code == asio::error::connection_refused);
}

CORIO_TEST_CASE_WITH(corio::testing::real_time, "asio: a signature with several values returns a std::tuple") {
    auto ex = corio::current_loop().get_executor();
    using op_t = decltype(async_pair(ex, {}, 0, "", corio::use_task));
    static_assert(std::is_same_v<decltype(std::declval<op_t&>().await_resume()), std::tuple<int, std::string>>);

    std::tuple<int, std::string> r = co_await async_pair(ex, {}, 42, "answer", corio::use_task);
    CHECK(std::get<0>(r) == 42);
    CHECK(std::get<1>(r) == "answer");

    auto [n, s] = co_await async_pair(ex, {}, 7, "seven", corio::use_task);
    CHECK(n == 7);
    CHECK(s == "seven");

    std::error_code code;
    try {
        co_await async_pair(ex, std::make_error_code(std::errc::invalid_argument), 1, "x", corio::use_task);
    } catch (const std::system_error& e) {
        code = e.code();
    }
    CHECK(code == std::errc::invalid_argument);
}

CORIO_TEST_CASE_WITH(corio::testing::real_time, "asio: an (exception_ptr, T) signature returns T or rethrows") {
    auto ex = corio::current_loop().get_executor();
    int v = co_await async_may_throw(ex, nullptr, 5, corio::use_task);
    CHECK(v == 5);

    std::string message;
    try {
        co_await async_may_throw(ex, std::make_exception_ptr(std::out_of_range("boom")), 6, corio::use_task);
    } catch (const std::out_of_range& e) {
        message = e.what();
    }
    CHECK(message == "boom");
}

CORIO_TEST_CASE_WITH(corio::testing::real_time,
                     "asio: a void() signature (asio::post with use_task) goes through the io_context") {
    auto ex = corio::current_loop().get_executor();
    bool earlier_ran = false;
    asio::post(ex, [&] { earlier_ran = true; });
    // FIFO: our completion is queued behind the handler posted above.
    co_await asio::post(ex, corio::use_task);
    CHECK(earlier_ran);
}

TEST_CASE("asio: an operation that completes inside its initiating function does not nest resumptions") {
    // asio::dispatch() runs the completion handler inline when called on the
    // executor's own thread, i.e. while use_task's await_suspend is still
    // running. The task must continue without its stack growing per await
    // (a loop of a million such awaits must not overflow the stack).
    corio::testing::run_virtual(
        []() -> task<void> {
            auto ex = corio::current_loop().get_executor();
            std::uintptr_t first = 0;
            std::uintptr_t last = 0;
            for (int i = 0; i < 200; ++i) {
                co_await asio::dispatch(ex, corio::use_task);
                last = stack_depth_marker();
                if (i == 0) first = last;
            }
            const auto growth = first > last ? first - last : last - first;
            CHECK(growth < 1024);
        },
        corio::testing::real_time);
}

CORIO_TEST_CASE_WITH(corio::testing::real_time,
                     "asio: cancelling a task blocked in async_read_some wakes it promptly; the socket stays usable") {
    socket_pair p = co_await connect_pair();
    bool read_returned = false;
    auto reader = [&]() -> task<std::size_t> {
        char buf[16];
        std::size_t n = co_await p.server.async_read_some(asio::buffer(buf), corio::use_task);
        read_returned = true;
        co_return n;
    };
    auto h = corio::spawn(reader(), "reader");
    co_await corio::sleep(10ms);  // the reader is now blocked: nobody sends
    CHECK_FALSE(h.done());
    const auto cancelled_at = steady::now();
    h.cancel();
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(steady::now() - cancelled_at < 100ms);
    CHECK(h.cancelled());
    CHECK_FALSE(read_returned);

    // The socket still works in both directions.
    std::size_t sent = co_await asio::async_write(p.client, asio::buffer(std::string("ping")), corio::use_task);
    CHECK(sent == 4);
    std::string got(4, '\0');
    std::size_t n = co_await asio::async_read(p.server, asio::buffer(got), corio::use_task);
    CHECK(n == 4);
    CHECK(got == "ping");
}

CORIO_TEST_CASE_WITH(corio::testing::real_time,
                     "asio: timeout() around a long timer wait throws timeout_error quickly") {
    auto ex = corio::current_loop().get_executor();
    asio::steady_timer timer(ex, 10s);
    const auto start = steady::now();
    REQUIRE_THROWS_AS(co_await corio::timeout(20ms, timer.async_wait(corio::use_task)), corio::timeout_error);
    auto took = steady::now() - start;
    CHECK(took >= 20ms);
    CHECK(took < 2s);  // nowhere near the timer's 10 s

    // The timer was cancelled through its slot, not left pending: it can be waited on again.
    timer.expires_after(5ms);
    co_await timer.async_wait(corio::use_task);

    // move_on_after: the same, as an empty result.
    asio::steady_timer timer2(ex, 10s);
    auto wait2 = timer2.async_wait(corio::use_task);
    bool finished = co_await corio::move_on_after(10ms, wait2);
    CHECK_FALSE(finished);
    CHECK(steady::now() - start < 2s);
}

CORIO_TEST_CASE_WITH(corio::testing::real_time,
                     "asio: an operation awaited in an already-cancelled scope is not started") {
    auto ex = corio::current_loop().get_executor();
    bool started = false;
    corio::cancel_scope s;
    s.cancel();
    auto flag_op = async_flag(ex, started, corio::use_task);
    bool completed = co_await s.run(flag_op);
    CHECK_FALSE(completed);
    CHECK_FALSE(started);
    CHECK(s.cancelled_caught());

    // A read in a cancelled scope consumes nothing: the data is still there afterwards.
    socket_pair p = co_await connect_pair();
    std::size_t sent = co_await asio::async_write(p.client, asio::buffer(std::string("data")), corio::use_task);
    REQUIRE(sent == 4);
    co_await corio::sleep(5ms);  // let the bytes arrive
    char buf[16] = {};
    corio::cancel_scope s2;
    s2.cancel();
    std::optional<std::size_t> r = co_await s2.run(p.server.async_read_some(asio::buffer(buf), corio::use_task));
    CHECK_FALSE(r.has_value());
    CHECK(buf[0] == '\0');
    std::string got(4, '\0');
    std::size_t n = co_await asio::async_read(p.server, asio::buffer(got), corio::use_task);
    CHECK(n == 4);
    CHECK(got == "data");

    // The same operation does start outside a cancelled scope.
    co_await async_flag(ex, started, corio::use_task);
    CHECK(started);
}

CORIO_TEST_CASE_WITH(corio::testing::real_time,
                     "asio: a timeout ends an async_write whose peer never reads, and the stream still ends cleanly") {
    socket_pair p = co_await connect_pair();
    // Bounded kernel buffers (more than a loopback segment, so that the
    // reader below reopens the window at once, without the sender's probes).
    p.client.set_option(asio::socket_base::send_buffer_size(128 * 1024));
    p.server.set_option(asio::socket_base::receive_buffer_size(256 * 1024));
    const std::string big(16 * 1024 * 1024, 'x');  // far more than both hold
    const auto start = steady::now();
    bool timed_out = false;
    try {
        co_await corio::timeout(50ms, asio::async_write(p.client, asio::buffer(big), corio::use_task));
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    const auto took = steady::now() - start;
    CHECK(timed_out);
    CHECK(took >= 50ms);
    CHECK(took < 2s);
    // The composed write stopped part-way; the socket is open: ending the
    // stream lets the peer read what was written, then end of file.
    p.client.shutdown(tcp::socket::shutdown_send);
    std::string buf(64 * 1024, '\0');
    std::size_t got = 0;
    std::error_code end;
    try {
        for (;;) got += co_await p.server.async_read_some(asio::buffer(buf), corio::use_task);
    } catch (const std::system_error& e) {
        end = e.code();
    }
    CHECK(end == asio::error::eof);
    CHECK(got > 0);
    CHECK(got < big.size());
    p.client.close();
}

CORIO_TEST_CASE_WITH(corio::testing::real_time,
                     "asio: an operation of another io_context completes on the loop's thread") {
    const auto loop_thread = std::this_thread::get_id();
    asio::io_context other;
    auto work = asio::make_work_guard(other);
    std::thread runner([&] { other.run(); });
    const auto other_thread = runner.get_id();
    struct joiner {
        std::thread& t;
        decltype(work)& w;
        ~joiner() {
            w.reset();
            if (t.joinable()) t.join();
        }
    } join_at_exit{runner, work};

    asio::steady_timer timer(other, 5ms);
    co_await timer.async_wait(corio::use_task);
    CHECK(std::this_thread::get_id() == loop_thread);

    // Work that really runs on the other thread, then comes back.
    std::atomic<std::thread::id> ran_on{};
    asio::post(other, [&] { ran_on = std::this_thread::get_id(); });
    co_await asio::post(other.get_executor(), corio::use_task);
    CHECK(std::this_thread::get_id() == loop_thread);
    CHECK(ran_on.load() == other_thread);

    auto [n, s] = co_await async_pair(other.get_executor(), {}, 3, "three", corio::use_task);
    CHECK(std::this_thread::get_id() == loop_thread);
    CHECK(n == 3);
    CHECK(s == "three");
}

TEST_CASE("use_task: an operation pending when the loop is destroyed completes harmlessly in the adopted io_context") {
    asio::io_context ctx;
    bool cleaned_up = false;
    {
        corio::event_loop loop(ctx);
        auto waiter = [&]() -> corio::task<void> {
            corio_test::set_on_exit guard{cleaned_up};
            asio::steady_timer timer(ctx, std::chrono::hours(1));
            co_await timer.async_wait(corio::use_task);
        };
        auto h = loop.spawn(waiter());
        ctx.run_one();  // the drain: the task starts and waits on its timer
        CHECK(loop.live_tasks() == 1);
    }  // the frame (and its timer: the wait is cancelled) goes with the loop
    CHECK(cleaned_up);
    ctx.restart();
    CHECK(ctx.run() == 1);  // the aborted wait's handler runs and touches nothing of the loop
}
