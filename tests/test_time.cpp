// Tests for corio/time.hpp: now(), sleep(), sleep_until(), yield_now(), under
// virtual time (exact) and once under real time (a lower bound only), plus the
// loop's timer heap (detail/timer_heap.hpp) against a std::multiset model.
#include <corio/time.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/corio_test.hpp"

using namespace std::chrono_literals;
using corio::task;
using corio_test::U;
using std::chrono::nanoseconds;

namespace {

struct wake {
    char name;
    nanoseconds at;  // loop time since the case started
    bool operator==(const wake&) const = default;
};

task<void> sleeper(std::vector<wake>& record, corio::clock::time_point start, char name, nanoseconds d) {
    co_await corio::sleep(d);
    record.push_back({name, corio::now() - start});
}

task<void> recorder(std::vector<std::string>& record, std::string what) {
    record.push_back(std::move(what));
    co_return;
}

task<void> yielder(std::vector<std::string>& record, std::string name, int rounds) {
    for (int i = 0; i < rounds; ++i) {
        record.push_back(name + std::to_string(i));
        co_await corio::yield_now();
    }
}

/// Sleeps `d` and reports how it ended: "woke" or "cancelled", and when.
task<std::string> sleep_until_cancelled(nanoseconds d) {
    try {
        co_await corio::sleep(d);
    } catch (const corio::cancelled_error&) {
        co_return "cancelled";
    }
    co_return "woke";
}

}  // namespace

TEST_CASE("time: now() needs a running loop") { CHECK_THROWS_AS(corio::now(), corio::invalid_state_error); }

CORIO_TEST_CASE("time: sleep(d) wakes at exactly start + d under virtual time") {
    const auto start = corio::now();
    co_await corio::sleep(3 * U);
    CHECK(corio::now() - start == 3 * U);
    co_await corio::sleep(1ns);
    CHECK(corio::now() - start == 3 * U + 1ns);
    // Other duration types convert exactly: 2.5 ms as a double, 1 s.
    co_await corio::sleep(std::chrono::duration<double, std::milli>(2.5));
    CHECK(corio::now() - start == 3 * U + 1ns + 2500us);
    co_await corio::sleep(1s);
    CHECK(corio::now() - start == 3 * U + 1ns + 2500us + 1s);
}

CORIO_TEST_CASE("time: sleep_until(future) wakes at exactly that time point") {
    const auto start = corio::now();
    co_await corio::sleep_until(start + 25ms);
    CHECK(corio::now() == start + 25ms);
    co_await corio::sleep_until(start + 25ms + 7ns);
    CHECK(corio::now() == start + 25ms + 7ns);
}

CORIO_TEST_CASE("time: sleepers wake in deadline order, equal deadlines in arming order") {
    const auto start = corio::now();
    std::vector<wake> record;
    // Spawned tasks start (and arm their sleeps) in spawn order.
    const std::vector<std::pair<char, nanoseconds>> plan{{'a', 3 * U}, {'b', 1 * U}, {'c', 2 * U}, {'d', 1 * U},
                                                         {'e', 2 * U}, {'f', 0 * U}, {'g', 1 * U}};
    std::vector<corio::join_handle<void>> handles;
    for (auto [name, d] : plan) handles.push_back(corio::spawn(sleeper(record, start, name, d)));
    for (auto& h : handles) co_await h;
    const std::vector<wake> expected{{'f', 0 * U}, {'b', 1 * U}, {'d', 1 * U}, {'g', 1 * U},
                                     {'c', 2 * U}, {'e', 2 * U}, {'a', 3 * U}};
    CHECK(record == expected);
    CHECK(corio::now() - start == 3 * U);
}

