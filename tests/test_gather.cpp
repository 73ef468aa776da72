// Tests for corio/gather.hpp: gather, gather_settled, gather_limited, race and
// wait (result order, first error, settled outcomes, the caller's
// cancellation, degenerate inputs, shields, bounded waits), children referencing the
// caller's locals, inline start order, deep synchronous fan-outs, bad input.
#include <corio/gather.hpp>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include <corio/cancel.hpp>

#include "support/corio_test.hpp"

using corio::task;
using corio_test::forever;
using corio_test::no_leak;
using corio_test::owned;
using corio_test::U;
using namespace std::chrono_literals;

namespace {

struct E : std::runtime_error {
    E() : std::runtime_error("E") {}
};

task<std::string> after(std::chrono::milliseconds d, std::string v) {
    co_await corio::sleep(d);
    co_return v;
}

task<int> after_int(std::chrono::milliseconds d, int v) {
    co_await corio::sleep(d);
    co_return v;
}

task<int> fail_after(std::chrono::milliseconds d) {
    co_await corio::sleep(d);
    throw E{};
}

task<void> nap(std::chrono::milliseconds d) { co_await corio::sleep(d); }

/// Sleeps `d`; if cancelled, records it (flag) and rethrows.
task<int> cancellable(std::chrono::milliseconds d, int v, bool& cancelled) {
    try {
        co_await corio::sleep(d);
    } catch (const corio::cancelled_error&) {
        cancelled = true;
        throw;
    }
    co_return v;
}

/// Sleeps for ever; when cancelled, runs a shielded cleanup of `cleanup` and
/// records the time it finished.
task<int> with_cleanup(std::chrono::milliseconds cleanup, corio::clock::time_point& done_at) {
    bool cancelled = false;
    try {
        co_await corio::sleep(forever);
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        co_await corio::shield(corio::sleep(cleanup));
        done_at = corio::now();
        throw corio::cancelled_error{};
    }
    co_return 0;
}

}  // namespace

// ------------------------------------------------------------------ gather ---

CORIO_TEST_CASE("gather returns results in argument order, not completion order") {
    auto t0 = corio::now();
    auto [a, b, c] = co_await corio::gather(after(3 * U, "a"), after(1 * U, "b"), after(2 * U, "c"));
    CHECK(a == "a");
    CHECK(b == "b");
    CHECK(c == "c");
    CHECK(corio::now() - t0 == 3 * U);

    std::vector<task<int>> ts;
    for (int i = 0; i < 5; ++i) ts.push_back(after_int((5 - i) * U, i));
    auto t1 = corio::now();
    std::vector<int> v = co_await corio::gather(std::move(ts));
    CHECK(v == std::vector<int>{0, 1, 2, 3, 4});
    CHECK(corio::now() - t1 == 5 * U);

    auto mixed = co_await corio::gather(nap(U), after_int(U, 7));
    static_assert(std::is_same_v<decltype(mixed), std::tuple<std::monostate, int>>);
    CHECK(std::get<1>(mixed) == 7);

    std::vector<task<void>> voids;
    voids.push_back(nap(U));
    voids.push_back(nap(2 * U));
    auto vv = co_await corio::gather(voids);  // an lvalue range: its tasks are moved out
    static_assert(std::is_same_v<decltype(vv), std::vector<std::monostate>>);
    CHECK(vv.size() == 2);
    CHECK_FALSE(voids[0].valid());
    co_await no_leak();
}

CORIO_TEST_CASE("gather: children start inline, in argument order, without a queue hop") {
    std::vector<std::string> order;
    auto rec = [&](std::string name, std::chrono::milliseconds d) -> task<void> {
        order.push_back(name);
        co_await corio::sleep(d);
        order.push_back(name + "'");
    };
    auto other = corio::spawn(owned([&]() -> task<void> {
        order.push_back("other");
        co_return;
    }));
    co_await corio::gather(rec("a", 2 * U), rec("b", U), rec("c", 0ms));
    // a, b, c all ran their first step before the spawned task got a turn.
    CHECK(order == std::vector<std::string>{"a", "b", "c", "other", "c'", "b'", "a'"});
    co_await other;
}

