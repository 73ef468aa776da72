// Tests for corio/batcher.hpp: micro_batcher coalescing (by size, by time,
// at close), concurrency of handler calls, errors per batch, cancelled
// callers, close(), bad input, and submit() under every combinator.
#include <corio/batcher.hpp>

#include <memory>
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

using vi = std::vector<int>;

/// A handler that records each call (its items and start time) and maps x to "x".
struct recorder {
    std::vector<vi> calls;
    std::vector<clock::duration> at;
    clock::time_point t0;
    clock::duration takes{};
    int running = 0, peak = 0;

    micro_batcher<int, std::string>::handler_type handler() {
        return [this](vi items) -> task<std::vector<std::string>> {
            calls.push_back(items);
            at.push_back(now() - t0);
            ++running;
            peak = std::max(peak, running);
            co_await sleep(takes);
            --running;
            std::vector<std::string> out;
            for (int x : items) {
                if (x == 13) throw my_exc{};
                out.push_back(std::to_string(x));
            }
            if (!items.empty() && items[0] == 99) out.pop_back();  // the wrong number of outputs
            co_return out;
        };
    }
};

task<std::vector<result<std::string>>> submit_all(micro_batcher<int, std::string>& b, vi xs) {
    std::vector<task<std::string>> ts;
    for (int x : xs) ts.push_back(b.submit(x));
    co_return co_await gather_settled(std::move(ts));
}

}  // namespace

CORIO_TEST_CASE("every caller gets its own output from one handler call sent max_wait after the first item") {
    recorder rec;
    rec.t0 = now();
    micro_batcher<int, std::string> b(rec.handler(), 10, U);
    std::vector<task<std::string>> ts;
    for (int x : {1, 2, 3, 4, 5}) ts.push_back(b.submit(x));
    auto out = co_await gather(std::move(ts));
    CHECK(out == std::vector<std::string>{"1", "2", "3", "4", "5"});
    CHECK(rec.calls == std::vector<vi>{{1, 2, 3, 4, 5}});
    CHECK(rec.at == std::vector<clock::duration>{U});
    CHECK(since(rec.t0) == U);
    co_await b.close();
}

CORIO_TEST_CASE("full batches are sent at once; a batch ready while the handler is busy waits for it") {
    recorder rec;
    rec.t0 = now();
    rec.takes = 2 * U;
    micro_batcher<int, std::string> b(rec.handler(), 3, U);
    vi xs{0, 1, 2, 3, 4, 5, 6};
    auto res = co_await submit_all(b, xs);
    for (int i = 0; i < 7; ++i) CHECK(res[i].value() == std::to_string(i));
    CHECK(rec.calls == std::vector<vi>{{0, 1, 2}, {3, 4, 5}, {6}});
    CHECK(rec.at == std::vector<clock::duration>{clock::duration::zero(), 2 * U, 4 * U});
    CHECK(rec.peak == 1);
    CHECK(since(rec.t0) == 6 * U);
    co_await b.close();
}

CORIO_TEST_CASE("max_concurrent_batches lets that many handler calls run at once") {
    recorder rec;
    rec.t0 = now();
    rec.takes = 2 * U;
    micro_batcher<int, std::string> b(rec.handler(), 2, U, 2);
    vi xs{0, 1, 2, 3, 4, 5};
    auto res = co_await submit_all(b, xs);
    CHECK(res.size() == 6);
    CHECK(rec.peak == 2);
    CHECK(rec.at == std::vector<clock::duration>{clock::duration::zero(), clock::duration::zero(), 2 * U});
    CHECK(since(rec.t0) == 4 * U);
    co_await b.close();
}

CORIO_TEST_CASE("a handler error fails exactly the callers of that batch") {
    recorder rec;
    rec.t0 = now();
    micro_batcher<int, std::string> b(rec.handler(), 2, U);
    vi xs{1, 2, 13, 4, 5};
    auto res = co_await submit_all(b, xs);
    CHECK(res[0].value() == "1");
    CHECK(res[1].value() == "2");
    CHECK_THROWS_AS(res[2].value(), my_exc);
    CHECK_THROWS_AS(res[3].value(), my_exc);
    CHECK(res[4].value() == "5");
    co_await b.close();
}

CORIO_TEST_CASE("a handler returning the wrong number of outputs fails that batch with invalid_state_error") {
    recorder rec;
    rec.t0 = now();
    micro_batcher<int, std::string> b(rec.handler(), 2, U);
    vi xs{99, 1, 2, 3};
    auto res = co_await submit_all(b, xs);
    CHECK_THROWS_AS(res[0].value(), invalid_state_error);
    CHECK_THROWS_AS(res[1].value(), invalid_state_error);
    CHECK(res[2].value() == "2");
    CHECK(res[3].value() == "3");
    try {
        res[0].value();
    } catch (const invalid_state_error& e) {
        CHECK(std::string(e.what()).find("1 outputs for a batch of 2") != std::string::npos);
    }
    co_await b.close();
}

