// tests/support/corio_test.hpp: helpers shared by corio's tests.
//
// run_test(body) runs `body()` (a callable returning a corio::task) on a fresh
// event loop under virtual time, then checks what every case must leave
// behind: no task alive, no timer armed, no unobserved error reported.
// Use `U` (10 ms) as the time unit of SEMANTICS.md, and `elapsed()` for the
// loop time since the case started.
//
// Catch2 2.13's REQUIRE/CHECK evaluate their expression up to three times on
// g++: never put a co_await inside one. Await into a local first;
// REQUIRE_THROWS_AS(co_await x, E) is safe.
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <type_traits>
#include <vector>

#include <corio/corio.hpp>

#include "support/catch.hpp"

namespace corio_test {

using namespace std::chrono_literals;

inline constexpr std::chrono::milliseconds U{10};
inline constexpr std::chrono::seconds forever{10};

struct run_report {
    std::vector<std::string> unhandled;  // what() of each error reported as unobserved
};

/// Runs body() under virtual time and checks the loop is clean afterwards.
/// Set `expect_unhandled` to the number of unobserved errors the case expects.
template <class F>
auto run_test(F&& body, std::size_t expect_unhandled = 0, bool virtual_time = true) {
    corio::event_loop loop(corio::run_options{.virtual_time = virtual_time});
    run_report report;
    loop.set_exception_handler([&](std::exception_ptr e, std::string_view) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            report.unhandled.emplace_back(ex.what());
        } catch (...) {
            report.unhandled.emplace_back("non-standard exception");
        }
    });
    struct checker {
        corio::event_loop& loop;
        run_report& report;
        std::size_t expect;
        ~checker() {
            CHECK(loop.live_tasks() == 0);
            CHECK(loop.pending_timers() == 0);
            CHECK(report.unhandled.size() == expect);
        }
    } check{loop, report, expect_unhandled};
    return loop.run_until_complete(body());
}

/// Awaits `h`; true when its task ended cancelled.
template <class T>
corio::task<bool> ended_cancelled(corio::join_handle<T>& h) {
    try {
        co_await h;
    } catch (const corio::cancelled_error&) {
        co_return true;
    }
    co_return false;
}

/// Lets every ready task run a few times (a step that needs no clock).
inline corio::task<void> settle(int rounds = 4) {
    for (int i = 0; i < rounds; ++i) co_await corio::yield_now();
}

/// The check most cases end with: the caller's next suspension completes
/// after exactly U, so no cancellation leaked into it.
/// Sets `flag` when destroyed: shows that a frame holding it was cleaned up.
struct set_on_exit {
    bool& flag;
    ~set_on_exit() { flag = true; }
};

inline corio::task<void> no_leak() {
    auto t0 = corio::now();
    co_await corio::sleep(U);
    CHECK(corio::now() - t0 == U);
}

/// Runs a lambda coroutine with its closure kept alive in this frame (a
/// temporary lambda's captures would dangle once the full-expression ends).
template <class F>
auto owned(F f) -> decltype(f()) {
    if constexpr (std::is_void_v<typename decltype(f())::value_type>) co_await f();
    else co_return co_await f();
}

/// Loop time elapsed since `start`, in the loop's clock.
inline std::chrono::nanoseconds since(corio::clock::time_point start) { return corio::now() - start; }

}  // namespace corio_test
