// Tests for corio/resource.hpp: async_context + with(), with() over objects
// with aclose(), async_exit_stack; cancellation injected in the acquire, the
// body and the release; bad input; every combinator.
#include <corio/resource.hpp>

#include <corio/corio.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "support/corio_test.hpp"

using namespace corio;
using namespace corio_test;

namespace {

struct boom : std::runtime_error {
    boom() : std::runtime_error("boom") {}
    using std::runtime_error::runtime_error;
};

struct conn {
    std::vector<std::string>* log;
    int id = 1;
};

/// Acquires in `acquire_time`, releases in `release_time`, logging each step
/// and how the body ended ("ok", "error", "cancelled").
async_context<conn> managed(std::vector<std::string>& log, clock::duration acquire_time = U,
                            clock::duration release_time = U) {
    log.push_back("acquire");
    co_await sleep(acquire_time);
    conn c{&log};
    context_exit how = co_yield c;
    log.push_back(how.ok() ? "ok" : how.cancelled() ? "cancelled" : "error");
    co_await sleep(release_time);
    log.push_back("released");
}

using strings = std::vector<std::string>;

}  // namespace

CORIO_TEST_CASE("with returns the body's value after the release ran once") {
    strings log;
    auto t0 = now();
    auto body = [&](conn& c) -> task<int> {
        c.log->push_back("body");
        co_await sleep(U);
        co_return 7;
    };
    int v = co_await with(managed(log), body);
    CHECK(v == 7);
    CHECK(log == strings{"acquire", "body", "ok", "released"});
    CHECK(since(t0) == 3 * U);
    co_await no_leak();
}

CORIO_TEST_CASE("a body that throws reaches the caller after the release, which saw the error") {
    strings log;
    auto t0 = now();
    auto body = [&](conn&) -> task<int> {
        co_await sleep(U);
        throw boom();
    };
    REQUIRE_THROWS_AS(co_await with(managed(log), body), boom);
    CHECK(log == strings{"acquire", "error", "released"});
    CHECK(since(t0) == 3 * U);
    co_await no_leak();
}

CORIO_TEST_CASE("an outer timeout cancels the body; the release completes, then timeout_error") {
    strings log;
    auto t0 = now();
    auto body = [&](conn&) -> task<int> {
        co_await sleep(forever);
        co_return 1;
    };
    REQUIRE_THROWS_AS(co_await timeout(3 * U, with(managed(log, U, 2 * U), body)), timeout_error);
    CHECK(log == strings{"acquire", "cancelled", "released"});
    CHECK(since(t0) == 5 * U);  // cancelled at 3U, the shielded release takes 2U
    co_await no_leak();
}

CORIO_TEST_CASE("a context commits on success and rolls back on failure by reading context_exit") {
    strings log;
    auto tx = [&]() -> async_context<int> {
        int handle = 42;
        context_exit how = co_yield handle;
        if (how.ok()) log.push_back("commit");
        else log.push_back("rollback");
        CHECK(how.cancelled() == false);
    };
    auto ok = [](int& h) -> task<int> { co_return h + 1; };
    int v = co_await with(tx(), ok);
    CHECK(v == 43);
    auto bad = [](int&) -> task<void> {
        throw boom();
        co_return;
    };
    REQUIRE_THROWS_AS(co_await with(tx(), bad), boom);
    CHECK(log == strings{"commit", "rollback"});
}

CORIO_TEST_CASE("the release runs shielded when the task is cancelled from outside") {
    strings log;
    auto t0 = now();
    clock::duration ended{};
    auto body = [&](conn&) -> task<void> { co_await sleep(forever); };
    auto user = [&]() -> task<void> {
        struct stamp {
            clock::time_point t0;
            clock::duration& out;
            ~stamp() { out = now() - t0; }
        } s{t0, ended};
        co_await with(managed(log, U, 2 * U), body);
    };
    auto h = spawn(user());
    co_await sleep(2 * U);
    h.cancel();
    bool cancelled = co_await ended_cancelled(h);
    CHECK(cancelled);
    CHECK(log == strings{"acquire", "cancelled", "released"});
    CHECK(ended == 4 * U);  // cancelled at 2U, release 2U
    co_await no_leak();
}

