// corio-tsan: a loop is destroyed while a pool thread runs to_thread work, and
// handles are awaited from a loop on another thread.
//
// Lifetime abuse: loops destroyed with tasks in the middle of an Asio
// operation, of to_thread work and inside `with`; pool leases and generators
// that outlive their loop; join_handles awaited from a loop on another
// thread. Each must end in destructors run once and, where the mistake can be
// seen, a clear invalid_state_error — never a crash, a hang or a leak (the
// ASan+UBSan and TSan builds check the "never").
#include <atomic>
#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include <asio/io_context.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <asio/read.hpp>

#include <corio/corio.hpp>

#include "support/corio_test.hpp"

using corio::task;
using corio_test::set_on_exit;
using namespace std::chrono_literals;

namespace {

using local_socket = asio::local::stream_protocol::socket;

/// Counts how many times objects of one kind were destroyed.
struct count_on_exit {
    int& n;
    ~count_on_exit() { ++n; }
};

task<void> read_forever(local_socket& s, int& exits) {
    count_on_exit g{exits};
    char buf[16];
    co_await s.async_read_some(asio::buffer(buf), corio::use_task);
}

task<void> write_all(local_socket& s, int& exits) {
    count_on_exit g{exits};
    std::string big(8 << 20, 'x');  // more than the socket buffers hold: the write stays pending
    co_await asio::async_write(s, asio::buffer(big), corio::use_task);
}

task<void> wait_timer(asio::steady_timer& t, int& exits) {
    count_on_exit g{exits};
    co_await t.async_wait(corio::use_task);
}

}  // namespace

// ----------------------------------------------------------- mid-use_task

// The sockets live outside the frames (as in a class that owns them): the
// frames' destruction alone would leave their operations pending, reading
// into and writing from freed buffers (AddressSanitizer saw exactly that).
TEST_CASE("a loop destroyed while tasks wait in use_task operations cancels them; late data reaches no frame") {
    asio::io_context ctx;
    local_socket a(ctx), b(ctx), c(ctx), d(ctx);
    asio::local::connect_pair(a, b);
    asio::local::connect_pair(c, d);
    asio::steady_timer timer(ctx, 1h);
    int exits = 0;
    {
        corio::event_loop loop(ctx);
        loop.spawn(read_forever(a, exits));
        loop.spawn(write_all(c, exits));
        loop.spawn(wait_timer(timer, exits));
        for (int i = 0; i < 4; ++i) ctx.poll();
        REQUIRE(exits == 0);
        REQUIRE(loop.live_tasks() == 3);
    }
    CHECK(exits == 3);  // every frame destroyed with the loop, once
    // Data arriving, the peer draining the writer's socket, the timer ending:
    // none of it reaches a destroyed frame.
    asio::write(b, asio::buffer("late", 4));
    d.non_blocking(true);
    std::error_code ec;
    char sink[65536];
    std::size_t drained = 0;
    while (std::size_t n = d.read_some(asio::buffer(sink), ec)) drained += n;
    timer.cancel();  // its handler (if the frame's cancel did not run it yet) finds nothing
    ctx.run_for(50ms);
    CHECK(drained < (8u << 20));  // the write stopped when its frame went
    CHECK(exits == 3);
}

// ---------------------------------------------------------- mid-to_thread

// (The loops below are driven by hand: run_until_complete would cancel the
// other tasks and wait for them before returning.)

TEST_CASE("a loop destroyed mid-to_thread waits for the function before the frame goes") {
    std::atomic<bool> started{false}, release{false}, finished{false};
    bool frame_exit = false;
    std::thread releaser;
    {
        asio::io_context ctx;
        corio::event_loop loop(ctx);
        auto f = [&] {
            started = true;
            while (!release) std::this_thread::sleep_for(1ms);
            finished = true;
        };
        loop.spawn([&]() -> task<void> {
            set_on_exit g{frame_exit};
            co_await corio::to_thread(f);
        });
        while (!started) ctx.run_one_for(1ms);
        REQUIRE_FALSE(finished);
        releaser = std::thread([&] {
            std::this_thread::sleep_for(20ms);
            release = true;
        });
    }  // blocks until f returned
    // f may reference the awaiter's locals: the frame outlived it.
    CHECK(finished);
    CHECK(frame_exit);
    releaser.join();
}

TEST_CASE("a loop destroyed mid-to_thread requests stop of a function that takes a stop_token") {
    std::atomic<bool> started{false}, saw_stop{false};
    {
        asio::io_context ctx;
        corio::event_loop loop(ctx);
        auto f = [&](std::stop_token st) {
            started = true;
            while (!st.stop_requested()) std::this_thread::sleep_for(1ms);
            saw_stop = true;
        };
        loop.spawn([&]() -> task<void> { co_await corio::to_thread(f); });
        while (!started) ctx.run_one_for(1ms);
    }  // without a stop request, this would wait forever
    CHECK(saw_stop);
}

// ------------------------------------------------------------ inside with

namespace {

struct resource_log {
    int acquired = 0, released = 0, frames = 0, bodies = 0;
};

corio::async_context<int> managed(resource_log& log) {
    count_on_exit g{log.frames};
    ++log.acquired;
    co_yield 42;
    ++log.released;
    co_return;
}

}  // namespace

