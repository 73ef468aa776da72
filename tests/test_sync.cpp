// Tests for corio/sync.hpp (mutex, event, condition_variable, barrier):
// basics, cancellation races, ownership checks, re-locking on a cancelled wait,
// no lost wake-up, cancellation injected at every waiter position,
// barrier behaviour and the bad-input cases.
#include <corio/sync.hpp>

#include <corio/cancel.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/corio_test.hpp"

using namespace corio;
using namespace corio_test;

namespace {

task<void> lock_and_log(mutex& m, std::vector<std::string>& log, std::string name, int rounds, clock::duration hold) {
    for (int r = 1; r <= rounds; ++r) {
        auto g = co_await m.lock();
        log.push_back(name + std::to_string(r));
        co_await sleep(hold);
    }
}

/// Locks, records, holds the mutex until `done` is set.
task<void> lock_and_hold(mutex& m, std::vector<int>& log, int id, event& done) {
    auto g = co_await m.lock();
    log.push_back(id);
    co_await done.wait();
}

task<void> throw_while_locked(mutex& m) {
    auto g = co_await m.lock();
    throw std::runtime_error("boom");
}

}  // namespace

// ------------------------------------------------------------------ mutex ---

CORIO_TEST_CASE("mutex: lock, unlock, try_lock and FIFO hand-off") {
    mutex m;
    std::vector<std::string> log;
    auto a = spawn(lock_and_log(m, log, "a", 2, U));
    auto b = spawn(lock_and_log(m, log, "b", 2, U));
    auto c = spawn(lock_and_log(m, log, "c", 2, U));
    auto start = now();
    co_await a;
    co_await b;
    co_await c;
    CHECK(log == std::vector<std::string>{"a1", "b1", "c1", "a2", "b2", "c2"});
    CHECK(since(start) == 6 * U);
    CHECK_FALSE(m.locked());

    // Normal exit, exception, cancellation: unlocked exactly once.
    {
        auto g = co_await m.lock();
        CHECK(m.locked());
        CHECK(g.owns_lock());
        CHECK(g.get_mutex() == &m);
    }
    CHECK_FALSE(m.locked());
    auto h = spawn(throw_while_locked(m));
    REQUIRE_THROWS_AS(co_await h, std::runtime_error);
    CHECK_FALSE(m.locked());
    event never;
    std::vector<int> ids;
    auto holder = spawn(lock_and_hold(m, ids, 1, never));
    co_await settle();
    CHECK(m.locked());
    holder.cancel();
    bool hc = co_await ended_cancelled(holder);
    CHECK(hc);
    CHECK_FALSE(m.locked());

    // A moved-from guard does nothing; unlock() is idempotent.
    auto g1 = co_await m.lock();
    mutex::guard g2 = std::move(g1);
    CHECK_FALSE(g1.owns_lock());
    g1.unlock();
    CHECK(m.locked());
    g2.unlock();
    CHECK_FALSE(m.locked());
    g2.unlock();
    CHECK_FALSE(m.locked());
    auto t = co_await m.try_lock();
    CHECK(t.has_value());
    CHECK(m.locked());
    t.reset();
    CHECK_FALSE(m.locked());
    co_await sleep(U);
}

namespace {
task<std::optional<mutex::guard>> try_lock_in_task(mutex& m) { co_return co_await m.try_lock(); }
/// Whether another task could lock `m` right now (it unlocks again itself:
/// a guard must be released by the task that locked).
task<bool> try_lock_and_release_in_task(mutex& m) {
    auto g = co_await m.try_lock();
    co_return g.has_value();
}
}  // namespace

