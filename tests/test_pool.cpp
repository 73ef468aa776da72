// Tests for corio/pool.hpp: bounded reuse, FIFO, RAII leases, cancel-safe
// acquires and creations, factory errors, idle/lifetime limits, health
// checks, close; cancellation injected at each suspension point; a seeded
// stress test; bad input; every combinator.
#include <corio/pool.hpp>

#include <corio/corio.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "support/corio_test.hpp"

using namespace corio;
using namespace corio_test;

namespace {

struct boom : std::runtime_error {
    boom() : std::runtime_error("boom") {}
    using std::runtime_error::runtime_error;
};

/// Counts what the resources of one pool do.
struct tracker {
    int next_id = 0;
    int alive = 0;  // from the start of a creation to the end of its aclose()
    int max_alive = 0;
    int created = 0;
    std::map<int, int> closes;  // id -> times aclose() finished
    clock::duration create_time = U;
    clock::duration close_time = clock::duration::zero();
    std::vector<int> fail_ids;  // creations (by id) that throw
    std::vector<clock::duration> closed_at;

    int closed_total() const {
        int n = 0;
        for (auto& [id, c] : closes) n += c;
        return n;
    }
    bool each_closed_once() const {
        if (static_cast<int>(closes.size()) != created) return false;
        return std::all_of(closes.begin(), closes.end(), [](auto& kv) { return kv.second == 1; });
    }
};

struct res {
    tracker* t;
    int id;
    int uses = 0;
    task<void> aclose() {
        if (t->close_time != clock::duration::zero()) co_await sleep(t->close_time);
        ++t->closes[id];
        --t->alive;
    }
};

/// A factory (a named callable: it must outlive the pool's jobs).
struct make_res {
    tracker* t;
    task<res> operator()() const {
        int id = ++t->next_id;
        ++t->alive;
        t->max_alive = std::max(t->max_alive, t->alive);
        try {
            co_await sleep(t->create_time);
        } catch (...) {
            --t->alive;
            throw;
        }
        if (std::find(t->fail_ids.begin(), t->fail_ids.end(), id) != t->fail_ids.end()) {
            --t->alive;
            throw boom("factory failed for " + std::to_string(id));
        }
        ++t->created;
        co_return res{t, id};
    }
};

using opts = pool_options<res>;

opts sized(std::size_t n) {
    opts o;
    o.max_size = n;
    return o;
}

}  // namespace

CORIO_TEST_CASE("a pool is bounded, reuses its resources and serves acquires FIFO") {
    tracker t;
    pool<res> p(make_res{&t}, sized(3));
    std::vector<int> order;
    std::vector<clock::duration> finished(10);
    auto t0 = now();
    auto user = [&](int i) -> task<void> {
        auto c = co_await p.acquire();
        order.push_back(i);
        ++c->uses;
        co_await sleep(2 * U);
        finished[i] = since(t0);
    };
    std::vector<task<void>> users;
    for (int i = 0; i < 10; ++i) users.push_back(user(i));
    co_await gather(std::move(users));
    CHECK(t.max_alive == 3);
    CHECK(t.created == 3);
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    for (int i = 0; i < 10; ++i) CHECK(finished[i] == U + (i / 3 + 1) * 2 * U);
    auto s = p.stats();
    CHECK(s.size == 3);
    CHECK(s.idle == 3);
    CHECK(s.in_use == 0);
    CHECK(s.created == 3);
    co_await p.close();
    CHECK(t.each_closed_once());
    CHECK(p.stats().closed == 3);
    CHECK(p.stats().size == 0);
}

