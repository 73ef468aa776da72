// Tests for corio/loop.hpp: run(), spawn(), join_handle, current_loop(),
// leftover-task shutdown, unobserved-error reports, adopting an io_context,
// and every misuse that must throw invalid_state_error.
#include <corio/loop.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "support/corio_test.hpp"

using corio::task;
using corio_test::forever;
using corio_test::owned;
using corio_test::U;

namespace {

struct E : std::runtime_error {
    E() : std::runtime_error("E") {}
};

task<int> after(std::chrono::milliseconds d, int v) {
    co_await corio::sleep(d);
    co_return v;
}

task<int> fail_after(std::chrono::milliseconds d) {
    co_await corio::sleep(d);
    throw E{};
}

std::string message_of(auto&& f) {
    try {
        f();
    } catch (const corio::invalid_state_error& e) {
        return e.what();
    }
    return "<no invalid_state_error>";
}

}  // namespace

TEST_CASE("run: returns main's value and rethrows main's exception") {
    int v = corio::run([]() -> task<int> { co_return 7; }());
    CHECK(v == 7);
    CHECK_THROWS_AS(corio::run(
                        []() -> task<void> {
                            co_await corio::sleep(U);
                            throw E{};
                        }(),
                        corio::run_options{.virtual_time = true}),
                    E);
}

CORIO_TEST_CASE("spawn: a task starts at the loop's next turn, in spawn order") {
    std::vector<int> order;
    auto rec = [&](int i) -> task<void> {
        order.push_back(i);
        co_return;
    };
    auto h1 = corio::spawn(rec(1));
    auto h2 = corio::spawn(rec(2));
    auto h3 = corio::spawn(rec(3));
    CHECK(order.empty());  // nothing ran inline
    co_await corio::yield_now();
    CHECK(order == std::vector<int>{1, 2, 3});
    co_await h1;
    co_await h2;
    co_await h3;
}

CORIO_TEST_CASE("join_handle: value, exception, cancellation, name, done") {
    auto start = corio::now();
    auto a = corio::spawn(after(2 * U, 5), "worker-a");
    auto b = corio::spawn(fail_after(U));
    auto c = corio::spawn(after(forever, 0));
    CHECK(a.name() == "worker-a");
    CHECK(b.name().empty());
    CHECK_FALSE(a.done());

    REQUIRE_THROWS_AS(co_await b, E);
    CHECK(b.done());
    CHECK_FALSE(b.cancelled());
    CHECK(corio::now() - start == U);

    int va = co_await a;
    CHECK(va == 5);
    CHECK(corio::now() - start == 2 * U);

    c.cancel();
    REQUIRE_THROWS_AS(co_await c, corio::cancelled_error);
    CHECK(c.cancelled());
    CHECK(c.done());
    CHECK(corio::now() - start == 2 * U);  // woken at once
    c.cancel();                            // no-op once finished
}

CORIO_TEST_CASE("join_handle: awaiting twice, or a moved-from handle, throws invalid_state_error") {
    auto h = corio::spawn(after(U, 1));
    int v = co_await h;
    CHECK(v == 1);
    std::string msg;
    try {
        co_await h;
    } catch (const corio::invalid_state_error& e) {
        msg = e.what();
    }
    CHECK(msg.find("already taken") != std::string::npos);

    auto h2 = corio::spawn(after(U, 2));
    auto h3 = std::move(h2);
    msg.clear();
    try {
        co_await h2;
    } catch (const corio::invalid_state_error& e) {
        msg = e.what();
    }
    CHECK(msg.find("empty join_handle") != std::string::npos);
    int v3 = co_await h3;
    CHECK(v3 == 2);
}

CORIO_TEST_CASE("spawn: a task cancelled before its first step never runs") {
    bool ran = false;
    auto body = [&]() -> task<void> {
        ran = true;
        co_return;
    };
    auto h = corio::spawn(body());
    h.cancel();
    CHECK(h.done() == false);
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(h.cancelled());
    CHECK_FALSE(ran);
}

CORIO_TEST_CASE("join_handle: an await cut short by the awaiter's cancellation consumes nothing") {
    auto start = corio::now();
    auto target = corio::spawn(after(2 * U, 9));
    auto observer = [&]() -> task<void> { co_await target; };
    auto hobs = corio::spawn(observer());
    co_await corio::sleep(U);
    hobs.cancel();
    REQUIRE_THROWS_AS(co_await hobs, corio::cancelled_error);
    CHECK_FALSE(target.done());  // awaiting by handle observes: the task was not cancelled
    int v = co_await target;     // the result is still there
    CHECK(v == 9);
    CHECK(corio::now() - start == 2 * U);
}