TEST_CASE("mutex: a waiter cancelled in the round the lock is handed to it passes the lock on") {
    // (a) A holds, B and C wait; B is cancelled in the round A unlocks: C gets it.
    for (int order = 0; order < 2; ++order) {
        CAPTURE(order);
        corio::testing::run_virtual([&]() -> task<void> {
            mutex m;
            std::vector<int> log;
            event done;
            auto a = co_await m.lock();
            auto b = spawn(lock_and_hold(m, log, 2, done));
            auto c = spawn(lock_and_hold(m, log, 3, done));
            co_await settle();
            REQUIRE(m.waiters() == 2);
            if (order == 0) {
                a.unlock();  // hands to B...
                b.cancel();  // ...cancelled before it resumes
            } else {
                b.cancel();
                a.unlock();
            }
            bool bc = co_await ended_cancelled(b);
            CHECK(bc);
            co_await settle();
            CHECK(log == std::vector<int>{3});
            CHECK(m.locked());
            done.set();
            co_await c;
            CHECK_FALSE(m.locked());
            CHECK(m.waiters() == 0);
        });
    }
    // (b) Cancelling t1 and unlocking in one step lets exactly one of t1..t3 lock.
    corio::testing::run_virtual([]() -> task<void> {
        mutex m;
        std::vector<int> log;
        event done;
        auto g = co_await m.lock();
        std::vector<join_handle<void>> t;
        for (int i = 1; i <= 3; ++i) t.push_back(spawn(lock_and_hold(m, log, i, done)));
        co_await settle();
        t[0].cancel();
        g.unlock();
        co_await settle(10);
        CHECK(log.size() == 1);
        CHECK(log == std::vector<int>{2});
        CHECK(m.locked());
        CHECK(m.waiters() == 1);
        done.set();
        bool c0 = co_await ended_cancelled(t[0]);
        CHECK(c0);
        co_await t[1];
        co_await t[2];
        CHECK(log == std::vector<int>{2, 3});
        CHECK_FALSE(m.locked());
    });
    // (c) A waiter woken then cancelled passes the mutex on; with nobody left it unlocks.
    corio::testing::run_virtual([]() -> task<void> {
        mutex m;
        std::vector<int> log;
        event done;
        auto g = co_await m.lock();
        auto t1 = spawn(lock_and_hold(m, log, 1, done));
        co_await settle();
        g.unlock();
        t1.cancel();
        bool c1 = co_await ended_cancelled(t1);
        CHECK(c1);
        CHECK_FALSE(m.locked());  // never left locked with nobody owning it
        bool lockable = co_await spawn(try_lock_and_release_in_task(m));
        CHECK(lockable);
        CHECK(log.empty());
        co_await sleep(U);
    });
}

namespace {
task<void> relock_inner(mutex& m, bool& threw) {
    auto g = co_await m.lock();
    try {
        auto g2 = co_await m.lock();
    } catch (const invalid_state_error& e) {
        threw = std::string(e.what()).find("already holds it") != std::string::npos;
    }
    CHECK(m.locked());
}
task<void> wait_with_foreign_guard(condition_variable& cv, mutex::guard& g) {
    co_await cv.wait(g, [] { return false; });
}
}  // namespace

CORIO_TEST_CASE("mutex: ownership is enforced") {
    mutex m;
    auto g = co_await m.lock();
    REQUIRE_THROWS_AS(co_await m.lock(), invalid_state_error);
    REQUIRE_THROWS_WITH(co_await m.lock(), contains_text("mutex::lock() by the task that already holds it"));
    REQUIRE_THROWS_WITH(co_await m.try_lock(), contains_text("mutex::try_lock() by the task that already holds it"));
    CHECK(m.locked());
    CHECK(m.waiters() == 0);
    g.unlock();
    CHECK_FALSE(m.locked());

    // The same in a spawned task (the owner identity is the task).
    bool threw = false;
    co_await spawn(relock_inner(m, threw));
    CHECK(threw);
    CHECK_FALSE(m.locked());

    // Another task may not wait on our mutex through a guard moved to it.
    condition_variable cv;
    auto mine = co_await m.lock();
    auto h = spawn(wait_with_foreign_guard(cv, mine));
    REQUIRE_THROWS_AS(co_await h, invalid_state_error);
    CHECK(m.locked());
    CHECK(mine.owns_lock());
    // And a try_lock from another task just fails.
    auto other = co_await spawn(try_lock_in_task(m));
    CHECK_FALSE(other.has_value());

    // Releasing through a guard moved to another task is rejected: the
    // mutex stays locked, and the owner can still release it.
    std::string msg;
    auto foreign_unlock = [&]() -> task<void> {
        try {
            mine.unlock();
        } catch (const invalid_state_error& e) {
            msg = e.what();
        }
        co_return;
    };
    co_await spawn(foreign_unlock());
    CHECK(msg.find("does not own the mutex") != std::string::npos);
    CHECK(m.locked());
    CHECK(mine.owns_lock());
    mine.unlock();
    CHECK_FALSE(m.locked());
    co_await sleep(U);
}