CORIO_TEST_CASE("a lease reaches its resource, and returning it wakes the first waiter in the same loop turn") {
    tracker t;
    pool<res> p(make_res{&t}, sized(1));
    clock::duration got_at{};
    auto t0 = now();
    auto waiter = [&]() -> task<int> {
        auto c = co_await p.acquire();
        got_at = since(t0);
        co_return (*c).id;
    };
    auto first = co_await p.acquire();
    CHECK(first->id == 1);
    CHECK(first.get().id == 1);
    auto h = spawn(waiter());
    co_await sleep(3 * U);
    CHECK(p.stats().waiters == 1);
    { auto done = std::move(first); }  // returned here, at U + 3U
    int id = co_await h;
    CHECK(id == 1);
    CHECK(got_at == 4 * U);
    co_await p.close();
}

CORIO_TEST_CASE("a discarded lease is closed by the pool, awaiting aclose, and replaced on demand") {
    tracker t;
    t.close_time = U;
    pool<res> p(make_res{&t}, sized(1));
    auto c = co_await p.acquire();
    c.discard();
    CHECK(!c);
    CHECK(p.stats().size == 1);  // still closing
    auto t0 = now();
    auto d = co_await p.acquire();  // waits for the close (U) and a new creation (U)
    CHECK(since(t0) == 2 * U);
    CHECK(d->id == 2);
    CHECK(t.closes[1] == 1);
    d.release();
    co_await p.close();
    CHECK(t.each_closed_once());
    CHECK(t.max_alive == 1);
}

CORIO_TEST_CASE("a waiter cancelled while queued consumes nothing: the release goes to the next waiter") {
    tracker t;
    pool<res> p(make_res{&t}, sized(1));
    std::vector<std::string> log;
    auto a = co_await p.acquire();
    auto waiter = [&](std::string name) -> task<void> {
        auto c = co_await p.acquire();
        log.push_back(name);
    };
    auto b = spawn(waiter("b"));
    auto c = spawn(waiter("c"));
    co_await settle();
    CHECK(p.stats().waiters == 2);
    b.cancel();
    bool cancelled = co_await ended_cancelled(b);
    CHECK(cancelled);
    CHECK(p.stats().waiters == 1);
    a.release();
    co_await c;
    CHECK(log == std::vector<std::string>{"c"});
    CHECK(t.created == 1);
    co_await p.close();
}

CORIO_TEST_CASE("a waiter cancelled after the hand-off, before it resumed, passes the resource on") {
    tracker t;
    pool<res> p(make_res{&t}, sized(1));
    auto a = co_await p.acquire();
    std::vector<std::string> log;
    auto waiter = [&](std::string name) -> task<void> {
        auto c = co_await p.acquire();
        log.push_back(name);
    };
    auto b = spawn(waiter("b"));
    auto c = spawn(waiter("c"));
    co_await settle();
    a.release();  // handed to b, which is scheduled but has not run
    b.cancel();
    bool cancelled = co_await ended_cancelled(b);
    CHECK(cancelled);
    co_await c;
    CHECK(log == std::vector<std::string>{"c"});
    CHECK(p.stats().in_use == 0);
    co_await p.close();
}

CORIO_TEST_CASE("an acquire cancelled while the factory creates: the resource still finishes and goes idle") {
    tracker t;
    t.create_time = 2 * U;
    pool<res> p(make_res{&t}, sized(1));
    auto t0 = now();
    REQUIRE_THROWS_AS(co_await timeout(U, p.acquire()), timeout_error);
    CHECK(since(t0) == U);
    CHECK(p.stats().size == 1);  // still being created
    co_await sleep(U);
    CHECK(p.stats().idle == 1);
    auto t1 = now();
    auto c = co_await p.acquire();
    CHECK(since(t1) == clock::duration::zero());
    CHECK(c->id == 1);
    CHECK(t.created == 1);
    c.release();
    co_await p.close();
    CHECK(t.each_closed_once());
}

CORIO_TEST_CASE("a creation whose acquire was cancelled goes to the next waiter") {
    tracker t;
    t.create_time = 2 * U;
    pool<res> p(make_res{&t}, sized(1));
    auto t0 = now();
    auto late = [&]() -> task<clock::duration> {
        co_await sleep(U / 2);
        auto c = co_await p.acquire();
        co_return since(t0);
    };
    auto h = spawn(late());
    REQUIRE_THROWS_AS(co_await timeout(U, p.acquire()), timeout_error);
    auto got = co_await h;
    CHECK(got == 2 * U);
    CHECK(t.created == 1);
    co_await p.close();
}

