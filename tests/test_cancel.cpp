// Tests for corio/cancel.hpp: timeouts (expiry, nesting, rescheduling, what a
// timeout converts and what it lets through), cancellation (delivery at
// suspensions, shields, idempotence), tokens, thread-safe cancellation and misuse.
// corio-tsan: the token tests cancel from another thread.
#include <corio/cancel.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/corio_test.hpp"

using namespace std::chrono_literals;
using corio::cancel_scope;
using corio::task;
using corio_test::forever;
using corio_test::no_leak;
using corio_test::U;

namespace {

struct MyExc : std::runtime_error {
    MyExc() : std::runtime_error("MyExc") {}
};
struct E : std::runtime_error {
    E() : std::runtime_error("E") {}
};

task<void> sleep_forever() { co_await corio::sleep(forever); }

task<int> sleep_then(std::chrono::milliseconds d, int v) {
    co_await corio::sleep(d);
    co_return v;
}

task<int> immediate(int v) { co_return v; }

}  // namespace

// ---------------------------------------------------------------- Timeouts

CORIO_TEST_CASE("timeout and a deadline scope expire after exactly their duration") {
    auto start = corio::now();
    REQUIRE_THROWS_AS(co_await corio::timeout(U, sleep_forever()), corio::timeout_error);
    CHECK(corio::now() - start == U);

    cancel_scope s{corio::now() + U};
    auto r = co_await s.run(sleep_forever());
    CHECK_FALSE(r);
    CHECK(s.cancel_called());
    CHECK(s.cancelled_caught());
    CHECK(s.deadline() == start + 2 * U);
    CHECK(corio::now() - start == 2 * U);
    co_await no_leak();  // the caller is not cancelled
}

CORIO_TEST_CASE("timeout: a std::exception handler does not catch the cancellation") {
    auto op = []() -> task<std::string> {
        try {
            co_await corio::sleep(forever);
        } catch (const std::exception&) {
            co_return "swallowed";
        }
        co_return "finished";
    };
    REQUIRE_THROWS_AS(co_await corio::timeout(U, op()), corio::timeout_error);
    static_assert(!std::is_base_of_v<std::exception, corio::cancelled_error>);
}

CORIO_TEST_CASE("timeout: an operand that finishes in time, no deadline, saturating deadlines") {
    auto start = corio::now();
    co_await corio::timeout(10 * U, corio::sleep(U));
    CHECK(corio::now() - start == U);

    cancel_scope s{corio::now() + 10 * U};
    bool finished = co_await s.run(corio::sleep(U));
    CHECK(finished);
    CHECK_FALSE(s.cancel_called());
    CHECK(s.deadline() > corio::now());

    cancel_scope never{corio::clock::time_point::max()};
    bool done = co_await never.run(corio::sleep(U));
    CHECK(done);
    CHECK_FALSE(never.cancel_called());

    // now() + d saturates instead of overflowing.
    int v = co_await corio::timeout(std::chrono::nanoseconds::max(), sleep_then(U, 4));
    CHECK(v == 4);
    int w = co_await corio::timeout(std::chrono::hours::max(), sleep_then(U, 5));
    CHECK(w == 5);
}

CORIO_TEST_CASE("timeout: a zero, negative or past deadline fires at the first suspension") {
    auto op = []() -> task<int> {
        co_await corio::yield_now();
        co_return 1;
    };
    REQUIRE_THROWS_AS(co_await corio::timeout(0ms, op()), corio::timeout_error);
    REQUIRE_THROWS_AS(co_await corio::timeout(-11ms, op()), corio::timeout_error);
    REQUIRE_THROWS_AS(co_await corio::timeout_at(corio::now() - 1ms, op()), corio::timeout_error);
    auto r = co_await corio::move_on_after(-1ms, op());
    CHECK_FALSE(r.has_value());
}

CORIO_TEST_CASE("timeout: a past deadline around an op that never suspends") {
    int v = co_await corio::timeout(0ms, immediate(3));
    CHECK(v == 3);
    cancel_scope s{corio::now()};
    auto r = co_await s.run(immediate(4));
    REQUIRE(r.has_value());
    CHECK(*r == 4);
    CHECK(s.cancel_called());
    CHECK_FALSE(s.cancelled_caught());
    co_await no_leak();  // the cancellation did not stay armed
}