// ------------------------------------------------------------------ event ---

namespace {
task<void> wait_event(event& e, std::vector<int>& log, int id) {
    co_await e.wait();
    log.push_back(id);
}
}  // namespace

CORIO_TEST_CASE("event: set wakes every waiter at once, in order; clear and wait again") {
    event e;
    CHECK_FALSE(e.is_set());
    std::vector<int> log;
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < 3; ++i) hs.push_back(spawn(wait_event(e, log, i)));
    co_await settle();
    CHECK(e.waiters() == 3);
    auto start = now();
    e.set();
    CHECK(e.is_set());
    CHECK(e.waiters() == 0);
    for (auto& h : hs) co_await h;
    CHECK(log == std::vector<int>{0, 1, 2});
    CHECK(since(start) == std::chrono::nanoseconds(0));

    // wait() on a set event does not suspend: no other task runs meanwhile.
    bool ran = false;
    auto f = [](bool& r) -> task<void> {
        r = true;
        co_return;
    };
    auto other = spawn(f(ran));
    co_await e.wait();
    CHECK_FALSE(ran);
    co_await other;

    // set(); clear(); before the waiters run still wakes those queued.
    e.clear();
    CHECK_FALSE(e.is_set());
    log.clear();
    hs.clear();
    for (int i = 0; i < 2; ++i) hs.push_back(spawn(wait_event(e, log, i)));
    co_await settle();
    e.set();
    e.clear();
    for (auto& h : hs) co_await h;
    CHECK(log == std::vector<int>{0, 1});
    CHECK_FALSE(e.is_set());

    // A cancelled waiter leaves no entry.
    auto w = spawn(wait_event(e, log, 9));
    co_await settle();
    CHECK(e.waiters() == 1);
    w.cancel();
    bool wc = co_await ended_cancelled(w);
    CHECK(wc);
    CHECK(e.waiters() == 0);
    e.set();
    CHECK(log == std::vector<int>{0, 1});
    co_await sleep(U);
}

TEST_CASE("event: cancel the n-th waiter") {
    constexpr int k = 4;
    for (int n = 0; n < k; ++n) {
        CAPTURE(n);
        corio::testing::run_virtual([&]() -> task<void> {
            event e;
            std::vector<int> log;
            std::vector<join_handle<void>> hs;
            for (int i = 0; i < k; ++i) hs.push_back(spawn(wait_event(e, log, i)));
            co_await settle();
            hs[static_cast<std::size_t>(n)].cancel();
            e.set();
            std::vector<int> expected;
            for (int i = 0; i < k; ++i) {
                bool c = co_await ended_cancelled(hs[static_cast<std::size_t>(i)]);
                CHECK(c == (i == n));
                if (i != n) expected.push_back(i);
            }
            CHECK(log == expected);
            CHECK(e.waiters() == 0);
        });
    }
}

// ----------------------------------------------------- condition_variable ---

namespace {
struct cv_ctx {
    mutex m;
    condition_variable cv;
    int state = 0;
    std::vector<int> log;
    std::vector<join_handle<void>> hs;
};
/// Waits for state > 0, takes one unit, records its id.
task<void> consumer(cv_ctx& c, int id) {
    auto g = co_await c.m.lock();
    co_await c.cv.wait(g, [&c] { return c.state > 0; });
    CHECK(g.owns_lock());
    --c.state;
    c.log.push_back(id);
}
/// Counts how often its predicate was evaluated.
task<void> counting_consumer(cv_ctx& c, int& checks) {
    auto g = co_await c.m.lock();
    co_await c.cv.wait(g, [&] {
        ++checks;
        return c.state >= 2;
    });
    c.log.push_back(checks);
}
}  // namespace

