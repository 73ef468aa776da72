// corio/testing.hpp: a test kit for code written with corio, on Catch2 (v3 or v2).
//
// Not part of corio.hpp: it includes Catch2. Include it instead of Catch2's
// header (or after it) in a test file.
//
// - CORIO_TEST_CASE("name", "[tags]") { ... co_await ...; } declares a Catch2
//   test case whose braced body is a coroutine (a task<void>), run on a fresh
//   event loop under virtual time: sleeps and deadlines are exact and
//   instant. Like corio::run, tasks still alive when the body returns are
//   cancelled and awaited. The case then fails if a task is still alive, a
//   timer still armed, or an error was reported as unobserved (a detached
//   task that failed). An exception escaping the body fails the case.
//   CORIO_TEST_CASE_WITH(options, "name", "[tags]") takes a
//   corio::testing::options first: `testing::real_time`,
//   `testing::expect_unhandled(n)`, or `(testing::options{.a = x, .b = y})`
//   (parenthesised when it holds a comma). The body is a separate function:
//   it sees no locals of the test case, and GENERATE/SECTION work in it.
// - run_virtual(task_or_callable, options = {}) does the same for one task
//   (or a callable returning one, kept alive while it runs) inside an
//   ordinary TEST_CASE, and returns its value: for loops over parameters.
// - co_await expect_throws<E>(aw) awaits `aw` once and returns the E it threw
//   (the case fails if it completed or threw a cancellation instead);
//   expect_cancelled(aw) and expect_timeout(aw) are the two corio ones.
//   co_await expect_completes_within(d, aw) returns aw's value, failing the
//   case if `aw` is still running `d` of loop time after the call (it is
//   then cancelled and awaited first); expect_completes_by(tp, aw) takes a
//   time point. A failed expectation is a REQUIRE: it ends the case.
//   Each takes a task, a join_handle lvalue or any movable awaiter, as a
//   temporary or an lvalue, and is a task itself (it goes into every
//   combinator). Cancelling the caller cancels the operand.
// - manual_clock: `testing::manual_clock clock;` inside a virtual-time body
//   stops time from jumping by itself. Only `co_await clock.advance(d)` moves
//   it: the timers due up to now + d fire in deadline order (time stops at
//   each), then advance waits, like settle(), until every other task is
//   blocked again. `co_await clock.settle()` lets every other task run until
//   it blocks (Trio's wait_all_tasks_blocked), without moving time. When
//   every task is blocked and nobody advances (a test bug: time would never
//   move), run_virtual throws testing::stalled_error instead of hanging.
//   Work outside the loop (Asio I/O, threads) gets `patience` of real time
//   (default 1 s) to complete before that verdict. Advancing is a
//   cancellation point; a cancelled advance holds time again where it stopped.
//
// The REQUIRE(co_await ...) pitfall. Catch2's REQUIRE/CHECK macros name their
// expression three times (the assertion, a __builtin_constant_p for
// warnings, and an unevaluated `false && !!(expr)`); g++ 12 runs a co_await
// in each of them (Catch2 #2591, GCC PR 101027), so `REQUIRE(co_await f())`
// calls f three times. No static check can reject a co_await inside a macro
// argument, so this header removes the pitfall instead: it redefines
// Catch2's INTERNAL_CATCH_TEST (behind REQUIRE, CHECK, REQUIRE_FALSE,
// CHECK_FALSE, CHECKED_IF, CHECKED_ELSE, CHECK_NOFAIL) to name the
// expression once; assertion output is unchanged. In a file that includes
// this header, `REQUIRE(co_await f() == 1)` awaits once. Define
// CORIO_TESTING_KEEP_CATCH_TEST before including it to keep Catch2's macro.
// Without this header, the safe spelling is: await into a local first
// (`auto v = co_await f(); REQUIRE(v == 1);`). REQUIRE_THROWS_AS(co_await x,
// E) and the other *_THROWS macros name their expression once and are safe.
//
// Catch2 versions: corio/detail/catch2.hpp picks the headers (the Catch2
// already included; else CORIO_CATCH2_MAJOR=2 or 3; else v3's
// <catch2/catch_test_macros.hpp> when it exists; else v2's
// <catch2/catch.hpp>). Only macros both versions have are used here: on v3,
// TEST_CASE/CHECK/FAIL (catch_test_macros.hpp) and INFO/UNSCOPED_INFO
// (catch_message.hpp). Tested with Catch2 2.13; the v3 path (the same
// INTERNAL_CATCH_TEST internals, checked against v3's sources) is untested.
// A build that defines CATCH_CONFIG_PREFIX_ALL (Catch2's macros only as
// CATCH_TEST_CASE, CATCH_CHECK, ...) works too: this header reaches Catch2
// through catch2.hpp's CORIO_CATCH_* names, which follow the prefix.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "corio.hpp"

