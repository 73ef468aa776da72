// tests/stress: random structured-concurrency programs under schedule fuzzing.
//
//   stress --seeds N [--first S]   run seeds S .. S+N-1 (default S = 1)
//   stress --seed S                run one seed (a failure prints this line)
//   stress ... --quiet             only failures and the totals
//
// Each seed generates one program (its shape from a splitmix64 stream seeded
// by S, independent of the schedule; one random draw per statement, so
// argument evaluation order cannot make g++ and clang++ build different
// programs) and runs it on a virtual-time loop with
// run_options::schedule_seed = S: same seed, same program, same interleaving,
// no wall clock anywhere, so a failing seed replays exactly.
//
// A program is a random tree of nodes: sequences, task groups (children
// spawned, the group cancelled at random), gather / gather_settled /
// gather_limited / race, timeout and move_on_after, shield, the semaphore,
// mutex, queue and event, async generators and batch(), with() of an
// async_context, a pool's leases, spawned tasks whose join_handles are
// awaited, cancelled at random or dropped, a condition_variable (waits with
// a predicate, some under a deadline; notify_one / notify_all), a barrier
// (rounds, withdrawn arrivals, abort), a limiter (acquire, acquire under a
// deadline, try_acquire) and stream pipelines (map_concurrent,
// map_unordered, buffer, filter, take, merge, throttle). Leaves sleep
// (virtual time), yield and throw at random. After each program it checks:
// - every child of a combinator or task group had finished when the
//   combinator returned or threw (a counter each child holds while it runs);
// - every tracked RAII object (in task frames, generator and context frames)
//   was destroyed exactly once;
// - permits, the mutex, pool leases and resources, context acquire/release
//   and queue items are conserved;
// - every injected exception surfaced exactly once: caught by the program,
//   returned by gather_settled, or reported to the loop's exception handler
//   (at most once where corio documents that it discards errors: the losers
//   of gather and race, the results of a gather_settled cancelled from
//   outside, a batch source the consumer stopped pulling);
// - condition_variable: every waiter returned with its predicate true and
//   the mutex held, or was cut short by its own deadline (still holding the
//   mutex): woken + timed out = waiters, the mutex free at the end;
// - barrier: every released round handed out each arrival index exactly
//   once (the counts per index are equal), no waiter left behind;
// - limiter: over every window [a, b] of grant times at most
//   burst + (b - a) / interval tokens were granted (exact in virtual time);
// - streams: a pipeline run to its end delivered exactly the items the
//   stages imply (in order while every stage keeps it; else the same set, or
//   at least the count), no item twice; when the consumer stopped inside
//   next() (end, error, deadline, cancellation) the outermost map stage has
//   no work in flight;
// - nothing is left on the loop (no live task, no armed timer).
// Totals printed at the end: programs, nodes, cancellations injected
// (handle and group cancel() calls, deadlines that fired), exceptions thrown.
#include <corio/corio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using corio::task;
using std::chrono::milliseconds;

namespace {

bool g_trace = false;  // --trace: every node, throw and catch on stderr

struct totals {
    std::uint64_t programs = 0, nodes = 0, cancellations = 0, exceptions = 0, unobserved = 0, failed = 0;
};

struct rng {
    std::uint64_t s;
    std::uint64_t next() {
        std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
    bool chance(int pct) { return below(100) < pct; }
    rng fork() { return rng{next()}; }
    milliseconds ms(int n) { return milliseconds(below(n)); }
};

/// The one exception programs throw; `id` names the throw.
struct fuzz_error : std::runtime_error {
    explicit fuzz_error(std::size_t i) : std::runtime_error("fuzz_error #" + std::to_string(i)), id(i) {}
    std::size_t id;
};

enum flag : unsigned {
    discardable = 1,  // errors in here may be dropped by a documented rule (gather/race losers, batch)
    no_locks = 2,     // under a permit, lease or the mutex: take nothing else (no deadlock by design)
    no_pool = 4,      // in a detached task: the pool may be closed under it
};

struct resobj;

/// One program's world: it lives outside the loop, so detached tasks that
/// run() cancels at the end still find it.
struct prog {
    explicit prog(totals& t) : tot(t) {}
    totals& tot;
    std::vector<std::string> failures;
    std::vector<unsigned char> objects;  // 1 alive, 2 destroyed
    struct thrown {
        bool may_drop;
        int surfaced = 0;
    };
    std::vector<thrown> errors;
    static constexpr std::ptrdiff_t permits = 2;
    corio::semaphore sem{permits};
    corio::mutex mtx;
    corio::queue<int> q{3};
    long q_put = 0, q_got = 0;
    int ctx_acquired = 0, ctx_released = 0;
    int res_alive = 0;
    std::optional<corio::pool<std::unique_ptr<resobj>>> pool;
    corio::limiter throttle_lim{1000.0, 3};  // stream throttle stages (outlives their hidden work)