CORIO_TEST_CASE("timeout: nested scopes with the same deadline: the outer one converts") {
    auto start = corio::now();
    auto deadline = corio::now() + U;
    bool inner_saw_timeout = false;
    auto middle = [&]() -> task<void> {
        try {
            co_await corio::timeout_at(deadline, sleep_forever());
        } catch (const corio::timeout_error&) {
            inner_saw_timeout = true;
        }
    };
    REQUIRE_THROWS_AS(co_await corio::timeout_at(deadline, middle()), corio::timeout_error);
    CHECK_FALSE(inner_saw_timeout);
    CHECK(corio::now() - start == U);

    cancel_scope outer{corio::now() + U};
    cancel_scope inner{corio::now() + U};
    auto body = [&]() -> task<void> {
        auto r = co_await inner.run(sleep_forever());
        (void)r;
    };
    auto r = co_await outer.run(body());
    CHECK_FALSE(r);
    CHECK(outer.cancel_called());
    CHECK(inner.cancel_called());
    CHECK(outer.cancelled_caught());
    CHECK_FALSE(inner.cancelled_caught());
}

CORIO_TEST_CASE("timeout: nested, the outer expires first") {
    auto start = corio::now();
    cancel_scope inner{corio::now() + forever};
    auto body = [&]() -> task<void> {
        auto r = co_await inner.run(sleep_forever());
        (void)r;
    };
    REQUIRE_THROWS_AS(co_await corio::timeout(U, body()), corio::timeout_error);
    CHECK_FALSE(inner.cancel_called());
    CHECK_FALSE(inner.cancelled_caught());
    CHECK(corio::now() - start == U);
}

TEST_CASE("timeout: nested, the inner expires first; the outer still holds") {
    corio::testing::run_virtual([]() -> task<void> {
        auto start = corio::now();
        bool inner_timed_out = false;
        auto body = [&]() -> task<void> {
            try {
                co_await corio::timeout(U, sleep_forever());
            } catch (const corio::timeout_error&) {
                inner_timed_out = true;
            }
            co_await corio::sleep(forever);
        };
        REQUIRE_THROWS_AS(co_await corio::timeout(5 * U, body()), corio::timeout_error);
        CHECK(inner_timed_out);
        CHECK(corio::now() - start == 5 * U);
    });
    // The loop was blocked past the outer deadline: the next sleep is
    // interrupted at once (real time: nothing else could advance the clock).
    corio::testing::run_virtual(
        []() -> task<void> {
            auto start = std::chrono::steady_clock::now();
            auto body = []() -> task<void> {
                std::this_thread::sleep_for(30ms);  // blocks the loop past the deadline
                co_await corio::sleep(forever);
            };
            REQUIRE_THROWS_AS(co_await corio::timeout(10ms, body()), corio::timeout_error);
            CHECK(std::chrono::steady_clock::now() - start < 5s);
        },
        corio::testing::real_time);
}

CORIO_TEST_CASE("cancel_scope::reschedule moves, removes and sets a deadline; after the scope finished it throws") {
    auto start = corio::now();
    cancel_scope s{corio::now() + U};
    auto body = [&]() -> task<void> {
        s.reschedule(corio::now() + 10 * U);
        co_await corio::sleep(3 * U);
        s.reschedule(corio::clock::time_point::max());  // removes the deadline
        co_await corio::sleep(20 * U);
        s.reschedule(corio::now() - 1ms);  // past: the next suspension throws
        co_await corio::sleep(forever);
    };
    auto r = co_await s.run(body());
    CHECK_FALSE(r);
    CHECK(s.cancelled_caught());
    CHECK(corio::now() - start == 23 * U);

    cancel_scope before;  // reschedule before run() sets the starting deadline
    before.reschedule(corio::now() + 2 * U);
    auto t1 = corio::now();
    auto r2 = co_await before.run(sleep_forever());
    CHECK_FALSE(r2);
    CHECK(corio::now() - t1 == 2 * U);

    // After the scope finished, reschedule is misuse (corio throws; Trio ignores it).
    std::string msg;
    try {
        before.reschedule(corio::now() + U);
    } catch (const corio::invalid_state_error& e) {
        msg = e.what();
    }
    CHECK(msg.find("already finished") != std::string::npos);
    before.cancel();  // cancel after finishing: no effect, no error
    CHECK(corio::current_loop().pending_timers() == 0);
}