CORIO_TEST_CASE("a factory error fails that acquire only, frees the slot, and the pool creates again") {
    tracker t;
    t.fail_ids = {1};
    pool<res> p(make_res{&t}, sized(1));
    std::string error;
    auto first = [&]() -> task<void> {
        try {
            auto c = co_await p.acquire();
            FAIL("acquire did not throw");
        } catch (const boom& e) {
            error = e.what();
        }
    };
    auto second = [&]() -> task<int> {
        auto c = co_await p.acquire();
        co_return c->id;
    };
    auto h1 = spawn(first());
    auto h = spawn(second());
    co_await h1;
    CHECK(error == "factory failed for 1");
    int id = co_await h;
    CHECK(id == 2);
    CHECK(p.stats().size == 1);
    CHECK(p.stats().created == 1);
    co_await p.close();
    CHECK(t.each_closed_once());
}

CORIO_TEST_CASE("a resource idle for max_idle_time is closed by the pool, awaiting aclose") {
    tracker t;
    t.close_time = U;
    opts o = sized(2);
    o.max_idle_time = 5 * U;
    pool<res> p(make_res{&t}, o);
    auto t0 = now();
    {
        auto c = co_await p.acquire();  // created at U, returned at U
    }
    co_await sleep(5 * U - clock::duration(1));
    CHECK(t.closes.empty());
    co_await sleep(clock::duration(1) + U / 2);  // idle since U: closing starts at 6U, takes U
    CHECK(t.closes.empty());
    CHECK(p.stats().size == 1);
    co_await sleep(U / 2 + clock::duration(1));
    CHECK(since(t0) == 7 * U + clock::duration(1));
    CHECK(t.closes[1] == 1);
    CHECK(p.stats().size == 0);
    CHECK(p.stats().closed == 1);
    co_await p.close();
}

CORIO_TEST_CASE("min_idle keeps resources idle and the idle reaper stops there") {
    tracker t;
    opts o = sized(5);
    o.min_idle = 2;
    o.max_idle_time = 5 * U;
    pool<res> p(make_res{&t}, o);
    {
        auto c = co_await p.acquire();
        co_await sleep(U);
        CHECK(p.stats().idle == 2);
        CHECK(p.stats().in_use == 1);
    }
    co_await sleep(20 * U);
    CHECK(p.stats().idle == 2);
    CHECK(p.stats().closed == 1);
    co_await p.close();
    CHECK(t.each_closed_once());
}

CORIO_TEST_CASE("a resource older than max_lifetime is closed when it is returned instead of being reused") {
    tracker t;
    opts o = sized(1);
    o.max_lifetime = 20 * U;
    pool<res> p(make_res{&t}, o);
    auto c = co_await p.acquire();  // born at U
    CHECK(c->id == 1);
    c.release();
    co_await sleep(10 * U);
    c = co_await p.acquire();  // 11U: still young
    CHECK(c->id == 1);
    co_await sleep(15 * U);
    c.release();  // 26U: too old
    co_await settle();
    CHECK(t.closes[1] == 1);
    c = co_await p.acquire();
    CHECK(c->id == 2);
    c.release();
    co_await p.close();
    CHECK(t.each_closed_once());
}

