// Tests for Asio coroutine interop in corio/asio.hpp, both ways: a corio task
// awaits an asio::awaitable (value, void, exception, cancellation forwarded as
// a terminal cancellation, timeouts and every combinator around it), and
// corio::co_spawn runs a corio task from Asio code with each kind of
// completion token (use_awaitable, use_future, deferred, callbacks),
// cancellation through the token's slot, the loop bound to an io_context
// (created on first use, reused, destroyed with it) and bad input.
// corio-tsan: co_spawn from a thread that does not run the io_context.
#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>
#include <utility>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <asio/post.hpp>
#include <corio/testing.hpp>

#include "support/corio_test.hpp"

using namespace std::chrono_literals;
using corio::task;
using corio_test::forever;
using corio_test::U;

namespace {

// ------------------------------------------------------- Asio helpers ---

asio::awaitable<int> answer(int v) { co_return v; }

asio::awaitable<void> set_flag(bool& flag) {
    flag = true;
    co_return;
}

asio::awaitable<int> throws_runtime_error() {
    throw std::runtime_error("from the awaitable");
    co_return 0;
}

/// Waits `d` on an Asio timer; records how the wait ended in `seen`.
asio::awaitable<int> timer_wait(std::chrono::milliseconds d, std::error_code* seen = nullptr, int v = 1) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    try {
        co_await t.async_wait(asio::use_awaitable);
    } catch (const std::system_error& e) {
        if (seen) *seen = e.code();
        throw;
    }
    if (seen) *seen = std::error_code();
    co_return v;
}

/// A nested awaitable chain: awaits timer_wait from inside another awaitable.
asio::awaitable<int> nested_wait(std::chrono::milliseconds d, std::error_code* seen) {
    int v = co_await timer_wait(d, seen, 5);
    co_return v + 1;
}

/// Catches the cancellation of its timer wait and returns -1 instead.
asio::awaitable<int> absorbs_cancellation(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    try {
        co_await t.async_wait(asio::use_awaitable);
    } catch (const std::system_error&) {
        co_return -1;
    }
    co_return 1;
}

// ------------------------------------------------------- corio helpers ---

task<int> doubled_after(int v, std::chrono::milliseconds d) {
    co_await corio::sleep(d);
    co_return v * 2;
}

task<void> sleep_then_set(std::chrono::milliseconds d, bool& flag) {
    co_await corio::sleep(d);
    flag = true;
}

task<int> fails_after(std::chrono::milliseconds d) {
    co_await corio::sleep(d);
    throw std::runtime_error("corio task failed");
    co_return 0;
}

/// Sleeps `d`, recording whether it ended cancelled and whether its frame was destroyed.
task<int> sleeper(std::chrono::milliseconds d, bool& cancelled, bool& destroyed) {
    corio_test::set_on_exit on_exit{destroyed};
    try {
        co_await corio::sleep(d);
    } catch (const corio::cancelled_error&) {
        cancelled = true;
        throw;
    }
    co_return 1;
}

std::string what_of(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (const corio::cancelled_error&) {
        return "cancelled_error";
    } catch (...) {
        return "?";
    }
}

bool is_cancelled(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const corio::cancelled_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

}  // namespace

// ===================================================== corio awaits Asio ===

CORIO_TEST_CASE("asio interop: a corio task gets an awaitable's value, from a temporary or an lvalue") {
    int a = co_await answer(42);
    CHECK(a == 42);
    asio::awaitable<int> aw = answer(7);
    int b = co_await aw;  // an lvalue is moved from
    CHECK(b == 7);
    CHECK_FALSE(aw.valid());
}

CORIO_TEST_CASE("asio interop: a void awaitable completes and its side effects are visible") {
    bool flag = false;
    co_await set_flag(flag);
    CHECK(flag);
}

CORIO_TEST_CASE("asio interop: an exception thrown inside the awaitable is rethrown in the task") {
    try {
        co_await throws_runtime_error();
        FAIL("no exception");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "from the awaitable");
    }
}