CORIO_TEST_CASE("a caller cancelled before its batch was sent is removed from it") {
    recorder rec;
    rec.t0 = now();
    micro_batcher<int, std::string> b(rec.handler(), 10, 2 * U);
    auto h1 = spawn(b.submit(1));
    auto h2 = spawn(b.submit(2));
    auto h3 = spawn(b.submit(3));
    co_await sleep(U);
    CHECK(b.pending() == 3);
    h2.cancel();
    bool c = co_await ended_cancelled(h2);
    CHECK(c);
    CHECK(b.pending() == 2);
    auto r1 = co_await h1;
    auto r3 = co_await h3;
    CHECK(r1 == "1");
    CHECK(r3 == "3");
    CHECK(rec.calls == std::vector<vi>{{1, 3}});
    CHECK(rec.at == std::vector<clock::duration>{2 * U});
    // Every caller of a batch cancelled: the batch is never sent.
    auto h4 = spawn(b.submit(4));
    co_await sleep(U);
    h4.cancel();
    co_await sleep(3 * U);
    CHECK(rec.calls.size() == 1);
    co_await b.close();
}

CORIO_TEST_CASE("a caller cancelled after its batch was sent throws at once; the others get their outputs") {
    recorder rec;
    rec.t0 = now();
    rec.takes = 3 * U;
    micro_batcher<int, std::string> b(rec.handler(), 2, U);
    auto h1 = spawn(b.submit(1));
    auto h2 = spawn(b.submit(2));
    co_await sleep(U);  // the batch was sent at 0 (full); the handler runs until 3U
    h1.cancel();
    auto t0 = now();
    bool c = co_await ended_cancelled(h1);
    CHECK(c);
    CHECK(since(t0) == clock::duration::zero());
    auto r2 = co_await h2;
    CHECK(r2 == "2");
    CHECK(since(rec.t0) == 3 * U);
    co_await b.close();
}

CORIO_TEST_CASE("close() sends the partial batch at once, waits for the handler calls, and later submits throw") {
    recorder rec;
    rec.t0 = now();
    rec.takes = 2 * U;
    micro_batcher<int, std::string> b(rec.handler(), 10, forever);
    auto h1 = spawn(b.submit(1));
    auto h2 = spawn(b.submit(2));
    co_await sleep(U);
    CHECK(rec.calls.empty());
    co_await b.close();
    CHECK(rec.calls == std::vector<vi>{{1, 2}});
    CHECK(since(rec.t0) == 3 * U);
    CHECK(h1.done());
    CHECK(h2.done());
    auto r1 = co_await h1;
    CHECK(r1 == "1");
    CHECK(b.closed());
    REQUIRE_THROWS_AS(co_await b.submit(3), invalid_state_error);
    co_await b.close();  // twice is fine
}

CORIO_TEST_CASE("destroying a batcher without close() fails the submissions still waiting") {
    recorder rec;
    auto b = std::make_unique<micro_batcher<int, std::string>>(rec.handler(), 10, forever);
    auto h = spawn(b->submit(1));
    co_await sleep(U);
    b.reset();
    REQUIRE_THROWS_AS(co_await h, invalid_state_error);
    co_await no_leak();
}

TEST_CASE("bad arguments to micro_batcher throw std::invalid_argument") {
    recorder rec;
    using B = micro_batcher<int, std::string>;
    CHECK_THROWS_AS(B(rec.handler(), 0, U), std::invalid_argument);
    CHECK_THROWS_AS(B(rec.handler(), 1, U, 0), std::invalid_argument);
    CHECK_THROWS_AS(B(rec.handler(), 1, -U), std::invalid_argument);
    CHECK_THROWS_AS(B(B::handler_type{}, 1, U), std::invalid_argument);
}

CORIO_TEST_CASE("composes with every combinator: submit()") {
    recorder rec;
    rec.t0 = now();
    micro_batcher<int, std::string> b(rec.handler(), 10, U);
    auto a = co_await timeout(2 * U, b.submit(1));
    CHECK(a == "1");
    auto a2 = co_await timeout_at(now() + 2 * U, b.submit(2));
    CHECK(a2 == "2");
    auto c = co_await move_on_after(2 * U, b.submit(3));
    CHECK(c == std::string("3"));
    auto c2 = co_await move_on_at(now() + 2 * U, b.submit(4));
    CHECK(c2 == std::string("4"));
    auto d = co_await shield(b.submit(5));
    CHECK(d == "5");
    cancellation_source src;
    auto e = co_await with_token(src.token(), b.submit(6));
    CHECK(e == "6");
    auto r = co_await race(b.submit(7), sleep(5 * U));
    CHECK(r.index() == 0);
    auto [x, y] = co_await gather(b.submit(8), b.submit(9));
    CHECK(x == "8");
    CHECK(y == "9");
    auto s = co_await gather_settled(b.submit(10), b.submit(13));
    CHECK_THROWS_AS(std::get<0>(s).value(), my_exc);  // 10 and 13 share a batch
    CHECK_THROWS_AS(std::get<1>(s).value(), my_exc);
    CHECK(rec.calls.size() == 9);
    // A deadline that cuts submit() short removes it from its batch.
    auto cut = co_await move_on_after(U / 2, b.submit(11));
    CHECK(!cut);
    co_await sleep(2 * U);
    CHECK(rec.calls.size() == 9);
    co_await b.close();
}