CORIO_TEST_CASE("a deadline that passes during the release lets it finish and keeps the body's value") {
    strings log;
    auto t0 = now();
    auto body = [&](conn&) -> task<int> {
        co_await sleep(U);
        co_return 7;
    };
    // acquire U, body U, release 2U: the 3U deadline passes inside the shielded release.
    int v = co_await timeout(3 * U, with(managed(log, U, 2 * U), body));
    CHECK(v == 7);
    CHECK(since(t0) == 4 * U);
    CHECK(log == strings{"acquire", "ok", "released"});
    co_await no_leak();
}

CORIO_TEST_CASE("a cancellation during the acquire runs neither the body nor the release") {
    strings log;
    bool ran = false;
    auto t0 = now();
    auto body = [&](conn&) -> task<void> {
        ran = true;
        co_return;
    };
    REQUIRE_THROWS_AS(co_await timeout(U, with(managed(log, 5 * U), body)), timeout_error);
    CHECK(!ran);
    CHECK(log == strings{"acquire"});
    CHECK(since(t0) == U);
    co_await no_leak();
}

CORIO_TEST_CASE("an acquire that throws reaches the caller and the body never runs") {
    bool ran = false;
    auto failing = []() -> async_context<int> {
        co_await sleep(U);
        throw boom();
        int x = 0;
        co_yield x;
    };
    auto body = [&](int&) -> task<void> {
        ran = true;
        co_return;
    };
    REQUIRE_THROWS_AS(co_await with(failing(), body), boom);
    CHECK(!ran);
}

CORIO_TEST_CASE("a release that throws after a successful body: with throws the release's error") {
    auto ctx = []() -> async_context<int> {
        int x = 1;
        co_yield x;
        co_await sleep(U);
        throw boom("release failed");
    };
    auto body = [](int& x) -> task<int> { co_return x; };
    try {
        co_await with(ctx(), body);
        FAIL("with did not throw");
    } catch (const boom& e) {
        CHECK(std::string(e.what()) == "release failed");
    }
}

CORIO_TEST_CASE("a body error and a release error both survive in an exception_group, body first") {
    auto ctx = []() -> async_context<int> {
        int x = 1;
        co_yield x;
        throw std::out_of_range("release failed");
    };
    auto body = [](int&) -> task<int> {
        throw boom("body failed");
        co_return 0;
    };
    try {
        co_await with(ctx(), body);
        FAIL("with did not throw");
    } catch (const exception_group& g) {
        REQUIRE(g.size() == 2);
        CHECK_THROWS_AS(std::rethrow_exception(g.exceptions()[0]), boom);
        CHECK_THROWS_AS(std::rethrow_exception(g.exceptions()[1]), std::out_of_range);
    }
}

CORIO_TEST_CASE("a cancelled body and a release error: with throws the release error, the cancellation stays pending") {
    auto ctx = []() -> async_context<int> {
        int x = 1;
        co_yield x;
        throw boom("release failed");
    };
    auto body = [](int&) -> task<int> {
        co_await sleep(forever);
        co_return 0;
    };
    cancel_scope sc;
    auto inner = [&]() -> task<void> {
        bool released_error = false;
        try {
            co_await with(ctx(), body);
        } catch (const boom&) {
            released_error = true;
        }
        CHECK(released_error);
        // the scope is still cancelled: the next suspension throws
        co_await sleep(U);
        FAIL("the cancellation was lost");
    };
    auto canceller = [&]() -> task<void> {
        co_await sleep(U);
        sc.cancel();
    };
    auto c = spawn(canceller());
    bool r = co_await sc.run(inner());
    CHECK(!r);
    co_await c;
}

