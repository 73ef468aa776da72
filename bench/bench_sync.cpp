// bench_sync: corio's synchronization primitives, against raw Asio where Asio
// has a counterpart, in the same binary and the same run. The asyncio twins are
// in bench/peers/asyncio_sync.py (same workloads, same output format).
//
// Workloads (N is divided by 10 with --quick):
//
//   sem_uncontended  N = 100,000,000 times, in one task:
//                    `{ auto p = co_await sem.acquire(); }` on a semaphore(1)
//                    (acquire never suspends; the permit's destructor releases).
//                    ns/op = one acquire + one release.
//   sem_contended    10,000 tasks x 100 rounds of
//                    `auto p = co_await sem.acquire(); co_await yield_now();`
//                    with semaphore(10); all spawned, then all joined.
//                    ns/op = wall time / 1,000,000 acquire+release pairs.
//   queue_pc         one producer task puts 0..N-1 (N = 1,000,000) into a
//                    queue<int>(100), one consumer task gets them all and sums.
//                    asio: the same with
//                    asio::experimental::channel<void(asio::error_code, int)>
//                    of capacity 100, two co_spawned asio::awaitable coroutines
//                    (async_send / async_receive with asio::use_awaitable) on an
//                    io_context (concurrency hint 1) run on this thread.
//                    ns/op = wall time / N items.
//
// Every workload runs --reps times (default 5), each in a fresh corio::run /
// io_context; the clock starts inside the top-level coroutine (corio) or just
// before io_context::run() (asio); ns/op is the median over the repetitions.
//
// Output: human-readable lines starting with '#', and machine-readable lines
//     RESULT <workload> <impl> ns_per_op <value>
// (the format bench/report.py reads).
//
// Usage: bench_sync [--quick] [--reps=R] [filter ...]   (filter: substring of
// "<workload>:<impl>", e.g. `queue`, `:asio`)

#include <asio.hpp>
#include <asio/experimental/channel.hpp>
#include <corio/corio.hpp>
#include <corio/queue.hpp>
#include <corio/semaphore.hpp>

#include "common.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

using corio_bench::bench_clock;
using corio_bench::ns_since;

struct options {
    long div = 1;
    int reps = 5;
    std::vector<std::string> filters;
};

bool selected(const options& o, const std::string& name) { return corio_bench::selected(o.filters, name); }

/// One timed repetition: returns {elapsed nanoseconds, checksum}.
struct sample {
    double ns = 0;
    std::int64_t check = 0;
};

void report(const options& o, const char* workload, const char* impl, long n, std::int64_t want,
            const std::function<sample(long)>& run_once) {
    std::string name = std::string(workload) + ":" + impl;
    if (!selected(o, name)) return;
    std::vector<double> per_op;
    for (int r = 0; r < o.reps; ++r) {
        sample s = run_once(n);
        if (s.check != want) {
            std::fprintf(stderr, "bench_sync: %s: checksum %lld != %lld\n", name.c_str(),
                         static_cast<long long>(s.check), static_cast<long long>(want));
            std::exit(1);
        }
        per_op.push_back(s.ns / static_cast<double>(n));
    }
    corio_bench::report_ns_per_op(workload, impl, n, corio_bench::summarize(per_op));
}

// ------------------------------------------------------------------ corio ---

corio::task<sample> sem_uncontended(long n) {
    corio::semaphore s(1);
    std::int64_t acc = 0;
    auto t0 = bench_clock::now();
    for (long i = 0; i < n; ++i) {
        auto p = co_await s.acquire();
        acc += s.available();  // 0 while held
    }
    double ns = ns_since(t0);
    co_return sample{ns, acc + s.available()};
}

corio::task<std::int64_t> sem_worker(corio::semaphore& s, int rounds) {
    std::int64_t done = 0;
    for (int r = 0; r < rounds; ++r) {
        auto p = co_await s.acquire();
        co_await corio::yield_now();
        ++done;
    }
    co_return done;
}

corio::task<sample> sem_contended(long tasks) {
    corio::semaphore s(10);
    std::vector<corio::join_handle<std::int64_t>> hs;
    hs.reserve(static_cast<std::size_t>(tasks));
    auto t0 = bench_clock::now();
    for (long i = 0; i < tasks; ++i) hs.push_back(corio::spawn(sem_worker(s, 100)));
    std::int64_t sum = 0;
    for (auto& h : hs) sum += co_await h;
    double ns = ns_since(t0);
    co_return sample{ns, sum};
}

corio::task<void> q_producer(corio::queue<int>& q, long n) {
    for (long i = 0; i < n; ++i) co_await q.put(static_cast<int>(i));
}

corio::task<std::int64_t> q_consumer(corio::queue<int>& q, long n) {
    std::int64_t sum = 0;
    for (long i = 0; i < n; ++i) sum += co_await q.get();
    co_return sum;
}

corio::task<sample> queue_pc(long n) {
    corio::queue<int> q(100);
    auto t0 = bench_clock::now();
    auto p = corio::spawn(q_producer(q, n));
    auto c = corio::spawn(q_consumer(q, n));
    co_await p;
    std::int64_t sum = co_await c;
    double ns = ns_since(t0);
    co_return sample{ns, sum};
}

// ------------------------------------------------------------------- asio ---

using channel = asio::experimental::channel<void(asio::error_code, int)>;

asio::awaitable<void> ch_producer(channel& ch, long n) {
    for (long i = 0; i < n; ++i) co_await ch.async_send(asio::error_code{}, static_cast<int>(i), asio::use_awaitable);
}

asio::awaitable<void> ch_consumer(channel& ch, long n, std::int64_t& sum) {
    for (long i = 0; i < n; ++i) sum += co_await ch.async_receive(asio::use_awaitable);
}

sample asio_queue_pc(long n) {
    asio::io_context ctx(1);
    channel ch(ctx, 100);
    std::int64_t sum = 0;
    asio::co_spawn(ctx, ch_producer(ch, n), asio::detached);
    asio::co_spawn(ctx, ch_consumer(ch, n, sum), asio::detached);
    auto t0 = bench_clock::now();
    ctx.run();
    return sample{ns_since(t0), sum};
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") o.div = 10;
        else if (a.rfind("--reps=", 0) == 0) o.reps = std::max(1, std::atoi(a.c_str() + 7));
        else if (a == "-h" || a == "--help") {
            std::printf("usage: bench_sync [--quick] [--reps=R] [filter ...]\n");
            return 0;
        } else o.filters.push_back(a);
    }

    const long n_uncontended = 100'000'000 / o.div;
    const long n_tasks = 10'000 / o.div;
    const long n_items = 1'000'000 / o.div;

    report(o, "sem_uncontended", "corio", n_uncontended, 1, [](long n) { return corio::run(sem_uncontended(n)); });

    // ns/op for sem_contended is per acquire+release pair: n tasks x 100.
    if (selected(o, "sem_contended:corio")) {
        report(o, "sem_contended", "corio", n_tasks * 100, n_tasks * 100,
               [n_tasks](long) { return corio::run(sem_contended(n_tasks)); });
    }

    const std::int64_t want_sum = static_cast<std::int64_t>(n_items) * (n_items - 1) / 2;
    report(o, "queue_pc", "corio", n_items, want_sum, [](long n) { return corio::run(queue_pc(n)); });
    report(o, "queue_pc", "asio", n_items, want_sum, [](long n) { return asio_queue_pc(n); });
    return 0;
}