#include "detail/catch2.hpp"  // Catch2 v3 or v2: the one include ladder

// One evaluation of the asserted expression (see the header comment).
// (v3 built with CATCH_CONFIG_EXPERIMENTAL_STATIC_ANALYSIS_SUPPORT names it once already.)
#if !defined(CORIO_TESTING_KEEP_CATCH_TEST) && !defined(CATCH_CONFIG_DISABLE) && \
    !defined(CATCH_CONFIG_EXPERIMENTAL_STATIC_ANALYSIS_SUPPORT)
#undef INTERNAL_CATCH_TEST
#define INTERNAL_CATCH_TEST(macroName, resultDisposition, ...)                                                   \
    do {                                                                                                         \
        Catch::AssertionHandler catchAssertionHandler(macroName##_catch_sr, CATCH_INTERNAL_LINEINFO,             \
                                                      CATCH_INTERNAL_STRINGIFY(__VA_ARGS__), resultDisposition); \
        INTERNAL_CATCH_TRY {                                                                                     \
            CATCH_INTERNAL_START_WARNINGS_SUPPRESSION                                                            \
            CATCH_INTERNAL_SUPPRESS_PARENTHESES_WARNINGS                                                         \
            catchAssertionHandler.handleExpr(Catch::Decomposer() <= __VA_ARGS__);                                \
            CATCH_INTERNAL_STOP_WARNINGS_SUPPRESSION                                                             \
        }                                                                                                        \
        INTERNAL_CATCH_CATCH(catchAssertionHandler)                                                              \
        catchAssertionHandler.complete();                                                                        \
    } while (false)
#endif