CORIO_TEST_CASE("condition_variable: wait, notify_one, notify_all, wait with a predicate") {
    cv_ctx c;
    // A guard that does not hold its mutex.
    mutex::guard empty;
    REQUIRE_THROWS_AS(co_await c.cv.wait(empty, [] { return true; }), invalid_state_error);
    REQUIRE_THROWS_WITH(co_await c.cv.wait(empty),
                        contains_text("needs a guard that holds its mutex, locked by the calling task"));
    auto g = co_await c.m.lock();
    g.unlock();
    REQUIRE_THROWS_AS(co_await c.cv.wait(g, [] { return true; }), invalid_state_error);

    // A true predicate returns at once, holding the mutex.
    auto g2 = co_await c.m.lock();
    co_await c.cv.wait(g2, [] { return true; });
    CHECK(g2.owns_lock());
    g2.unlock();

    // notify_one wakes one (the oldest), notify_all the rest.
    for (int i = 0; i < 3; ++i) c.hs.push_back(spawn(consumer(c, i)));
    co_await settle();
    CHECK(c.cv.waiters() == 3);
    CHECK_FALSE(c.m.locked());
    c.state = 3;
    c.cv.notify_one();
    co_await settle();
    CHECK(c.log == std::vector<int>{0});
    CHECK(c.cv.waiters() == 2);
    c.cv.notify_all();
    CHECK(c.cv.waiters() == 0);
    for (auto& h : c.hs) co_await h;
    CHECK(c.log == std::vector<int>{0, 1, 2});
    CHECK(c.state == 0);
    CHECK_FALSE(c.m.locked());

    // pred is re-checked after every wake-up.
    int checks = 0;
    c.log.clear();
    auto h = spawn(counting_consumer(c, checks));
    co_await settle();
    CHECK(checks == 1);
    c.state = 1;
    c.cv.notify_one();
    co_await settle();
    CHECK(checks == 2);  // woke, pred false, waits again
    CHECK(c.cv.waiters() == 1);
    c.state = 2;
    c.cv.notify_all();
    co_await h;
    CHECK(checks == 3);
    CHECK(c.log == std::vector<int>{3});
    co_await sleep(U);
}

namespace {
struct relock_report {
    bool cancelled = false;
    bool owned_in_handler = false;
    bool mutex_locked_in_handler = false;
    clock::duration at{};
};
task<void> cancellable_waiter(cv_ctx& c, relock_report& r, clock::time_point start) {
    auto g = co_await c.m.lock();
    try {
        co_await c.cv.wait(g, [&c] { return c.state > 0; });
    } catch (const cancelled_error&) {
        r.cancelled = true;
        r.owned_in_handler = g.owns_lock();
        r.mutex_locked_in_handler = c.m.locked();
        r.at = now() - start;
        throw;
    }
}
task<void> hold_for(mutex& m, clock::duration d) {
    auto g = co_await m.lock();
    co_await sleep(d);
}
}  // namespace

TEST_CASE("condition_variable: a cancelled wait re-locks before throwing") {
    // Uncontended.
    corio::testing::run_virtual([]() -> task<void> {
        cv_ctx c;
        relock_report r;
        auto h = spawn(cancellable_waiter(c, r, now()));
        co_await sleep(U);
        h.cancel();
        bool hc = co_await ended_cancelled(h);
        CHECK(hc);
        CHECK(r.cancelled);
        CHECK(r.owned_in_handler);
        CHECK(r.mutex_locked_in_handler);
        CHECK(r.at == U);
        CHECK_FALSE(c.m.locked());
        CHECK(c.cv.waiters() == 0);
    });
    // Contended: the holder keeps the mutex until 3U; the waiter throws only then.
    corio::testing::run_virtual([]() -> task<void> {
        cv_ctx c;
        relock_report r;
        auto start = now();
        auto h = spawn(cancellable_waiter(c, r, start));
        co_await settle();
        auto holder = spawn(hold_for(c.m, 3 * U));
        co_await sleep(U);
        h.cancel();
        bool hc = co_await ended_cancelled(h);
        CHECK(hc);
        CHECK(r.owned_in_handler);
        CHECK(r.at == 3 * U);
        co_await holder;
        CHECK_FALSE(c.m.locked());
    });
    // Notified first, then cancelled before it resumed.
    corio::testing::run_virtual([]() -> task<void> {
        cv_ctx c;
        relock_report r;
        auto h = spawn(cancellable_waiter(c, r, now()));
        co_await settle();
        c.state = 1;
        c.cv.notify_one();
        h.cancel();
        bool hc = co_await ended_cancelled(h);
        CHECK(hc);
        CHECK(r.owned_in_handler);
        CHECK(r.mutex_locked_in_handler);
        CHECK(c.state == 1);  // it did not consume the item
        CHECK_FALSE(c.m.locked());
    });
    // timeout(U, cv.wait(lock, pred)) leaves the mutex held.
    corio::testing::run_virtual([]() -> task<void> {
        cv_ctx c;
        auto start = now();
        auto g = co_await c.m.lock();
        REQUIRE_THROWS_AS(co_await timeout(U, c.cv.wait(g, [&c] { return c.state > 0; })), timeout_error);
        CHECK(since(start) == U);
        CHECK(g.owns_lock());
        CHECK(c.m.locked());
        auto other = co_await spawn(try_lock_in_task(c.m));
        CHECK_FALSE(other.has_value());
        g.unlock();
        co_await sleep(U);
    });
}

