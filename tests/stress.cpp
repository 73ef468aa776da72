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
// awaited, cancelled at random or dropped. Leaves sleep (virtual time),
// yield and throw at random. After each program it checks:
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
// - nothing is left on the loop (no live task, no armed timer).
// Totals printed at the end: programs, nodes, cancellations injected
// (handle and group cancel() calls, deadlines that fired), exceptions thrown.
#include <corio/corio.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
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
    const int kind = r.below(22);
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