CORIO_TEST_CASE("a health check runs on a resource idle longer than check_after; a failing one is replaced") {
    tracker t;
    int checks = 0;
    opts o = sized(2);
    o.check_after = 3 * U;
    o.check = [&](res& r) -> task<bool> {
        ++checks;
        co_await sleep(U);
        co_return r.id != 1;
    };
    pool<res> p(make_res{&t}, o);
    auto c = co_await p.acquire();
    c.release();
    c = co_await p.acquire();  // idle 0: no check
    CHECK(checks == 0);
    CHECK(c->id == 1);
    c.release();
    co_await sleep(4 * U);
    auto t0 = now();
    c = co_await p.acquire();  // idle 4U: checked (U), fails, a new one (U)
    CHECK(checks == 1);
    CHECK(c->id == 2);
    CHECK(since(t0) == 2 * U);
    CHECK(t.closes[1] == 1);
    c.release();
    co_await p.close();
    CHECK(t.each_closed_once());
}

CORIO_TEST_CASE("close wakes waiters with invalid_state_error, waits for every lease, then closes everything") {
    tracker t;
    t.close_time = U;
    pool<res> p(make_res{&t}, sized(2));
    auto a = co_await p.acquire();
    auto b = co_await p.acquire();
    b.release();
    b = co_await p.acquire();
    std::string woken;
    auto waiter = [&]() -> task<void> {
        try {
            auto c = co_await p.acquire();
        } catch (const invalid_state_error& e) {
            woken = e.what();
        }
    };
    auto w = spawn(waiter());
    co_await settle();
    auto holder = [&]() -> task<void> {
        co_await sleep(3 * U);
        a.release();
        b.release();
    };
    auto hh = spawn(holder());
    auto t0 = now();
    co_await p.close();
    CHECK(since(t0) == 3 * U + U);  // leases back at 3U, then closes take U (concurrently)
    co_await w;
    co_await hh;
    CHECK(woken.find("closed while this acquire() waited") != std::string::npos);
    CHECK(t.each_closed_once());
    CHECK(t.created == 2);
    try {
        auto c = co_await p.acquire();
        FAIL("acquire on a closed pool did not throw");
    } catch (const invalid_state_error& e) {
        CHECK(std::string(e.what()).find("closed pool") != std::string::npos);
    }
    co_await p.close();  // again: returns at once
}

CORIO_TEST_CASE("a cancelled close leaves the pool closing; closing again finishes") {
    tracker t;
    pool<res> p(make_res{&t}, sized(1));
    auto a = co_await p.acquire();
    bool done = co_await move_on_after(U, p.close());
    CHECK(!done);
    REQUIRE_THROWS_AS(co_await p.acquire(), invalid_state_error);
    a.release();
    co_await p.close();
    CHECK(t.each_closed_once());
}

CORIO_TEST_CASE("a task cancelled while holding a lease returns it through RAII") {
    tracker t;
    pool<res> p(make_res{&t}, sized(1));
    auto holder = [&]() -> task<void> {
        auto c = co_await p.acquire();
        co_await sleep(forever);
    };
    auto h = spawn(holder());
    co_await sleep(2 * U);
    CHECK(p.stats().in_use == 1);
    h.cancel();
    bool cancelled = co_await ended_cancelled(h);
    CHECK(cancelled);
    CHECK(p.stats().in_use == 0);
    CHECK(p.stats().idle == 1);
    co_await p.close();
}

CORIO_TEST_CASE("a cancellation in a close job's aclose is impossible: pool jobs close shielded") {
    tracker t;
    t.close_time = 2 * U;
    pool<res> p(make_res{&t}, sized(1));
    auto c = co_await p.acquire();
    c.discard();
    // close() cancelled while the aclose job runs: the job finishes anyway.
    bool done = co_await move_on_after(U, p.close());
    CHECK(!done);
    co_await p.close();
    CHECK(t.closes[1] == 1);
}

TEST_CASE("an aclose error is reported to the loop, and the resource is dropped") {
    struct bad {
        task<void> aclose() {
            throw boom("close failed");
            co_return;
        }
    };
    corio::testing::run_virtual(
        []() -> task<void> {
            auto f = []() -> task<bad> { co_return bad{}; };
            pool<bad> p(f, pool_options<bad>{});
            auto c = co_await p.acquire();
            c.discard();
            co_await p.close();
            CHECK(p.stats().closed == 1);
        },
        corio::testing::expect_unhandled(1));
}

