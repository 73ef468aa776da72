// Tests for corio/generator.hpp: async_generator<T> (values, references,
// move-only items, co_await in the body), early destruction, exceptions,
// cancellation inside next(), the iterator form, for_each, bad input, and
// next()/for_each under every combinator.
#include <corio/generator.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/corio_test.hpp"

using namespace corio;
using namespace corio_test;

namespace {

struct my_exc : std::exception {
    const char* what() const noexcept override { return "my_exc"; }
};

async_generator<int> count(int n) {
    for (int i = 0; i < n; ++i) co_yield i;
}

async_generator<int> ticking(int n, clock::duration step) {
    for (int i = 0; i < n; ++i) {
        co_await sleep(step);
        co_yield i;
    }
}

/// Records its name into `log` when destroyed.
struct noisy {
    std::vector<std::string>& log;
    std::string name;
    ~noisy() { log.push_back(name); }
};

async_generator<int> guarded(std::vector<std::string>& log) {
    noisy a{log, "a"};
    co_yield 1;
    noisy b{log, "b"};
    co_yield 2;
    log.push_back("after 2");
    co_yield 3;
}

}  // namespace

CORIO_TEST_CASE("next() returns the items in order, then an empty optional again and again") {
    auto g = count(3);
    std::vector<int> got;
    while (auto v = co_await g.next()) got.push_back(*v);
    CHECK(got == std::vector<int>{0, 1, 2});
    CHECK(g.done());
    auto again = co_await g.next();
    auto and_again = co_await g.next();
    CHECK(!again);
    CHECK(!and_again);
}

CORIO_TEST_CASE("the body is lazy and may co_await between yields, with exact timing") {
    bool started = false;
    auto make = [&]() -> async_generator<int> {
        started = true;
        co_await sleep(2 * U);
        co_yield 7;
        co_await sleep(U);
        co_yield 8;
    };
    auto g = make();
    co_await sleep(U);
    CHECK(!started);
    auto t0 = now();
    auto a = co_await g.next();
    CHECK(since(t0) == 2 * U);
    auto b = co_await g.next();
    CHECK(since(t0) == 3 * U);
    auto c = co_await g.next();
    CHECK(since(t0) == 3 * U);
    CHECK(a == 7);
    CHECK(b == 8);
    CHECK(!c);
}

CORIO_TEST_CASE("an empty body gives no item") {
    auto make = []() -> async_generator<std::string> { co_return; };
    auto g = make();
    auto v = co_await g.next();
    CHECK(!v);
}

CORIO_TEST_CASE("move-only items are moved out of the generator") {
    auto make = []() -> async_generator<std::unique_ptr<int>> {
        co_yield std::make_unique<int>(1);
        auto p = std::make_unique<int>(2);
        co_yield std::move(p);
    };
    auto g = make();
    auto a = co_await g.next();
    auto b = co_await g.next();
    auto c = co_await g.next();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(**a == 1);
    CHECK(**b == 2);
    CHECK(!c);
}

CORIO_TEST_CASE("an lvalue co_yield copies: the body's variable keeps its value") {
    std::string seen;
    auto make = [&]() -> async_generator<std::string> {
        std::string s = "kept";
        co_yield s;
        seen = s;
    };
    auto g = make();
    auto a = co_await g.next();
    auto b = co_await g.next();
    CHECK(a == std::string("kept"));
    CHECK(seen == "kept");
    CHECK(!b);
}

CORIO_TEST_CASE("a reference generator yields optional_ref to the body's objects") {
    std::vector<int> data{1, 2, 3};
    auto make = [](std::vector<int>& d) -> async_generator<int&> {
        for (int& x : d) co_yield x;
    };
    auto g = make(data);
    while (auto r = co_await g.next()) *r *= 10;
    CHECK(data == std::vector<int>{10, 20, 30});
    auto end = co_await g.next();
    CHECK(!end.has_value());
    CHECK_THROWS_AS(end.value(), std::bad_optional_access);

    auto cmake = [](const std::vector<int>& d) -> async_generator<const int&> {
        for (const int& x : d) co_yield x;
    };
    auto cg = cmake(data);
    auto first = co_await cg.next();
    REQUIRE(first);
    CHECK(first.get() == &data[0]);
}

CORIO_TEST_CASE("an exception in the body reaches the consumer at next(); the generator is then finished") {
    auto make = []() -> async_generator<int> {
        co_yield 1;
        co_await sleep(U);
        throw my_exc{};
    };
    auto g = make();
    auto a = co_await g.next();
    CHECK(a == 1);
    auto t0 = now();
    REQUIRE_THROWS_AS(co_await g.next(), my_exc);
    CHECK(since(t0) == U);
    CHECK(g.done());
    auto after = co_await g.next();
    CHECK(!after);
}

