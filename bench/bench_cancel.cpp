// bench_cancel: what cancel scopes cost.
//
// Workloads (N divided by 10 with --quick):
//   timeout_ready   enter and leave corio::timeout(1s, leaf()) where leaf()
//                   completes without suspending, 10,000,000 times; next to
//                   it the bare `co_await leaf()` so the scope's own cost is
//                   the difference. Raw Asio has no cancel scope: its closest
//                   idiom, `leaf() || timer.async_wait()` (awaitable
//                   operators), arms a real timer each time; it is measured
//                   on N/100 for scale.
//   timeout_primitive  corio::timeout(1s, sem.acquire()) on a semaphore with a
//                   free permit (the permit goes back at once), N times, next
//                   to the bare `co_await sem.acquire()`: a primitive's
//                   operation sits in the timeout's awaiter, in the caller's
//                   frame, so it must cost no more than timeout(1s, leaf()).
//   timeout_rss     1,000,000 concurrent spawned tasks, each sleeping 1 ms
//                   under its own corio::timeout(10s) that never fires: RSS
//                   before, at peak (all suspended), and after they finished.
//   nested_timeouts a task `depth` timeouts deep (each level a task awaiting
//                   timeout(1h, next level), the last one sleeping) is spawned,
//                   runs down, is cancelled from outside and joined: total
//                   time per level, at depth 1, 100 and 10,000 (constant when
//                   the cost is linear in the depth).
//   nested_groups   the same with with_task_group bodies nested `depth` deep.
//
// Output: `RESULT <workload> <impl> <metric> <value>` lines (bench/report.py).
// Usage: bench_cancel [--quick]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <malloc.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <corio/corio.hpp>

#include "common.hpp"

using namespace std::chrono_literals;

namespace {

std::uint64_t status_kb(const char* key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::size_t n = std::strlen(key);
    while (std::getline(in, line))
        if (line.compare(0, n, key) == 0 && line[n] == ':') return std::stoull(line.substr(n + 1));
    return 0;
}
double rss_mib() { return static_cast<double>(status_kb("VmRSS")) / 1024.0; }

using corio_bench::result;

corio::task<int> leaf(int i) { co_return i; }

double corio_bare(long n) {
    return corio::run([](long count) -> corio::task<double> {
        long sum = 0;
        auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < count; ++i) sum += co_await leaf(static_cast<int>(i));
        auto t1 = std::chrono::steady_clock::now();
        if (sum == -1) std::puts("");
        co_return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(count);
    }(n));
}

double corio_timeout(long n) {
    return corio::run([](long count) -> corio::task<double> {
        long sum = 0;
        auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < count; ++i) sum += co_await corio::timeout(1s, leaf(static_cast<int>(i)));
        auto t1 = std::chrono::steady_clock::now();
        if (sum == -1) std::puts("");
        co_return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(count);
    }(n));
}

double corio_sem_bare(long n) {
    return corio::run([](long count) -> corio::task<double> {
        corio::semaphore sem(1);
        long sum = 0;
        auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < count; ++i) {
            auto p = co_await sem.acquire();
            sum += p.owns_permit();
        }
        auto t1 = std::chrono::steady_clock::now();
        if (sum == -1) std::puts("");
        co_return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(count);
    }(n));
}

double corio_sem_timeout(long n) {
    return corio::run([](long count) -> corio::task<double> {
        corio::semaphore sem(1);
        long sum = 0;
        auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < count; ++i) {
            auto p = co_await corio::timeout(1s, sem.acquire());
            sum += p.owns_permit();
        }
        auto t1 = std::chrono::steady_clock::now();
        if (sum == -1) std::puts("");
        co_return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(count);
    }(n));
}

asio::awaitable<int> asio_leaf(int i) { co_return i; }

double asio_or_timer(long n) {
    using namespace asio::experimental::awaitable_operators;
    asio::io_context ctx(1);
    double ns = 0;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer timer(ctx);
            long sum = 0;
            auto t0 = std::chrono::steady_clock::now();
            for (long i = 0; i < n; ++i) {
                timer.expires_after(1s);
                auto r = co_await (asio_leaf(static_cast<int>(i)) || timer.async_wait(asio::use_awaitable));
                if (r.index() == 0) sum += std::get<0>(r);
            }
            auto t1 = std::chrono::steady_clock::now();
            if (sum == -1) std::puts("");
            ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(n);
        },
        asio::detached);
    ctx.run();
    return ns;
}