    void fail(std::string what) {
        if (failures.size() < 8) failures.push_back(std::move(what));
    }
    void check(bool ok, const char* what) {
        if (!ok) fail(what);
    }
};

/// RAII object whose construction and destruction are counted by id.
struct tracked {
    explicit tracked(prog& p) : p_(p), id_(p.objects.size()) { p.objects.push_back(1); }
    tracked(const tracked&) = delete;
    tracked& operator=(const tracked&) = delete;
    ~tracked() {
        if (p_.objects[id_] != 1) p_.fail("a tracked object was destroyed twice (#" + std::to_string(id_) + ")");
        p_.objects[id_] = 2;
    }
    prog& p_;
    std::size_t id_;
};

struct resobj {
    explicit resobj(prog& p) : p_(p) { ++p.res_alive; }
    ~resobj() { --p_.res_alive; }
    prog& p_;
};

[[noreturn]] void throw_error(prog& P, unsigned f) {
    const std::size_t id = P.errors.size();
    P.errors.push_back({(f & discardable) != 0});
    if (g_trace) std::fprintf(stderr, "  throw #%zu flags %u\n", id, f);
    ++P.tot.exceptions;
    throw fuzz_error(id);
}

/// Marks every fuzz_error in `e` (an exception_group at any depth) surfaced.
void surfaced(prog& P, std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const fuzz_error& x) {
        if (g_trace) std::fprintf(stderr, "  surfaced #%zu\n", x.id);
        if (++P.errors[x.id].surfaced > 1) P.fail("fuzz_error #" + std::to_string(x.id) + " surfaced twice");
    } catch (const corio::exception_group& g) {
        for (const auto& m : g.exceptions()) surfaced(P, m);
    } catch (const corio::cancelled_error&) {
    } catch (const corio::timeout_error&) {
    } catch (const std::exception& x) {
        P.fail(std::string("unexpected exception: ") + x.what());
    } catch (...) {
        P.fail("unexpected non-std exception");
    }
}

std::string describe(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const corio::exception_group& g) {
        std::string s = "group{";
        for (const auto& m : g.exceptions()) s += describe(m) + ",";
        return s + "}";
    } catch (const corio::cancelled_error&) {
        return "cancelled";
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "?";
    }
}

/// Children a combinator started and that are still running.
struct kids {
    int active = 0;
};
struct kid_guard {
    explicit kid_guard(kids& k) : k_(k) { ++k_.active; }
    ~kid_guard() { --k_.active; }
    kids& k_;
};

task<void> node(prog& P, rng r, int depth, unsigned f);

/// A node that may catch what its subtree throws (decided up front).
task<void> guarded(prog& P, rng r, int depth, unsigned f) {
    const bool swallow = r.chance(25);
    try {
        co_await node(P, r.fork(), depth, f);
    } catch (const fuzz_error& x) {
        if (g_trace) std::fprintf(stderr, "  guarded caught #%zu (%s)\n", x.id, swallow ? "swallow" : "rethrow");
        if (!swallow) throw;
        surfaced(P, std::current_exception());
    } catch (const corio::exception_group&) {
        if (!swallow) throw;
        surfaced(P, std::current_exception());
    }
}

task<void> child(prog& P, kids& k, rng r, int depth, unsigned f) {
    kid_guard g(k);
    co_await guarded(P, r, depth, f);
}

void check_kids(prog& P, const kids& k, const char* what) {
    if (k.active != 0) P.fail(std::string(what) + " went on while a child was still running");
}

std::vector<task<void>> children(prog& P, kids& k, rng& r, int depth, unsigned f, int max) {
    std::vector<task<void>> ts;
    const int n = 1 + r.below(max);
    for (int i = 0; i < n; ++i) ts.push_back(child(P, k, r.fork(), depth - 1, f));
    return ts;
}

// ------------------------------------------------------------- leaves ---

task<void> leaf(prog& P, rng r, unsigned f) {
    tracked t(P);
    if (g_trace) std::fprintf(stderr, "  leaf flags %u\n", f);
    const int steps = r.below(4);
    for (int i = 0; i < steps; ++i) {
        if (r.chance(70)) co_await corio::sleep(r.ms(20));
        else co_await corio::yield_now();
    }
    if (r.chance(15)) throw_error(P, f);
}

// --------------------------------------------------------- combinators ---

template <class Await>
task<void> kids_run(prog& P, kids& k, const char* what, Await aw) {
    std::exception_ptr ep;
    try {
        co_await std::move(aw);
    } catch (...) {
        ep = std::current_exception();
        if (g_trace) std::fprintf(stderr, "  %s threw %s\n", what, describe(ep).c_str());
    }
    check_kids(P, k, what);
    if (ep) std::rethrow_exception(ep);
}

task<void> do_gather(prog& P, rng r, int depth, unsigned f) {
    kids k;
    auto aw = corio::gather(children(P, k, r, depth, f | discardable, 4));
    co_await kids_run(P, k, "gather", std::move(aw));
}

task<void> do_gather_settled(prog& P, rng r, int depth, unsigned f) {
    kids k;
    std::exception_ptr ep;
    try {
        // A cancelled gather_settled throws cancelled_error and drops its
        // results, errors included (documented): its children's errors may drop.
        auto rs = co_await corio::gather_settled(children(P, k, r, depth, f | discardable, 4));
        for (auto& x : rs)
            if (!x.has_value()) surfaced(P, x.error());
    } catch (...) {
        ep = std::current_exception();
    }
    check_kids(P, k, "gather_settled");
    if (ep) std::rethrow_exception(ep);
}

task<void> do_gather_limited(prog& P, rng r, int depth, unsigned f) {
    kids k;
    const std::size_t limit = 1 + static_cast<std::size_t>(r.below(2));
    auto aw = corio::gather_limited(limit, children(P, k, r, depth, f | discardable, 5));
    co_await kids_run(P, k, "gather_limited", std::move(aw));
}

task<void> do_race(prog& P, rng r, int depth, unsigned f) {
    kids k;
    auto aw = corio::race(children(P, k, r, depth, f | discardable, 3));
    co_await kids_run(P, k, "race", std::move(aw));
}