CORIO_TEST_CASE("time: equal deadlines keep arming order even when armed at different times") {
    const auto start = corio::now();
    std::vector<wake> record;
    // x arms for 2U at time 0; y arms for 1U at time U: both are due at 2U, x was armed first.
    auto x = corio::spawn(sleeper(record, start, 'x', 2 * U));
    co_await corio::sleep(U);
    auto y = corio::spawn(sleeper(record, start, 'y', 1 * U));
    co_await x;
    co_await y;
    CHECK(record == std::vector<wake>{{'x', 2 * U}, {'y', 2 * U}});
}

TEST_CASE("time: sleep(0), a negative sleep and sleep_until(past) are yields") {
    struct variant {
        const char* what;
        int kind;
    };
    const variant v = GENERATE(variant{"sleep(0)", 0}, variant{"sleep(-5ms)", 1}, variant{"sleep(hours::min())", 2},
                               variant{"sleep_until(past)", 3}, variant{"sleep_until(now)", 4});
    INFO(v.what);
    corio::testing::run_virtual([&]() -> task<void> {
        const auto start = corio::now();
        std::vector<std::string> record;
        std::size_t timers_seen = 99;
        auto other = [&]() -> task<void> {
            record.push_back("other");
            timers_seen = corio::current_loop().pending_timers();
            co_return;
        };
        auto h = corio::spawn(other());  // ready: starts at the loop's next turn
        record.push_back("before");
        switch (v.kind) {
            case 0: co_await corio::sleep(0ms); break;
            case 1: co_await corio::sleep(-5ms); break;
            case 2: co_await corio::sleep(std::chrono::hours::min()); break;
            case 3: co_await corio::sleep_until(start - 1s); break;
            default: co_await corio::sleep_until(start); break;
        }
        record.push_back("after");
        CHECK(record == std::vector<std::string>{"before", "other", "after"});
        CHECK(timers_seen == 0);  // the yield armed no timer
        CHECK(corio::current_loop().pending_timers() == 0);
        CHECK(corio::now() == start);
        co_await h;
    });
}

CORIO_TEST_CASE("time: a zero sleep goes to the back of the ready queue") {
    std::vector<std::string> record;
    auto a = corio::spawn(recorder(record, "a"));
    auto b = corio::spawn(recorder(record, "b"));
    co_await corio::sleep(0ns);
    record.push_back("main");
    co_await a;
    co_await b;
    CHECK(record == std::vector<std::string>{"a", "b", "main"});
}

CORIO_TEST_CASE("time: yield_now() round-robins between ready tasks") {
    const auto start = corio::now();
    std::vector<std::string> record;
    auto a = corio::spawn(yielder(record, "a", 3));
    auto b = corio::spawn(yielder(record, "b", 3));
    co_await a;
    co_await b;
    CHECK(record == std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2"});
    CHECK(corio::now() == start);
    CHECK(corio::current_loop().pending_timers() == 0);
}

CORIO_TEST_CASE("time: virtual now() does not advance without sleeping") {
    const auto t0 = corio::now();
    // Burn real time: the virtual clock must not notice.
    const auto real_start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - real_start < 2ms) {
    }
    CHECK(corio::now() == t0);
    co_await corio::yield_now();
    CHECK(corio::now() == t0);
    co_await corio::sleep(0ms);
    CHECK(corio::now() == t0);
    co_await corio::sleep(U);
    CHECK(corio::now() == t0 + U);
}

TEST_CASE("time: sleep(max) saturates and only ends by cancellation") {
    const int kind = GENERATE(0, 1, 2, 3);
    INFO("kind " << kind);
    corio::testing::run_virtual([kind]() -> task<void> {
        const auto start = corio::now();
        bool woke = false;
        auto forever_sleeper = [&]() -> task<void> {
            switch (kind) {
                case 0: co_await corio::sleep(std::chrono::hours::max()); break;
                case 1: co_await corio::sleep(corio::clock::duration::max()); break;
                case 2: co_await corio::sleep(corio::clock::duration::max() - 1ns); break;
                default: co_await corio::sleep_until(corio::clock::time_point::max()); break;
            }
            woke = true;
        };
        auto h = corio::spawn(forever_sleeper());
        // A hundred years of virtual time later it is still asleep.
        co_await corio::sleep(std::chrono::hours(24 * 365 * 100));
        CHECK_FALSE(h.done());
        CHECK_FALSE(woke);
        CHECK(corio::now() - start == std::chrono::hours(24 * 365 * 100));
        h.cancel();
        REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
        CHECK(h.cancelled());
        CHECK_FALSE(woke);
        CHECK(corio::current_loop().pending_timers() == 0);
        CHECK(corio::now() - start == std::chrono::hours(24 * 365 * 100));  // woken at once
    });
}