CORIO_TEST_CASE_WITH(corio::testing::real_time,
                     "asio interop: an awaitable that suspends on an Asio timer resumes the task after it") {
    auto t0 = std::chrono::steady_clock::now();
    std::error_code seen = asio::error::would_block;
    int v = co_await nested_wait(20ms, &seen);
    CHECK(v == 6);
    CHECK(!seen);
    CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
}

CORIO_TEST_CASE("asio interop: cancelling the task forwards a terminal cancellation to the pending operation") {
    std::error_code seen;
    auto body = [&]() -> task<int> { co_return co_await nested_wait(10s, &seen); };
    auto h = corio::spawn(body());
    co_await corio::sleep(U);
    auto t0 = corio::now();
    h.cancel();
    bool cancelled = co_await corio_test::ended_cancelled(h);
    CHECK(cancelled);
    CHECK(seen == asio::error::operation_aborted);  // the timer wait ended aborted
    CHECK(corio::now() - t0 == 0s);                 // promptly, not after 10 s
    co_await corio_test::no_leak();
}

CORIO_TEST_CASE("asio interop: a cancel_scope around an awaitable absorbs its own cancellation") {
    std::error_code seen;
    corio::cancel_scope scope;
    auto canceller = [&]() -> task<void> {
        co_await corio::sleep(U);
        scope.cancel();
    };
    auto h = corio::spawn(canceller());
    std::optional<int> r = co_await scope.run(timer_wait(10s, &seen));
    CHECK_FALSE(r.has_value());
    CHECK(scope.cancelled_caught());
    CHECK(seen == asio::error::operation_aborted);
    co_await h;
    co_await corio_test::no_leak();
}

CORIO_TEST_CASE("asio interop: timeout around an awaitable throws timeout_error at the deadline") {
    std::error_code seen;
    auto t0 = corio::now();
    REQUIRE_THROWS_AS(co_await corio::timeout(2 * U, timer_wait(10s, &seen)), corio::timeout_error);
    CHECK(corio::now() - t0 == 2 * U);
    CHECK(seen == asio::error::operation_aborted);
    int v = co_await corio::timeout(2 * U, answer(3));  // finishes in time: its value
    CHECK(v == 3);
    co_await corio_test::no_leak();
}

CORIO_TEST_CASE("asio interop: an awaitable in an already-cancelled scope is not started") {
    bool ran = false;
    corio::cancel_scope scope;
    scope.cancel();
    bool completed = co_await scope.run(set_flag(ran));
    CHECK_FALSE(completed);
    CHECK_FALSE(ran);
}

CORIO_TEST_CASE("asio interop: a value the awaitable returns after catching the cancellation is returned") {
    corio::cancel_scope scope;
    auto canceller = [&]() -> task<void> {
        co_await corio::sleep(U);
        scope.cancel();
    };
    auto h = corio::spawn(canceller());
    std::optional<int> r = co_await scope.run(absorbs_cancellation(10s));
    REQUIRE(r.has_value());
    CHECK(*r == -1);
    CHECK_FALSE(scope.cancelled_caught());
    co_await h;
}

CORIO_TEST_CASE("asio interop: awaiting an empty awaitable throws invalid_state_error saying so") {
    asio::awaitable<int> empty;
    try {
        co_await empty;
        FAIL("no exception");
    } catch (const corio::invalid_state_error& e) {
        CHECK(std::string(e.what()) ==
              "corio: co_await on an empty asio::awaitable (moved-from or default-constructed)");
    }
}

TEST_CASE("asio interop: an awaitable pending when the loop is destroyed is cancelled and finishes harmlessly") {
    asio::io_context ctx;
    std::error_code seen;
    bool destroyed = false;
    {
        corio::event_loop loop(ctx);
        auto body = [&]() -> task<void> {
            corio_test::set_on_exit on_exit{destroyed};
            co_await nested_wait(10s, &seen);
        };
        auto h = loop.spawn(body());
        ctx.poll();  // the task starts and suspends in the awaitable's timer wait
        CHECK_FALSE(h.done());
    }  // destroys the suspended frame: the awaitable is cancelled
    CHECK(destroyed);
    ctx.run_for(1s);  // the aborted timer wait completes into the abandoned thread
    CHECK(seen == asio::error::operation_aborted);
}