task<void> do_timeout(prog& P, rng r, int depth, unsigned f) {
    kids k;
    try {
        const auto d = r.ms(40);  // one draw per statement: the same program on every compiler
        auto aw = corio::timeout(d, child(P, k, r.fork(), depth - 1, f));
        co_await kids_run(P, k, "timeout", std::move(aw));
    } catch (const corio::timeout_error&) {
        ++P.tot.cancellations;
    }
}

task<void> do_move_on(prog& P, rng r, int depth, unsigned f) {
    kids k;
    bool finished = true;
    std::exception_ptr ep;
    try {
        const auto d = r.ms(40);
        finished = co_await corio::move_on_after(d, child(P, k, r.fork(), depth - 1, f));
    } catch (...) {
        ep = std::current_exception();
    }
    check_kids(P, k, "move_on_after");
    if (ep) std::rethrow_exception(ep);
    if (!finished) ++P.tot.cancellations;
}

task<void> do_shield(prog& P, rng r, int depth, unsigned f) {
    kids k;
    auto aw = corio::shield(child(P, k, r.fork(), depth - 1, f));
    co_await kids_run(P, k, "shield", std::move(aw));
}

task<void> group_body(prog& P, corio::task_group& tg, kids& k, rng r, int depth, unsigned f) {
    tracked t(P);
    const int n = 1 + r.below(depth > 3 ? 6 : 4);
    std::vector<corio::join_handle<void>> hs;
    for (int i = 0; i < n; ++i) {
        try {
            hs.push_back(tg.spawn(child(P, k, r.fork(), depth - 1, f)));
        } catch (const corio::invalid_state_error&) {
            break;  // the group's scope was cancelled from outside: shutdown began
        }
    }
    if (!hs.empty() && r.chance(30)) {  // cancel one child by its handle
        co_await corio::sleep(r.ms(20));
        hs[static_cast<std::size_t>(r.below(static_cast<int>(hs.size())))].cancel();
        ++P.tot.cancellations;
    }
    if (r.chance(30)) {
        co_await corio::sleep(r.ms(30));
        tg.cancel();
        ++P.tot.cancellations;
    }
    if (r.chance(20)) co_await leaf(P, r.fork(), f);
}

task<void> do_group(prog& P, rng r, int depth, unsigned f) {
    kids k;
    rng br = r.fork();
    auto body = [&P, &k, br, depth, f](corio::task_group& tg) { return group_body(P, tg, k, br, depth, f); };
    auto aw = corio::with_task_group(body);
    co_await kids_run(P, k, "task group", std::move(aw));
}

task<void> scope_canceller(prog& P, corio::cancel_scope& cs, rng r) {
    co_await corio::sleep(r.ms(30));
    if (!cs.finished()) {
        cs.cancel();
        ++P.tot.cancellations;
    }
}

/// A subtree under a cancel_scope that a sibling cancels at a random time
/// (the sibling runs beside it, in a task group, so it is cancelled with it).
task<void> scoped_body(prog& P, corio::task_group& tg, corio::cancel_scope& cs, kids& k, rng r, int depth, unsigned f) {
    try {
        tg.spawn(scope_canceller(P, cs, r.fork()));
    } catch (const corio::invalid_state_error&) {
        // cancelled from outside already: the subtree below sees it anyway
    }
    auto aw = cs.run(child(P, k, r.fork(), depth - 1, f));
    (void)co_await std::move(aw);
    tg.cancel();  // the canceller, if it still sleeps
}

task<void> do_cancel_scope(prog& P, rng r, int depth, unsigned f) {
    kids k;
    corio::cancel_scope cs;  // outlives the group: the canceller may still run when the body threw
    rng br = r.fork();
    auto body = [&P, &cs, &k, br, depth, f](corio::task_group& tg) { return scoped_body(P, tg, cs, k, br, depth, f); };
    auto aw = corio::with_task_group(body);
    co_await kids_run(P, k, "cancel_scope", std::move(aw));
}

task<void> do_sequence(prog& P, rng r, int depth, unsigned f) {
    const int n = 1 + r.below(3);
    for (int i = 0; i < n; ++i) co_await guarded(P, r.fork(), depth - 1, f);
}

// ----------------------------------------------------------- primitives ---

task<void> do_semaphore(prog& P, rng r, int depth, unsigned f) {
    switch (r.below(3)) {
        case 0: {
            auto permit = co_await P.sem.acquire();
            co_await guarded(P, r.fork(), depth - 1, f | no_locks);
            break;
        }
        case 1: {  // the operation itself as a combinator's operand
            auto permit = co_await corio::move_on_after(r.ms(15), P.sem.acquire());
            if (permit) co_await guarded(P, r.fork(), depth - 1, f | no_locks);
            break;
        }
        default: {
            auto won = co_await corio::race(P.sem.acquire(), corio::sleep(r.ms(15)));
            if (won.index() == 0) co_await leaf(P, r.fork(), f | no_locks);
            break;
        }
    }
}

task<void> do_mutex(prog& P, rng r, int depth, unsigned f) {
    (void)depth;
    if (r.chance(50)) {
        auto g = co_await P.mtx.lock();
        co_await leaf(P, r.fork(), f | no_locks);
    } else {
        auto g = co_await corio::move_on_after(r.ms(15), P.mtx.lock());
        if (g) co_await leaf(P, r.fork(), f | no_locks);
    }
}

task<void> producer(prog& P, rng r) {
    tracked t(P);
    const int n = 1 + r.below(5);
    for (int i = 0; i < n; ++i) {
        co_await P.q.put(i);
        ++P.q_put;
        if (r.chance(40)) co_await corio::sleep(r.ms(5));
    }
}