TEST_CASE("a loop destroyed while a task is inside with() destroys the body and the context once each") {
    resource_log log;
    {
        asio::io_context ctx;
        corio::event_loop loop(ctx);
        auto body = [&](int& r) -> task<void> {
            count_on_exit g{log.bodies};
            CHECK(r == 42);
            co_await corio::sleep(1h);
        };
        loop.spawn([&]() -> task<void> { co_await corio::with(managed(log), body); });
        ctx.poll();
        REQUIRE(log.acquired == 1);
        REQUIRE(loop.live_tasks() == 1);
    }
    CHECK(log.bodies == 1);
    CHECK(log.frames == 1);
    // The release half is async and there is no loop left to run it on.
    CHECK(log.released == 0);
}

// --------------------------------------------- leases outliving the loop

namespace {

struct conn {
    int id;
    int* destroyed;
    conn(int i, int* d) : id(i), destroyed(d) {}
    conn(conn&& o) noexcept : id(o.id), destroyed(std::exchange(o.destroyed, nullptr)) {}
    conn& operator=(conn&&) = delete;
    ~conn() {
        if (destroyed) ++*destroyed;
    }
};

}  // namespace

TEST_CASE("a pool lease kept past its loop's end returns its resource when dropped later") {
    int destroyed = 0, made = 0;
    corio::pool<conn> p([&]() -> task<conn> { co_return conn(++made, &destroyed); },
                        corio::pool_options<conn>{.max_size = 2});
    std::optional<corio::pool<conn>::lease> kept;
    {
        corio::event_loop loop(corio::run_options{.virtual_time = true});
        loop.run_until_complete([&]() -> task<void> {
            auto l = co_await p.acquire();
            kept.emplace(std::move(l));
        });
    }
    REQUIRE(kept);
    CHECK((*kept)->id == 1);
    kept.reset();  // no loop runs: the resource goes back idle
    CHECK(destroyed == 0);
    CHECK(p.stats().idle == 1);
    // A new loop can use the pool (and its idle resource) again.
    corio::event_loop again(corio::run_options{.virtual_time = true});
    int id = again.run_until_complete([&]() -> task<int> {
        auto l = co_await p.acquire();
        co_return l->id;
    });
    CHECK(id == 1);
    again.run_until_complete([&]() -> task<void> { co_await p.close(); });
    CHECK(destroyed == 1);
}

// ----------------------------------------- generators outliving the loop

namespace {

corio::async_generator<int> ticks(int& frames) {
    count_on_exit g{frames};
    for (int i = 0;; ++i) {
        co_await corio::sleep(1ms);
        co_yield i;
    }
}

}  // namespace

TEST_CASE("a generator suspended at co_yield may be destroyed after its loop is gone") {
    int frames = 0;
    std::optional<corio::async_generator<int>> gen;
    gen.emplace(ticks(frames));
    {
        corio::event_loop loop(corio::run_options{.virtual_time = true});
        auto v = loop.run_until_complete([&]() -> task<std::optional<int>> { co_return co_await gen->next(); });
        CHECK(v == 0);
    }
    CHECK(frames == 0);
    gen.reset();
    CHECK(frames == 1);
}

TEST_CASE("a generator whose body waits in a sleep when its loop is destroyed can be destroyed afterwards") {
    int frames = 0;
    std::optional<corio::async_generator<int>> gen;
    gen.emplace(ticks(frames));
    {
        asio::io_context ctx;
        corio::event_loop loop(ctx);
        loop.spawn([&]() -> task<void> {
            for (;;) co_await gen->next();
        });
        ctx.poll();  // the consumer pulls; the body sleeps in the loop's timer heap
        REQUIRE(loop.pending_timers() == 1);
    }
    gen.reset();  // the body's sleep must not reach the dead loop's timer heap
    CHECK(frames == 1);
}

// -------------------------------------- a handle awaited from another thread

TEST_CASE("awaiting a join_handle from a loop on another thread throws invalid_state_error naming the mistake") {
    corio::event_loop home(corio::run_options{.virtual_time = true});
    corio::join_handle<int> h = home.spawn([]() -> task<int> {
        co_await corio::sleep(1ms);
        co_return 7;
    });
    std::string message;
    std::thread other([&] {
        corio::run(
            [&]() -> task<void> {
                try {
                    co_await h;
                } catch (const corio::invalid_state_error& e) {
                    message = e.what();
                }
            },
            corio::run_options{.cancel_on_signals = {}});
    });
    other.join();
    CHECK(message.find("another event loop") != std::string::npos);
    int v = home.run_until_complete([&]() -> task<int> { co_return co_await h; });
    CHECK(v == 7);
}

TEST_CASE("a task started on one loop and awaited by a task of another loop throws invalid_state_error") {
    // A task<T> is lazy: awaiting it elsewhere before it started is fine (it
    // runs on the awaiter's loop). Once spawned it belongs to its loop.
    corio::event_loop a(corio::run_options{.virtual_time = true});
    corio::event_loop b(corio::run_options{.virtual_time = true});
    auto h = a.spawn([]() -> task<int> { co_return 1; });
    bool refused = false;
    b.run_until_complete([&]() -> task<void> {
        try {
            co_await h;
        } catch (const corio::invalid_state_error&) {
            refused = true;
        }
    });
    CHECK(refused);
    int v = a.run_until_complete([&]() -> task<int> { co_return co_await h; });
    CHECK(v == 1);
}
