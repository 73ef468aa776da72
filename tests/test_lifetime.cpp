// Tests at the edges of task and loop lifetime: observers of a task that
// finish or are cancelled while its completion is being announced, loops
// destroyed with tasks suspended deep inside scopes and task groups, handles
// that outlive their loop, handles awaited from the wrong loop, and very deep
// nesting of scopes, groups and awaits.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include <corio/cancel.hpp>
#include <corio/gather.hpp>
#include <corio/task_group.hpp>

#include "support/corio_test.hpp"

using corio::join_handle;
using corio::task;
using corio::task_group;
using corio_test::owned;
using corio_test::set_on_exit;
using corio_test::U;
using namespace std::chrono_literals;

namespace {

struct E : std::runtime_error {
    E() : std::runtime_error("E") {}
};

task<void> fails_after(std::chrono::milliseconds d) {
    co_await corio::sleep(d);
    throw E{};
}

task<int> sleep_then(std::chrono::milliseconds d, int v) {
    co_await corio::sleep(d);
    co_return v;
}

/// How one await of a handle ended.
struct await_log {
    int resumed = 0;
    int cancelled = 0;
    int errors = 0;
    int taken_twice = 0;
};

task<void> await_and_log(join_handle<void>& h, await_log& log) {
    try {
        co_await h;
    } catch (const corio::cancelled_error&) {
        ++log.cancelled;
    } catch (const E&) {
        ++log.errors;
    } catch (const corio::invalid_state_error&) {
        ++log.taken_twice;
    }
    ++log.resumed;
}

task<void> nap(std::chrono::milliseconds d) { co_await corio::sleep(d); }

corio::run_options virtual_time() { return corio::run_options{.virtual_time = true}; }

}  // namespace

// ------------------------------------------ observers of a finishing task

TEST_CASE("a task-group body awaiting its own failing child resumes once and the group throws exception_group") {
    await_log body;
    corio::testing::run_virtual([&]() -> task<void> {
        auto group = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(fails_after(U));
            co_await await_and_log(h, body);
        };
        try {
            co_await corio::with_task_group(group);
            FAIL("the group did not throw");
        } catch (const corio::exception_group& eg) {
            CHECK(eg.size() == 1);
            CHECK(eg.contains<E>());
        }
    });
    CHECK(body.resumed == 1);
    CHECK(body.cancelled == 1);  // the group's cancellation reached the body first
    CHECK(body.errors == 0);
}

TEST_CASE(
    "siblings and the body awaiting one failing child each resume once; a later outside awaiter still gets the error") {
    await_log inside, outside;
    corio::testing::run_virtual([&]() -> task<void> {
        join_handle<void> h;  // outlives the group: the outside awaiter uses it
        join_handle<void> outsider;
        auto group = [&](task_group& tg) -> task<void> {
            h = tg.spawn(fails_after(U));
            tg.spawn(await_and_log(h, inside));
            tg.spawn(await_and_log(h, inside));
            outsider = corio::spawn(await_and_log(h, outside));  // not under the group's scope
            co_await await_and_log(h, inside);                   // the body's awaiter is linked before the siblings'
        };
        REQUIRE_THROWS_AS(co_await corio::with_task_group(group), corio::exception_group);
        co_await outsider;
    });
    CHECK(inside.resumed == 3);
    CHECK(inside.cancelled == 3);
    // Observers after the ones the group's cancellation unlinked are still notified.
    CHECK(outside.resumed == 1);
    CHECK(outside.errors == 1);
}

TEST_CASE("a task-group body in wait(first_completed) over its children resumes once when one fails") {
    int resumed = 0, cancelled = 0;
    corio::testing::run_virtual([&]() -> task<void> {
        auto group = [&](task_group& tg) -> task<void> {
            std::vector<join_handle<void>> hs;
            hs.push_back(tg.spawn(fails_after(U)));
            hs.push_back(tg.spawn(nap(2 * U)));
            try {
                co_await corio::wait(hs, corio::return_when::first_completed);
            } catch (const corio::cancelled_error&) {
                ++cancelled;
            }
            ++resumed;
        };
        REQUIRE_THROWS_AS(co_await corio::with_task_group(group), corio::exception_group);
    });
    CHECK(resumed == 1);
    CHECK(cancelled == 1);
}

// ------------------------------------------------------- loop teardown

namespace {

task<void> inner_timeouts(bool& inner_exit) {
    set_on_exit g{inner_exit};
    co_await corio::timeout(1h, corio::sleep(2h));
}

task<void> outer_timeouts(bool& outer_exit, bool& inner_exit) {
    set_on_exit g{outer_exit};
    co_await corio::timeout(1h, inner_timeouts(inner_exit));
}

}  // namespace