CORIO_TEST_CASE("timeout: other exceptions pass through; a cleanup error replaces timeout_error") {
    auto thrower = []() -> task<void> {
        co_await corio::sleep(U);
        throw std::out_of_range("oops");
    };
    REQUIRE_THROWS_AS(co_await corio::timeout(5 * U, thrower()), std::out_of_range);
    auto cleanup_throws = []() -> task<void> {
        try {
            co_await corio::sleep(forever);
        } catch (const corio::cancelled_error&) {
            throw E{};
        }
    };
    REQUIRE_THROWS_AS(co_await corio::timeout(U, cleanup_throws()), E);
}

CORIO_TEST_CASE("timeout: another cancellation is not a timeout") {
    cancel_scope* seen = nullptr;
    auto worker = [&]() -> task<void> {
        cancel_scope s{corio::now() + 10 * U};
        seen = &s;
        auto r = co_await s.run(sleep_forever());
        (void)r;
        CHECK_FALSE(s.cancel_called());
        CHECK_FALSE(s.cancelled_caught());
    };
    auto h = corio::spawn(worker());
    co_await corio::sleep(U);
    REQUIRE(seen != nullptr);
    h.cancel();
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(h.cancelled());
    auto t2 = [&]() -> task<void> { co_await corio::timeout(10 * U, sleep_forever()); };
    auto h2 = corio::spawn(t2());
    co_await corio::sleep(U);
    h2.cancel();
    REQUIRE_THROWS_AS(co_await h2, corio::cancelled_error);  // not timeout_error
}

CORIO_TEST_CASE("timeout: deadline and outer cancel together: cancellation wins") {
    auto start = corio::now();
    auto worker = []() -> task<void> { co_await corio::timeout(U, sleep_forever()); };
    // main's own sleep is armed before the worker's deadline, so at U main
    // runs first and cancels the worker before it resumes.
    auto h = corio::spawn(worker());  // starts after main has armed its sleep
    co_await corio::sleep_until(start + U);
    h.cancel();
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(h.cancelled());
}

CORIO_TEST_CASE("timeout: timed cleanup after a cancellation needs shield") {
    std::vector<std::string> log;
    auto worker = [&]() -> task<void> {
        try {
            co_await corio::sleep(forever);
        } catch (const corio::cancelled_error&) {
            log.push_back("cancelled");
        }
        try {
            co_await corio::shield(corio::timeout(0ms, sleep_forever()));
        } catch (const corio::timeout_error&) {
            log.push_back("shielded timeout_error");
        }
        try {
            co_await corio::timeout(0ms, sleep_forever());
        } catch (const corio::timeout_error&) {
            log.push_back("unshielded timeout_error");
        } catch (const corio::cancelled_error&) {
            log.push_back("unshielded cancelled_error");
            throw;
        }
    };
    auto h = corio::spawn(worker());
    co_await corio::sleep(U);
    h.cancel();
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(log == std::vector<std::string>{"cancelled", "shielded timeout_error", "unshielded cancelled_error"});
}

CORIO_TEST_CASE("timeout: a swallowed cancellation cannot overrun the deadline") {
    auto start = corio::now();
    auto op = []() -> task<void> {
        try {
            co_await corio::sleep(forever);
        } catch (const corio::cancelled_error&) {
        }
        co_await corio::sleep(10 * U);  // throws at once: still inside the expired scope
    };
    REQUIRE_THROWS_AS(co_await corio::timeout(U, op()), corio::timeout_error);
    CHECK(corio::now() - start == U);
}

CORIO_TEST_CASE("timeout: expiry waits for the operand's cleanup") {
    auto start = corio::now();
    auto op = [](bool fail) -> task<void> {
        std::exception_ptr cancelled;
        try {
            co_await corio::sleep(forever);
        } catch (const corio::cancelled_error&) {
            cancelled = std::current_exception();
        }
        co_await corio::shield(corio::sleep(2 * U));
        if (fail) throw MyExc{};
        std::rethrow_exception(cancelled);
    };
    REQUIRE_THROWS_AS(co_await corio::timeout(U, op(false)), corio::timeout_error);
    CHECK(corio::now() - start == 3 * U);
    REQUIRE_THROWS_AS(co_await corio::timeout(U, op(true)), MyExc);
    CHECK(corio::now() - start == 6 * U);
}