task<void> consumer(prog& P, rng r) {
    tracked t(P);
    const int n = 1 + r.below(5);
    for (int i = 0; i < n; ++i) {
        if (r.chance(20)) {
            if (P.q.try_get()) ++P.q_got;
        } else if (r.chance(30)) {
            auto v = co_await corio::move_on_after(r.ms(5), P.q.get());
            if (v) ++P.q_got;
        } else {
            (void)co_await P.q.get();
            ++P.q_got;
        }
        if (r.chance(40)) co_await corio::sleep(r.ms(5));
    }
}

task<void> do_queue(prog& P, rng r, unsigned f) {
    // Bounded in time both ways: a blocked put or get is cut short (and then
    // takes or inserts nothing).
    const auto dp = r.ms(60);
    auto prod = corio::move_on_after(dp, producer(P, r.fork()));
    const auto dc = r.ms(60);
    auto cons = corio::move_on_after(dc, consumer(P, r.fork()));
    co_await corio::gather(std::move(prod), std::move(cons));
    if (r.chance(10)) throw_error(P, f);
}

task<void> event_waiter(prog& P, corio::event& ev, rng r) {
    tracked t(P);
    co_await ev.wait();
    if (r.chance(30)) co_await corio::yield_now();
}

task<void> event_setter(corio::event& ev, rng r) {
    co_await corio::sleep(r.ms(10));
    ev.set();
}

task<void> do_event(prog& P, rng r) {
    corio::event ev;
    std::vector<task<void>> ts;
    const int n = 1 + r.below(3);
    for (int i = 0; i < n; ++i) ts.push_back(event_waiter(P, ev, r.fork()));
    ts.push_back(event_setter(ev, r.fork()));
    co_await corio::gather(std::move(ts));
}

corio::async_generator<int> numbers(prog& P, rng r, unsigned f) {
    tracked t(P);
    const int n = r.below(6);
    for (int i = 0; i < n; ++i) {
        if (r.chance(50)) co_await corio::sleep(r.ms(8));
        if (r.chance(8)) throw_error(P, f);
        co_yield i;
    }
}

task<void> do_generator(prog& P, rng r, unsigned f) {
    tracked t(P);
    auto g = numbers(P, r.fork(), f);
    for (;;) {
        if (r.chance(20)) {
            // A deadline that cuts next() short cancels the body's pending
            // operation, which ends the generator.
            auto v = co_await corio::move_on_after(r.ms(6), g.next());
            if (!v) ++P.tot.cancellations;
            if (!v || !*v) break;
        } else if (!co_await g.next()) {
            break;
        }
        if (r.chance(15)) break;  // destroys the generator mid-stream
        if (r.chance(30)) co_await corio::sleep(r.ms(5));
    }
}

task<void> do_batch(prog& P, rng r, unsigned f) {
    tracked t(P);
    const std::size_t size = 1 + static_cast<std::size_t>(r.below(3));
    // The source's error may be dropped when the consumer stops pulling first.
    const auto wait = r.ms(10) + milliseconds(1);
    auto b = corio::batch(numbers(P, r.fork(), f | discardable), size, wait);
    while (auto v = co_await b.next()) {
        if (v->empty()) P.fail("batch() emitted an empty batch");
        if (r.chance(15)) break;
        if (r.chance(30)) co_await corio::sleep(r.ms(5));
    }
}

corio::async_context<int> managed(prog& P, rng r, unsigned f) {
    tracked t(P);
    if (r.chance(40)) co_await corio::sleep(r.ms(5));
    if (r.chance(8)) throw_error(P, f);  // acquire fails: the body never runs
    ++P.ctx_acquired;
    corio::context_exit how = co_yield 7;
    (void)how;
    if (r.chance(40)) co_await corio::sleep(r.ms(5));  // the release half is shielded
    ++P.ctx_released;
    if (r.chance(8)) throw_error(P, f);
}

task<void> do_with(prog& P, rng r, int depth, unsigned f) {
    kids k;
    rng br = r.fork();
    auto body = [&P, &k, br, depth, f](int& v) {
        if (v != 7) P.fail("with() handed the body a wrong resource");
        return child(P, k, br, depth - 1, f);
    };
    auto aw = corio::with(managed(P, r.fork(), f), body);
    co_await kids_run(P, k, "with", std::move(aw));
}

task<std::unique_ptr<resobj>> make_resource(prog* P) {
    co_await corio::sleep(milliseconds(1));
    co_return std::make_unique<resobj>(*P);
}

task<void> do_pool(prog& P, rng r, unsigned f) {
    if (r.chance(30)) {
        auto lease = co_await corio::move_on_after(r.ms(10), P.pool->acquire());
        if (lease) co_await leaf(P, r.fork(), f | no_locks);
        co_return;
    }
    auto lease = co_await P.pool->acquire();
    if (!*lease) P.fail("a lease without a resource");
    co_await leaf(P, r.fork(), f | no_locks);
    if (r.chance(20)) lease.discard();
}

// ------------------------------------------- condition_variable, barrier ---

struct cv_world {
    corio::mutex m;
    corio::condition_variable cv;
    int value = 0;
    int woken = 0, timed_out = 0;
};