CORIO_TEST_CASE("join_handle: waiters on one task resume oldest first; the newest, oldest and middle can leave") {
    std::vector<corio::join_handle<int>> target;
    target.push_back(corio::spawn(after(5 * U, 7)));
    std::vector<int> order;
    std::vector<corio::join_handle<void>> waiters;
    for (int i = 0; i < 6; ++i) {
        waiters.push_back(corio::spawn(owned([&, i]() -> task<void> {
            try {
                co_await corio::wait(target);  // observes the task, takes nothing
            } catch (const corio::cancelled_error&) {
                order.push_back(100 + i);
                throw;
            }
            order.push_back(i);
        })));
    }
    co_await corio::sleep(U);
    waiters[5].cancel();  // the newest observer: the head of the task's list
    waiters[0].cancel();  // the oldest: its tail
    waiters[3].cancel();  // one between
    for (int i : {5, 0, 3}) REQUIRE_THROWS_AS(co_await waiters[i], corio::cancelled_error);
    CHECK(order == std::vector<int>{105, 100, 103});
    CHECK(!target[0].done());
    for (int i : {1, 2, 4}) co_await waiters[i];
    CHECK(order == std::vector<int>{105, 100, 103, 1, 2, 4});
    const int v = co_await target[0];
    CHECK(v == 7);
}

TEST_CASE("run: cancels leftover tasks, waits for them, keeps main's value") {
    std::vector<std::string> log;
    int unhandled = 0;
    int v = corio::run(
        [&]() -> task<int> {
            corio::current_loop().set_exception_handler([&](std::exception_ptr, std::string_view name) {
                ++unhandled;
                log.push_back("reported " + std::string(name));
            });
            auto sleeper = [&]() -> task<void> {
                try {
                    co_await corio::sleep(forever);
                } catch (const corio::cancelled_error&) {
                    log.push_back("sleeper cleanup");
                    throw;
                }
            };
            auto thrower = [&]() -> task<void> {
                try {
                    co_await corio::sleep(forever);
                } catch (const corio::cancelled_error&) {
                }
                throw E{};  // fails while being cancelled: goes to the handler
            };
            corio::spawn(sleeper(), "sleeper");  // handles dropped: detached
            corio::spawn(thrower(), "thrower");
            co_await corio::sleep(U);
            log.push_back("main returns");
            co_return 123;
        }(),
        corio::run_options{.virtual_time = true});
    CHECK(v == 123);
    CHECK(unhandled == 1);
    CHECK(log == std::vector<std::string>{"main returns", "sleeper cleanup", "reported thrower"});
}

TEST_CASE("unobserved errors: a failed task whose handle is dropped is reported once") {
    corio::testing::run_virtual(
        []() -> task<void> {
            { auto h = corio::spawn(fail_after(U)); }  // detached before it fails
            auto h2 = corio::spawn(fail_after(U));
            co_await corio::sleep(2 * U);
            // h2 failed and is destroyed here without being awaited: reported.
        },
        corio::testing::expect_unhandled(2));
    corio::testing::run_virtual([]() -> task<void> {
        auto h = corio::spawn(fail_after(U));
        REQUIRE_THROWS_AS(co_await h, E);  // taken: not reported
    });
}

TEST_CASE("misuse: current_loop() with no loop, run() inside a loop, spawn on a closed loop") {
    CHECK(message_of([] { corio::current_loop(); }).find("no event loop running") != std::string::npos);
    CHECK_THROWS_AS(corio::now(), corio::invalid_state_error);

    corio::testing::run_virtual([]() -> task<void> {
        std::string msg = message_of([] { corio::run([]() -> task<void> { co_return; }()); });
        CHECK(msg.find("inside a running event loop") != std::string::npos);
        co_return;
    });

    corio::event_loop loop;
    loop.close();
    CHECK(loop.closed());
    std::string msg = message_of([&] { loop.spawn([]() -> task<void> { co_return; }()); });
    CHECK(msg.find("closed event loop") != std::string::npos);

    corio::event_loop loop2;
    task<int> empty;
    msg = message_of([&] { loop2.spawn(std::move(empty)); });
    CHECK(msg.find("empty task") != std::string::npos);
}

TEST_CASE("run: a main that can never be woken is reported, not hung") {
    std::string msg = message_of([] {
        corio::run([]() -> task<void> { co_await corio::sleep(std::chrono::hours::max()); }(),
                   corio::run_options{.virtual_time = true});
    });
    CHECK(msg.find("deadlock") != std::string::npos);
}