// Each io_context keeps idle Asio threads and reuses them from await to
// await: these check that nothing of one await leaks into the next.

namespace {

/// Suspends once (a post), then reports whether its thread's cancellation
/// state says cancelled and whether it throws on cancellation.
asio::awaitable<std::pair<bool, bool>> thread_state_after_post() {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    asio::cancellation_state st = co_await asio::this_coro::cancellation_state;
    bool throws = co_await asio::this_coro::throw_if_cancelled();
    co_return std::pair{st.cancelled() != asio::cancellation_type::none, throws};
}

asio::awaitable<int> turns_off_throw_if_cancelled() {
    co_await asio::this_coro::throw_if_cancelled(false);
    co_return 7;
}

asio::awaitable<int> posted_value(int v) {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    co_return v;
}

}  // namespace

CORIO_TEST_CASE("asio interop: an await after a cancelled one starts with a fresh cancellation state", "[asio]") {
    for (int i = 0; i < 3; ++i) {
        REQUIRE_THROWS_AS(co_await corio::timeout(U, timer_wait(10s)), corio::timeout_error);
        std::pair<bool, bool> st = co_await thread_state_after_post();
        CHECK_FALSE(st.first);  // the earlier cancellation is not seen
        CHECK(st.second);
    }
    int v = co_await turns_off_throw_if_cancelled();
    CHECK(v == 7);
    std::pair<bool, bool> st = co_await thread_state_after_post();
    CHECK(st.second);  // the previous awaitable's throw_if_cancelled(false) did not stay
}

CORIO_TEST_CASE("asio interop: many tasks awaiting awaitables at once each get their own value, again and again",
                "[asio]") {
    // More at once than an io_context keeps idle, so some threads end and
    // new ones are made; the second round reuses the idle ones.
    for (int round = 0; round < 2; ++round) {
        std::vector<task<int>> ts;
        for (int i = 0; i < 100; ++i)
            ts.push_back([](int k) -> task<int> { co_return co_await posted_value(k) * 2; }(i));
        std::vector<int> got = co_await corio::gather(std::move(ts));
        REQUIRE(got.size() == 100);
        for (int i = 0; i < 100; ++i) CHECK(got[static_cast<std::size_t>(i)] == 2 * i);
    }
    int a = co_await answer(1);  // a ready one after the concurrent ones
    CHECK(a == 1);
}

CORIO_TEST_CASE("asio interop: an exception after a value leaves the reused thread usable", "[asio]") {
    int a = co_await answer(1);
    CHECK(a == 1);
    REQUIRE_THROWS_AS(co_await throws_runtime_error(), std::runtime_error);
    int b = co_await posted_value(2);
    CHECK(b == 2);
}

TEST_CASE("asio interop: idle threads of a loop's io_context are destroyed with it, after the loop") {
    asio::io_context ctx;
    {
        corio::event_loop loop(ctx);
        int v = loop.run_until_complete([]() -> task<int> { co_return co_await posted_value(4) + co_await answer(1); });
        CHECK(v == 5);
    }
    // The io_context outlives the loop; a second loop on it reuses the idle threads.
    {
        corio::event_loop loop(ctx);
        int v = loop.run_until_complete([]() -> task<int> { co_return co_await posted_value(6); });
        CHECK(v == 6);
    }
}  // ctx's shutdown destroys the idle threads (ASan: nothing leaks)