/// Waits (with a predicate) until the notifier has counted up to `want`;
/// sometimes under a deadline. Every way out holds the mutex again.
task<void> cv_waiter(prog& P, cv_world& w, rng r, int want) {
    tracked t(P);
    auto g = co_await w.m.lock();
    auto pred = [&w, want] { return w.value >= want; };
    if (r.chance(40)) {
        const auto d = r.ms(30);
        const bool done = co_await corio::move_on_after(d, w.cv.wait(g, pred));
        P.check(w.m.locked(), "condition_variable: a waiter cut short by its deadline does not hold the mutex");
        if (!done) {
            ++w.timed_out;
            ++P.tot.cancellations;
            co_return;
        }
    } else {
        co_await w.cv.wait(g, pred);
    }
    P.check(w.value >= want, "condition_variable: wait(g, pred) returned with pred false");
    P.check(w.m.locked(), "condition_variable: wait returned without the mutex");
    ++w.woken;
    if (r.chance(30)) co_await corio::yield_now();  // still holding the lock
}

/// Counts up to `top`, notifying one or all after each step (under the lock
/// or not), then notifies all: every waiter's predicate holds by then.
task<void> cv_notifier(cv_world& w, rng r, int top) {
    for (int v = 1; v <= top; ++v) {
        co_await corio::sleep(r.ms(10));
        if (r.chance(50)) {
            auto g = co_await w.m.lock();
            w.value = v;
        } else {
            w.value = v;
        }
        if (r.chance(50)) w.cv.notify_one();
        else w.cv.notify_all();
    }
    w.cv.notify_all();
}

task<void> do_condvar(prog& P, rng r, unsigned f) {
    cv_world w;
    std::vector<task<void>> ts;
    const int n = 1 + r.below(4);
    const int top = 1 + r.below(4);
    for (int i = 0; i < n; ++i) {
        const int want = 1 + r.below(top);
        ts.push_back(cv_waiter(P, w, r.fork(), want));
    }
    ts.push_back(cv_notifier(w, r.fork(), top));
    co_await corio::gather(std::move(ts));
    // Conserved: every waiter was woken with its predicate true or cut short by its own deadline.
    if (w.woken + w.timed_out != n) P.fail("condition_variable: waiters neither woken nor timed out");
    P.check(!w.m.locked(), "condition_variable: the mutex was left locked");
    if (r.chance(10)) throw_error(P, f);
}

struct barrier_world {
    explicit barrier_world(int n) : b(n), counts(static_cast<std::size_t>(n)) {}
    corio::barrier b;
    std::vector<int> counts;  // arrival index -> how many rounds returned it
};

/// Arrives for a few rounds, sometimes under a deadline (withdrawing the
/// arrival and leaving); a broken barrier ends it.
task<void> barrier_party(prog& P, barrier_world& w, rng r, int rounds) {
    tracked t(P);
    for (int i = 0; i < rounds; ++i) {
        if (r.chance(50)) co_await corio::sleep(r.ms(10));
        std::ptrdiff_t index = -1;
        try {
            if (r.chance(25)) {
                const auto d = r.ms(20);
                auto v = co_await corio::move_on_after(d, w.b.arrive_and_wait());
                if (!v) {
                    ++P.tot.cancellations;
                    co_return;
                }
                index = *v;
            } else {
                index = co_await w.b.arrive_and_wait();
            }
        } catch (const corio::broken_barrier&) {
            co_return;
        }
        if (index < 0 || index >= w.b.parties()) {
            P.fail("barrier: an arrival index out of range");
            co_return;
        }
        ++w.counts[static_cast<std::size_t>(index)];
    }
}

/// Breaks the barrier at a random time, so that parties left waiting for a
/// round nobody else will fill (one withdrew) finish.
task<void> barrier_breaker(prog& P, barrier_world& w, rng r) {
    co_await corio::sleep(r.ms(120));
    w.b.abort();
    ++P.tot.cancellations;
}

task<void> do_barrier(prog& P, rng r) {
    const int n = 1 + r.below(4);
    barrier_world w(n);
    std::vector<task<void>> ts;
    const int rounds = 1 + r.below(3);
    for (int i = 0; i < n; ++i) ts.push_back(barrier_party(P, w, r.fork(), rounds));
    ts.push_back(barrier_breaker(P, w, r.fork()));
    co_await corio::gather(std::move(ts));
    // Conserved: a released round hands out every index exactly once.
    for (int c : w.counts)
        if (c != w.counts[0]) P.fail("barrier: arrival indices not handed out once per round");
    P.check(w.b.n_waiting() == 0, "barrier: a waiter left behind");
}

// ------------------------------------------------------------- limiter ---

struct grant {
    corio::clock::time_point at;
    std::size_t n;
};

task<void> limiter_user(prog& P, corio::limiter& lim, std::vector<grant>& grants, rng r) {
    tracked t(P);
    const int k = 1 + r.below(4);
    for (int i = 0; i < k; ++i) {
        const std::size_t n = 1 + static_cast<std::size_t>(r.below(static_cast<int>(lim.burst())));
        const int how = r.below(10);
        if (how < 3) {
            const auto d = r.ms(30);
            const bool got = co_await corio::move_on_after(d, lim.acquire(n));
            if (got) grants.push_back({corio::now(), n});
            else ++P.tot.cancellations;
        } else if (how < 5) {
            if (lim.try_acquire(n)) grants.push_back({corio::now(), n});
        } else {
            co_await lim.acquire(n);
            grants.push_back({corio::now(), n});
        }
        if (r.chance(40)) co_await corio::sleep(r.ms(15));
    }
}