CORIO_TEST_CASE("a context that never yields: invalid_state_error and the body never runs") {
    bool ran = false;
    auto ctx = []() -> async_context<int> {
        co_await sleep(U);
        co_return;
    };
    auto body = [&](int&) -> task<void> {
        ran = true;
        co_return;
    };
    try {
        co_await with(ctx(), body);
        FAIL("with did not throw");
    } catch (const invalid_state_error& e) {
        CHECK(std::string(e.what()).find("without yielding") != std::string::npos);
    }
    CHECK(!ran);
}

CORIO_TEST_CASE("a context that yields twice: invalid_state_error at the second co_yield, release not run twice") {
    int releases = 0;
    int bodies = 0;
    auto ctx = [&]() -> async_context<int> {
        int x = 1;
        co_yield x;
        ++releases;
        co_yield x;
        ++releases;  // never reached
    };
    auto body = [&](int&) -> task<void> {
        ++bodies;
        co_return;
    };
    try {
        co_await with(ctx(), body);
        FAIL("with did not throw");
    } catch (const invalid_state_error& e) {
        CHECK(std::string(e.what()).find("yielded a second time") != std::string::npos);
    }
    CHECK(bodies == 1);
    CHECK(releases == 1);
}

CORIO_TEST_CASE("with on an empty async_context throws invalid_state_error") {
    strings log;
    auto a = managed(log);
    auto b = std::move(a);
    auto body = [](conn&) -> task<void> { co_return; };
    CHECK(!a.valid());
    CHECK(b.valid());
    try {
        co_await with(std::move(a), body);
        FAIL("with did not throw");
    } catch (const invalid_state_error& e) {
        CHECK(std::string(e.what()).find("empty async_context") != std::string::npos);
    }
    CHECK(log.empty());
}

TEST_CASE("a context destroyed without being entered runs nothing") {
    strings log;
    { auto c = managed(log); }
    CHECK(log.empty());
}

// ------------------------------------------------------------ aclose ---

namespace {

struct closing_conn {
    strings* log;
    int id;
    task<void> aclose() {
        co_await sleep(U);
        log->push_back("aclose " + std::to_string(id));
    }
};

task<closing_conn> open_conn(strings& log, int id) {
    co_await sleep(U);
    log.push_back("open " + std::to_string(id));
    co_return closing_conn{&log, id};
}

}  // namespace

CORIO_TEST_CASE("with over an awaitable of an object with aclose awaits aclose after the body") {
    strings log;
    auto t0 = now();
    auto body = [&](closing_conn& c) -> task<int> {
        log.push_back("body");
        co_return c.id * 10;
    };
    int v = co_await with(open_conn(log, 3), body);
    CHECK(v == 30);
    CHECK(log == strings{"open 3", "body", "aclose 3"});
    CHECK(since(t0) == 2 * U);
}

CORIO_TEST_CASE("with over an object with aclose: body error and outer cancellation still close it") {
    strings log;
    auto t0 = now();
    auto bad = [&](closing_conn&) -> task<void> {
        throw boom();
        co_return;
    };
    REQUIRE_THROWS_AS(co_await with(open_conn(log, 1), bad), boom);
    auto slow = [&](closing_conn&) -> task<void> { co_await sleep(forever); };
    REQUIRE_THROWS_AS(co_await timeout(3 * U, with(open_conn(log, 2), slow)), timeout_error);
    CHECK(log == strings{"open 1", "aclose 1", "open 2", "aclose 2"});
    CHECK(since(t0) == 2 * U + 4 * U);
}

TEST_CASE("with over an object whose aclose throws reports it like a release error") {
    struct bad_close {
        task<void> aclose() {
            throw boom("close failed");
            co_return;
        }
    };
    corio::testing::run_virtual([]() -> task<void> {
        auto open = []() -> task<bad_close> { co_return bad_close{}; };
        auto body = [](bad_close&) -> task<void> { co_return; };
        REQUIRE_THROWS_AS(co_await with(open(), body), boom);
    });
}

// -------------------------------------------------------- exit stack ---