CORIO_TEST_CASE("condition_variable: no lost wake-up") {
    cv_ctx c;
    c.hs.push_back(spawn(consumer(c, 1)));
    c.hs.push_back(spawn(consumer(c, 2)));
    co_await settle();
    REQUIRE(c.cv.waiters() == 2);
    auto start = now();
    c.state = 1;
    c.cv.notify_one();  // chooses consumer 1...
    c.hs[0].cancel();   // ...which is cancelled in the same round
    bool c1 = co_await ended_cancelled(c.hs[0]);
    CHECK(c1);
    co_await c.hs[1];
    CHECK(c.log == std::vector<int>{2});
    CHECK(c.state == 0);
    CHECK(since(start) < U);
    CHECK(c.cv.waiters() == 0);
    co_await sleep(U);
}

TEST_CASE("condition_variable: cancel the n-th waiter, while waiting and after the notify") {
    constexpr int k = 5;
    for (int mode = 0; mode < 2; ++mode) {
        for (int n = 0; n < k; ++n) {
            CAPTURE(mode, n);
            corio::testing::run_virtual([&]() -> task<void> {
                cv_ctx c;
                for (int i = 0; i < k; ++i) c.hs.push_back(spawn(consumer(c, i)));
                co_await settle();
                REQUIRE(c.cv.waiters() == static_cast<std::size_t>(k));
                if (mode == 0) c.hs[static_cast<std::size_t>(n)].cancel();
                // k - 1 items, one per round.
                for (int i = 0; i < k - 1; ++i) {
                    ++c.state;
                    c.cv.notify_one();
                    if (mode == 1 && i == n) c.hs[static_cast<std::size_t>(n)].cancel();
                    co_await settle();
                }
                if (mode == 1 && n == k - 1) {
                    c.cv.notify_one();  // the last one is notified with nothing to take
                    c.hs[static_cast<std::size_t>(n)].cancel();
                }
                std::vector<int> expected;
                for (int i = 0; i < k; ++i) {
                    bool cancelled = co_await ended_cancelled(c.hs[static_cast<std::size_t>(i)]);
                    CHECK(cancelled == (i == n));
                    if (i != n) expected.push_back(i);
                }
                CHECK(c.log == expected);  // no item lost, FIFO order of the rest
                CHECK(c.state == 0);
                CHECK_FALSE(c.m.locked());
                CHECK(c.cv.waiters() == 0);
                CHECK(c.m.waiters() == 0);
            });
        }
    }
}