TEST_CASE("destroying a loop while a task is inside nested timeouts destroys its frames cleanly") {
    bool outer_exit = false, inner_exit = false;
    asio::io_context ctx;
    {
        corio::event_loop loop(ctx);
        loop.spawn(outer_timeouts(outer_exit, inner_exit));
        ctx.poll();  // the task runs into both timeouts and sleeps
        REQUIRE(loop.live_tasks() == 1);
        REQUIRE(loop.pending_timers() == 3);  // the sleep and both deadlines
    }
    CHECK(inner_exit);
    CHECK(outer_exit);
}

namespace {

task<void> sleeper(bool& exited) {
    set_on_exit g{exited};
    co_await corio::sleep(1h);
}

}  // namespace

TEST_CASE("destroying a loop destroys the children of task groups and of nested groups") {
    bool body_exit = false, a_exit = false, b_exit = false, grandchild_exit = false;
    asio::io_context ctx;
    {
        corio::event_loop loop(ctx);
        auto nested = [&](task_group& tg) -> task<void> {
            tg.spawn(sleeper(grandchild_exit));
            co_await corio::sleep(1h);
        };
        auto group = [&](task_group& tg) -> task<void> {
            set_on_exit g{body_exit};
            tg.spawn(sleeper(a_exit));
            tg.spawn(sleeper(b_exit));
            tg.spawn(corio::with_task_group(nested));
            co_await corio::sleep(1h);
        };
        loop.spawn(corio::with_task_group(group));
        for (int i = 0; i < 4; ++i) ctx.poll();
        REQUIRE(loop.live_tasks() == 5);
    }
    CHECK(body_exit);
    CHECK(a_exit);
    CHECK(b_exit);
    CHECK(grandchild_exit);
}

TEST_CASE("destroying a loop while a task awaits another task's handle is clean in either destruction order") {
    bool waiter_exit = false, target_exit = false;
    asio::io_context ctx;
    {
        corio::event_loop loop(ctx);
        auto target = loop.spawn(sleeper(target_exit));
        auto awaits = [&]() -> task<void> {
            set_on_exit g{waiter_exit};
            co_await target;
        };
        loop.spawn(owned(awaits));
        ctx.poll();
        REQUIRE(loop.live_tasks() == 2);
    }
    CHECK(waiter_exit);
    CHECK(target_exit);
}

// -------------------------------------------- handles outliving the loop

namespace {

task<void> work() { co_await corio::sleep(U); }

}  // namespace

TEST_CASE("a join_handle of a named task may be dropped after its loop is gone") {
    join_handle<void> h;
    {
        corio::event_loop loop(virtual_time());
        h = loop.spawn(work(), "named-task");
        CHECK(h.name() == "named-task");
        loop.run_until_complete(nap(2 * U));
        CHECK(h.done());
    }
    CHECK(h.valid());
    CHECK(h.done());
    CHECK_FALSE(h.cancelled());
    CHECK(h.name().empty());  // names live in the loop
    h = {};
    CHECK_FALSE(h.valid());
}

TEST_CASE("a failed task whose handle outlives the loop is reported once when the loop is destroyed") {
    std::vector<std::string> reports;
    join_handle<void> h;
    {
        corio::event_loop loop(virtual_time());
        loop.set_exception_handler([&](std::exception_ptr, std::string_view name) { reports.emplace_back(name); });
        h = loop.spawn(fails_after(U), "doomed");
        loop.run_until_complete(nap(2 * U));
        CHECK(reports.empty());  // the handle could still be awaited
    }
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "doomed");
    h = {};  // nothing left to report, no loop to report to
    CHECK(reports.size() == 1);
}

// ---------------------------------------------- a handle of another loop

TEST_CASE("awaiting another loop's join_handle throws invalid_state_error naming the mistake") {
    corio::event_loop a(virtual_time());
    corio::event_loop b(virtual_time());
    join_handle<int> h = a.spawn(sleep_then(U, 7));
    std::string message;
    b.run_until_complete(owned([&]() -> task<void> {
        try {
            co_await h;
        } catch (const corio::invalid_state_error& e) {
            message = e.what();
        }
    }));
    CHECK(message.find("another event loop") != std::string::npos);
    // The task is untouched and its own loop still delivers its value.
    int v = a.run_until_complete(owned([&]() -> task<int> { co_return co_await h; }));
    CHECK(v == 7);
}