namespace corio::testing {

/// How run_virtual / CORIO_TEST_CASE_WITH run a case.
struct options {
    /// Errors the case expects to be reported as unobserved (detached tasks that failed).
    std::size_t expect_unhandled = 0;
    /// false: the loop runs on the real clock (for cases that need real time).
    bool virtual_time = true;
    /// Set: the loop shuffles its ready tasks by this seed (run_options::schedule_seed).
    std::optional<std::uint64_t> schedule_seed{};
};

/// The case runs on the real clock.
inline constexpr options real_time{.virtual_time = false};

/// The case expects `n` errors reported as unobserved.
constexpr options expect_unhandled(std::size_t n) noexcept { return options{.expect_unhandled = n}; }

/// Thrown by run_virtual when, under a manual_clock, every task is blocked
/// and nothing advances the clock.
class stalled_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

namespace detail {

inline std::string describe(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (const cancelled_error&) {
        return "corio::cancelled_error";
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

/// What every case must leave behind (skipped when the loop was abandoned
/// by an exception: that exception is the failure).
inline void check_clean(event_loop& loop, std::size_t unhandled, const options& opt) {
    {
        CORIO_CATCH_INFO("corio::testing: tasks still alive after the case");
        CORIO_CATCH_CHECK(loop.live_tasks() == 0);
    }
    {
        CORIO_CATCH_INFO("corio::testing: timers still armed after the case");
        CORIO_CATCH_CHECK(loop.pending_timers() == 0);
    }
    {
        CORIO_CATCH_INFO(
            "corio::testing: errors reported as unobserved (detached tasks that failed), and how many were expected");
        CORIO_CATCH_CHECK(unhandled == opt.expect_unhandled);
    }
}

template <class F>
auto make_task(F& f) {
    if constexpr (requires { f(); }) return f();
    else return std::move(f);
}

/// Owns an rvalue awaitable, refers to an lvalue one.
template <class A>
using held_t = std::conditional_t<std::is_lvalue_reference_v<A>, A, std::remove_cvref_t<A>>;

template <class A>
using result_of_t = corio::detail::await_result_t<A>;

template <class E>
std::string_view exception_name() noexcept {
    if constexpr (std::is_same_v<E, cancelled_error>) return "corio::cancelled_error";
    else if constexpr (std::is_same_v<E, timeout_error>) return "corio::timeout_error";
    else return typeid(E).name();
}

template <class E, class H>
task<E> expect_throws_impl(H aw) {
    if constexpr (std::is_same_v<E, cancelled_error>) {
        try {
            co_await static_cast<H&&>(aw);
        } catch (const E& e) {
            co_return e;
        }
    } else {
        try {
            co_await static_cast<H&&>(aw);
        } catch (const E& e) {
            co_return e;
        } catch (const cancelled_error&) {
            CORIO_CATCH_FAIL("expected " << exception_name<E>()
                                         << ", but the awaitable ended with corio::cancelled_error");
        }
    }
    CORIO_CATCH_FAIL("expected " << exception_name<E>() << ", but the awaitable completed");
    throw std::logic_error("unreachable");  // FAIL throws; keeps every path returning
}

template <class T>
T unwrap(std::optional<T>&& v) {
    return std::move(*v);
}

template <class H>
task<result_of_t<H>> expect_by_impl(clock::time_point deadline, clock::duration d, bool relative, H aw) {
    using T = result_of_t<H>;
    cancel_scope scope(deadline);
    auto r = co_await scope.run(static_cast<H&&>(aw));
    if (!r) {
        if (relative) {
            CORIO_CATCH_FAIL("expected to complete within "
                             << std::chrono::duration_cast<std::chrono::duration<double, std::milli>>(d).count()
                             << " ms of loop time; it was still running then");
        } else {
            CORIO_CATCH_FAIL("expected to complete by the deadline; it was still running then");
        }
    }
    if constexpr (std::is_void_v<T>) co_return;
    else co_return unwrap(std::move(r));
}

}  // namespace detail

/// Runs `t` (a task, or a callable returning one: kept alive meanwhile) on a
/// fresh event loop (virtual time unless options say otherwise), like
/// corio::run, then checks that no task is alive, no timer armed and no
/// unexpected error was reported unobserved. Returns the task's value.
template <class F>
auto run_virtual(F&& t, options opt = {}) {
    std::remove_cvref_t<F> f(std::forward<F>(t));
    event_loop loop(run_options{.virtual_time = opt.virtual_time, .schedule_seed = opt.schedule_seed});
    std::size_t unhandled = 0;
    loop.set_exception_handler([&](std::exception_ptr e, std::string_view name) {
        ++unhandled;
        if (unhandled > opt.expect_unhandled)
            CORIO_CATCH_UNSCOPED_INFO("unobserved error in task '" << name << "': " << detail::describe(e));
    });
    try {
        if constexpr (std::is_void_v<decltype(loop.run_until_complete(detail::make_task(f)))>) {
            loop.run_until_complete(detail::make_task(f));
            detail::check_clean(loop, unhandled, opt);
        } else {
            auto v = loop.run_until_complete(detail::make_task(f));
            detail::check_clean(loop, unhandled, opt);
            return v;
        }
    } catch (const cancelled_error&) {
        // Not a std::exception: Catch2 would only say "unknown exception".
        if (loop.live_tasks() == 0) detail::check_clean(loop, unhandled, opt);
        CORIO_CATCH_FAIL("the case ended with corio::cancelled_error");
        throw;
    } catch (...) {
        if (loop.live_tasks() == 0) detail::check_clean(loop, unhandled, opt);
        throw;
    }
}

/// Awaits `aw` once; returns the E it threw. Fails the case (REQUIRE-style)
/// if it completed, or ended with a cancellation when E is something else.
template <class E, class A>
task<E> expect_throws(A&& aw) {
    return detail::expect_throws_impl<E, detail::held_t<A>>(std::forward<A>(aw));
}

/// Awaits `aw` once; fails the case unless it threw corio::cancelled_error.
template <class A>
task<cancelled_error> expect_cancelled(A&& aw) {
    return expect_throws<cancelled_error>(std::forward<A>(aw));
}

/// Awaits `aw` once; fails the case unless it threw corio::timeout_error.
template <class A>
task<timeout_error> expect_timeout(A&& aw) {
    return expect_throws<timeout_error>(std::forward<A>(aw));
}

/// Awaits `aw` and returns its value; fails the case if it is still running
/// `d` of loop time from now (it is cancelled and awaited first).
template <class Rep, class Period, class A>
auto expect_completes_within(std::chrono::duration<Rep, Period> d, A&& aw) {
    const auto cd = std::chrono::duration_cast<clock::duration>(d);
    return detail::expect_by_impl<detail::held_t<A>>(corio::detail::saturating_add(corio::now(), cd), cd, true,
                                                     std::forward<A>(aw));
}

/// Awaits `aw` and returns its value; fails the case if it is still running
/// at `deadline` (loop time).
template <class A>
auto expect_completes_by(clock::time_point deadline, A&& aw) {
    return detail::expect_by_impl<detail::held_t<A>>(deadline, clock::duration::zero(), false, std::forward<A>(aw));
}

/// Loop time since it was made (on the running loop).
class stopwatch {
public:
    stopwatch() : start_(corio::now()) {}
    /// Loop time since the stopwatch was made.
    clock::duration elapsed() const { return corio::now() - start_; }
    /// The loop time at which it was made.
    clock::time_point start() const noexcept { return start_; }

private:
    clock::time_point start_;
};

/// Time that moves only when the test says so (see the header comment).
/// Make it inside a task running under virtual time; not movable.
class manual_clock {
public:
    /// A clock on the running loop (invalid_state_error unless it runs under virtual time).
    /// `patience`: how long advance() and settle() wait, in real time, for a task blocked
    /// on something outside the loop before they throw stalled_error.
    explicit manual_clock(std::chrono::milliseconds patience = std::chrono::seconds(1))
        : s_(std::make_shared<state>(current_loop(), patience)) {
        if (!s_->loop.virtual_time())
            throw invalid_state_error("corio::testing::manual_clock needs a loop under virtual time");
        state::hold(s_);
    }
    manual_clock(const manual_clock&) = delete;
    manual_clock& operator=(const manual_clock&) = delete;
    ~manual_clock() { s_->alive = false; }

    /// The loop's current (virtual) time.
    clock::time_point now() const noexcept { return s_->loop.now(); }
    /// Loop time since the clock was made.
    clock::duration elapsed() const noexcept { return now() - s_->start; }

    /// Moves time forward by `d` (>= 0), firing what falls due on the way,
    /// then waits until every other task is blocked. Cancellation point.
    template <class Rep, class Period>
    task<void> advance(std::chrono::duration<Rep, Period> d) {
        if (d < d.zero()) throw std::invalid_argument("corio::testing::manual_clock::advance: negative duration");
        return advance_impl(s_, std::chrono::duration_cast<clock::duration>(d));
    }

    /// Waits, without moving time, until every other task is blocked.
    task<void> settle() { return settle_impl(s_); }

private:
    struct state {
        state(event_loop& l, std::chrono::milliseconds p) : loop(l), start(l.now()), patience(p) {}
        event_loop& loop;
        clock::time_point start;
        std::chrono::milliseconds patience;
        event idle;           // set when every task but the settle() waiters is blocked
        int advancing = 0;    // advance() calls letting time run
        bool alive = true;    // the manual_clock object exists
        bool posted = false;  // the keeper handler is queued or running

        bool holding() const noexcept { return alive && advancing == 0; }

        /// Queues the keeper: while it is queued the loop is never idle, so
        /// virtual time does not jump.
        static void hold(const std::shared_ptr<state>& s) {
            if (s->posted || !s->holding()) return;
            s->posted = true;
            asio::post(s->loop.context(), [s] { s->keep(s); });
        }

        /// The keeper: runs the loop's other work until nothing is ready
        /// (a nested poll), then wakes the settle() waiters, or reports a stall.
        void keep(const std::shared_ptr<state>& self) {
            asio::io_context& ctx = loop.context();
            for (;;) {
                while (holding() && ctx.poll_one() != 0) {
                }
                if (!holding()) {
                    posted = false;
                    return;
                }
                if (idle.waiters() != 0) {
                    idle.set();
                    posted = false;
                    hold(self);
                    return;
                }
                // Everything is blocked: give work outside the loop a chance.
                if (ctx.run_one_for(patience) == 0) break;
            }
            posted = false;
            throw stalled_error(
                "corio::testing::manual_clock: every task is blocked and nothing advances the clock "
                "(co_await clock.advance(d) from the test body)");
        }
    };

    struct advancing_guard {
        std::shared_ptr<state> s;
        explicit advancing_guard(std::shared_ptr<state> st) : s(std::move(st)) { ++s->advancing; }
        ~advancing_guard() {
            --s->advancing;
            state::hold(s);
        }
        advancing_guard(const advancing_guard&) = delete;
        advancing_guard& operator=(const advancing_guard&) = delete;
    };

    static task<void> settle_impl(std::shared_ptr<state> s) {
        s->idle.clear();
        state::hold(s);
        co_await s->idle.wait();
    }

    static task<void> advance_impl(std::shared_ptr<state> s, clock::duration d) {
        {
            advancing_guard g(s);
            co_await corio::sleep(d);
        }
        co_await settle_impl(s);
    }

    std::shared_ptr<state> s_;
};

}  // namespace corio::testing

#define CORIO_TESTING_CAT2(a, b) a##b
#define CORIO_TESTING_CAT(a, b) CORIO_TESTING_CAT2(a, b)

#define CORIO_TESTING_CASE_IMPL(fn, opts, ...)                                         \
    static ::corio::task<void> fn();                                                   \
    CORIO_CATCH_TEST_CASE(__VA_ARGS__) { ::corio::testing::run_virtual(&fn, (opts)); } \
    static ::corio::task<void> fn()

/// A Catch2 test case whose braced body is a coroutine run under virtual time.
#define CORIO_TEST_CASE(...)                                                                                  \
    CORIO_TESTING_CASE_IMPL(CORIO_TESTING_CAT(corio_testing_body_, __COUNTER__), ::corio::testing::options{}, \
                            __VA_ARGS__)

/// CORIO_TEST_CASE with corio::testing::options first (parenthesise it if it holds a comma).
#define CORIO_TEST_CASE_WITH(opts, ...) \
    CORIO_TESTING_CASE_IMPL(CORIO_TESTING_CAT(corio_testing_body_, __COUNTER__), opts, __VA_ARGS__)