CORIO_TEST_CASE("gather: children that finish synchronously complete without suspending the caller") {
    auto ready = [](int v) -> task<int> { co_return v; };
    bool other_ran = false;
    auto other = corio::spawn(owned([&]() -> task<void> {
        other_ran = true;
        co_return;
    }));
    auto [a, b] = co_await corio::gather(ready(1), ready(2));
    CHECK(a + b == 3);
    CHECK_FALSE(other_ran);  // no suspension happened
    std::vector<task<int>> many;
    for (int i = 0; i < 100000; ++i) many.push_back(ready(i));
    auto v = co_await corio::gather(std::move(many));
    CHECK(v.size() == 100000);
    CHECK(v[99999] == 99999);
    CHECK_FALSE(other_ran);
    co_await other;
}

CORIO_TEST_CASE("gather: the first error cancels the siblings, awaits their cleanup, then is rethrown") {
    auto t0 = corio::now();
    corio::clock::time_point cleaned{};
    bool slow_cancelled = false;
    REQUIRE_THROWS_AS(
        co_await corio::gather(fail_after(U), with_cleanup(U, cleaned), cancellable(5 * U, 5, slow_cancelled)), E);
    CHECK(corio::now() - t0 == 2 * U);  // the sibling's shielded cleanup finished first
    CHECK(cleaned - t0 == 2 * U);
    CHECK(slow_cancelled);

    // An error a sibling throws while being cancelled is discarded, unreported.
    auto throws_in_cleanup = []() -> task<int> {
        bool c = false;
        try {
            co_await corio::sleep(forever);
        } catch (const corio::cancelled_error&) {
            c = true;
        }
        if (c) throw std::out_of_range("cleanup");
        co_return 0;
    };
    REQUIRE_THROWS_AS(co_await corio::gather(fail_after(U), throws_in_cleanup()), E);
    co_await no_leak();
}

CORIO_TEST_CASE("gather_settled holds every outcome in argument order and never throws") {
    auto h = corio::spawn(after_int(forever, 0));
    auto canceller = corio::spawn(owned([&]() -> task<void> {
        co_await corio::sleep(U);
        h.cancel();
    }));
    auto t0 = corio::now();
    auto [r1, r2, r3] = co_await corio::gather_settled(after_int(U, 1), fail_after(2 * U), h);
    CHECK(corio::now() - t0 == 2 * U);
    REQUIRE(r1.has_value());
    CHECK(r1.value() == 1);
    REQUIRE_FALSE(r2.has_value());
    CHECK_THROWS_AS(r2.value(), E);
    REQUIRE_FALSE(r3.has_value());
    CHECK(r3.cancelled());
    co_await canceller;

    std::vector<task<int>> ts;
    ts.push_back(fail_after(U));
    ts.push_back(after_int(2 * U, 2));
    auto rs = co_await corio::gather_settled(std::move(ts));
    REQUIRE(rs.size() == 2);
    CHECK_FALSE(rs[0].has_value());
    CHECK(rs[1].value() == 2);

    auto voids = co_await corio::gather_settled(nap(U));
    static_assert(std::is_same_v<decltype(voids), std::tuple<corio::result<void>>>);
    CHECK(std::get<0>(voids).has_value());
    co_await no_leak();
}

CORIO_TEST_CASE("gather: cancelling the caller cancels every child and runs their cleanup") {
    std::array<bool, 3> c{};
    auto o = corio::spawn(owned([&]() -> task<void> {
        co_await corio::gather(cancellable(forever, 1, c[0]), cancellable(forever, 2, c[1]),
                               cancellable(forever, 3, c[2]));
    }));
    co_await corio::sleep(U);
    o.cancel();
    REQUIRE_THROWS_AS(co_await o, corio::cancelled_error);
    CHECK(o.cancelled());
    CHECK(c == std::array<bool, 3>{true, true, true});
    co_await no_leak();
}

CORIO_TEST_CASE("gather: a child cancelled on its own is gather's first exception") {
    auto ha = corio::spawn(after_int(forever, 0));
    auto canceller = corio::spawn(owned([&]() -> task<void> {
        co_await corio::sleep(U);
        ha.cancel();
    }));
    bool b_cancelled = false;
    auto t0 = corio::now();
    REQUIRE_THROWS_AS(co_await corio::gather(ha, cancellable(5 * U, 2, b_cancelled)), corio::cancelled_error);
    CHECK(corio::now() - t0 == U);
    CHECK(b_cancelled);  // corio cancels b instead of letting it complete
    CHECK(ha.cancelled());
    co_await canceller;
    co_await no_leak();  // the caller itself was not cancelled
}