CORIO_TEST_CASE("time: a cancelled sleep removes its timer at once") {
    const auto start = corio::now();
    auto h = corio::spawn(sleep_until_cancelled(10 * U));
    co_await corio::sleep(U);
    auto& loop = corio::current_loop();
    CHECK(loop.pending_timers() == 1);  // the spawned task's sleep
    h.cancel();
    CHECK(loop.pending_timers() == 0);  // before the sleeper has even resumed
    std::string how = co_await h;
    CHECK(how == "cancelled");
    CHECK(corio::now() - start == U);  // woken at once, not at 10U
    CHECK(loop.pending_timers() == 0);
}

CORIO_TEST_CASE("time: an uncancelled sleep is unaffected by a sibling's cancellation") {
    const auto start = corio::now();
    auto a = corio::spawn(sleep_until_cancelled(2 * U));
    auto b = corio::spawn(sleep_until_cancelled(2 * U));
    co_await corio::sleep(U);
    a.cancel();
    std::string ra = co_await a;
    std::string rb = co_await b;
    CHECK(ra == "cancelled");
    CHECK(rb == "woke");
    CHECK(corio::now() - start == 2 * U);
}

CORIO_TEST_CASE("time: in a cancelled task, sleep and yield_now throw without suspending") {
    const auto start = corio::now();
    int yields_survived = 0;
    bool sleep_threw = false;
    bool yield_threw = false;
    auto body = [&]() -> task<int> {
        try {
            co_await corio::sleep(corio_test::forever);
        } catch (const corio::cancelled_error&) {
        }
        // Level-triggered: the task is still cancelled.
        try {
            co_await corio::sleep(U);
        } catch (const corio::cancelled_error&) {
            sleep_threw = true;
        }
        try {
            co_await corio::yield_now();
            ++yields_survived;
        } catch (const corio::cancelled_error&) {
            yield_threw = true;
        }
        co_return 7;  // swallowing is allowed; the task then returns normally
    };
    auto h = corio::spawn(body());
    co_await corio::sleep(U);
    h.cancel();
    int v = co_await h;
    CHECK(v == 7);
    CHECK(sleep_threw);
    CHECK(yield_threw);
    CHECK(yields_survived == 0);
    CHECK(corio::now() - start == U);
}

CORIO_TEST_CASE("time: yield_now() checks for cancellation again when resumed") {
    int steps = 0;
    bool threw = false;
    auto spinner = [&]() -> task<void> {
        try {
            for (;;) {
                ++steps;
                co_await corio::yield_now();
            }
        } catch (const corio::cancelled_error&) {
            threw = true;
            throw;
        }
    };
    auto h = corio::spawn(spinner());
    co_await corio::yield_now();  // the spinner starts, steps once and queues behind us
    CHECK(steps == 1);
    h.cancel();  // while it sits in the ready queue, not parked
    REQUIRE_THROWS_AS(co_await h, corio::cancelled_error);
    CHECK(steps == 1);
    CHECK(threw);
}

CORIO_TEST_CASE_WITH(corio::testing::real_time, "time: a real-time sleep of 20 ms takes at least 20 ms") {
    CHECK_FALSE(corio::current_loop().virtual_time());
    const auto real_start = std::chrono::steady_clock::now();
    const auto loop_start = corio::now();
    co_await corio::sleep(20ms);
    const auto real = std::chrono::steady_clock::now() - real_start;
    const auto loop = corio::now() - loop_start;
    CHECK(real >= 20ms);
    CHECK(loop >= 20ms);
}