TEST_CASE("asio interop: composes with every combinator") {
    SECTION("timeout_at and move_on_after / move_on_at") {
        corio::testing::run_virtual([]() -> task<void> {
            REQUIRE_THROWS_AS(co_await corio::timeout_at(corio::now() + U, timer_wait(10s)), corio::timeout_error);
            std::optional<int> a = co_await corio::move_on_after(U, timer_wait(10s));
            CHECK_FALSE(a.has_value());
            std::optional<int> b = co_await corio::move_on_at(corio::now() + U, answer(4));
            CHECK(b == 4);
            co_await corio_test::no_leak();
        });
    }
    SECTION("shield keeps an outer cancellation away from the awaitable") {
        corio::testing::run_virtual(
            []() -> task<void> {
                std::error_code seen = asio::error::would_block;
                auto body = [&]() -> task<int> { co_return co_await corio::shield(timer_wait(30ms, &seen, 9)); };
                auto h = corio::spawn(body());
                co_await corio::sleep(5ms);
                h.cancel();
                int v = co_await h;  // the shielded await finished; its value comes back
                CHECK(v == 9);
                CHECK(!seen);
            },
            corio::testing::real_time);
    }
    SECTION("with_token cancels the awaitable when the token fires") {
        corio::testing::run_virtual([]() -> task<void> {
            corio::cancellation_source src;
            std::error_code seen;
            auto fire = [&]() -> task<void> {
                co_await corio::sleep(U);
                src.cancel();
            };
            auto h = corio::spawn(fire());
            REQUIRE_THROWS_AS(co_await corio::with_token(src.token(), timer_wait(10s, &seen)), corio::cancelled_error);
            CHECK(seen == asio::error::operation_aborted);
            co_await h;
        });
    }
    SECTION("gather and gather_settled run awaitables concurrently") {
        corio::testing::run_virtual([]() -> task<void> {
            auto [a, b] = co_await corio::gather(answer(1), answer(2));
            CHECK(a == 1);
            CHECK(b == 2);
            auto [ok, bad] = co_await corio::gather_settled(answer(3), throws_runtime_error());
            CHECK(ok.value() == 3);
            CHECK_THROWS_AS(bad.value(), std::runtime_error);
        });
    }
    SECTION("race cancels a losing awaitable and awaits it") {
        corio::testing::run_virtual([]() -> task<void> {
            std::error_code seen;
            auto t0 = corio::now();
            auto r = co_await corio::race(timer_wait(10s, &seen), corio::sleep(U));
            CHECK(r.index() == 1);
            CHECK(corio::now() - t0 == U);
            CHECK(seen == asio::error::operation_aborted);  // finished before race returned
        });
    }
}

// ===================================================== Asio awaits corio ===

TEST_CASE("co_spawn: use_awaitable returns the task's value inside an asio coroutine") {
    asio::io_context ctx;
    int got = 0;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            got = co_await corio::co_spawn(ctx.get_executor(), doubled_after(21, 1ms), asio::use_awaitable);
        },
        asio::detached);
    ctx.run();
    CHECK(got == 42);
}

TEST_CASE("co_spawn: a task<void> completes an asio coroutine's await") {
    asio::io_context ctx;
    bool flag = false, resumed = false;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            co_await corio::co_spawn(ctx, sleep_then_set(1ms, flag), asio::use_awaitable);
            resumed = flag;
        },
        asio::detached);
    ctx.run();
    CHECK(resumed);
}

TEST_CASE("co_spawn: the task's exception is rethrown by use_awaitable") {
    asio::io_context ctx;
    std::string caught;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            try {
                co_await corio::co_spawn(ctx.get_executor(), fails_after(1ms), asio::use_awaitable);
            } catch (const std::runtime_error& e) {
                caught = e.what();
            }
        },
        asio::detached);
    ctx.run();
    CHECK(caught == "corio task failed");
}

TEST_CASE("co_spawn: use_future delivers the value, or the exception, to a future") {
    asio::io_context ctx;
    std::future<int> ok = corio::co_spawn(ctx.get_executor(), doubled_after(5, 1ms), asio::use_future);
    std::future<int> bad = corio::co_spawn(ctx.get_executor(), fails_after(1ms), asio::use_future);
    std::future<void> done = corio::co_spawn(ctx.get_executor(), corio_test::settle(), asio::use_future);
    ctx.run();
    CHECK(ok.get() == 10);
    CHECK_THROWS_AS(bad.get(), std::runtime_error);
    CHECK_NOTHROW(done.get());
}