CORIO_TEST_CASE("a resource without aclose is destroyed when closed") {
    int made = 0;
    auto f = [&]() -> task<int> { co_return ++made; };
    pool<int> p(f, pool_options<int>{.max_size = 2});
    auto a = co_await p.acquire();
    CHECK(*a == 1);
    a.discard();
    a = co_await p.acquire();
    CHECK(*a == 2);
    a.release();
    co_await p.close();
    CHECK(p.stats().closed == 2);
}

CORIO_TEST_CASE("discarding a resource without aclose while a task waits creates its replacement for that task") {
    int made = 0;
    auto f = [&]() -> task<int> {
        co_await sleep(U);
        co_return ++made;
    };
    pool<int> p(f, pool_options<int>{.max_size = 1});
    auto a = co_await p.acquire();
    auto waiter = [&]() -> task<int> {
        auto l = co_await p.acquire();
        co_return *l;
    };
    auto h = spawn(waiter());
    co_await settle();
    auto t0 = now();
    a.discard();
    int got = co_await h;
    CHECK(got == 2);
    CHECK(since(t0) == U);
    co_await p.close();
}

CORIO_TEST_CASE("an acquire cancelled during the health check consumes nothing: the checked resource goes idle") {
    tracker t;
    opts o = sized(1);
    o.check_after = U;
    o.check = [](res&) -> task<bool> {
        co_await sleep(2 * U);
        co_return true;
    };
    pool<res> p(make_res{&t}, o);
    { auto c = co_await p.acquire(); }
    co_await sleep(2 * U);
    REQUIRE_THROWS_AS(co_await timeout(U, p.acquire()), timeout_error);
    co_await sleep(U);  // the check ends at 2U after it started
    CHECK(p.stats().idle == 1);
    auto t0 = now();
    auto c = co_await p.acquire();  // checked just now: no new check
    CHECK(since(t0) == clock::duration::zero());
    CHECK(c->id == 1);
    c.release();
    co_await p.close();
    CHECK(t.each_closed_once());
}

CORIO_TEST_CASE("a pool destroyed without close() closes its idle resources in background jobs") {
    tracker t;
    t.close_time = U;
    auto p = std::make_unique<pool<res>>(make_res{&t}, sized(2));
    {
        auto a = co_await p->acquire();
        auto b = co_await p->acquire();
    }
    p.reset();
    CHECK(t.closes.empty());
    co_await sleep(2 * U);
    CHECK(t.each_closed_once());
    CHECK(t.created == 2);
}

TEST_CASE("a pool destroyed without close() as its loop's main task ends still closes its resources") {
    tracker t;
    {
        event_loop loop(run_options{.virtual_time = true});
        auto body = [&]() -> task<void> {
            auto p = std::make_unique<pool<res>>(make_res{&t}, sized(1));
            { auto a = co_await p->acquire(); }
            p.reset();  // spawns a close job: the loop cancels it and waits, its aclose is shielded
        };
        loop.run_until_complete(body());
    }
    CHECK(t.created == 1);
    CHECK(t.each_closed_once());
}

// ------------------------------------------------------------ bad input ---