CORIO_TEST_CASE("an exit stack unwinds contexts and callbacks in reverse order, each once") {
    strings log;
    auto t0 = now();
    auto body = [&](async_exit_stack& st) -> task<int> {
        conn& a = co_await st.enter(managed(log));
        st.push([&]() -> task<void> {
            co_await sleep(U);
            log.push_back("callback");
        });
        closing_conn& b = co_await st.enter(open_conn(log, 9));
        CHECK(st.size() == 3);
        co_return a.id + b.id;
    };
    int v = co_await with_exit_stack(body);
    CHECK(v == 10);
    CHECK(log == strings{"acquire", "open 9", "aclose 9", "callback", "ok", "released"});
    CHECK(since(t0) == 2 * U + 3 * U);
    co_await no_leak();
}

CORIO_TEST_CASE(
    "an exit stack runs every step even if an earlier one threw; several errors form a group in unwind order") {
    strings log;
    auto body = [&](async_exit_stack& st) -> task<void> {
        st.push([&]() -> task<void> {
            log.push_back("first");
            throw boom("first");
            co_return;
        });
        st.push([&]() -> task<void> {
            log.push_back("second");
            co_return;
        });
        st.push([&]() -> task<void> {
            log.push_back("third");
            throw std::out_of_range("third");
            co_return;
        });
        co_return;
    };
    try {
        co_await with_exit_stack(body);
        FAIL("did not throw");
    } catch (const exception_group& g) {
        REQUIRE(g.size() == 2);
        CHECK_THROWS_AS(std::rethrow_exception(g.exceptions()[0]), std::out_of_range);
        CHECK_THROWS_AS(std::rethrow_exception(g.exceptions()[1]), boom);
    }
    CHECK(log == strings{"third", "second", "first"});
}

CORIO_TEST_CASE("an exit stack with one failing step throws that error; with a body error both are grouped") {
    auto one = [](async_exit_stack& st) -> task<void> {
        st.push([]() -> task<void> {
            throw boom("step");
            co_return;
        });
        co_return;
    };
    REQUIRE_THROWS_AS(co_await with_exit_stack(one), boom);
    auto both = [](async_exit_stack& st) -> task<void> {
        st.push([]() -> task<void> {
            throw boom("step");
            co_return;
        });
        throw std::out_of_range("body");
        co_return;
    };
    try {
        co_await with_exit_stack(both);
        FAIL("did not throw");
    } catch (const exception_group& g) {
        REQUIRE(g.size() == 2);
        CHECK_THROWS_AS(std::rethrow_exception(g.exceptions()[0]), std::out_of_range);
        CHECK_THROWS_AS(std::rethrow_exception(g.exceptions()[1]), boom);
    }
}

CORIO_TEST_CASE("an exit stack unwinds shielded under an outer timeout, and callbacks see how the body ended") {
    strings log;
    auto t0 = now();
    auto body = [&](async_exit_stack& st) -> task<void> {
        co_await st.enter(managed(log));
        st.push([&](const context_exit& how) -> task<void> {
            co_await sleep(2 * U);
            log.push_back(how.cancelled() ? "cb cancelled" : "cb other");
        });
        co_await sleep(forever);
    };
    REQUIRE_THROWS_AS(co_await timeout(2 * U, with_exit_stack(body)), timeout_error);
    CHECK(log == strings{"acquire", "cb cancelled", "cancelled", "released"});
    CHECK(since(t0) == 2 * U + 3 * U);
    co_await no_leak();
}

CORIO_TEST_CASE("an exit stack whose enter fails unwinds what was entered before") {
    strings log;
    auto failing = []() -> async_context<int> {
        throw boom("enter");
        int x = 0;
        co_yield x;
    };
    auto body = [&](async_exit_stack& st) -> task<void> {
        co_await st.enter(managed(log));
        co_await st.enter(failing());
        log.push_back("not reached");
    };
    REQUIRE_THROWS_AS(co_await with_exit_stack(body), boom);
    CHECK(log == strings{"acquire", "error", "released"});
}

// ---------------------------------------------- composes with every combinator ---