/// Over every window [a, b] of grant times at most burst + (b - a) / interval
/// tokens were granted (virtual time: exact).
void check_rate(prog& P, const corio::limiter& lim, const std::vector<grant>& g) {
    for (std::size_t i = 0; i < g.size(); ++i) {
        if (i > 0 && g[i - 1].at == g[i].at) continue;  // windows start at a time's first grant
        std::size_t sum = 0;
        for (std::size_t j = i; j < g.size(); ++j) {
            sum += g[j].n;
            const auto allowed = lim.burst() + static_cast<std::size_t>((g[j].at - g[i].at) / lim.interval());
            if (sum > allowed) {
                P.fail("limiter: " + std::to_string(sum) + " tokens granted in a window that allows " +
                       std::to_string(allowed));
                return;
            }
        }
    }
}

task<void> do_limiter(prog& P, rng r, unsigned f) {
    static constexpr double rates[] = {50.0, 100.0, 200.0, 1000.0};  // per second: whole-nanosecond intervals
    const double rate = rates[r.below(4)];
    const std::size_t burst = 1 + static_cast<std::size_t>(r.below(3));
    corio::limiter lim(rate, burst);
    std::vector<grant> grants;
    std::vector<task<void>> ts;
    const int n = 1 + r.below(4);
    for (int i = 0; i < n; ++i) ts.push_back(limiter_user(P, lim, grants, r.fork()));
    std::exception_ptr ep;
    try {
        co_await corio::gather(std::move(ts));
    } catch (...) {
        ep = std::current_exception();  // cancelled from outside: the grants so far still count
    }
    check_rate(P, lim, grants);
    P.check(lim.waiters() == 0, "limiter: a waiter left behind");
    if (ep) std::rethrow_exception(ep);
    if (r.chance(10)) throw_error(P, f);
}

// ------------------------------------------------------- stream adaptors ---

corio::async_generator<int> items(prog& P, rng r, unsigned f, int base, int n) {
    tracked t(P);
    for (int i = 0; i < n; ++i) {
        if (r.chance(40)) co_await corio::sleep(r.ms(6));
        if (r.chance(4)) throw_error(P, f);
        co_yield base + i;
    }
}

/// The work of a map_concurrent / map_unordered stage: the identity, after a
/// sleep; throws now and then. `active` counts the calls in flight (shared:
/// a stream destroyed mid-way finishes its work one loop turn later).
task<int> slow_identity(prog* P, std::shared_ptr<kids> active, int x, int salt, unsigned f) {
    kid_guard g(*active);
    tracked t(*P);
    if (g_trace) std::fprintf(stderr, "  map work %d starts\n", x);
    co_await corio::sleep(milliseconds((x * 7 + salt) % 9));
    if (salt % 4 == 0 && (x + salt) % 11 == 0) throw_error(*P, f);
    co_return x;
}

/// What the consumer must see when the stream runs to its end: the exact
/// items (in order while every stage kept the order), or only their count.
struct stream_model {
    bool ordered = true;
    std::optional<std::vector<int>> exact;
    std::optional<std::size_t> count;
    int next_base = 1000;  // each merged source's items are distinct from all others
};

/// Adds one stage to `g`. `own_work` becomes the stage's own work counter (a
/// map stage) or null: only the outermost stage's own work is awaited by the
/// consumer's last next(); a concurrent stage inside another is destroyed
/// with it, and its work ends one loop turn later (documented).
corio::async_generator<int> add_stage(prog& P, rng& r, unsigned f, corio::async_generator<int> g, stream_model& m,
                                      std::shared_ptr<kids>& own_work) {
    prog* pp = &P;
    auto active = std::make_shared<kids>();
    own_work = nullptr;
    const int kind = r.below(7);
    const std::size_t k = 1 + static_cast<std::size_t>(r.below(3));
    const int salt = r.below(1000);
    if (g_trace) std::fprintf(stderr, "  stream stage %d (k %zu)\n", kind, k);
    auto work = [pp, active, salt, f](int x) { return slow_identity(pp, active, x, salt, f); };
    switch (kind) {
        case 0: own_work = active; return std::move(g) | corio::map_concurrent(k, work);
        case 1:
            own_work = active;
            m.ordered = false;
            return std::move(g) | corio::map_unordered(k, work);
        case 2: return std::move(g) | corio::buffer(k);
        case 3: {
            auto keep = [](int x) { return x % 3 != 0; };
            if (m.exact) std::erase_if(*m.exact, [](int x) { return x % 3 == 0; });
            else m.count.reset();
            return std::move(g) | corio::filter(keep);
        }
        case 4: {
            const std::size_t n = static_cast<std::size_t>(r.below(6));
            if (m.exact && m.ordered && m.exact->size() > n) m.exact->resize(n);
            else if (m.exact && m.exact->size() > n) m.count = n, m.exact.reset();
            else if (m.count) m.count = std::min(*m.count, n);
            return std::move(g) | corio::take(n);
        }
        case 5: {
            const int n = r.below(5);
            const int base = m.next_base;
            m.next_base += 1000;
            auto other = items(P, r.fork(), f, base, n);
            m.ordered = false;
            if (m.exact)
                for (int i = 0; i < n; ++i) m.exact->push_back(base + i);
            else if (m.count) *m.count += static_cast<std::size_t>(n);
            return corio::merge(std::move(g), std::move(other));
        }
        default: return std::move(g) | corio::throttle(P.throttle_lim);
    }
}