TEST_CASE("mutex: cancel the n-th waiter, while waiting and after the hand-off") {
    constexpr int k = 5;
    for (int mode = 0; mode < 2; ++mode) {
        for (int n = 0; n < k; ++n) {
            CAPTURE(mode, n);
            corio::testing::run_virtual([&]() -> task<void> {
                mutex m;
                std::vector<int> log;
                std::vector<join_handle<void>> hs;
                int cancel_after = mode == 1 ? n - 1 : -2;
                auto relay = [](mutex& m, std::vector<int>& log, std::vector<join_handle<void>>& hs, int id,
                                int cancel_after) -> task<void> {
                    auto g = co_await m.lock();
                    log.push_back(id);
                    g.unlock();  // hands the mutex to the next waiter
                    if (id == cancel_after) hs[static_cast<std::size_t>(id) + 1].cancel();
                };
                auto g = co_await m.lock();
                for (int i = 0; i < k; ++i) hs.push_back(spawn(relay(m, log, hs, i, cancel_after)));
                co_await settle();
                REQUIRE(m.waiters() == static_cast<std::size_t>(k));
                if (mode == 0 || n == 0) {
                    if (mode == 0) hs[static_cast<std::size_t>(n)].cancel();
                    g.unlock();
                    if (mode == 1) hs[0].cancel();
                } else {
                    g.unlock();
                }
                std::vector<int> expected;
                for (int i = 0; i < k; ++i) {
                    bool c = co_await ended_cancelled(hs[static_cast<std::size_t>(i)]);
                    CHECK(c == (i == n));
                    if (i != n) expected.push_back(i);
                }
                CHECK(log == expected);
                CHECK_FALSE(m.locked());
                CHECK(m.waiters() == 0);
            });
        }
    }
}

// ---------------------------------------------------------------- barrier ---

namespace {
task<void> arrive(barrier& b, std::vector<std::ptrdiff_t>& idx) {
    std::ptrdiff_t i = co_await b.arrive_and_wait();
    idx.push_back(i);
}
task<void> arrive_expect_broken(barrier& b, int& broken) {
    try {
        co_await b.arrive_and_wait();
    } catch (const broken_barrier&) {
        ++broken;
    }
}
}  // namespace

CORIO_TEST_CASE("barrier: rounds, distinct indices, no early release") {
    barrier b(3);
    CHECK(b.parties() == 3);
    std::vector<std::ptrdiff_t> idx;
    auto h1 = spawn(arrive(b, idx));
    auto h2 = spawn(arrive(b, idx));
    co_await sleep(U);
    CHECK(idx.empty());
    CHECK(b.n_waiting() == 2);
    std::ptrdiff_t mine = co_await b.arrive_and_wait();  // the last: no suspension
    CHECK(mine == 2);
    co_await h1;
    co_await h2;
    std::sort(idx.begin(), idx.end());
    CHECK(idx == std::vector<std::ptrdiff_t>{0, 1});
    CHECK(b.n_waiting() == 0);
    // The barrier resets for the next round.
    idx.clear();
    auto h3 = spawn(arrive(b, idx));
    auto h4 = spawn(arrive(b, idx));
    auto h5 = spawn(arrive(b, idx));
    co_await h3;
    co_await h4;
    co_await h5;
    std::sort(idx.begin(), idx.end());
    CHECK(idx == std::vector<std::ptrdiff_t>{0, 1, 2});
    barrier one(1);
    std::ptrdiff_t solo = co_await one.arrive_and_wait();
    CHECK(solo == 0);
}

CORIO_TEST_CASE("barrier: abort and reset") {
    barrier b(3);
    int broken = 0;
    auto h1 = spawn(arrive_expect_broken(b, broken));
    auto h2 = spawn(arrive_expect_broken(b, broken));
    co_await settle();
    b.abort();
    co_await h1;
    co_await h2;
    CHECK(broken == 2);
    CHECK(b.broken());
    REQUIRE_THROWS_AS(co_await b.arrive_and_wait(), broken_barrier);
    b.reset();
    CHECK_FALSE(b.broken());
    auto h3 = spawn(arrive_expect_broken(b, broken));
    co_await settle();
    b.reset();  // wakes the waiter with broken_barrier, stays usable
    co_await h3;
    CHECK(broken == 3);
    std::vector<std::ptrdiff_t> idx;
    auto h4 = spawn(arrive(b, idx));
    auto h5 = spawn(arrive(b, idx));
    co_await settle();
    std::ptrdiff_t last = co_await b.arrive_and_wait();
    co_await h4;
    co_await h5;
    CHECK(last == 2);
    CHECK(idx == std::vector<std::ptrdiff_t>{0, 1});
}

TEST_CASE("barrier: bad input") {
    CHECK_THROWS_AS(barrier(0), std::invalid_argument);
    CHECK_THROWS_WITH(barrier(0), contains_text("barrier needs at least 1 party, got 0"));
    CHECK_THROWS_AS(barrier(-2), std::invalid_argument);
}