TEST_CASE("co_spawn: deferred starts the task only when the deferred operation is initiated") {
    asio::io_context ctx;
    bool flag = false;
    auto op = corio::co_spawn(ctx.get_executor(), sleep_then_set(1ms, flag), asio::experimental::deferred);
    ctx.run();
    CHECK_FALSE(flag);  // nothing started yet
    ctx.restart();
    std::exception_ptr seen = std::make_exception_ptr(1);
    std::move(op)([&](std::exception_ptr e) { seen = e; });
    ctx.run();
    CHECK(flag);
    CHECK(seen == nullptr);
}

TEST_CASE("co_spawn: a callback gets (exception_ptr, T), or (exception_ptr) for a task<void>") {
    asio::io_context ctx;
    int value = 0, calls = 0;
    std::exception_ptr value_error = std::make_exception_ptr(1), fail_error, void_error = std::make_exception_ptr(1);
    corio::co_spawn(ctx.get_executor(), doubled_after(4, 1ms), [&](std::exception_ptr e, int v) {
        value_error = e;
        value = v;
        ++calls;
    });
    corio::co_spawn(ctx.get_executor(), fails_after(1ms), [&](std::exception_ptr e, int v) {
        fail_error = e;
        CHECK(v == 0);  // T{} with an error
        ++calls;
    });
    corio::co_spawn(ctx.get_executor(), corio_test::settle(), [&](std::exception_ptr e) {
        void_error = e;
        ++calls;
    });
    ctx.run();
    CHECK(calls == 3);
    CHECK(value == 8);
    CHECK(value_error == nullptr);
    CHECK(what_of(fail_error) == "corio task failed");
    CHECK(void_error == nullptr);
}

TEST_CASE("co_spawn: a callable returning a task is invoked on the loop and kept alive while it runs") {
    asio::io_context ctx;
    int got = 0;
    std::string prefix = "value:";
    auto make = [prefix, n = 6]() -> task<int> {
        co_await corio::sleep(1ms);
        co_return static_cast<int>(prefix.size()) + n;  // reads the closure after a suspension
    };
    corio::co_spawn(ctx, make, [&](std::exception_ptr, int v) { got = v; });
    ctx.run();
    CHECK(got == 12);
}

TEST_CASE("co_spawn: a terminal cancellation on the token's slot cancels the task") {
    asio::io_context ctx;
    asio::cancellation_signal signal;
    bool cancelled = false, destroyed = false;
    std::exception_ptr seen;
    corio::co_spawn(ctx.get_executor(), sleeper(10s, cancelled, destroyed),
                    asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, int) { seen = e; }));
    asio::steady_timer t(ctx, 5ms);
    t.async_wait([&](std::error_code) { signal.emit(asio::cancellation_type::terminal); });
    auto t0 = std::chrono::steady_clock::now();
    ctx.run();
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(cancelled);
    CHECK(destroyed);
    CHECK(is_cancelled(seen));
}

TEST_CASE("co_spawn: a partial cancellation alone does not cancel the task") {
    asio::io_context ctx;
    asio::cancellation_signal signal;
    bool cancelled = false, destroyed = false;
    std::exception_ptr seen = std::make_exception_ptr(1);
    int value = 0;
    corio::co_spawn(ctx.get_executor(), sleeper(20ms, cancelled, destroyed),
                    asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, int v) {
                        seen = e;
                        value = v;
                    }));
    asio::steady_timer t(ctx, 1ms);
    t.async_wait([&](std::error_code) { signal.emit(asio::cancellation_type::partial); });
    ctx.run();
    CHECK_FALSE(cancelled);
    CHECK(seen == nullptr);
    CHECK(value == 1);
}

TEST_CASE("co_spawn: a cancellation emitted before the task started means its body never runs") {
    asio::io_context ctx;
    asio::cancellation_signal signal;
    bool cancelled = false, destroyed = false, ran = false;
    std::exception_ptr seen;
    auto body = [&]() -> task<void> {
        ran = true;
        co_return;
    };
    corio::co_spawn(ctx.get_executor(), body,
                    asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) { seen = e; }));
    signal.emit(asio::cancellation_type::terminal);  // before ctx runs: the task has not started
    ctx.run();
    CHECK_FALSE(ran);
    CHECK(is_cancelled(seen));
    (void)cancelled;
    (void)destroyed;
}