CORIO_TEST_CASE("timeout: zero timeout on tasks and on handles") {
    bool started = false;
    auto op = [&]() -> task<void> {
        started = true;
        co_await corio::sleep(U);
    };
    REQUIRE_THROWS_AS(co_await corio::timeout(0ms, op()), corio::timeout_error);
    CHECK(started);  // op ran inline until its first suspension

    auto finished = corio::spawn(immediate(8));
    co_await corio::yield_now();
    int v = co_await corio::timeout(0ms, finished);
    CHECK(v == 8);

    auto running = corio::spawn(sleep_then(U, 9));
    REQUIRE_THROWS_AS(co_await corio::timeout(0ms, running), corio::timeout_error);
    CHECK_FALSE(running.done());  // the task keeps running
    int w = co_await running;
    CHECK(w == 9);
}

CORIO_TEST_CASE("timeout: cancelling the caller cancels the operand, which cannot refuse") {
    auto start = corio::now();
    std::vector<std::string> log;
    auto op = [&]() -> task<void> {
        try {
            co_await corio::sleep(forever);
        } catch (const corio::cancelled_error&) {
            log.push_back("op swallowed");
        }
        try {
            co_await corio::sleep(U);
        } catch (const corio::cancelled_error&) {
            log.push_back("op cancelled again");
            throw;
        }
    };
    auto caller = [&]() -> task<void> {
        try {
            co_await corio::timeout(10 * U, op());
        } catch (const corio::timeout_error&) {
            log.push_back("timeout_error");
        }
    };
    auto h = corio::spawn(caller());
    co_await corio::sleep(U);
    h.cancel();
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(log == std::vector<std::string>{"op swallowed", "op cancelled again"});
    CHECK(corio::now() - start == U);
}

CORIO_TEST_CASE("timeout: an operand that swallows the expiry and returns keeps its value") {
    auto op = []() -> task<int> {
        try {
            co_await corio::sleep(forever);
        } catch (const corio::cancelled_error&) {
            co_return 1;
        }
        co_return 0;
    };
    int v = co_await corio::timeout(U, op());
    CHECK(v == 1);
    co_await no_leak();
}

// ------------------------------------------------------------ Cancellation

CORIO_TEST_CASE("cancellation: cancel during a suspension; shielded cleanup completes") {
    auto start = corio::now();
    std::vector<std::string> log;
    struct guard {
        std::vector<std::string>& log;
        ~guard() { log.push_back("destructor"); }
    };
    auto body = [&]() -> task<void> {
        guard g{log};
        std::exception_ptr cancelled;
        try {
            co_await corio::sleep(forever);
        } catch (const corio::cancelled_error&) {
            cancelled = std::current_exception();
        }
        co_await corio::shield(corio::sleep(U));
        log.push_back("shielded sleep done");
        try {
            co_await corio::sleep(U);
        } catch (const corio::cancelled_error&) {
            log.push_back("unshielded sleep threw");
        }
        std::rethrow_exception(cancelled);
    };
    auto h = corio::spawn(body());
    co_await corio::sleep(U);
    h.cancel();
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(h.cancelled());
    CHECK(corio::now() - start == 2 * U);
    CHECK(log == std::vector<std::string>{"shielded sleep done", "unshielded sleep threw", "destructor"});
}

CORIO_TEST_CASE("cancellation: catching does not end a cancellation; cancel() is idempotent") {
    int throws = 0;
    auto body = [&]() -> task<void> {
        for (int i = 0; i < 3; ++i) {
            try {
                co_await corio::sleep(forever);
            } catch (const corio::cancelled_error&) {
                ++throws;
            }
        }
        co_await corio::yield_now();
    };
    auto h = corio::spawn(body());
    co_await corio::sleep(U);
    h.cancel();
    h.cancel();
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(throws == 3);  // every suspension threw, not once per cancel() call
    h.cancel();          // on a finished task: no-op
    CHECK(h.cancelled());
}

CORIO_TEST_CASE("cancellation: cancelled but finishing without suspending keeps the value") {
    corio::join_handle<int> h;
    auto body = [&]() -> task<int> {
        h.cancel();  // cancels its own root scope
        co_return 12;
    };
    h = corio::spawn(body());
    int v = co_await h;
    CHECK(v == 12);
    CHECK_FALSE(h.cancelled());
}