CORIO_TEST_CASE("gather_settled keeps the caller's cancellation") {
    int rounds = 0;
    auto h = corio::spawn(owned([&]() -> task<void> {
        for (;;) {
            co_await corio::gather_settled(corio::sleep(U));
            ++rounds;
        }
    }));
    co_await corio::sleep(2 * U + U / 2);
    h.cancel();
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(h.cancelled());
    CHECK(rounds == 2);
    co_await no_leak();
}

CORIO_TEST_CASE("gather: degenerate inputs complete at once") {
    auto t0 = corio::now();
    std::tuple<> none = co_await corio::gather();
    (void)none;
    std::vector<task<int>> empty;
    auto v = co_await corio::gather(std::move(empty));
    CHECK(v.empty());
    std::vector<task<int>> empty2;
    auto s = co_await corio::gather_settled(std::move(empty2));
    CHECK(s.empty());
    CHECK(corio::now() == t0);
    co_await no_leak();
}

CORIO_TEST_CASE("gather: cancelling a finished gather task is a no-op") {
    auto h = corio::spawn(corio::gather([]() -> task<int> { co_return 42; }()));
    while (!h.done()) co_await corio::yield_now();
    h.cancel();
    CHECK_FALSE(h.cancelled());
    auto r = co_await h;
    CHECK(std::get<0>(r) == 42);
}

CORIO_TEST_CASE("shield of a cancelled handle; gather of shields") {
    auto h = corio::spawn(after_int(forever, 0));
    h.cancel();
    REQUIRE_THROWS_AS(co_await corio::shield(h), corio::cancelled_error);

    std::vector<int> got;
    auto o = corio::spawn(owned([&]() -> task<void> {
        auto [a, b] = co_await corio::gather(corio::shield(after_int(2 * U, 1)), corio::shield(after_int(2 * U, 2)));
        got = {a, b};  // not reached: the caller's cancellation wins
    }));
    auto t0 = corio::now();
    co_await corio::sleep(U);
    o.cancel();
    REQUIRE_THROWS_AS(co_await o, corio::cancelled_error);
    CHECK(corio::now() - t0 == 2 * U);  // the shielded children completed first
    CHECK(got.empty());
    co_await no_leak();
}

// -------------------------------------------------------------------- race ---

CORIO_TEST_CASE("race returns the first to finish after the rest were cancelled and awaited") {
    auto t0 = corio::now();
    corio::clock::time_point cleaned{};
    auto r = co_await corio::race(after(U, "a"), with_cleanup(U, cleaned));
    REQUIRE(r.index() == 0);
    CHECK(std::get<0>(r) == "a");
    CHECK(cleaned - t0 == 2 * U);  // b was cancelled at U and finished its cleanup
    CHECK(corio::now() - t0 == 2 * U);

    // Same alternative types: the index tells who won.
    auto same = co_await corio::race(after_int(2 * U, 1), after_int(U, 2));
    CHECK(same.index() == 1);
    CHECK(std::get<1>(same) == 2);

    // The first to finish throws: rethrown after the same cleanup.
    auto t1 = corio::now();
    bool b_cancelled = false;
    REQUIRE_THROWS_AS(co_await corio::race(fail_after(U), cancellable(5 * U, 0, b_cancelled)), E);
    CHECK(b_cancelled);
    CHECK(corio::now() - t1 == U);
    co_await no_leak();
}

CORIO_TEST_CASE("race(range) returns the winner's index and value") {
    std::vector<task<int>> ts;
    ts.push_back(after_int(3 * U, 30));
    ts.push_back(after_int(U, 10));
    ts.push_back(after_int(2 * U, 20));
    auto t0 = corio::now();
    auto [i, v] = co_await corio::race(std::move(ts));
    CHECK(i == 1);
    CHECK(v == 10);
    CHECK(corio::now() - t0 == U);

    std::vector<task<void>> vs;
    vs.push_back(nap(2 * U));
    vs.push_back(nap(U));
    auto [j, m] = co_await corio::race(std::move(vs));
    CHECK(j == 1);
    (void)m;

    std::vector<task<int>> none;
    CHECK_THROWS_AS(corio::race(std::move(none)), std::invalid_argument);
    co_await no_leak();
}