TEST_CASE("composes with every combinator") {
    auto body = [](conn& c) -> task<int> {
        co_await sleep(U);
        co_return c.id;
    };
    auto slow = [](conn&) -> task<int> {
        co_await sleep(forever);
        co_return 0;
    };
    SECTION("timeout and timeout_at") {
        corio::testing::run_virtual([&]() -> task<void> {
            strings log;
            int a = co_await timeout(10 * U, with(managed(log), body));
            int b = co_await timeout_at(now() + 10 * U, with(managed(log), body));
            CHECK(a + b == 2);
            REQUIRE_THROWS_AS(co_await timeout(2 * U, with(managed(log), slow)), timeout_error);
            CHECK(log.size() == 9);
            CHECK(log.back() == "released");
        });
    }
    SECTION("move_on_after") {
        corio::testing::run_virtual([&]() -> task<void> {
            strings log;
            auto t0 = now();
            std::optional<int> r = co_await move_on_after(2 * U, with(managed(log), slow));
            CHECK(!r);
            CHECK(since(t0) == 3 * U);
            CHECK(log.back() == "released");
        });
    }
    SECTION("shield") {
        corio::testing::run_virtual([&]() -> task<void> {
            strings log;
            std::optional<int> r = co_await move_on_after(U, shield(with(managed(log), body)));
            REQUIRE(r);
            CHECK(*r == 1);
        });
    }
    SECTION("with_token") {
        corio::testing::run_virtual([&]() -> task<void> {
            strings log;
            cancellation_source src;
            int v = co_await with_token(src.token(), with(managed(log), body));
            CHECK(v == 1);
        });
    }
    SECTION("gather and gather_settled") {
        corio::testing::run_virtual([&]() -> task<void> {
            strings log;
            auto t0 = now();
            auto [a, b] = co_await gather(with(managed(log), body), with(managed(log), body));
            CHECK(a + b == 2);
            CHECK(since(t0) == 3 * U);
            auto bad = [](conn&) -> task<int> {
                throw boom();
                co_return 0;
            };
            auto [x, y] = co_await gather_settled(with(managed(log), body), with(managed(log), bad));
            CHECK(x.has_value());
            CHECK(!y.has_value());
            CHECK(std::count(log.begin(), log.end(), std::string("released")) == 4);
        });
    }
    SECTION("race") {
        corio::testing::run_virtual([&]() -> task<void> {
            strings log;
            auto t0 = now();
            auto r = co_await race(with(managed(log), body), with(managed(log), slow));
            CHECK(r.index() == 0);
            CHECK(since(t0) == 4 * U);  // winner at 3U, the loser's release takes U
            CHECK(std::count(log.begin(), log.end(), std::string("released")) == 2);
            CHECK(std::count(log.begin(), log.end(), std::string("cancelled")) == 1);
        });
    }
    SECTION("with_exit_stack under timeout and gather") {
        corio::testing::run_virtual([&]() -> task<void> {
            strings log;
            auto st_body = [&](async_exit_stack& st) -> task<int> {
                conn& c = co_await st.enter(managed(log));
                co_return c.id;
            };
            auto [a, b] = co_await gather(with_exit_stack(st_body), timeout(10 * U, with_exit_stack(st_body)));
            CHECK(a + b == 2);
        });
    }
}

CORIO_TEST_CASE("with() in a long loop of bodies that never suspend does not grow the stack") {
    auto ctx = []() -> async_context<int> {
        int x = 1;
        co_yield x;
    };
    auto body = [](int& x) -> task<int> { co_return x; };
    long sum = 0;
    for (int i = 0; i < 300000; ++i) sum += co_await with(ctx(), body);
    CHECK(sum == 300000);
    auto st_body = [&](async_exit_stack& st) -> task<int> {
        int& r = co_await st.enter(ctx());
        co_return r;
    };
    for (int i = 0; i < 100000; ++i) sum += co_await with_exit_stack(st_body);
    CHECK(sum == 400000);
}
