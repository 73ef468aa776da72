// graceful_shutdown: a worker pool and a small TCP server that drain on
// SIGINT/SIGTERM (Ctrl-C), with cleanup awaited under a grace deadline.
//
//   $ ./graceful_shutdown        # prints "ready port=N", then serves
//   ^C                           # drains: in-flight requests finish, each
//                                # worker cleans up, "graceful exit", status 0
//   (a second ^C while draining forces the rest to stop at once, status 130)
//
// Shape (asyncio's add_signal_handler + Trio's shielded cleanup):
// - long_running_task(): a worker taking jobs from a queue; when cancelled it
//   runs its cleanup under shield(timeout(grace, ...)), so cleanup is awaited
//   but bounded.
// - run_with_graceful_shutdown(): races the worker pool against a stop event;
//   when the event is set the pool is cancelled and race returns after every
//   worker finished its cleanup.
// - The server accepts on 127.0.0.1, answers one line per request; on stop it
//   accepts no more connections, and each connection finishes the request in
//   flight, says "bye" and closes.
// - main waits for SIGINT/SIGTERM with wait_for_signal (so run()'s own
//   cancel-on-signal does not fire), sets the stop event, and waits for the
//   drain; a second signal cancels everything left.
// The program stops by itself after 30 s without a signal. Its ctest
// (graceful_shutdown_test.sh) sends SIGTERM once it is ready.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <utility>

#include <asio/buffer.hpp>
#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>
#include <corio/corio.hpp>
#include <fmt/core.h>

using namespace std::chrono_literals;
using asio::ip::tcp;
using corio::task;

namespace {

constexpr auto grace = 500ms;
constexpr int worker_count = 3;

void say(const std::string& line) {
    fmt::print("{}\n", line);
    std::fflush(stdout);
}

// stop.wait() as a task, for race(): event::wait_awaiter is not movable yet.
task<void> stopped(corio::event& stop) { co_await stop.wait(); }

// ---------------------------------------------------------------- workers ---

task<void> flush_state(int id) {
    co_await corio::sleep(20ms);  // e.g. write a checkpoint
    say(fmt::format("worker {} cleaned up", id));
}

task<void> long_running_task(int id, corio::queue<int>& jobs) {
    std::exception_ptr stopped;
    try {
        for (;;) {
            int job = co_await jobs.get();
            co_await corio::sleep(15ms);  // the work
            (void)job;
        }
    } catch (const corio::cancelled_error&) {
        stopped = std::current_exception();
    }
    // Cleanup is awaited even though the task is cancelled, but only for `grace`.
    try {
        co_await corio::shield(corio::timeout(grace, flush_state(id)));
    } catch (const corio::timeout_error&) {
        say(fmt::format("worker {} cleanup timed out", id));
    }
    std::rethrow_exception(stopped);
}

task<void> worker_pool(corio::queue<int>& jobs) {
    auto body = [&](corio::task_group& tg) -> task<void> {
        for (int i = 0; i < worker_count; ++i) tg.spawn(long_running_task(i, jobs));
        for (int job = 0;; ++job) {
            co_await jobs.put(job);
            co_await corio::sleep(5ms);
        }
    };
    co_await corio::with_task_group(body);
}

task<void> run_with_graceful_shutdown(corio::event& stop) {
    corio::queue<int> jobs(8);
    co_await corio::race(worker_pool(jobs), stopped(stop));
    say("worker pool drained");
}

// ----------------------------------------------------------------- server ---

task<void> connection(tcp::socket sock, int id, corio::event& stop) {
    std::string buf;
    int served = 0;
    for (;;) {
        auto r = co_await corio::race(asio::async_read_until(sock, asio::dynamic_buffer(buf), '\n', corio::use_task),
                                      stopped(stop));
        if (r.index() == 1) break;  // draining: take no new request
        std::size_t n = std::get<0>(r);
        std::string reply = "ok " + buf.substr(0, n);
        buf.erase(0, n);
        co_await corio::sleep(10ms);  // the request's work, finished even when a drain starts now
        co_await asio::async_write(sock, asio::buffer(reply), corio::use_task);
        ++served;
    }
    co_await corio::timeout(grace, asio::async_write(sock, asio::buffer(std::string("bye\n")), corio::use_task));
    say(fmt::format("connection {} drained after {} request(s)", id, served));
}

task<void> accept_loop(tcp::acceptor& acceptor, corio::task_group& tg, corio::event& stop) {
    for (int id = 0;; ++id) {
        auto r = co_await corio::race(acceptor.async_accept(corio::use_task), stopped(stop));
        if (r.index() == 1) co_return;  // stop accepting
        tg.spawn(connection(std::move(std::get<0>(r)), id, stop));
    }
}

// A client of our own, so that there is a connection to drain.
task<void> client(unsigned short port) {
    tcp::socket sock(corio::current_loop().context());
    co_await sock.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), corio::use_task);
    std::string buf;
    for (int i = 0;; ++i) {
        co_await asio::async_write(sock, asio::buffer(fmt::format("request {}\n", i)), corio::use_task);
        std::size_t n = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), '\n', corio::use_task);
        std::string line = buf.substr(0, n);
        buf.erase(0, n);
        if (line == "bye\n") break;
        co_await corio::sleep(5ms);
    }
    say("client: server said bye");
}

// ------------------------------------------------------------------- main ---

task<int> serve() {
    tcp::acceptor acceptor(corio::current_loop().context(), tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    const unsigned short port = acceptor.local_endpoint().port();
    corio::event stop;
    int exit_code = 0;
    auto body = [&](corio::task_group& tg) -> task<void> {
        tg.spawn(run_with_graceful_shutdown(stop));
        tg.spawn(accept_loop(acceptor, tg, stop));
        tg.spawn(client(port));
        say(fmt::format("ready port={}", port));
        auto sig = co_await corio::move_on_after(30s, corio::wait_for_signal(SIGINT, SIGTERM));
        say(sig ? fmt::format("signal {}: draining", *sig) : std::string("no signal in 30 s: draining"));
        stop.set();
        acceptor.close();
        // The group now waits for every connection and worker to drain.
    };
    auto everything = [&]() -> task<void> { co_await corio::with_task_group(body); };
    auto second_signal = [&]() -> task<void> {
        co_await stop.wait();
        co_await corio::wait_for_signal(SIGINT, SIGTERM);
        say("second signal: stopping now");
        exit_code = 130;
    };
    // Whichever ends first: the drain, or a second signal (which cancels
    // what is left of the drain; cleanups stay bounded by their grace).
    co_await corio::race(everything(), second_signal());
    co_return exit_code;
}

}  // namespace

int main() {
    try {
        int code = corio::run(serve());
        if (code == 0) say("graceful exit");
        return code;
    } catch (const corio::cancelled_error&) {
        return 130;
    } catch (const std::exception& e) {
        fmt::print(stderr, "graceful_shutdown: {}\n", e.what());
        return 1;
    }
}