CORIO_TEST_CASE("race: a winner that finishes synchronously leaves the rest unstarted") {
    bool second_ran = false;
    auto ready = []() -> task<int> { co_return 1; };
    auto marker = [&]() -> task<int> {
        second_ran = true;
        co_await corio::sleep(U);
        co_return 2;
    };
    auto r = co_await corio::race(ready(), marker());
    CHECK(r.index() == 0);
    CHECK_FALSE(second_ran);
}

CORIO_TEST_CASE("race: the caller's cancellation cancels every child and is rethrown") {
    std::array<bool, 2> c{};
    auto o = corio::spawn(owned(
        [&]() -> task<void> { co_await corio::race(cancellable(forever, 1, c[0]), cancellable(forever, 2, c[1])); }));
    co_await corio::sleep(U);
    o.cancel();
    REQUIRE_THROWS_AS(co_await o, corio::cancelled_error);
    CHECK(c == std::array<bool, 2>{true, true});
}

// ------------------------------------------------------------ first error ---

CORIO_TEST_CASE("first exception: gather cancels the rest and throws at once") {
    auto t0 = corio::now();
    bool s_cancelled = false;
    REQUIRE_THROWS_AS(co_await corio::gather(fail_after(2 * U), cancellable(20 * U, 1, s_cancelled)), E);
    CHECK(corio::now() - t0 == 2 * U);
    CHECK(s_cancelled);

    auto [a, b] = co_await corio::gather(after_int(U, 1), after_int(2 * U, 2));
    CHECK(a == 1);
    CHECK(b == 2);

    // A child that ended cancelled counts as the first exception.
    auto h = corio::spawn(after_int(forever, 0));
    h.cancel();
    bool other = false;
    REQUIRE_THROWS_AS(co_await corio::gather(cancellable(20 * U, 1, other), h), corio::cancelled_error);
    CHECK(other);
    co_await no_leak();
}

CORIO_TEST_CASE("bounded wait is move_on_after around gather_settled") {
    std::array<bool, 3> c{};
    std::vector<task<int>> ts;
    ts.push_back(cancellable(U, 1, c[0]));
    ts.push_back(cancellable(5 * U, 2, c[1]));
    ts.push_back(cancellable(forever, 3, c[2]));
    auto t0 = corio::now();
    auto r = co_await corio::move_on_after(2 * U, corio::gather_settled(std::move(ts)));
    CHECK_FALSE(r.has_value());
    CHECK(corio::now() - t0 == 2 * U);
    CHECK(c == std::array<bool, 3>{false, true, true});  // all finished before move_on_after returned

    std::vector<task<int>> quick;
    quick.push_back(after_int(U, 1));
    quick.push_back(fail_after(U));
    auto all = co_await corio::move_on_after(2 * U, corio::gather_settled(std::move(quick)));
    REQUIRE(all.has_value());
    CHECK((*all)[0].value() == 1);
    CHECK_FALSE((*all)[1].has_value());

    std::vector<task<int>> none;
    auto t1 = corio::now();
    auto e = co_await corio::move_on_after(2 * U, corio::gather_settled(std::move(none)));
    REQUIRE(e.has_value());
    CHECK(e->empty());
    CHECK(corio::now() == t1);
    co_await no_leak();
}

CORIO_TEST_CASE("gather: the caller's cancellation reaches owned children, not tasks behind handles") {
    // Owned children are cancelled with the caller.
    std::array<bool, 2> owned_c{};
    auto o1 = corio::spawn(owned([&]() -> task<void> {
        co_await corio::gather(cancellable(forever, 1, owned_c[0]), cancellable(forever, 2, owned_c[1]));
    }));
    // timeout(d, op()): op is owned too, so the caller's cancellation reaches it.
    bool op_cancelled = false;
    auto o2 = corio::spawn(
        owned([&]() -> task<void> { co_await corio::timeout(10 * U, cancellable(forever, 0, op_cancelled)); }));
    // Observed handles keep running.
    auto h1 = corio::spawn(after_int(3 * U, 1));
    auto h2 = corio::spawn(after_int(4 * U, 2));
    corio::clock::time_point o3_done{};
    auto o3 = corio::spawn(owned([&]() -> task<void> {
        try {
            co_await corio::gather(h1, h2);
        } catch (const corio::cancelled_error&) {
            o3_done = corio::now();
            throw;
        }
    }));
    auto t0 = corio::now();
    co_await corio::sleep(U);
    o1.cancel();
    o2.cancel();
    o3.cancel();
    REQUIRE_THROWS_AS(co_await o1, corio::cancelled_error);
    REQUIRE_THROWS_AS(co_await o2, corio::cancelled_error);
    REQUIRE_THROWS_AS(co_await o3, corio::cancelled_error);
    CHECK(owned_c == std::array<bool, 2>{true, true});
    CHECK(op_cancelled);
    CHECK(o3_done - t0 == U);  // at once
    int v1 = co_await h1;
    int v2 = co_await h2;
    CHECK(v1 == 1);
    CHECK(v2 == 2);
    CHECK(corio::now() - t0 == 4 * U);  // both ran to completion
    co_await no_leak();
}