CORIO_TEST_CASE_WITH(corio::testing::real_time, "time: real-time sleepers wake in deadline order") {
    const auto start = corio::now();
    std::vector<wake> record;
    auto a = corio::spawn(sleeper(record, start, 'a', 15ms));
    auto b = corio::spawn(sleeper(record, start, 'b', 5ms));
    auto c = corio::spawn(sleeper(record, start, 'c', 10ms));
    co_await a;
    co_await b;
    co_await c;
    REQUIRE(record.size() == 3);
    CHECK(record[0].name == 'b');
    CHECK(record[1].name == 'c');
    CHECK(record[2].name == 'a');
    CHECK(record[0].at >= 5ms);
    CHECK(record[1].at >= 10ms);
    CHECK(record[2].at >= 15ms);
}

// ---------------------------------------------------------------------------
// detail::timer_heap

namespace {

using corio::detail::timer_heap;
using corio::detail::timer_node;

struct model_entry {
    corio::clock::time_point deadline;
    std::uint64_t order;  // push order: ties must pop in this order
    timer_node* node;
    bool operator<(const model_entry& o) const { return std::tie(deadline, order) < std::tie(o.deadline, o.order); }
};

/// Drives a timer_heap and a std::multiset model with the same random
/// operations and counts every disagreement.
class heap_checker {
public:
    heap_checker(std::size_t nodes, unsigned seed) : nodes_(nodes), pos_(nodes, npos), rng_(seed) {}

    void push(std::size_t i, int deadline_ms) {
        timer_node& n = nodes_[i];
        n.deadline = corio::clock::time_point{} + std::chrono::milliseconds(deadline_ms);
        heap_.push(&n);
        const auto it = model_.insert({n.deadline, next_order_++, &n});
        iters_[&n] = it;
        pos_[i] = queued_.size();
        queued_.push_back(i);
        if (!n.queued()) ++failures;
    }
    void remove(std::size_t i) {
        timer_node& n = nodes_[i];
        heap_.remove(&n);
        model_.erase(iters_.at(&n));
        iters_.erase(&n);
        forget(i);
        if (n.index != timer_node::not_queued) ++failures;
    }
    void pop() {
        timer_node* n = heap_.pop();
        if (n != model_.begin()->node) ++failures;
        if (n->index != timer_node::not_queued) ++failures;
        model_.erase(model_.begin());
        iters_.erase(n);
        forget(static_cast<std::size_t>(n - nodes_.data()));
    }
    void check_top() {
        if (heap_.size() != model_.size()) ++failures;
        if (!model_.empty() && heap_.top() != model_.begin()->node) ++failures;
    }
    /// Every queued node's index is a distinct position inside the heap.
    void check_indices() {
        std::vector<bool> seen(heap_.size(), false);
        for (std::size_t i : queued_) {
            const std::uint32_t ix = nodes_[i].index;
            if (ix >= heap_.size() || seen[ix]) {
                ++failures;
                continue;
            }
            seen[ix] = true;
        }
    }

    std::size_t random_queued() { return queued_[rng_() % queued_.size()]; }
    std::size_t random_free() {
        for (;;) {
            std::size_t i = rng_() % nodes_.size();
            if (pos_[i] == npos) return i;
        }
    }
    int random_deadline(int range) { return static_cast<int>(rng_() % static_cast<unsigned>(range)); }
    unsigned roll(unsigned n) { return rng_() % n; }

    std::size_t size() const { return queued_.size(); }
    std::size_t capacity() const { return nodes_.size(); }
    bool heap_empty() const { return heap_.empty(); }