CORIO_TEST_CASE("cancellation: cancellation reaches what a task runs inline, not what it awaits by handle") {
    bool inner_cancelled = false;
    auto inner = [&]() -> task<void> {
        try {
            co_await corio::sleep(forever);
        } catch (const corio::cancelled_error&) {
            inner_cancelled = true;
            throw;
        }
    };
    auto outer = [&]() -> task<void> { co_await inner(); };
    auto ho = corio::spawn(outer());
    co_await corio::sleep(U);
    ho.cancel();
    REQUIRE_THROWS_AS(co_await ho, corio::cancelled_error);
    CHECK(inner_cancelled);

    auto hi = corio::spawn(sleep_then(3 * U, 5));
    auto observer = [&]() -> task<int> { co_return co_await hi; };
    auto hobs = corio::spawn(observer());
    co_await corio::sleep(U);
    auto t = corio::now();
    hobs.cancel();
    REQUIRE_THROWS_AS(co_await hobs, corio::cancelled_error);
    CHECK(corio::now() == t);  // woken at once
    CHECK_FALSE(hi.done());    // task I keeps running
    hi.cancel();
    REQUIRE_THROWS_AS(co_await hi, corio::cancelled_error);
}

CORIO_TEST_CASE("shield runs its operand to completion") {
    auto start = corio::now();
    std::vector<std::string> log;
    auto body = [&]() -> task<void> {
        int v = co_await corio::shield(sleep_then(2 * U, 6));
        log.push_back("got " + std::to_string(v) + " at " + std::to_string((corio::now() - start) / U));
        co_await corio::sleep(U);
        log.push_back("not reached");
    };
    auto h = corio::spawn(body());
    co_await corio::sleep(U);
    h.cancel();
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(log == std::vector<std::string>{"got 6 at 2"});

    int v = co_await corio::shield(sleep_then(U, 7));
    CHECK(v == 7);
    auto thrower = []() -> task<void> {
        co_await corio::sleep(U);
        throw MyExc{};
    };
    REQUIRE_THROWS_AS(co_await corio::shield(thrower()), MyExc);
}

CORIO_TEST_CASE("shield of a cancelled handle throws cancelled_error") {
    auto h = corio::spawn(sleep_forever());
    auto canceller = [&]() -> task<void> {
        co_await corio::sleep(U);
        h.cancel();
    };
    auto hc = corio::spawn(canceller());
    REQUIRE_THROWS_AS(co_await corio::shield(h), corio::cancelled_error);
    co_await hc;
}

// ------------------------------------------------------------------ Scopes

CORIO_TEST_CASE("cancel_scope: cancel() before, during and after run(); nesting to any depth") {
    cancel_scope pre;
    pre.cancel();
    auto r = co_await pre.run(sleep_forever());
    CHECK_FALSE(r);
    CHECK(pre.cancelled_caught());

    cancel_scope during;
    auto canceller = [&]() -> task<void> {
        co_await corio::sleep(U);
        during.cancel();
    };
    auto hc = corio::spawn(canceller());
    auto start = corio::now();
    bool finished = co_await during.run(corio::sleep(forever));
    CHECK_FALSE(finished);
    CHECK(corio::now() - start == U);
    co_await hc;

    // 200 nested scopes; cancelling the outermost reaches the innermost
    // suspension, and only the outermost absorbs.
    std::vector<std::unique_ptr<cancel_scope>> scopes;
    for (int i = 0; i < 200; ++i) scopes.push_back(std::make_unique<cancel_scope>());
    std::function<task<void>(int)> nest = [&](int i) -> task<void> {
        if (i == 200) {
            co_await corio::sleep(forever);
            co_return;
        }
        auto rr = co_await scopes[i]->run(nest(i + 1));
        (void)rr;
    };
    auto canceller2 = [&]() -> task<void> {
        co_await corio::sleep(U);
        scopes[0]->cancel();
    };
    auto hc2 = corio::spawn(canceller2());
    co_await nest(0);
    co_await hc2;
    CHECK(scopes[0]->cancelled_caught());
    CHECK_FALSE(scopes[199]->cancelled_caught());
}

CORIO_TEST_CASE("cancel_scope: run() twice throws invalid_state_error") {
    cancel_scope s;
    bool ok = co_await s.run(corio::yield_now());
    CHECK(ok);
    std::string msg;
    try {
        co_await s.run(corio::yield_now());
    } catch (const corio::invalid_state_error& e) {
        msg = e.what();
    }
    CHECK(msg.find("run() called twice") != std::string::npos);
}

CORIO_TEST_CASE("move_on_after / move_on_at: optional results, bool for void") {
    auto r1 = co_await corio::move_on_after(2 * U, sleep_then(U, 3));
    REQUIRE(r1.has_value());
    CHECK(*r1 == 3);
    auto r2 = co_await corio::move_on_after(U, sleep_then(2 * U, 3));
    CHECK_FALSE(r2.has_value());
    bool b1 = co_await corio::move_on_at(corio::now() + U, corio::sleep(2 * U));
    CHECK_FALSE(b1);
    bool b2 = co_await corio::move_on_at(corio::now() + 2 * U, corio::sleep(U));
    CHECK(b2);
}