// ----------------------------------------------------------- lifetimes ---

TEST_CASE("gather: a child referencing the caller's locals always finishes before the caller goes on") {
    // Under ASan a child touching a dead frame would be reported.
    corio::testing::run_virtual([]() -> task<void> {
        struct writer {
            int* slot;
            ~writer() { *slot += 1; }  // runs in the child's cleanup, after cancellation
        };
        auto child = [](int* slot, std::chrono::milliseconds d, bool fail) -> task<int> {
            writer w{slot};
            co_await corio::sleep(d);
            if (fail) throw E{};
            co_return *slot;
        };
        // Error path: the caller's frame ends right after gather throws.
        auto err = corio::spawn(owned([&]() -> task<int> {
            std::vector<int> locals(8, 0);
            try {
                co_await corio::gather(child(&locals[0], forever, false), child(&locals[1], U, true),
                                       child(&locals[2], forever, false));
            } catch (const E&) {
            }
            co_return locals[0] + locals[1] + locals[2];
        }));
        int sum = co_await err;
        CHECK(sum == 3);
        // Cancellation path: the caller is cancelled and its frame destroyed.
        auto can = corio::spawn(owned([&]() -> task<void> {
            std::vector<int> locals(8, 0);
            std::vector<task<int>> ts;
            for (int i = 0; i < 8; ++i) ts.push_back(child(&locals[i], forever, false));
            co_await corio::gather(std::move(ts));
        }));
        co_await corio::sleep(U);
        can.cancel();
        REQUIRE_THROWS_AS(co_await can, corio::cancelled_error);
        // Race path.
        auto rc = corio::spawn(owned([&]() -> task<int> {
            std::vector<int> locals(2, 0);
            co_await corio::race(child(&locals[0], U, false), child(&locals[1], forever, false));
            co_return locals[0] + locals[1];
        }));
        int both = co_await rc;
        CHECK(both == 2);
    });
}

// ---------------------------------------------------------- gather_limited ---

CORIO_TEST_CASE("gather_limited: at most n run at once, results in input order") {
    int running = 0, peak = 0;
    auto job = [&](int i) -> task<int> {
        ++running;
        peak = std::max(peak, running);
        co_await corio::sleep((i % 3 + 1) * U);
        --running;
        co_return i * 10;
    };
    std::vector<task<int>> ts;
    for (int i = 0; i < 10; ++i) ts.push_back(job(i));
    auto t0 = corio::now();
    auto v = co_await corio::gather_limited(3, std::move(ts));
    CHECK(peak == 3);
    REQUIRE(v.size() == 10);
    for (int i = 0; i < 10; ++i) CHECK(v[static_cast<std::size_t>(i)] == i * 10);
    CHECK(corio::now() - t0 == 7 * U);  // 3 lanes over durations 1,2,3,1,2,3,1,2,3,1

    // limit 1 runs them one after the other.
    peak = 0;
    std::vector<task<int>> serial;
    for (int i = 0; i < 3; ++i) serial.push_back(job(0));
    auto t1 = corio::now();
    co_await corio::gather_limited(1, std::move(serial));
    CHECK(peak == 1);
    CHECK(corio::now() - t1 == 3 * U);
    co_await no_leak();
}

CORIO_TEST_CASE("gather_limited: the first error stops the rest; unstarted children never run") {
    int started = 0;
    bool cancelled = false;
    auto job = [&](int i) -> task<int> {
        ++started;
        if (i == 0) co_return co_await fail_after(U);
        co_return co_await cancellable(5 * U, i, cancelled);
    };
    std::vector<task<int>> ts;
    for (int i = 0; i < 6; ++i) ts.push_back(job(i));
    auto t0 = corio::now();
    REQUIRE_THROWS_AS(co_await corio::gather_limited(2, std::move(ts)), E);
    CHECK(corio::now() - t0 == U);
    CHECK(started == 2);
    CHECK(cancelled);
    co_await no_leak();
}

