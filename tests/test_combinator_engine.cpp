// Tests for the completion dispatch of combinator children
// (detail::child_owner / detail::child_root, the engine of
// detail/child_chain.hpp): every child reports to the engine that started it,
// whatever other engines are alive on the same chain and scheduler at the same
// time. A second engine, written here the way docs/internals.md tells authors
// of new combinators to, runs beside gather, race and a task group.
#include <corio/gather.hpp>

#include <cstddef>
#include <string>
#include <variant>
#include <vector>

#include <corio/task_group.hpp>

#include "support/corio_test.hpp"

using corio::task;
using corio_test::U;

namespace {

namespace d = corio::detail;

task<int> after_int(std::chrono::milliseconds t, int v) {
    co_await corio::sleep(t);
    co_return v;
}

/// A minimal engine of its own: runs its children as child chains of the
/// awaiting chain and records which child records reported to it, in order.
struct tally_engine : d::child_owner {
    std::vector<task<int>> kids;
    std::vector<d::child_root> roots;
    std::vector<std::size_t> order;  // which of its children reported, in order
    int foreign = 0;                 // completions received that were not its own children's
    d::chain* caller = nullptr;
    std::coroutine_handle<> parent{};
    std::size_t remaining = 0;

    explicit tally_engine(std::vector<task<int>> ts) : d::child_owner{&done}, kids(std::move(ts)), roots(kids.size()) {}

    static void done(d::child_root* r) noexcept {
        auto& e = *static_cast<tally_engine*>(r->owner);
        std::size_t i = 0;
        while (i < e.roots.size() && &e.roots[i] != r) ++i;
        if (i == e.roots.size()) {
            ++e.foreign;
            return;
        }
        e.order.push_back(i);
        r->unlink();
        if (--e.remaining == 0) e.caller->sched->next_ = e.parent;
    }

    bool await_ready() const noexcept { return kids.empty(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        caller = d::chain_of(h);
        parent = h;
        remaining = kids.size() + 1;
        for (std::size_t i = 0; i < kids.size(); ++i) {
            d::child_root& r = roots[i];
            r.frame = kids[i].handle();
            r.owner = this;
            r.ch.sched = caller->sched;
            r.ch.scope = &r;
            r.link_under(caller->scope);
            d::promise_base& p = d::promise_of(r.frame);
            p.ch = &r.ch;
            p.link = d::promise_base::root_bit;
            caller->sched->resume(r.frame);
        }
        return --remaining != 0;
    }
    std::vector<int> await_resume() {
        std::vector<int> out;
        for (auto& k : kids) out.push_back(k.handle().promise().take());
        return out;
    }
};

/// One child of the tally engine: awaits a gather whose children finish
/// between the other engines' children.
task<int> gather_child() {
    auto [a, b] = co_await corio::gather(after_int(1 * U, 1), after_int(3 * U, 3));
    co_return a * 10 + b;
}

/// Another: awaits a race (winner at 2U, loser cancelled).
task<int> race_child() {
    auto v = co_await corio::race(after_int(4 * U, 40), after_int(2 * U, 20));
    co_return static_cast<int>(v.index()) * 100 + std::get<1>(v);
}

}  // namespace

CORIO_TEST_CASE("each engine alive on one chain receives exactly its own children's completions") {
    const auto t0 = corio::now();
    std::vector<int> tallied;
    std::vector<std::size_t> order;
    int foreign = -1;
    int raced = 0;
    auto body = [&](corio::task_group& tg) -> task<void> {
        // A spawned sibling whose own race finishes in between the others.
        auto sibling = [&]() -> task<void> {
            auto v = co_await corio::race(after_int(5 * U, 5), after_int(U + U / 2, 15));
            raced = std::get<1>(v);
        };
        tg.spawn(sibling());
        std::vector<task<int>> ts;
        ts.push_back(gather_child());
        ts.push_back(race_child());
        ts.push_back(after_int(2 * U + U / 2, 7));
        tally_engine e(std::move(ts));
        tallied = co_await e;
        order = e.order;
        foreign = e.foreign;
    };
    co_await corio::with_task_group(body);
    CHECK(corio::now() - t0 == 3 * U);
    CHECK(tallied == std::vector<int>{13, 120, 7});
    CHECK(raced == 15);
    CHECK(foreign == 0);
    // Completions in time order: the race child at 2U, the plain one at 2.5U,
    // the gather child at 3U, each exactly once.
    CHECK(order == std::vector<std::size_t>{1, 2, 0});
}