TEST_CASE("co_spawn: awaitable operators || cancel the losing corio task") {
    using namespace asio::experimental::awaitable_operators;
    asio::io_context ctx;
    bool cancelled = false, destroyed = false;
    std::variant<int, int> r;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            r = co_await (corio::co_spawn(ex, sleeper(10s, cancelled, destroyed), asio::use_awaitable) ||
                          corio::co_spawn(ex, doubled_after(2, 5ms), asio::use_awaitable));
        },
        asio::detached);
    ctx.run();
    CHECK(r.index() == 1);
    CHECK(std::get<1>(r) == 4);
    CHECK(cancelled);
    CHECK(destroyed);
}

TEST_CASE("co_spawn: the loop bound to an io_context is created on first use and reused") {
    asio::io_context ctx;
    corio::event_loop* first = nullptr;
    corio::event_loop* second = nullptr;
    auto where = [](corio::event_loop*& out) -> task<void> {
        out = &corio::current_loop();
        co_return;
    };
    corio::co_spawn(ctx, where(first), asio::detached);
    corio::co_spawn(ctx.get_executor(), where(second), asio::detached);
    ctx.run();
    REQUIRE(first != nullptr);
    CHECK(first == second);
    CHECK(&first->context() == &ctx);
}

TEST_CASE("co_spawn: an event_loop the user built on the io_context is the one used") {
    asio::io_context ctx;
    corio::event_loop loop(ctx);
    corio::event_loop* seen = nullptr;
    auto where = [&]() -> task<void> {
        seen = &corio::current_loop();
        co_return;
    };
    corio::co_spawn(asio::any_io_executor(ctx.get_executor()), where, asio::detached);
    ctx.run();
    CHECK(seen == &loop);
}

TEST_CASE("co_spawn: a task still running when the io_context is destroyed has its frame destroyed") {
    bool cancelled = false, destroyed = false, called = false;
    {
        asio::io_context ctx;
        corio::co_spawn(ctx.get_executor(), sleeper(10s, cancelled, destroyed),
                        [&](std::exception_ptr, int) { called = true; });
        ctx.run_for(5ms);
    }
    CHECK(destroyed);
    CHECK_FALSE(called);  // the handler is dropped, as Asio drops handlers of a destroyed io_context
}

TEST_CASE("co_spawn: from a thread that does not run the io_context, the task runs on the io_context's thread") {
    asio::io_context ctx;
    auto work = asio::make_work_guard(ctx);
    std::thread runner([&] { ctx.run(); });
    std::atomic<std::thread::id> ran_on{};
    auto body = [&]() -> task<int> {
        ran_on = std::this_thread::get_id();
        co_await corio::sleep(1ms);
        co_return 3;
    };
    std::future<int> f = corio::co_spawn(ctx.get_executor(), body, asio::use_future);
    CHECK(f.get() == 3);
    const std::thread::id runner_id = runner.get_id();
    work.reset();
    runner.join();
    CHECK(ran_on.load() == runner_id);
}

TEST_CASE("co_spawn: bad input is rejected at once with a clear message") {
    asio::io_context ctx;
    SECTION("an empty task") {
        task<int> t;
        try {
            corio::co_spawn(ctx.get_executor(), std::move(t), asio::detached);
            FAIL("no exception");
        } catch (const corio::invalid_state_error& e) {
            CHECK(std::string(e.what()) == "corio::co_spawn: the task is empty (moved-from or already awaited)");
        }
    }
    SECTION("an executor that does not belong to an io_context") {
        asio::thread_pool pool(1);
        asio::any_io_executor pool_ex = pool.get_executor();
        try {
            corio::co_spawn(pool_ex, doubled_after(1, 1ms), asio::detached);
            FAIL("no exception");
        } catch (const std::invalid_argument& e) {
            CHECK(std::string(e.what()).find("the executor does not belong to an asio::io_context") !=
                  std::string::npos);
        }
        asio::any_io_executor none;
        CHECK_THROWS_AS(corio::co_spawn(none, doubled_after(1, 1ms), asio::detached), std::invalid_argument);
        pool.join();
    }
}