CORIO_TEST_CASE("timer heap: 100,000 concurrent timeouts that do not fire leave nothing behind") {
    constexpr int n = 100'000;
    std::vector<corio::join_handle<int>> hs;
    hs.reserve(n);
    auto one = [](int i) -> task<int> { co_return co_await corio::timeout(10 * U, sleep_then(U, i)); };
    for (int i = 0; i < n; ++i) hs.push_back(corio::spawn(one(i)));
    co_await corio::yield_now();
    CHECK(corio::current_loop().pending_timers() == 2 * n);  // one sleep + one deadline each
    long long sum = 0;
    for (auto& h : hs) sum += co_await h;
    CHECK(sum == static_cast<long long>(n) * (n - 1) / 2);
    CHECK(corio::current_loop().pending_timers() == 0);
}

// ------------------------------------------------------------------ Tokens

TEST_CASE("tokens: sources, child sources, registrations") {
    corio::cancellation_source parent;
    corio::cancellation_source child(parent.token());
    corio::cancellation_token never;
    CHECK_FALSE(never.can_be_cancelled());
    CHECK_FALSE(child.cancelled());

    int calls = 0;
    corio::cancellation_registration reg(child.token(), [&] { ++calls; });
    corio::cancellation_registration gone(child.token(), [&] { calls += 100; });
    gone.reset();  // deregistered: never runs
    CHECK(parent.cancel());
    CHECK_FALSE(parent.cancel());  // idempotent
    CHECK(child.cancelled());
    CHECK(child.token().cancelled());
    CHECK(calls == 1);

    corio::cancellation_registration late(child.token(), [&] { calls += 10; });  // already cancelled: runs now
    CHECK(calls == 11);

    corio::cancellation_source lone;
    corio::cancellation_source kid(lone.token());
    kid.cancel();
    CHECK_FALSE(lone.cancelled());  // a child does not cancel its parent
}

CORIO_TEST_CASE("with_token: cancels its operand; nothing absorbs it") {
    auto start = corio::now();
    corio::cancellation_source src;
    auto canceller = [&]() -> task<void> {
        co_await corio::sleep(U);
        src.cancel();
    };
    auto hc = corio::spawn(canceller());
    REQUIRE_THROWS_AS(co_await corio::move_on_after(10 * U, corio::with_token(src.token(), sleep_forever())),
                      corio::cancelled_error);
    CHECK(corio::now() - start == U);
    co_await hc;
    // An already-cancelled token cancels at the first suspension.
    REQUIRE_THROWS_AS(co_await corio::with_token(src.token(), corio::sleep(U)), corio::cancelled_error);
    int v = co_await corio::with_token(src.token(), immediate(2));  // never suspends: completes
    CHECK(v == 2);
    corio::cancellation_source other;
    int w = co_await corio::with_token(other.token(), sleep_then(U, 3));
    CHECK(w == 3);
}

CORIO_TEST_CASE_WITH(corio::testing::real_time, "tokens: cancel() from another thread wakes the task on its loop") {
    corio::cancellation_source src;
    auto loop_thread = std::this_thread::get_id();
    std::thread canceller([&src] {
        std::this_thread::sleep_for(20ms);
        src.cancel();
    });
    auto start = std::chrono::steady_clock::now();
    bool threw = false;
    try {
        co_await corio::with_token(src.token(), corio::sleep(10s));
    } catch (const corio::cancelled_error&) {
        threw = true;
    }
    canceller.join();
    CHECK(threw);
    CHECK(std::this_thread::get_id() == loop_thread);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("tokens: deregistration is safe against a concurrent cancel") {
    for (int round = 0; round < 200; ++round) {
        corio::cancellation_source src;
        std::atomic<int> calls{0};
        auto state = std::make_unique<int>(0);
        auto* reg = new corio::cancellation_registration(src.token(), [&calls, p = state.get()] {
            ++*p;  // touches state that is destroyed right after deregistration
            calls.fetch_add(1);
        });
        std::thread t([&src] { src.cancel(); });
        delete reg;  // waits for a running callback; after this, no call starts
        int seen = calls.load();
        state.reset();
        t.join();
        CHECK(calls.load() == seen);
        CHECK(seen <= 1);
    }
}