CORIO_TEST_CASE(
    "destroying a generator suspended at co_yield runs its destructors in reverse order, and no code after the yield") {
    std::vector<std::string> log;
    {
        auto g = guarded(log);
        auto a = co_await g.next();
        auto b = co_await g.next();
        CHECK(a == 1);
        CHECK(b == 2);
        CHECK(log.empty());
    }
    CHECK(log == std::vector<std::string>{"b", "a"});
    // A generator destroyed before it ever ran runs nothing.
    log.clear();
    { auto g = guarded(log); }
    CHECK(log.empty());
}

CORIO_TEST_CASE("breaking out of a loop destroys the generator before the next statement") {
    std::vector<std::string> log;
    {
        auto g = guarded(log);
        int n = 0;
        while (auto v = co_await g.next()) {
            if (++n == 2) break;
        }
        CHECK(log.empty());
    }
    CHECK(log == std::vector<std::string>{"b", "a"});
}

CORIO_TEST_CASE("an exception in the consumer passes through unchanged and destroys the generator during unwinding") {
    std::vector<std::string> log;
    auto consume = [&]() -> task<void> {
        auto g = guarded(log);
        while (auto v = co_await g.next()) {
            if (*v == 2) throw my_exc{};
        }
    };
    REQUIRE_THROWS_AS(co_await consume(), my_exc);
    CHECK(log == std::vector<std::string>{"b", "a"});
}

CORIO_TEST_CASE(
    "cancelling the consumer inside next() throws at the body's co_await, runs its cleanup, and ends the consumer "
    "cancelled") {
    std::vector<std::string> log;
    bool handler_ran = false;
    auto make = [&]() -> async_generator<int> {
        noisy n{log, "frame"};
        co_yield 1;
        try {
            co_await sleep(forever);
        } catch (const cancelled_error&) {
            handler_ran = true;
            throw;
        }
        co_yield 2;
    };
    auto consumer = [&]() -> task<void> {
        auto g = make();
        auto a = co_await g.next();
        CHECK(a == 1);
        co_await g.next();  // cancelled here
        log.push_back("not reached");
    };
    auto h = spawn(consumer());
    co_await sleep(U);
    auto t0 = now();
    h.cancel();
    bool cancelled = co_await ended_cancelled(h);
    CHECK(cancelled);
    CHECK(since(t0) == clock::duration::zero());
    CHECK(handler_ran);
    CHECK(log == std::vector<std::string>{"frame"});
    co_await no_leak();
}

CORIO_TEST_CASE("the body runs inside the consumer's scopes: a timeout around next() cancels the body's operation") {
    bool handler_ran = false;
    auto make = [&]() -> async_generator<int> {
        try {
            co_await sleep(forever);
        } catch (const cancelled_error&) {
            handler_ran = true;
            throw;
        }
        co_yield 1;
    };
    auto g = make();
    auto t0 = now();
    REQUIRE_THROWS_AS(co_await timeout(U, g.next()), timeout_error);
    CHECK(since(t0) == U);
    CHECK(handler_ran);
    auto after = co_await g.next();  // the cancellation ended the generator
    CHECK(!after);
    co_await no_leak();
}

CORIO_TEST_CASE("a timeout inside the body belongs to the body") {
    auto make = []() -> async_generator<int> {
        auto r = co_await move_on_after(U, sleep(forever));
        co_yield r ? 1 : 0;
        co_yield 2;
    };
    auto g = make();
    auto t0 = now();
    auto a = co_await g.next();
    auto b = co_await g.next();
    CHECK(a == 0);
    CHECK(b == 2);
    CHECK(since(t0) == U);
}

CORIO_TEST_CASE("a second next() while one is pending throws invalid_state_error") {
    auto g = ticking(3, U);
    auto first = [&]() -> task<int> {
        auto v = co_await g.next();
        co_return *v;
    };
    auto h = spawn(first());
    co_await yield_now();  // h is now waiting inside the body's sleep
    REQUIRE_THROWS_AS(co_await g.next(), invalid_state_error);
    int v = co_await h;
    CHECK(v == 0);
    auto w = co_await g.next();  // usable again once the first returned
    CHECK(w == 1);
}

CORIO_TEST_CASE("next() on an empty generator and ++ on an end iterator throw invalid_state_error") {
    async_generator<int> empty;
    CHECK(!empty.valid());
    REQUIRE_THROWS_AS(co_await empty.next(), invalid_state_error);
    auto g = count(1);
    auto moved = std::move(g);
    REQUIRE_THROWS_AS(co_await g.next(), invalid_state_error);
    auto it = co_await moved.begin();
    CHECK(*it == 0);
    co_await ++it;
    CHECK(it == moved.end());
    CHECK_THROWS_AS(++it, invalid_state_error);
    try {
        co_await empty.next();
    } catch (const invalid_state_error& e) {
        CHECK(std::string(e.what()).find("empty async_generator") != std::string::npos);
    }
}