void timeout_rss(long n) {
    malloc_trim(0);
    double base = rss_mib();
    double peak = 0;
    corio::run([](long count, double& peak_out) -> corio::task<void> {
        std::vector<corio::join_handle<void>> hs;
        hs.reserve(static_cast<std::size_t>(count));
        auto one = []() -> corio::task<void> { co_await corio::timeout(10s, corio::sleep(1ms)); };
        for (long i = 0; i < count; ++i) hs.push_back(corio::spawn(one()));
        co_await corio::yield_now();  // every task has started and is suspended
        peak_out = rss_mib();
        for (auto& h : hs) co_await h;
    }(n, peak));
    corio::trim_memory();  // cached slabs would otherwise go back after 1 s of loop activity
    malloc_trim(0);
    double after = rss_mib();
    result("timeout_rss", "corio", "n", static_cast<double>(n));
    result("timeout_rss", "corio", "rss_base_mib", base);
    result("timeout_rss", "corio", "rss_peak_mib", peak);
    result("timeout_rss", "corio", "rss_after_mib", after);
    result("timeout_rss", "corio", "bytes_per_task", (peak - base) * 1024 * 1024 / static_cast<double>(n));
}

corio::task<void> nest_timeouts(int depth) {
    if (depth == 0) {
        co_await corio::sleep(1h);
        co_return;
    }
    co_await corio::timeout(1h, nest_timeouts(depth - 1));
}

corio::task<void> nest_groups(int depth) {
    if (depth == 0) {
        co_await corio::sleep(1h);
        co_return;
    }
    auto body = [depth](corio::task_group&) -> corio::task<void> { co_await nest_groups(depth - 1); };
    co_await corio::with_task_group(body);
}

/// ns per level to spawn `make(depth)`, let it run down, cancel it and join it.
template <class F>
double nested_cancel(F make, int depth) {
    return corio::run([](F mk, int d) -> corio::task<double> {
        auto t0 = std::chrono::steady_clock::now();
        auto h = corio::spawn(mk(d));
        co_await corio::yield_now();  // it has run down to its sleep
        h.cancel();
        try {
            co_await h;
        } catch (const corio::cancelled_error&) {
        }
        auto t1 = std::chrono::steady_clock::now();
        co_return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(d);
    }(make, depth));
}

void nesting(bool quick) {
    for (int depth : {1, 100, quick ? 1'000 : 10'000}) {
        double t = 1e300, g = 1e300;
        for (int rep = 0; rep < 3; ++rep) {
            t = std::min(t, nested_cancel(&nest_timeouts, depth));
            g = std::min(g, nested_cancel(&nest_groups, depth));
        }
        const std::string metric = "ns_per_level_at_" + std::to_string(depth);
        result("nested_timeouts", "corio", metric.c_str(), t);
        result("nested_groups", "corio", metric.c_str(), g);
    }
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = argc > 1 && std::string(argv[1]) == "--quick";
    long n = quick ? 1'000'000 : 10'000'000;
    double best_bare = 1e300, best_timeout = 1e300;
    for (int rep = 0; rep < 3; ++rep) {
        best_bare = std::min(best_bare, corio_bare(n));
        best_timeout = std::min(best_timeout, corio_timeout(n));
    }
    result("timeout_ready", "corio", "ns_per_op", best_timeout);
    result("timeout_ready", "corio_bare_await", "ns_per_op", best_bare);
    result("timeout_ready", "corio_scope_only", "ns_per_op", best_timeout - best_bare);
    result("timeout_ready", "asio_or_timer", "ns_per_op", asio_or_timer(n / 100));
    double best_sem = 1e300, best_sem_timeout = 1e300;
    for (int rep = 0; rep < 3; ++rep) {
        best_sem = std::min(best_sem, corio_sem_bare(n));
        best_sem_timeout = std::min(best_sem_timeout, corio_sem_timeout(n));
    }
    result("timeout_primitive", "corio", "ns_per_op", best_sem_timeout);
    result("timeout_primitive", "corio_bare_await", "ns_per_op", best_sem);
    result("timeout_primitive", "corio_scope_only", "ns_per_op", best_sem_timeout - best_sem);
    result("timeout_primitive", "corio_vs_timeout_task", "ratio", best_sem_timeout / best_timeout);
    nesting(quick);
    timeout_rss(quick ? 100'000 : 1'000'000);
}
