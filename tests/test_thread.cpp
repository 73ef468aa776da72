// corio-tsan: to_thread, the thread-safe entry points and loop_pool cross threads.
#include <corio/thread.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <chrono>
#include <future>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>

#include "support/corio_test.hpp"

using corio::task;
using namespace std::chrono_literals;
using corio_test::set_on_exit;

namespace {

struct E : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Real time throughout; a pool of 4 threads for every case (the first loop to
// use to_thread decides the pool's size).
template <class F>
auto run_real(F&& body) {
    corio::event_loop loop(corio::run_options{.thread_pool_size = 4, .cancel_on_signals = {}});
    std::size_t unhandled = 0;
    loop.set_exception_handler([&](std::exception_ptr, std::string_view) { ++unhandled; });
    struct checker {
        corio::event_loop& loop;
        std::size_t& unhandled;
        ~checker() {
            CHECK(loop.live_tasks() == 0);
            CHECK(loop.pending_timers() == 0);
            CHECK(unhandled == 0);
        }
    } check{loop, unhandled};
    return loop.run_until_complete(body());
}

auto elapsed_since(std::chrono::steady_clock::time_point t0) { return std::chrono::steady_clock::now() - t0; }

int add(int a, int b) { return a + b; }

// Blocks for `d`, then records that it returned.
struct slow_fn {
    std::chrono::milliseconds d;
    std::atomic<bool>* returned;
    int operator()() const {
        std::this_thread::sleep_for(d);
        returned->store(true);
        return 5;
    }
};

}  // namespace

TEST_CASE("to_thread: runs f(args) on another thread and returns its value") {
    auto loop_thread = std::this_thread::get_id();
    std::thread::id ran_on;
    int v = run_real([&]() -> task<int> {
        auto f = [&](int a, int b) {
            ran_on = std::this_thread::get_id();
            return add(a, b);
        };
        co_return co_await corio::to_thread(f, 1, 2);
    });
    CHECK(v == 3);
    CHECK(ran_on != loop_thread);
    CHECK(ran_on != std::thread::id());
    CHECK(corio::thread_pool_size() == 4);
}

TEST_CASE("to_thread: an exception from f reaches the awaiter with its type and message") {
    std::string what;
    run_real([&]() -> task<void> {
        auto f = [] { throw E("boom in the pool"); };
        try {
            co_await corio::to_thread(f);
        } catch (const E& e) {
            what = e.what();
        }
    });
    CHECK(what == "boom in the pool");
}

TEST_CASE("to_thread: void and reference results") {
    int x = 1;
    run_real([&]() -> task<void> {
        auto inc = [&] { ++x; };
        co_await corio::to_thread(inc);
        auto ref = [&]() -> int& { return x; };
        int& r = co_await corio::to_thread(ref);
        CHECK(&r == &x);
    });
    CHECK(x == 2);
}

TEST_CASE("to_thread: four blocking calls run concurrently and the loop keeps running") {
    int ticks = 0;
    auto t0 = std::chrono::steady_clock::now();
    run_real([&]() -> task<void> {
        auto block = [] {
            std::this_thread::sleep_for(100ms);
            return 1;
        };
        auto ticker = [&]() -> task<void> {
            for (int i = 0; i < 5; ++i) {
                co_await corio::sleep(5ms);
                ++ticks;
            }
        };
        auto h = corio::spawn(ticker());
        auto [a, b, c, d] = co_await corio::gather(corio::to_thread(block), corio::to_thread(block),
                                                   corio::to_thread(block), corio::to_thread(block));
        CHECK(a + b + c + d == 4);
        co_await h;
    });
    CHECK(elapsed_since(t0) < 390ms);  // serially: 400 ms
    CHECK(ticks == 5);
}

TEST_CASE("to_thread: back-to-back calls from two loops at once each get their own result") {
    // Back to back, a call usually goes to a pool thread that is still
    // polling after the previous one, and the loop polls for the result:
    // both hand-offs race here, from two loops on two threads.
    auto calls = [](int base) -> task<long> {
        long sum = 0;
        for (int i = 0; i < 2000; ++i) {
            int v = co_await corio::to_thread([](int x) { return x * 3; }, base + i);
            if (v != (base + i) * 3) throw E("a to_thread call returned another call's result");
            sum += v;
        }
        co_return sum;
    };
    long other = 0;
    std::thread t([&] {
        corio::event_loop loop(corio::run_options{.thread_pool_size = 4, .cancel_on_signals = {}});
        other = loop.run_until_complete(calls(100000));
    });
    long mine = run_real([&]() -> task<long> { co_return co_await calls(0); });
    t.join();
    CHECK(mine == 3L * (1999L * 2000L / 2));
    CHECK(other == 3L * (100000L * 2000L + 1999L * 2000L / 2));
}

TEST_CASE("to_thread: a call that outlasts the loop's polling resumes the task all the same") {
    int v = run_real([]() -> task<int> {
        int sum = 0;
        for (int i = 0; i < 3; ++i)
            sum += co_await corio::to_thread([] {
                std::this_thread::sleep_for(2ms);  // far longer than the loop polls
                return 7;
            });
        co_return sum;
    });
    CHECK(v == 21);
}

TEST_CASE("to_thread: a cancelled awaiter requests stop and waits for f to return") {
    std::atomic<bool> returned{false};
    bool returned_when_cancelled = false;
    run_real([&]() -> task<void> {
        auto f = [&](std::stop_token st, int step) {
            while (!st.stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(step));
            returned.store(true);
            return 1;
        };
        auto worker = [&]() -> task<void> {
            try {
                co_await corio::to_thread(f, 1);
            } catch (const corio::cancelled_error&) {
                returned_when_cancelled = returned.load();
                throw;
            }
        };
        auto h = corio::spawn(worker());
        co_await corio::sleep(20ms);
        h.cancel();
        bool was_cancelled = co_await corio_test::ended_cancelled(h);
        CHECK(was_cancelled);
    });
    CHECK(returned_when_cancelled);
}

TEST_CASE("to_thread: without a stop_token the awaiter still waits for f, and its result is dropped") {
    std::atomic<bool> returned{false};
    bool returned_when_cancelled = false;
    auto t0 = std::chrono::steady_clock::now();
    run_real([&]() -> task<void> {
        auto worker = [&]() -> task<void> {
            try {
                co_await corio::to_thread(slow_fn{80ms, &returned});
            } catch (const corio::cancelled_error&) {
                returned_when_cancelled = returned.load();
                throw;
            }
        };
        auto h = corio::spawn(worker());
        co_await corio::sleep(10ms);
        h.cancel();
        bool was_cancelled = co_await corio_test::ended_cancelled(h);
        CHECK(was_cancelled);
    });
    CHECK(returned_when_cancelled);
    CHECK(elapsed_since(t0) >= 80ms);
}

TEST_CASE("to_thread: in a scope already cancelled, f never starts") {
    bool ran = false;
    run_real([&]() -> task<void> {
        auto f = [&] { ran = true; };
        corio::cancel_scope s;
        s.cancel();
        auto r = co_await s.run(corio::to_thread(f));
        CHECK_FALSE(r);
    });
    CHECK_FALSE(ran);
}

TEST_CASE("to_thread_detached: a cancelled awaiter leaves at once and f runs on") {
    auto f_done = std::make_shared<std::atomic<bool>>(false);
    auto release = std::make_shared<std::atomic<bool>>(false);
    bool done_when_cancelled = true;
    run_real([&]() -> task<void> {
        auto f = [f_done, release] {
            while (!release->load()) std::this_thread::sleep_for(1ms);
            f_done->store(true);
            return 3;
        };
        auto r = co_await corio::move_on_after(20ms, corio::to_thread_detached(f));
        done_when_cancelled = f_done->load();
        CHECK_FALSE(r);
    });
    CHECK_FALSE(done_when_cancelled);
    release->store(true);
    while (!f_done->load()) std::this_thread::sleep_for(1ms);
}

TEST_CASE("to_thread_detached: returns f's value when not cancelled") {
    int v = run_real([]() -> task<int> { co_return co_await corio::to_thread_detached([] { return 11; }); });
    CHECK(v == 11);
}

TEST_CASE("to_thread: composes with every combinator") {
    SECTION("timeout: timeout_error only after f returned") {
        std::atomic<bool> returned{false};
        bool seen = false;
        run_real([&]() -> task<void> {
            try {
                co_await corio::timeout(10ms, corio::to_thread(slow_fn{60ms, &returned}));
            } catch (const corio::timeout_error&) {
                seen = returned.load();
            }
        });
        CHECK(seen);
    }
    SECTION("timeout_at: completes in time") {
        int v = run_real([&]() -> task<int> {
            co_return co_await corio::timeout_at(corio::now() + 5s, corio::to_thread(add, 2, 3));
        });
        CHECK(v == 5);
    }
    SECTION("move_on_after: empty, after f returned") {
        std::atomic<bool> returned{false};
        bool seen = false;
        run_real([&]() -> task<void> {
            auto r = co_await corio::move_on_after(10ms, corio::to_thread(slow_fn{60ms, &returned}));
            seen = returned.load();
            CHECK_FALSE(r);
            co_await corio::sleep(1ms);  // no cancellation leaked
        });
        CHECK(seen);
    }
    SECTION("shield: a cancel from outside does not interrupt f, the value arrives") {
        std::atomic<bool> returned{false};
        int got = 0;
        run_real([&]() -> task<void> {
            auto worker = [&]() -> task<void> {
                got = co_await corio::shield(corio::to_thread(slow_fn{40ms, &returned}));
            };
            auto h = corio::spawn(worker());
            co_await corio::sleep(5ms);
            h.cancel();
            co_await corio_test::ended_cancelled(h);
        });
        CHECK(got == 5);
    }
    SECTION("with_token: a token cancelled from another thread cancels the await, after f returned") {
        std::atomic<bool> returned{false};
        bool seen = false;
        corio::cancellation_source src;
        std::thread canceller([&] {
            std::this_thread::sleep_for(10ms);
            src.cancel();
        });
        run_real([&]() -> task<void> {
            try {
                co_await corio::with_token(src.token(), corio::to_thread(slow_fn{60ms, &returned}));
            } catch (const corio::cancelled_error&) {
                seen = returned.load();
            }
        });
        canceller.join();
        CHECK(seen);
    }
    SECTION("race: the sleep wins; the loser's f is awaited before race returns") {
        std::atomic<bool> returned{false};
        bool seen = false;
        run_real([&]() -> task<void> {
            auto r = co_await corio::race(corio::to_thread(slow_fn{60ms, &returned}), corio::sleep(10ms));
            seen = returned.load();
            CHECK(r.index() == 1);
        });
        CHECK(seen);
    }
    SECTION("gather: values in order; a failure waits for its sibling's f") {
        std::atomic<bool> returned{false};
        bool seen = false;
        run_real([&]() -> task<void> {
            auto [a, b] = co_await corio::gather(corio::to_thread(add, 1, 1), corio::to_thread(add, 2, 2));
            CHECK(a == 2);
            CHECK(b == 4);
            auto fail = [] {
                throw E("x");
                return 0;
            };
            try {
                co_await corio::gather(corio::to_thread(fail), corio::to_thread(slow_fn{50ms, &returned}));
            } catch (const E&) {
                seen = returned.load();
            }
        });
        CHECK(seen);
    }
    SECTION("gather_settled: one value, one error") {
        run_real([&]() -> task<void> {
            auto fail = [] {
                throw E("bad");
                return 0;
            };
            auto [ok, bad] = co_await corio::gather_settled(corio::to_thread(add, 4, 4), corio::to_thread(fail));
            CHECK(ok.value() == 8);
            CHECK_THROWS_AS(bad.value(), E);
        });
    }
}

TEST_CASE("call_soon_threadsafe: a callable from another thread runs on the loop's thread") {
    std::thread::id ran_on;
    auto loop_thread = std::this_thread::get_id();
    run_real([&]() -> task<void> {
        corio::event_loop& loop = corio::current_loop();
        corio::event ev;
        auto guard = asio::make_work_guard(loop.context());  // a foreign thread will wake us
        std::thread t([&] {
            loop.call_soon_threadsafe([&] {
                ran_on = std::this_thread::get_id();
                ev.set();
            });
        });
        co_await ev.wait();
        guard.reset();
        t.join();
    });
    CHECK(ran_on == loop_thread);
}

TEST_CASE("run_coroutine_threadsafe: a future of the task's value or exception") {
    corio::loop_pool pool(1);
    auto work = [](int x) -> task<int> {
        co_await corio::sleep(1ms);
        co_return x * 2;
    };
    std::future<int> f = corio::run_coroutine_threadsafe(pool.loop(0), work(21));
    CHECK(f.get() == 42);
    auto fail = []() -> task<void> {
        co_await corio::yield_now();
        throw E("from the loop");
    };
    std::future<void> g = corio::run_coroutine_threadsafe(pool.loop(0), fail());
    CHECK_THROWS_AS(g.get(), E);
}

TEST_CASE("spawn_on: a task on another loop, joined from a task on this one") {
    corio::loop_pool pool(2);
    std::thread::id main_on, work_on;
    int v = pool.run([&]() -> task<int> {
        main_on = std::this_thread::get_id();
        auto work = [&]() -> task<int> {
            work_on = std::this_thread::get_id();
            co_await corio::sleep(5ms);
            co_return 9;
        };
        auto h = corio::spawn_on(pool.loop(1), work());
        int r = co_await h;
        CHECK(h.done());
        CHECK_THROWS_AS(co_await h, corio::invalid_state_error);  // the result was taken
        co_return r;
    }());
    CHECK(v == 9);
    CHECK(main_on != work_on);
}

TEST_CASE("spawn_on: cancel() from another loop cancels the task; a cut-short await consumes nothing") {
    corio::loop_pool pool(2);
    bool cleaned = false;
    pool.run([&]() -> task<void> {
        auto forever = [&]() -> task<void> {
            set_on_exit g{cleaned};
            co_await corio::sleep(corio_test::forever);
        };
        auto h = corio::spawn_on(pool.loop(1), forever());
        auto r = co_await corio::move_on_after(10ms, h);  // observes only
        CHECK_FALSE(r);
        CHECK_FALSE(h.done());
        h.cancel();
        CHECK_THROWS_AS(co_await h, corio::cancelled_error);
    }());
    CHECK(cleaned);
}

TEST_CASE("loop_pool: round-robin spawn uses every loop") {
    corio::loop_pool pool(2);
    std::mutex m;
    std::vector<std::thread::id> ids;
    pool.run([&]() -> task<void> {
        auto where = [&]() -> task<void> {
            std::lock_guard<std::mutex> lock(m);
            ids.push_back(std::this_thread::get_id());
            co_return;
        };
        std::vector<corio::remote_join_handle<void>> hs;
        for (int i = 0; i < 4; ++i) hs.push_back(pool.spawn(where()));
        for (auto& h : hs) co_await h;
    }());
    REQUIRE(ids.size() == 4);
    std::sort(ids.begin(), ids.end());
    CHECK(std::unique(ids.begin(), ids.end()) - ids.begin() == 2);
}

TEST_CASE("loop_pool: shutdown cancels and awaits every task on every loop") {
    std::atomic<int> cleaned{0};
    {
        corio::loop_pool pool(2);
        auto forever = [&]() -> task<void> {
            struct count_on_exit {
                std::atomic<int>& n;
                ~count_on_exit() { ++n; }
            } g{cleaned};
            co_await corio::sleep(corio_test::forever);
        };
        std::vector<corio::remote_join_handle<void>> hs;
        for (int i = 0; i < 6; ++i) hs.push_back(pool.spawn(forever()));
        pool.spawn_at(1, forever());  // dropped handle: detached, still cancelled
        pool.shutdown();
        CHECK(cleaned.load() == 7);
        for (auto& h : hs) CHECK(h.done());
        CHECK_THROWS_AS(pool.spawn(forever()), corio::invalid_state_error);
        CHECK_THROWS_AS(pool.loop(0), corio::invalid_state_error);
    }
}

TEST_CASE("bad input: clear exceptions") {
    SECTION("loop_pool(0)") {
        CHECK_THROWS_AS(corio::loop_pool(0), std::invalid_argument);
        try {
            corio::loop_pool p(0);
        } catch (const std::invalid_argument& e) {
            CHECK(std::string(e.what()).find("at least one loop") != std::string::npos);
        }
    }
    SECTION("spawn_at a loop the pool does not have") {
        corio::loop_pool pool(1);
        CHECK_THROWS_AS(pool.spawn_at(3, []() -> task<void> { co_return; }()), std::out_of_range);
    }
    SECTION("spawn_on / run_coroutine_threadsafe / call_soon_threadsafe on a closed loop") {
        corio::event_loop loop;
        loop.close();
        auto t = []() -> task<int> { co_return 1; };
        try {
            corio::spawn_on(loop, t());
            FAIL("no exception");
        } catch (const corio::invalid_state_error& e) {
            CHECK(std::string(e.what()).find("spawn_on a closed or stopped event loop") != std::string::npos);
        }
        CHECK_THROWS_AS(corio::run_coroutine_threadsafe(loop, t()), corio::invalid_state_error);
        CHECK_THROWS_AS(loop.call_soon_threadsafe([] {}), corio::invalid_state_error);
    }
    SECTION("to_thread after the pool was shut down") {
        run_real([]() -> task<void> { co_await corio::to_thread([] {}); });  // the pool exists
        corio::shutdown_thread_pool();
        std::string msg;
        run_real([&]() -> task<void> {
            try {
                co_await corio::to_thread([] { return 1; });
            } catch (const corio::invalid_state_error& e) {
                msg = e.what();
            }
        });
        CHECK(msg.find("to_thread after shutdown_thread_pool()") != std::string::npos);
        corio::reset_thread_pool();
        int v = run_real([]() -> task<int> { co_return co_await corio::to_thread([] { return 2; }); });
        CHECK(v == 2);
    }
}