void check_stream(prog& P, const stream_model& m, std::vector<int> out) {
    if (m.exact && m.ordered && out != *m.exact) P.fail("stream: items out differ from items in (order kept)");
    std::sort(out.begin(), out.end());
    if (std::adjacent_find(out.begin(), out.end()) != out.end()) P.fail("stream: an item came out twice");
    if (m.exact) {
        std::vector<int> want = *m.exact;
        std::sort(want.begin(), want.end());
        if (out != want)
            P.fail("stream: " + std::to_string(out.size()) + " items out, " + std::to_string(want.size()) +
                   " expected");
    } else if (m.count && out.size() != *m.count) {
        P.fail("stream: " + std::to_string(out.size()) + " items out, " + std::to_string(*m.count) + " expected");
    }
}

task<void> do_stream(prog& P, rng r, unsigned f) {
    tracked t(P);
    f |= discardable;              // in-flight work cancelled after the first error may drop its own
    std::shared_ptr<kids> active;  // the outermost stage's own work, if it is a map stage
    const int n = r.below(8);
    stream_model m;
    m.exact.emplace();
    for (int i = 0; i < n; ++i) m.exact->push_back(i);
    auto g = items(P, r.fork(), f, 0, n);
    const int stages = 1 + r.below(3);
    for (int i = 0; i < stages; ++i) g = add_stage(P, r, f, std::move(g), m, active);
    std::vector<int> out;
    const bool stop_early = r.chance(15);
    const auto deadline = r.chance(20) ? r.ms(40) : milliseconds(1'000'000);
    std::exception_ptr ep;
    bool ended = false, in_next = false, cut = false;
    try {
        auto pull = [&]() -> task<void> {
            for (;;) {
                in_next = true;
                auto v = co_await g.next();
                in_next = false;
                if (!v) break;
                out.push_back(*v);
                if (stop_early && r.chance(30)) co_return;
                if (r.chance(20)) co_await corio::sleep(r.ms(5));
            }
            ended = true;
        };
        cut = !co_await corio::move_on_after(deadline, pull());
        if (cut) ++P.tot.cancellations;
    } catch (...) {
        ep = std::current_exception();
    }
    if (g_trace)
        std::fprintf(stderr, "  stream %s, %zu items, own work in flight %d\n",
                     ended ? "ended"
                     : ep  ? describe(ep).c_str()
                     : cut ? "cut by its deadline"
                           : "left early",
                     out.size(), active ? active->active : -1);
    // Stopped inside next() (end, error, the deadline or a cancellation from
    // outside): nothing the outermost stage started is still running.
    if ((ended || in_next) && active) check_kids(P, *active, "a stream adaptor");
    if (ended) check_stream(P, m, std::move(out));
    if (ep) std::rethrow_exception(ep);
}

// -------------------------------------------------------------- spawning ---

task<void> do_spawn(prog& P, rng r, int depth, unsigned f) {
    const int how = r.below(4);  // 0 await, 1 cancel then await, 2 drop (detach), 3 observe with a deadline
    auto h = corio::spawn(guarded(P, r.fork(), depth - 1, f | no_pool));
    if (how == 2) co_return;  // dropped: an error is reported to the exception handler
    if (how == 3) {
        // An observed await cut short consumes nothing: the task runs on.
        bool done = false;
        try {
            done = co_await corio::move_on_after(r.ms(20), h);
        } catch (const corio::cancelled_error&) {
            if (!h.cancelled()) throw;
            co_return;
        }
        if (done || r.chance(50)) co_return;  // taken, or dropped while running
    }
    if (how == 1) {
        co_await corio::sleep(r.ms(20));
        h.cancel();
        ++P.tot.cancellations;
    }
    try {
        co_await h;
    } catch (const corio::cancelled_error&) {
        if (!h.cancelled()) throw;  // our own cancellation, not the task's
    }
}

// ------------------------------------------------------------------ node ---

task<void> node(prog& P, rng r, int depth, unsigned f) {
    ++P.tot.nodes;
    if (depth <= 0) co_return co_await leaf(P, r, f);
    const bool locks = !(f & no_locks);
    const int kind = r.below(26);
    if (g_trace)
        std::fprintf(stderr, "node %llu kind %d depth %d flags %u\n", static_cast<unsigned long long>(P.tot.nodes),
                     kind, depth, f);
    switch (kind) {
        case 0: co_return co_await leaf(P, r, f);
        case 1: co_return co_await do_sequence(P, r, depth, f);
        case 2:
        case 3: co_return co_await do_group(P, r, depth, f);
        case 4: co_return co_await do_gather(P, r, depth, f);
        case 5: co_return co_await do_gather_settled(P, r, depth, f);
        case 6: co_return co_await do_gather_limited(P, r, depth, f);
        case 7: co_return co_await do_race(P, r, depth, f);
        case 8: co_return co_await do_timeout(P, r, depth, f);
        case 9: co_return co_await do_move_on(P, r, depth, f);
        case 10: co_return co_await do_shield(P, r, depth, f);
        case 11:
            if (locks) co_return co_await do_semaphore(P, r, depth, f);
            co_return co_await leaf(P, r, f);
        case 12:
            if (locks) co_return co_await do_mutex(P, r, depth, f);
            co_return co_await do_generator(P, r, f);
        case 13: co_return co_await do_queue(P, r, f);
        case 14: co_return co_await do_event(P, r);
        case 15: co_return co_await do_generator(P, r, f);
        case 16: co_return co_await do_batch(P, r, f);
        case 17: co_return co_await do_with(P, r, depth, f);
        case 18:
            if (locks && !(f & no_pool)) co_return co_await do_pool(P, r, f);
            co_return co_await leaf(P, r, f);
        case 19:
        case 20: co_return co_await do_cancel_scope(P, r, depth, f);
        case 22: co_return co_await do_condvar(P, r, f);
        case 23: co_return co_await do_barrier(P, r);
        case 24: co_return co_await do_limiter(P, r, f);
        case 25: co_return co_await do_stream(P, r, f);
        default: co_return co_await do_spawn(P, r, depth, f);
    }
}