TEST_CASE("awaiting a finished handle of another loop throws invalid_state_error too") {
    corio::event_loop a(virtual_time());
    join_handle<int> h = a.spawn(sleep_then(U, 7));
    a.run_until_complete(nap(2 * U));
    REQUIRE(h.done());
    std::string message;
    corio::run(owned([&]() -> task<void> {
        try {
            co_await h;
        } catch (const corio::invalid_state_error& e) {
            message = e.what();
        }
    }));
    CHECK(message.find("another event loop") != std::string::npos);
    int v = a.run_until_complete(owned([&]() -> task<int> { co_return co_await h; }));
    CHECK(v == 7);
}

TEST_CASE("a handle to a task destroyed with its loop reads as cancelled and awaiting it throws invalid_state_error") {
    join_handle<int> h;
    asio::io_context ctx;
    {
        corio::event_loop loop(ctx);
        h = loop.spawn(sleep_then(1h, 1), "abandoned");
        ctx.poll();
    }
    CHECK(h.done());
    CHECK(h.cancelled());
    std::string message;
    corio::run(owned([&]() -> task<void> {
        try {
            co_await h;
        } catch (const corio::invalid_state_error& e) {
            message = e.what();
        }
    }));
    CHECK(message.find("destroyed") != std::string::npos);
}

// ------------------------------------------------------------ deep nesting

namespace {

/// `depth` nested timeouts, each in its own task; level `short_level` (1 is
/// the innermost) has a deadline of U, the others an hour. Counts what each
/// level saw pass through it.
struct nesting_log {
    int cancelled = 0;
    int timed_out = 0;
};

task<void> timeouts_deep(int depth, int short_level, nesting_log& log) {
    if (depth == 0) {
        co_await corio::sleep(1h);
        co_return;
    }
    const auto d = depth == short_level ? std::chrono::milliseconds(U) : std::chrono::milliseconds(1h);
    try {
        co_await corio::timeout(d, timeouts_deep(depth - 1, short_level, log));
    } catch (const corio::cancelled_error&) {
        ++log.cancelled;
        throw;
    } catch (const corio::timeout_error&) {
        ++log.timed_out;
        throw;
    }
}

task<void> groups_deep(int depth, int& cancelled) {
    if (depth == 0) {
        co_await corio::sleep(1h);
        co_return;
    }
    auto body = [depth, &cancelled](task_group&) -> task<void> { co_await groups_deep(depth - 1, cancelled); };
    try {
        co_await corio::with_task_group(body);
    } catch (const corio::cancelled_error&) {
        ++cancelled;
        throw;
    }
}

}  // namespace

TEST_CASE("a task 10000 timeouts deep cancelled from outside unwinds every level with cancelled_error") {
    constexpr int depth = 10'000;
    nesting_log log;
    corio::testing::run_virtual([&]() -> task<void> {
        auto h = corio::spawn(timeouts_deep(depth, -1, log));
        co_await corio::sleep(U);
        h.cancel();
        bool cancelled = co_await corio_test::ended_cancelled(h);
        CHECK(cancelled);
    });
    CHECK(log.cancelled == depth);
    CHECK(log.timed_out == 0);
}

TEST_CASE("in 10000 nested timeouts only the level whose deadline fired converts the cancellation") {
    constexpr int depth = 10'000, fired = 5'000;
    nesting_log log;
    corio::testing::run_virtual(
        [&]() -> task<void> { REQUIRE_THROWS_AS(co_await timeouts_deep(depth, fired, log), corio::timeout_error); });
    CHECK(log.cancelled == fired - 1);          // the levels inside it pass it through
    CHECK(log.timed_out == depth - fired + 1);  // it converts; the levels outside see timeout_error
}

TEST_CASE("a task 10000 task groups deep cancelled from outside ends every group cancelled") {
    constexpr int depth = 10'000;
    int cancelled_levels = 0;
    corio::testing::run_virtual([&]() -> task<void> {
        auto h = corio::spawn(groups_deep(depth, cancelled_levels));
        co_await corio::sleep(U);
        h.cancel();
        bool cancelled = co_await corio_test::ended_cancelled(h);
        CHECK(cancelled);
    });
    CHECK(cancelled_levels == depth);
}

namespace {

task<int> nested_awaits(int n) {
    if (n == 0) co_return 0;
    co_return 1 + co_await nested_awaits(n - 1);
}

}  // namespace

// The same depth in every build: optimised builds descend by symmetric
// transfer (a tail call there), unoptimised and AddressSanitizer builds
// through the scheduler's trampoline (CORIO_TRAMPOLINE_DESCENT); the way back
// up always goes through the trampoline.
TEST_CASE("100000 nested awaits complete without overflowing the stack in every build") {
    constexpr int depth = 100'000;
    int got = corio::testing::run_virtual([]() -> task<int> { co_return co_await nested_awaits(depth); });
    CHECK(got == depth);
}