TEST_CASE("run: the deadlock report lists every suspended task, its state and what it awaits") {
    corio::event never;  // outlives the loop: both tasks' frames still wait on it when it is torn down
    std::string msg = message_of([&] {
        corio::run(
            [&]() -> task<void> {
                auto stuck = corio::spawn([&]() -> task<void> { co_await never.wait(); }, "stuck");
                co_await stuck;
            },
            corio::run_options{.virtual_time = true});
    });
    CHECK(msg.find("corio: the event loop ran out of work while a task it waits for is still suspended "
                   "(deadlock: nothing can ever wake it)\ncorio: 2 live task(s) and child chain(s):\n") == 0);
    CHECK(msg.find("\n  - task 'main' [waiting] in ") != std::string::npos);
    CHECK(msg.find("\n  - task 'stuck' [waiting] in ") != std::string::npos);
    // Names come from the program's symbol table (no -rdynamic needed).
    CHECK(msg.find(", awaiting join_handle<void>::awaiter::on_cancel\n") != std::string::npos);
    CHECK(msg.find(", awaiting event::wait_awaiter") != std::string::npos);
    std::size_t awaiting = 0;
    for (auto p = msg.find(", awaiting "); p != std::string::npos; p = msg.find(", awaiting ", p + 1)) ++awaiting;
    CHECK(awaiting == 2);
}

TEST_CASE("event_loop: adopts a user's io_context driven by io_context::run()") {
    asio::io_context ctx;
    corio::event_loop loop(ctx);
    std::vector<int> got;
    auto worker = [&](int i) -> task<int> {
        co_await corio::sleep(std::chrono::milliseconds(2 * i));
        got.push_back(i);
        co_return i * 10;
    };
    auto h1 = loop.spawn(worker(2));
    auto h2 = loop.spawn(worker(1));
    ctx.run();  // returns when the loop has no more work
    CHECK(got == std::vector<int>{1, 2});
    CHECK(h1.done());
    CHECK(h2.done());
    CHECK(loop.live_tasks() == 0);
}

TEST_CASE("event_loop: destroyed while its handlers are queued in an adopted io_context, which runs on") {
    asio::io_context ctx;
    bool cleaned_up = false;
    {
        corio::event_loop loop(ctx);
        auto sleeper = [&]() -> task<void> {
            corio_test::set_on_exit guard{cleaned_up};
            co_await corio::sleep(std::chrono::hours(1));
        };
        auto sleeping = loop.spawn(sleeper());   // queues a drain in ctx
        ctx.run_one();                           // the drain: it starts and sleeps, the timer is armed
        auto unstarted = loop.spawn(sleeper());  // queues a drain the loop will never run
        CHECK(loop.live_tasks() == 2);
    }  // the loop goes first: frames destroyed, a drain still posted in ctx
    CHECK(cleaned_up);
    ctx.restart();
    // The orphaned drain and the cancelled timer wait: neither touches the loop.
    CHECK(ctx.run() == 2);
}

TEST_CASE("spawn + join one at a time, many times") {
    long long sum = corio::testing::run_virtual([]() -> task<long long> {
        long long s = 0;
        for (int i = 0; i < 10'000; ++i) {
            auto h = corio::spawn([](int k) -> task<int> { co_return k; }(i));
            s += co_await h;
        }
        co_return s;
    });
    CHECK(sum == 49'995'000);
}