TEST_CASE("bad pool options throw invalid_argument saying what was wrong") {
    tracker t;
    auto msg = [&](opts o) -> std::string {
        try {
            pool<res> p(make_res{&t}, o);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "";
    };
    CHECK(msg(sized(0)).find("max_size must be at least 1") != std::string::npos);
    opts o = sized(2);
    o.min_idle = 3;
    CHECK(msg(o).find("min_idle (3) exceeds max_size (2)") != std::string::npos);
    o = sized(2);
    o.max_idle_time = clock::duration::zero();
    CHECK(msg(o).find("must be positive") != std::string::npos);
    std::function<task<res>()> empty;
    REQUIRE_THROWS_WITH(pool<res>(empty), contains_text("needs a factory"));
}

CORIO_TEST_CASE("a lease used after it was returned, discarded or moved from throws invalid_state_error") {
    tracker t;
    pool<res> p(make_res{&t}, sized(2));
    auto a = co_await p.acquire();
    a.release();
    CHECK_THROWS_WITH(a->id, contains_text("returned, discarded or moved from"));
    a = co_await p.acquire();
    a.discard();
    CHECK_THROWS_AS(*a, invalid_state_error);
    CHECK_THROWS_AS(a.discard(), invalid_state_error);
    a.release();  // a no-op on an empty lease
    auto b = co_await p.acquire();
    auto c = std::move(b);
    CHECK_THROWS_AS(b.get(), invalid_state_error);
    CHECK(c->id >= 1);
    c.release();
    co_await p.close();
}

TEST_CASE("a pool destroyed with a lease out says so on stderr (and asserts in debug builds)") {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // The child reports only through stderr and its exit status.
        std::signal(SIGABRT, SIG_DFL);
        dup2(fds[1], 2);
        if (std::FILE* null = std::fopen("/dev/null", "w")) dup2(fileno(null), 1);
        close(fds[0]);
        event_loop loop(run_options{.virtual_time = true});
        tracker t;
        auto body = [&]() -> task<void> {
            auto p = std::make_unique<pool<res>>(make_res{&t}, sized(1));
            auto c = co_await p->acquire();
            p.reset();  // programming error: c is still out
            c.release();
        };
        loop.run_until_complete(body());
        std::fflush(stderr);
        _exit(0);
    }
    close(fds[1]);
    std::string out;
    char buf[512];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(out.find("pool destroyed with 1 lease(s) still out") != std::string::npos);
#ifdef NDEBUG
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
#else
    CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT));
#endif
}

// --------------------------------------------------------------- stress ---

CORIO_TEST_CASE("stress: 10,000 tasks share a pool of 10 with random holds, cancellations and a failing factory") {
    std::mt19937 rng(12345);
    tracker t;
    t.create_time = U / 2;
    // 5% of creations fail, chosen up front from the seed.
    for (int id = 1; id <= 20000; ++id)
        if (std::uniform_int_distribution<int>(0, 99)(rng) < 5) t.fail_ids.push_back(id);
    t.close_time = U / 5;
    pool<res> p(make_res{&t}, sized(10));
    struct record {
        int seq;
        clock::time_point got;
    };
    std::vector<record> served;
    int failures = 0, cancelled = 0, leases_out = 0, max_out = 0;
    int seq = 0;
    auto user = [&](clock::duration hold, bool discard) -> task<void> {
        int my = seq++;
        try {
            auto c = co_await p.acquire();
            served.push_back({my, now()});
            max_out = std::max(max_out, ++leases_out);
            struct out_guard {
                int& n;
                ~out_guard() { --n; }
            } g{leases_out};
            co_await sleep(hold);
            if (discard) c.discard();
        } catch (const boom&) {
            ++failures;
        }
    };
    auto maybe_cancelled = [&](clock::duration hold, bool discard, clock::duration limit) -> task<void> {
        bool done = co_await move_on_after(limit, user(hold, discard));
        if (!done) ++cancelled;
    };
    std::vector<task<void>> users;
    for (int i = 0; i < 10000; ++i) {
        auto hold = std::uniform_int_distribution<int>(0, 2000)(rng) * std::chrono::microseconds(1);
        bool discard = std::uniform_int_distribution<int>(0, 99)(rng) < 2;
        if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
            auto limit = std::uniform_int_distribution<int>(0, 400)(rng) * U;
            users.push_back(maybe_cancelled(hold, discard, limit));
        } else {
            users.push_back(user(hold, discard));
        }
    }
    co_await gather(std::move(users));
    co_await p.close();
    CHECK(t.max_alive <= 10);
    CHECK(max_out <= 10);
    CHECK(t.each_closed_once());
    CHECK(t.alive == 0);
    CHECK(failures > 0);
    CHECK(cancelled > 0);
    CHECK(static_cast<int>(served.size()) + failures + cancelled >= 10000);
    // FIFO, no starvation: served in request order.
    for (std::size_t i = 1; i < served.size(); ++i) {
        if (served[i].seq > served[i - 1].seq) continue;
        FAIL("served out of order");
    }
    auto s = p.stats();
    CHECK(s.size == 0);
    CHECK(s.created == static_cast<std::size_t>(t.created));
    CHECK(s.closed == s.created);
}