CORIO_TEST_CASE("gather_limited: 100,000 synchronous children with limit 1 do not grow the stack") {
    auto ready = [](int v) -> task<int> { co_return v; };
    std::vector<task<int>> ts;
    for (int i = 0; i < 100000; ++i) ts.push_back(ready(i));
    auto v = co_await corio::gather_limited(1, std::move(ts));
    CHECK(v.size() == 100000);
    CHECK(v.back() == 99999);
}

CORIO_TEST_CASE("gather_limited: the caller's cancellation starts nothing more") {
    int started = 0;
    auto job = [&]() -> task<int> {
        ++started;
        co_await corio::sleep(forever);
        co_return 0;
    };
    auto o = corio::spawn(owned([&]() -> task<void> {
        std::vector<task<int>> ts;
        for (int i = 0; i < 5; ++i) ts.push_back(job());
        co_await corio::gather_limited(2, std::move(ts));
    }));
    co_await corio::sleep(U);
    o.cancel();
    REQUIRE_THROWS_AS(co_await o, corio::cancelled_error);
    CHECK(started == 2);
}

// -------------------------------------------------------------- bad input ---

CORIO_TEST_CASE("bad input: gather_limited(0), empty tasks and moved-from handles") {
    std::vector<task<int>> ts;
    ts.push_back(after_int(U, 1));
    REQUIRE_THROWS_WITH(corio::gather_limited(0, std::move(ts)), "corio: gather_limited() needs a limit of at least 1");

    task<int> empty;
    REQUIRE_THROWS_AS(co_await corio::gather(std::move(empty), after_int(U, 1)), corio::invalid_state_error);

    auto h = corio::spawn(after_int(U, 1));
    auto moved = std::move(h);
    REQUIRE_THROWS_AS(co_await corio::gather(h), corio::invalid_state_error);
    int v = co_await moved;
    CHECK(v == 1);
    // A handle whose result was taken cannot be gathered again.
    REQUIRE_THROWS_AS(co_await corio::gather(moved), corio::invalid_state_error);
    co_await no_leak();
}

CORIO_TEST_CASE("gather in a cancelled scope starts nothing and throws") {
    bool ran = false;
    auto marker = [&]() -> task<int> {
        ran = true;
        co_return 1;
    };
    auto r = co_await corio::move_on_after(0ms, owned([&]() -> task<int> {
                                               auto [v] = co_await corio::gather(marker());
                                               co_return v;
                                           }));
    CHECK_FALSE(r.has_value());
    CHECK_FALSE(ran);
}

// ------------------------------------------------------------------- wait ---

CORIO_TEST_CASE("wait: first_completed, first_exception, all_completed; it cancels nothing") {
    std::vector<corio::join_handle<int>> hs;
    hs.push_back(corio::spawn(after_int(3 * U, 3)));
    hs.push_back(corio::spawn(after_int(U, 1)));
    hs.push_back(corio::spawn(fail_after(2 * U)));
    auto t0 = corio::now();

    auto first = co_await corio::wait(hs, corio::return_when::first_completed);
    CHECK(corio::now() - t0 == U);
    REQUIRE(first.done.size() == 1);
    CHECK(first.done[0] == &hs[1]);
    CHECK(first.pending == std::vector<corio::join_handle<int>*>{&hs[0], &hs[2]});

    auto exc = co_await corio::wait(hs, corio::return_when::first_exception);
    CHECK(corio::now() - t0 == 2 * U);
    CHECK(exc.done.size() == 2);
    CHECK(exc.pending == std::vector<corio::join_handle<int>*>{&hs[0]});

    auto all = co_await corio::wait(hs);
    CHECK(corio::now() - t0 == 3 * U);
    CHECK(all.done.size() == 3);
    CHECK(all.pending.empty());
    // The results stay in the handles.
    int a = co_await hs[0];
    CHECK(a == 3);
    REQUIRE_THROWS_AS(co_await hs[2], E);
    co_await no_leak();
}

