// bench/common.hpp: what every bench program repeats - the timing probe
// (wall clock and this thread's CPU time started together), the medians and
// minimums of repeated runs, the command-line filter, and the result table:
// `RESULT <workload> <impl> <metric> <value>` lines, which bench/report.py
// reads, next to a `#`-prefixed line for humans.
//
// On the shared 2-core machines wall time also counts the time other
// processes held the core, so the programs report this thread's CPU time too.
// Header-only, no dependency beyond the standard library and POSIX clocks.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <time.h>

namespace corio_bench {

using bench_clock = std::chrono::steady_clock;

/// This thread's CPU time (user + system, page faults included), in ns.
inline double thread_cpu_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

/// Wall nanoseconds since t0.
inline double ns_since(bench_clock::time_point t0) noexcept {
    return std::chrono::duration<double, std::nano>(bench_clock::now() - t0).count();
}

/// The timing probe: wall clock and thread CPU clock started together.
struct stopwatch {
    bench_clock::time_point wall = bench_clock::now();
    double cpu = thread_cpu_ns();

    void restart() noexcept {
        wall = bench_clock::now();
        cpu = thread_cpu_ns();
    }
    double wall_ns() const noexcept { return ns_since(wall); }
    double cpu_ns() const noexcept { return thread_cpu_ns() - cpu; }
};

/// Median and minimum of repeated measurements (the median of an even count
/// is the upper middle element, as every program has always reported it).
struct summary {
    double median = 0;
    double min = 0;
};

inline summary summarize(std::vector<double> v) {
    if (v.empty()) return {};
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.front()};
}
inline double median(std::vector<double> v) { return summarize(std::move(v)).median; }

/// The command-line filter: no filter selects everything, otherwise a name
/// is selected when one of the filters is a substring of it.
inline bool selected(const std::vector<std::string>& filters, std::string_view name) {
    if (filters.empty()) return true;
    return std::any_of(filters.begin(), filters.end(),
                       [&](const std::string& f) { return name.find(f) != std::string_view::npos; });
}

/// One row of the result table for bench/report.py:
/// `RESULT <workload> <impl> <metric> <value>`, flushed at once so a crash
/// later keeps what was measured. `decimals` fixes the digits after the
/// point; by default the value is printed with 10 significant digits.
inline void result(std::string_view workload, std::string_view impl, std::string_view metric, double value,
                   int decimals = -1) {
    std::printf("RESULT %.*s %.*s %.*s ", static_cast<int>(workload.size()), workload.data(),
                static_cast<int>(impl.size()), impl.data(), static_cast<int>(metric.size()), metric.data());
    if (decimals >= 0) std::printf("%.*f\n", decimals, value);
    else std::printf("%.10g\n", value);
    std::fflush(stdout);
}

/// The usual pair of rows for a ns/op workload: a line for humans
/// (`# workload impl n=... median ... ns/op  min ...`) and the RESULT line
/// with the median.
inline void report_ns_per_op(std::string_view workload, std::string_view impl, long long n, summary s) {
    std::printf("# %-20.*s %-10.*s n=%-10lld median %10.2f ns/op  min %10.2f\n", static_cast<int>(workload.size()),
                workload.data(), static_cast<int>(impl.size()), impl.data(), n, s.median, s.min);
    result(workload, impl, "ns_per_op", s.median, 3);
}

}  // namespace corio_bench