// ---------------------------------------------- composes with every combinator ---

TEST_CASE("composes with every combinator") {
    tracker t;
    SECTION("timeout, timeout_at and move_on_after") {
        corio::testing::run_virtual([&]() -> task<void> {
            pool<res> p(make_res{&t}, sized(1));
            auto a = co_await timeout(2 * U, p.acquire());
            CHECK(a->id == 1);
            REQUIRE_THROWS_AS(co_await timeout_at(now() + U, p.acquire()), timeout_error);
            auto r = co_await move_on_after(U, p.acquire());
            CHECK(!r);
            a.release();
            auto b = co_await move_on_after(U, p.acquire());
            REQUIRE(b);
            CHECK((*b)->id == 1);
            b.reset();
            co_await p.close();
        });
    }
    SECTION("shield and with_token") {
        corio::testing::run_virtual([&]() -> task<void> {
            pool<res> p(make_res{&t}, sized(1));
            auto a = co_await shield(p.acquire());
            a.release();
            cancellation_source src;
            auto b = co_await with_token(src.token(), p.acquire());
            CHECK(b->id == 1);
            b.release();
            co_await p.close();
        });
    }
    SECTION("gather, gather_settled and race") {
        corio::testing::run_virtual([&]() -> task<void> {
            pool<res> p(make_res{&t}, sized(2));
            auto [a, b] = co_await gather(p.acquire(), p.acquire());
            CHECK(a->id + b->id == 3);
            a.release();
            b.release();
            {
                auto [x, y] = co_await gather_settled(p.acquire(), p.acquire());
                CHECK(x.has_value());
                CHECK(y.has_value());
            }
            auto r = co_await race(p.acquire(), sleep(forever));
            CHECK(r.index() == 0);
            std::get<0>(r).release();
            co_await p.close();
        });
    }
    SECTION("with over a pool lease, inside an exit stack") {
        corio::testing::run_virtual([&]() -> task<void> {
            pool<res> p(make_res{&t}, sized(1));
            auto body = [&](async_exit_stack& st) -> task<int> {
                auto l = std::make_shared<pool<res>::lease>(co_await p.acquire());
                st.push([l]() -> task<void> {
                    l->release();
                    co_return;
                });
                co_return (*l)->id;
            };
            int id = co_await with_exit_stack(body);
            CHECK(id == 1);
            CHECK(p.stats().in_use == 0);
            co_await p.close();
        });
    }
}

CORIO_TEST_CASE(
    "an acquire in an already-cancelled scope throws before suspending, queues nothing and starts no creation") {
    tracker t;
    pool<res> p(make_res{&t}, sized(2));
    bool other_ran = false;
    auto other = spawn(owned([&]() -> task<void> {
        other_ran = true;
        co_return;
    }));
    cancel_scope sc;
    sc.cancel();
    std::optional<pool<res>::lease> got = co_await sc.run(p.acquire());
    CHECK_FALSE(got);
    CHECK(sc.cancelled_caught());
    CHECK_FALSE(other_ran);  // never suspended: the task ready meanwhile has not run yet
    CHECK(p.stats().waiters == 0);
    CHECK(p.stats().size == 0);  // no creation was started for it
    co_await other;
    co_await sleep(2 * U);
    CHECK(t.created == 0);
    co_await p.close();
}