CORIO_TEST_CASE("the iterator form visits every item, referring to it in the generator") {
    auto g = ticking(3, U);
    std::vector<int> got;
    auto t0 = now();
    for (auto it = co_await g.begin(); it != g.end(); co_await ++it) got.push_back(*it);
    CHECK(got == std::vector<int>{0, 1, 2});
    CHECK(since(t0) == 3 * U);
    auto e = count(0);
    auto it = co_await e.begin();
    CHECK(it == e.end());
    // An error in the body is thrown by ++it.
    auto bad = []() -> async_generator<std::string> {
        co_yield "x";
        throw my_exc{};
    };
    auto b = bad();
    auto bi = co_await b.begin();
    CHECK(bi->size() == 1);
    REQUIRE_THROWS_AS(co_await ++bi, my_exc);
    CHECK(bi == b.end());
}

CORIO_TEST_CASE("for_each calls fn with every item and awaits it when fn returns a task") {
    std::vector<int> got;
    auto g = count(3);
    auto plain = [&](int v) { got.push_back(v); };
    co_await for_each(g, plain);
    CHECK(got == std::vector<int>{0, 1, 2});
    got.clear();
    auto slow = [&](int v) -> task<void> {
        co_await sleep(U);
        got.push_back(v);
    };
    auto t0 = now();
    co_await for_each(count(3), slow);  // an rvalue generator is owned by the task
    CHECK(got == std::vector<int>{0, 1, 2});
    CHECK(since(t0) == 3 * U);
    // fn's exception stops the loop and propagates.
    auto boom = [](int v) {
        if (v == 1) throw my_exc{};
    };
    REQUIRE_THROWS_AS(co_await for_each(count(3), boom), my_exc);
}

CORIO_TEST_CASE("a long stream keeps a constant stack and finishes") {
    long long sum = 0;
    auto g = count(1'000'000);
    while (auto v = co_await g.next()) sum += *v;
    CHECK(sum == 499'999'500'000LL);
}

TEST_CASE(
    "a leftover task iterating a generator at shutdown is cancelled and the generator's destructors run before run() "
    "returns") {
    std::vector<std::string> log;
    auto main = [&]() -> task<int> {
        auto iterate = [&]() -> task<void> {
            auto make = [&]() -> async_generator<int> {
                noisy n{log, "gen"};
                for (int i = 0;; ++i) {
                    co_await sleep(U);
                    co_yield i;
                }
            };
            auto g = make();
            while (auto v = co_await g.next()) {
            }
        };
        auto h = spawn(iterate());
        co_await sleep(U + U / 2);
        co_return 123;
    };
    int r = corio::testing::run_virtual(main);
    CHECK(r == 123);
    CHECK(log == std::vector<std::string>{"gen"});
}

CORIO_TEST_CASE("composes with every combinator: next() and for_each") {
    auto g = ticking(100, U);
    auto t0 = now();
    // timeout / timeout_at that do not expire
    auto a = co_await timeout(2 * U, g.next());
    CHECK(a == 0);
    auto b = co_await timeout_at(now() + 2 * U, g.next());
    CHECK(b == 1);
    // move_on_after / move_on_at that do not expire
    auto c = co_await move_on_after(2 * U, g.next());
    REQUIRE(c);
    CHECK(*c == 2);
    auto d = co_await move_on_at(now() + 2 * U, g.next());
    REQUIRE(d);
    CHECK(*d == 3);
    // shield
    auto e = co_await shield(g.next());
    CHECK(e == 4);
    // with_token
    cancellation_source src;
    auto f = co_await with_token(src.token(), g.next());
    CHECK(f == 5);
    CHECK(since(t0) == 6 * U);
    // race: next() wins against a longer sleep
    auto r = co_await race(g.next(), sleep(5 * U));
    CHECK(r.index() == 0);
    CHECK(std::get<0>(r) == 6);
    // gather and gather_settled over two generators
    auto g2 = ticking(10, 2 * U);
    t0 = now();
    auto [x, y] = co_await gather(g.next(), g2.next());
    CHECK(x == 7);
    CHECK(y == 0);
    CHECK(since(t0) == 2 * U);
    auto settled = co_await gather_settled(g.next(), g2.next());
    CHECK(std::get<0>(settled).value() == 8);
    CHECK(std::get<1>(settled).value() == 1);
    // for_each under a timeout that does not expire, and one that does
    std::vector<int> seen;
    auto rec = [&](int v) { seen.push_back(v); };
    co_await timeout(10 * U, for_each(ticking(3, U), rec));
    CHECK(seen == std::vector<int>{0, 1, 2});
    auto ranout = co_await move_on_after(U + U / 2, for_each(ticking(3, U), rec));
    CHECK(!ranout);
    CHECK(seen == std::vector<int>{0, 1, 2, 0});
    // race: a sleep wins and next() is cancelled (which ends that generator)
    auto g3 = ticking(3, 5 * U);
    auto r2 = co_await race(g3.next(), sleep(U));
    CHECK(r2.index() == 1);
    auto end = co_await g3.next();
    CHECK(!end);
    co_await no_leak();
}