TEST_CASE("ready queue: FIFO through growth, wrap-around, page release and halving (against a deque)") {
    corio::detail::ready_queue q;
    std::deque<std::uintptr_t> model;
    std::uintptr_t next = 1;
    std::uint64_t rng = 12345;
    auto rand_below = [&](std::uint64_t n) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        return (rng >> 33) % n;
    };
    auto push = [&](std::size_t k) {
        for (std::size_t i = 0; i < k; ++i) {
            q.push(reinterpret_cast<void*>(next << 3));
            model.push_back(next++ << 3);
        }
    };
    std::size_t mismatches = 0;
    auto pop = [&](std::size_t k) {
        for (std::size_t i = 0; i < k && !model.empty(); ++i) {
            if (reinterpret_cast<std::uintptr_t>(q.pop()) != model.front()) ++mismatches;
            model.pop_front();
        }
    };
    // Bursts well past the size where the ring is mapped (32K entries) and
    // where it starts to shrink (64K), drained in uneven steps so the head
    // wraps, pages are released behind it and the ring halves with live
    // entries on both sides of the wrap.
    for (int round = 0; round < 40; ++round) {
        push(rand_below(300'000));
        for (int step = 0; step < 8; ++step) {
            pop(rand_below(90'000));
            q.shrink();
            push(rand_below(20'000));
            REQUIRE(q.size() == model.size());
            REQUIRE(mismatches == 0);
        }
    }
    pop(model.size());
    q.shrink();
    CHECK(mismatches == 0);
    CHECK(q.empty());
}

// ------------------------------------------------ run_options::schedule_seed ---

namespace {

/// Eight tasks that each take three steps; the order in which the steps ran.
std::vector<int> interleaving(std::optional<std::uint64_t> seed) {
    std::vector<int> order;
    corio::testing::options opt;
    opt.schedule_seed = seed;
    corio::testing::run_virtual(
        [&]() -> task<void> {
            auto step = [&](int id) -> task<void> {
                for (int i = 0; i < 3; ++i) {
                    order.push_back(id);
                    co_await corio::yield_now();
                }
            };
            std::vector<corio::join_handle<void>> hs;
            for (int id = 0; id < 8; ++id) hs.push_back(corio::spawn(step(id)));
            for (auto& h : hs) co_await h;
        },
        opt);
    return order;
}

}  // namespace

TEST_CASE("schedule_seed: without a seed ready tasks run in FIFO order") {
    std::vector<int> expect;
    for (int r = 0; r < 3; ++r)
        for (int id = 0; id < 8; ++id) expect.push_back(id);
    REQUIRE(interleaving(std::nullopt) == expect);
}

TEST_CASE("schedule_seed: a seed replays the same interleaving, and seeds differ") {
    std::vector<int> fifo = interleaving(std::nullopt);
    int differing = 0;
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
        std::vector<int> a = interleaving(seed);
        REQUIRE(a == interleaving(seed));
        std::vector<int> sorted_a = a, sorted_f = fifo;
        std::sort(sorted_a.begin(), sorted_a.end());
        std::sort(sorted_f.begin(), sorted_f.end());
        REQUIRE(sorted_a == sorted_f);  // every step ran exactly once
        if (a != fifo) ++differing;
    }
    REQUIRE(differing >= 9);
    REQUIRE(interleaving(1) != interleaving(2));
}

TEST_CASE("schedule_seed: the waiters one step wakes resume in the order they waited") {
    for (std::uint64_t seed = 1; seed <= 50; ++seed) {
        std::vector<int> woke;
        corio::testing::options opt;
        opt.schedule_seed = seed;
        corio::testing::run_virtual(
            [&]() -> task<void> {
                corio::event ev;
                auto waiter = [&](int id) -> task<void> {
                    co_await corio::sleep(std::chrono::milliseconds(id));  // wait in id order
                    co_await ev.wait();
                    woke.push_back(id);
                };
                auto setter = [&]() -> task<void> {
                    co_await corio::sleep(std::chrono::milliseconds(10));
                    ev.set();
                };
                std::vector<corio::join_handle<void>> hs;
                for (int id = 0; id < 5; ++id) hs.push_back(corio::spawn(waiter(id)));
                auto s = corio::spawn(setter());
                for (auto& h : hs) co_await h;
                co_await s;
            },
            opt);
        INFO("seed " << seed);
        REQUIRE(woke == std::vector<int>{0, 1, 2, 3, 4});
    }
}

CORIO_TEST_CASE("join_handle: an await in an already-cancelled scope throws before suspending; the task is untouched") {
    bool other_ran = false;
    auto other = corio::spawn(owned([&]() -> task<void> {
        other_ran = true;
        co_return;
    }));
    const auto start = corio::now();
    auto target = corio::spawn(after(U, 9));
    corio::cancel_scope sc;
    sc.cancel();
    std::optional<int> cut = co_await sc.run(target);
    CHECK_FALSE(cut);
    CHECK(sc.cancelled_caught());
    CHECK_FALSE(other_ran);  // never suspended: the task ready meanwhile has not run yet
    CHECK_FALSE(target.done());
    CHECK_FALSE(target.cancelled());  // the await observes: cancelling it leaves the task alone
    const int v = co_await target;    // nor was the result taken
    CHECK(v == 9);
    CHECK(corio::now() - start == U);
    co_await other;
    // A finished task is no cancellation point: its value comes even in a cancelled scope.
    auto done = corio::spawn(after(U, 4));
    co_await corio::sleep(2 * U);
    REQUIRE(done.done());
    corio::cancel_scope sc2;
    sc2.cancel();
    std::optional<int> got = co_await sc2.run(done);
    CHECK(got == 4);
    CHECK_FALSE(sc2.cancelled_caught());
}
