// bench_stream: async_generator, batch() and micro_batcher. The Python twin
// is bench/peers/asyncio_stream.py (run with /usr/bin/python3); report the
// ratios asyncio/corio from the same run, not absolute numbers.
//
// Workloads (N is divided by 10 with --quick):
//
//   gen_next       N = 10,000,000 ints through an async_generator<int>
//                  (`for (i...) co_yield i;`) consumed with
//                  `while (auto v = co_await g.next()) sum += *v;` ns/item.
//   batch_100      N = 10,000,000 ints through `batch(100)` (size only), the
//                  consumer summing every batch; ns/item.
//   micro_batcher  M = 1,000,000 concurrent `submit(i)` tasks gathered over a
//                  micro_batcher<int, int>(handler, 1000, 1 ms) whose handler
//                  doubles its batch; ns/submit (the clock covers making the
//                  tasks, gather, every handler call and close()).
//   gather_floor   the part of micro_batcher that is not the batcher: the
//                  same gather of M tasks that each suspend once
//                  (yield_now()) and are resumed from the ready queue.
//
// Every workload runs --reps times (default 5) on a fresh loop after one
// warm-up; the minimum and the median are printed. The clock is the
// thread's CPU time (the machine is shared). Arguments: --quick, --reps=R
// and workload-name substrings (none: all). Output: a table plus
// lines `RESULT <workload> corio ns_per_op <median> min <min>`.
#include <corio/corio.hpp>

#include <fmt/core.h>

#include "common.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <time.h>

namespace {

/// This thread's CPU time (user + sys): what to compare on a shared, loaded
/// machine, where wall time counts the time other processes had the core.
struct steady {
    static std::chrono::nanoseconds now() noexcept {
        return std::chrono::nanoseconds(static_cast<std::int64_t>(corio_bench::thread_cpu_ns()));
    }
};

corio::async_generator<int> numbers(int n) {
    for (int i = 0; i < n; ++i) co_yield i;
}

corio::task<double> gen_next(int n) {
    auto t0 = steady::now();
    long long sum = 0;
    auto g = numbers(n);
    while (auto v = co_await g.next()) sum += *v;
    auto t1 = steady::now();
    if (sum != static_cast<long long>(n) * (n - 1) / 2) std::abort();
    co_return std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
}

corio::task<double> batch_100(int n) {
    auto t0 = steady::now();
    long long sum = 0;
    auto g = numbers(n) | corio::batch(100);
    while (auto b = co_await g.next())
        for (int x : *b) sum += x;
    auto t1 = steady::now();
    if (sum != static_cast<long long>(n) * (n - 1) / 2) std::abort();
    co_return std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
}

corio::task<double> micro(int m) {
    auto handler = [](std::vector<int> xs) -> corio::task<std::vector<int>> {
        for (int& x : xs) x *= 2;
        co_return std::move(xs);
    };
    auto t0 = steady::now();
    corio::micro_batcher<int, int> b(handler, 1000, std::chrono::milliseconds(1));
    std::vector<corio::task<int>> ts;
    ts.reserve(m);
    for (int i = 0; i < m; ++i) ts.push_back(b.submit(i));
    std::vector<int> out = co_await corio::gather(std::move(ts));
    co_await b.close();
    auto t1 = steady::now();
    long long sum = 0;
    for (int x : out) sum += x;
    if (sum != static_cast<long long>(m) * (m - 1)) std::abort();
    co_return std::chrono::duration<double, std::nano>(t1 - t0).count() / m;
}

/// The floor under micro_batcher: the same gather of M tasks that each
/// suspend once and are resumed from the ready queue, with no batcher.
corio::task<int> yield_once(int i) {
    co_await corio::yield_now();
    co_return 2 * i;
}
corio::task<double> gather_floor(int m) {
    auto t0 = steady::now();
    std::vector<corio::task<int>> ts;
    ts.reserve(m);
    for (int i = 0; i < m; ++i) ts.push_back(yield_once(i));
    std::vector<int> out = co_await corio::gather(std::move(ts));
    auto t1 = steady::now();
    if (out.size() != static_cast<std::size_t>(m)) std::abort();
    co_return std::chrono::duration<double, std::nano>(t1 - t0).count() / m;
}

template <class F>
void measure(const char* name, int reps, F f) {
    std::vector<double> r;
    corio::run(f());  // warm-up
    for (int i = 0; i < reps; ++i) r.push_back(corio::run(f()));
    auto [med, min] = corio_bench::summarize(r);
    fmt::print("{:<16} {:>10.2f} ns/op (min {:.2f})\n", name, med, min);
    fmt::print("RESULT {} corio ns_per_op {:.2f} min {:.2f}\n", name, med, min);
}

}  // namespace

int main(int argc, char** argv) {
    int div = 1, reps = 5;
    std::vector<std::string> filters;  // substrings of workload names; none: all
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) div = 10;
        else if (std::strncmp(argv[i], "--reps=", 7) == 0) reps = std::max(1, std::atoi(argv[i] + 7));
        else filters.emplace_back(argv[i]);
    }
    auto wants = [&](const std::string& name) {
        return filters.empty() || std::any_of(filters.begin(), filters.end(),
                                              [&](const std::string& f) { return name.find(f) != std::string::npos; });
    };
    const int n = 10'000'000 / div, m = 1'000'000 / div;
    if (wants("gen_next")) measure("gen_next", reps, [n] { return gen_next(n); });
    if (wants("batch_100")) measure("batch_100", reps, [n] { return batch_100(n); });
    if (wants("micro_batcher")) measure("micro_batcher", reps, [m] { return micro(m); });
    if (wants("gather_floor")) measure("gather_floor", reps, [m] { return gather_floor(m); });
}