TEST_CASE("barrier: cancel the n-th waiter, its arrival is withdrawn") {
    constexpr int k = 4;  // parties = k; k-1 waiters, one cancelled, two more arrive
    for (int n = 0; n < k - 1; ++n) {
        CAPTURE(n);
        corio::testing::run_virtual([&]() -> task<void> {
            barrier b(k);
            std::vector<std::ptrdiff_t> idx;
            std::vector<join_handle<void>> hs;
            for (int i = 0; i < k - 1; ++i) hs.push_back(spawn(arrive(b, idx)));
            co_await settle();
            hs[static_cast<std::size_t>(n)].cancel();
            co_await settle();
            CHECK(b.n_waiting() == static_cast<std::size_t>(k - 2));
            CHECK(idx.empty());
            hs.push_back(spawn(arrive(b, idx)));
            co_await settle();
            CHECK(idx.empty());  // one short: the cancelled arrival does not count
            std::ptrdiff_t last = co_await b.arrive_and_wait();
            CHECK(last == k - 1);
            for (std::size_t i = 0; i < hs.size(); ++i) {
                bool c = co_await ended_cancelled(hs[i]);
                CHECK(c == (static_cast<int>(i) == n));
            }
            std::sort(idx.begin(), idx.end());
            CHECK(idx == std::vector<std::ptrdiff_t>{0, 1, 2});
            CHECK(b.n_waiting() == 0);
        });
    }
}

CORIO_TEST_CASE("task_group: an abort wakes mutex, event, cv and barrier waiters") {
    cv_ctx c;
    event e;
    barrier b(2);
    std::vector<int> log;
    event never;
    auto holder = co_await c.m.lock();
    std::vector<join_handle<void>> hs;
    hs.push_back(spawn(lock_and_hold(c.m, log, 1, never)));
    hs.push_back(spawn(wait_event(e, log, 2)));
    std::vector<std::ptrdiff_t> idx;
    hs.push_back(spawn(arrive(b, idx)));
    holder.unlock();
    co_await settle();  // lock_and_hold owns the mutex now, waiting on `never`
    hs.push_back(spawn(consumer(c, 3)));
    co_await settle();
    for (auto& h : hs) h.cancel();
    for (auto& h : hs) {
        bool cc = co_await ended_cancelled(h);
        CHECK(cc);
    }
    CHECK(log == std::vector<int>{1});
    CHECK_FALSE(c.m.locked());
    CHECK(c.m.waiters() == 0);
    CHECK(c.cv.waiters() == 0);
    CHECK(e.waiters() == 0);
    CHECK(b.n_waiting() == 0);
}

CORIO_TEST_CASE("mutex and condition_variable: in an already-cancelled scope lock and wait throw before suspending") {
    bool other_ran = false;
    auto other = spawn(owned([&]() -> task<void> {
        other_ran = true;
        co_return;
    }));
    mutex m;
    condition_variable cv;
    auto g = co_await m.lock();
    cancel_scope sc;
    sc.cancel();
    // A wait in a cancelled scope never releases the mutex and leaves no waiter.
    const bool waited = co_await sc.run(cv.wait(g));
    CHECK_FALSE(waited);
    CHECK(sc.cancelled_caught());
    CHECK_FALSE(other_ran);  // never suspended: the task ready meanwhile has not run yet
    CHECK(cv.waiters() == 0);
    CHECK(g.owns_lock());
    CHECK(m.locked());
    // A contended lock in a cancelled scope does not queue: the holder's
    // unlock frees the mutex instead of handing it on.
    auto locker = spawn(owned([&]() -> task<void> {
        cancel_scope inner;
        inner.cancel();
        std::optional<mutex::guard> got = co_await inner.run(m.lock());
        CHECK_FALSE(got);
        CHECK(inner.cancelled_caught());
        CHECK(m.waiters() == 0);
    }));
    co_await locker;
    CHECK(other_ran);
    g.unlock();
    CHECK_FALSE(m.locked());
    // A free mutex is no cancellation point: it is taken even so.
    cancel_scope sc2;
    sc2.cancel();
    std::optional<mutex::guard> free_lock = co_await sc2.run(m.lock());
    REQUIRE(free_lock);
    CHECK(free_lock->owns_lock());
    CHECK_FALSE(sc2.cancelled_caught());
    co_await other;
}