    std::size_t failures = 0;

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    void forget(std::size_t i) {
        const std::size_t p = pos_[i];
        queued_[p] = queued_.back();
        pos_[queued_[p]] = p;
        queued_.pop_back();
        pos_[i] = npos;
    }

    std::vector<timer_node> nodes_;
    std::vector<std::size_t> pos_;  // index into queued_, or npos
    std::vector<std::size_t> queued_;
    timer_heap heap_;
    std::multiset<model_entry> model_;
    std::map<timer_node*, std::multiset<model_entry>::iterator> iters_;
    std::uint64_t next_order_ = 0;
    std::mt19937 rng_;
};

}  // namespace

TEST_CASE("timer_heap: 100,000 random push/remove/pop keep deadline-then-arming order") {
    heap_checker c(1000, 20261127u);
    for (int op = 0; op < 100000; ++op) {
        const unsigned r = c.roll(100);
        if (c.size() == 0 || (r < 45 && c.size() < c.capacity())) {
            c.push(c.random_free(), c.random_deadline(200));  // narrow range: many ties
        } else if (r < 75) {
            c.remove(c.random_queued());
        } else {
            c.pop();
        }
        c.check_top();
        if (op % 997 == 0) c.check_indices();
    }
    c.check_indices();
    while (c.size() != 0) {
        c.pop();
        c.check_top();
    }
    CHECK(c.heap_empty());
    CHECK(c.failures == 0);
}

TEST_CASE("timer_heap: a burst then mass removal (capacity shrinks) keeps order") {
    heap_checker c(20000, 7u);
    for (std::size_t i = 0; i < 20000; ++i) c.push(i, c.random_deadline(5000));
    c.check_top();
    c.check_indices();
    // Remove at random down to 100 (crossing the shrink threshold), checking as we go.
    while (c.size() > 100) {
        c.remove(c.random_queued());
        c.check_top();
    }
    c.check_indices();
    while (c.size() != 0) {
        c.pop();
        c.check_top();
    }
    CHECK(c.heap_empty());
    CHECK(c.failures == 0);
}

TEST_CASE("timer_heap: removal leaves the node not_queued and re-pushable") {
    timer_heap heap;
    timer_node a, b, c;
    const auto t0 = corio::clock::time_point{};
    a.deadline = t0 + 5ms;
    b.deadline = t0 + 5ms;
    c.deadline = t0 + 1ms;
    CHECK_FALSE(a.queued());
    heap.push(&a);
    heap.push(&b);
    heap.push(&c);
    CHECK(heap.size() == 3);
    CHECK(heap.top() == &c);
    heap.remove(&c);
    CHECK(c.index == timer_node::not_queued);
    CHECK_FALSE(c.queued());
    CHECK(heap.top() == &a);  // equal deadlines: a was pushed first
    heap.remove(&a);
    CHECK_FALSE(a.queued());
    CHECK(heap.top() == &b);
    heap.push(&a);  // re-armed: now after b
    heap.push(&c);
    CHECK(heap.pop() == &c);
    CHECK(heap.pop() == &b);
    CHECK(heap.pop() == &a);
    CHECK(heap.empty());
    CHECK_FALSE(a.queued());
    CHECK_FALSE(b.queued());
}

CORIO_TEST_CASE("time: a sleep in an already-cancelled scope throws before suspending and arms no timer") {
    bool other_ran = false;
    auto other = corio::spawn(corio_test::owned([&]() -> task<void> {
        other_ran = true;
        co_return;
    }));
    const auto start = corio::now();
    corio::cancel_scope sc;
    sc.cancel();
    const bool slept = co_await sc.run(corio::sleep(U));
    CHECK_FALSE(slept);
    CHECK(sc.cancelled_caught());
    CHECK_FALSE(other_ran);  // never suspended: the task ready meanwhile has not run yet
    CHECK(corio::current_loop().pending_timers() == 0);
    CHECK(corio::now() == start);
    co_await other;
    CHECK(other_ran);
}