task<void> program_main(prog& P, rng r) {
    const int depth = 3 + r.below(5);
    std::exception_ptr ep;
    try {
        co_await do_group(P, r.fork(), depth, 0);  // a root with several branches
    } catch (...) {
        ep = std::current_exception();
    }
    if (ep) surfaced(P, ep);
    co_await P.pool->close();
}

void check_conserved(prog& P);

/// Runs the program of `seed`; returns its failures (empty: clean).
std::vector<std::string> run_seed(std::uint64_t seed, totals& tot) {
    prog P(tot);
    prog* pp = &P;
    P.pool.emplace([pp] { return make_resource(pp); }, corio::pool_options<std::unique_ptr<resobj>>{.max_size = 2});
    std::string escaped;
    {
        corio::run_options opt;
        opt.virtual_time = true;
        opt.cancel_on_signals = {};
        opt.schedule_seed = seed;
        corio::event_loop loop(opt);
        loop.set_exception_handler([&](std::exception_ptr e, std::string_view) {
            ++tot.unobserved;
            surfaced(P, e);
        });
        try {
            loop.run_until_complete(program_main(P, rng{seed}));
        } catch (const std::exception& e) {
            P.fail(std::string("the program escaped with: ") + e.what());
        } catch (...) {
            P.fail("the program escaped with a non-std exception");
        }
        if (loop.live_tasks() != 0) P.fail(std::to_string(loop.live_tasks()) + " task(s) left alive on the loop");
        if (loop.pending_timers() != 0) P.fail(std::to_string(loop.pending_timers()) + " timer(s) left armed");
    }
    ++tot.programs;
    check_conserved(P);
    if (!P.failures.empty()) ++tot.failed;
    return P.failures;
}

/// After the loop is gone: what the program took was given back, exactly once.
void check_conserved(prog& P) {
    std::size_t alive = 0;
    for (unsigned char s : P.objects) alive += s == 1;
    if (alive != 0) P.fail(std::to_string(alive) + " tracked object(s) never destroyed");
    for (std::size_t i = 0; i < P.errors.size(); ++i)
        if (P.errors[i].surfaced == 0 && !P.errors[i].may_drop)
            P.fail("fuzz_error #" + std::to_string(i) + " never surfaced");
    P.check(P.sem.available() == prog::permits, "semaphore permits not conserved");
    P.check(!P.mtx.locked(), "mutex left locked");
    long left = 0;
    while (P.q.try_get()) ++left;
    if (P.q_put != P.q_got + left)
        P.fail("queue items not conserved: put " + std::to_string(P.q_put) + ", got " + std::to_string(P.q_got) +
               ", left " + std::to_string(left));
    P.check(P.ctx_acquired == P.ctx_released, "an async_context acquired without a release (or twice)");
    const auto st = P.pool->stats();
    P.check(st.in_use == 0, "pool leases not returned");
    P.check(P.res_alive == 0, "pool resources not closed");
    P.check(st.created == st.closed, "pool created and closed counts differ");
}

int usage(const char* self) {
    std::fprintf(stderr, "usage: %s [--seeds N] [--first S] [--seed S] [--quiet] [--trace]\n", self);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t first = 1, count = 100;
    bool quiet = false;
    for (int i = 1; i < argc; ++i) {
        auto value = [&]() -> std::uint64_t {
            if (i + 1 >= argc) std::exit(usage(argv[0]));
            char* end = nullptr;
            const auto v = std::strtoull(argv[++i], &end, 10);
            if (!end || *end) std::exit(usage(argv[0]));
            return v;
        };
        if (!std::strcmp(argv[i], "--seeds")) count = value();
        else if (!std::strcmp(argv[i], "--first")) first = value();
        else if (!std::strcmp(argv[i], "--seed")) first = value(), count = 1;
        else if (!std::strcmp(argv[i], "--quiet")) quiet = true;
        else if (!std::strcmp(argv[i], "--trace")) g_trace = true;
        else return usage(argv[0]);
    }
    totals tot;
    for (std::uint64_t seed = first; seed < first + count; ++seed) {
        auto failures = run_seed(seed, tot);
        if (failures.empty()) continue;
        std::printf("FAILED seed %llu:\n", static_cast<unsigned long long>(seed));
        for (auto& f : failures) std::printf("  %s\n", f.c_str());
        std::printf("  replay: %s --seed %llu\n", argv[0], static_cast<unsigned long long>(seed));
        std::fflush(stdout);
    }
    if (!quiet || tot.failed)
        std::printf("seeds %llu..%llu: ", static_cast<unsigned long long>(first),
                    static_cast<unsigned long long>(first + count - 1));
    std::printf(
        "%llu programs, %llu nodes, %llu cancellations injected, %llu exceptions thrown (%llu reported "
        "unobserved), %llu failed\n",
        static_cast<unsigned long long>(tot.programs), static_cast<unsigned long long>(tot.nodes),
        static_cast<unsigned long long>(tot.cancellations), static_cast<unsigned long long>(tot.exceptions),
        static_cast<unsigned long long>(tot.unobserved), static_cast<unsigned long long>(tot.failed));
    return tot.failed ? 1 : 0;
}