CORIO_TEST_CASE("wait: first_exception with no error waits for all; a ready condition returns at once") {
    std::vector<corio::join_handle<int>> hs;
    hs.push_back(corio::spawn(after_int(U, 1)));
    hs.push_back(corio::spawn(after_int(2 * U, 2)));
    auto t0 = corio::now();
    auto r = co_await corio::wait(hs, corio::return_when::first_exception);
    CHECK(corio::now() - t0 == 2 * U);
    CHECK(r.done.size() == 2);
    auto again = co_await corio::wait(hs, corio::return_when::first_completed);
    CHECK(corio::now() - t0 == 2 * U);
    CHECK(again.done.size() == 2);
    for (auto& h : hs) co_await h;
}

CORIO_TEST_CASE("wait: timeout returns the sets as they are; the tasks keep running") {
    std::vector<corio::join_handle<int>> hs;
    hs.push_back(corio::spawn(after_int(U, 1)));
    hs.push_back(corio::spawn(after_int(5 * U, 5)));
    auto t0 = corio::now();
    auto r = co_await corio::wait(hs, corio::return_when::all_completed, 2 * U);
    CHECK(corio::now() - t0 == 2 * U);
    CHECK(r.done == std::vector<corio::join_handle<int>*>{&hs[0]});
    CHECK(r.pending == std::vector<corio::join_handle<int>*>{&hs[1]});
    auto zero = co_await corio::wait(hs, corio::return_when::all_completed, 0ms);
    CHECK(zero.pending.size() == 1);
    int v = co_await hs[1];
    CHECK(v == 5);
    CHECK(corio::now() - t0 == 5 * U);
    co_await hs[0];
}

CORIO_TEST_CASE("wait: cancelling the waiter does not cancel the tasks; bad input") {
    std::vector<corio::join_handle<int>> hs;
    hs.push_back(corio::spawn(after_int(3 * U, 3)));
    auto w = corio::spawn(owned([&]() -> task<void> { co_await corio::wait(hs); }));
    co_await corio::sleep(U);
    w.cancel();
    REQUIRE_THROWS_AS(co_await w, corio::cancelled_error);
    int v = co_await hs[0];
    CHECK(v == 3);

    std::vector<corio::join_handle<int>> none;
    CHECK_THROWS_AS(corio::wait(none), std::invalid_argument);
    std::vector<corio::join_handle<int>> holes(1);
    CHECK_THROWS_AS(corio::wait(holes), corio::invalid_state_error);
    co_await no_leak();
}

CORIO_TEST_CASE("wait: a waiter cancelled while its timeout is pending leaves no timer behind") {
    std::vector<corio::join_handle<int>> hs;
    hs.push_back(corio::spawn(after_int(10 * U, 10)));
    auto t0 = corio::now();
    bool cancelled = false;
    auto w = corio::spawn(owned([&]() -> task<void> {
        try {
            co_await corio::wait(hs, corio::return_when::all_completed, 5 * U);
        } catch (const corio::cancelled_error&) {
            cancelled = true;
            throw;
        }
    }));
    co_await corio::sleep(U);
    // The task's own sleep, the waiter's timeout and this sleep's successor.
    CHECK(corio::current_loop().pending_timers() == 2);
    w.cancel();
    REQUIRE_THROWS_AS(co_await w, corio::cancelled_error);
    CHECK(cancelled);
    CHECK(corio::now() - t0 == U);
    CHECK(corio::current_loop().pending_timers() == 1);  // only the task's sleep
    const int v = co_await hs[0];
    CHECK(v == 10);
    CHECK(corio::now() - t0 == 10 * U);
}

CORIO_TEST_CASE("gather of a vector holding an empty task throws before any child starts; the next gather works") {
    int ran = 0;
    auto marker = [&]() -> task<int> {
        ++ran;
        co_return 1;
    };
    for (int round = 0; round < 2; ++round) {  // twice: a thrown bind leaves nothing behind
        std::vector<task<int>> ts;
        ts.push_back(marker());
        ts.push_back(task<int>{});
        ts.push_back(marker());
        REQUIRE_THROWS_AS(co_await corio::gather(std::move(ts)), corio::invalid_state_error);
    }
    CHECK(ran == 0);
    std::vector<task<int>> ok;
    for (int i = 0; i < 3; ++i) ok.push_back(after_int(U, i));
    std::vector<int> v = co_await corio::gather(std::move(ok));
    CHECK(v == std::vector<int>{0, 1, 2});
}
