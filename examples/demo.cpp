// examples/demo.cpp: corio in one page.
//
// A program is a tree of tasks run by corio::run(), like asyncio.run():
//   1. spawn() starts workers that run concurrently with us;
//   2. gather() waits for all of them and returns their results in order;
//   3. sleep() suspends only this task, the loop keeps running the others;
//   4. timeout() gives up on a slow operation: the operation is cancelled
//      (its destructors run) and corio::timeout_error is thrown;
//   5. a background task still running when main returns is cancelled by run().
//
// Build: the `demo` target (links corio::corio and fmt::fmt). Runs in ~0.5 s.
#include <chrono>
#include <string>
#include <vector>

#include <fmt/core.h>

#include <corio/corio.hpp>

using namespace std::chrono_literals;

namespace {

/// Milliseconds of loop time since `start`, for printing.
long long ms_since(corio::clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(corio::now() - start).count();
}

/// A worker: "downloads" for `work` (a sleep stands in for real I/O), then
/// returns a result.
corio::task<int> worker(int id, std::chrono::milliseconds work, corio::clock::time_point start) {
    fmt::print("[{:4} ms] worker {} started\n", ms_since(start), id);
    co_await corio::sleep(work);
    fmt::print("[{:4} ms] worker {} done\n", ms_since(start), id);
    co_return id * 100;
}

/// Something too slow: timeout() will cancel it while it sleeps.
corio::task<std::string> slow_lookup(corio::clock::time_point start) {
    struct cleanup {
        corio::clock::time_point start;
        ~cleanup() { fmt::print("[{:4} ms] slow_lookup cleaned up\n", ms_since(start)); }
    } on_exit{start};
    co_await corio::sleep(10s);
    co_return "too late";
}

/// A background task that runs until it is cancelled.
corio::task<void> heartbeat(corio::clock::time_point start) {
    for (;;) {
        co_await corio::sleep(120ms);
        fmt::print("[{:4} ms] heartbeat\n", ms_since(start));
    }
}

corio::task<int> amain() {
    const auto start = corio::now();

    // Runs until run() cancels it when amain returns (no handle kept: detached).
    corio::spawn(heartbeat(start), "heartbeat");

    // 1-2. Three workers run at the same time; gather() collects their results
    // in input order, whatever order they finish in.
    std::vector<corio::join_handle<int>> workers;
    workers.push_back(corio::spawn(worker(1, 300ms, start), "worker-1"));
    workers.push_back(corio::spawn(worker(2, 100ms, start), "worker-2"));
    workers.push_back(corio::spawn(worker(3, 200ms, start), "worker-3"));
    std::vector<int> results = co_await corio::gather(workers);
    fmt::print("[{:4} ms] gathered {} results: {}, {}, {} (concurrent: ~300 ms, not 600)\n", ms_since(start),
               results.size(), results[0], results[1], results[2]);

    // 3. A plain sleep.
    co_await corio::sleep(50ms);

    // 4. Give a slow operation 100 ms.
    try {
        std::string answer = co_await corio::timeout(100ms, slow_lookup(start));
        fmt::print("slow_lookup answered {}\n", answer);
    } catch (const corio::timeout_error& e) {
        fmt::print("[{:4} ms] slow_lookup gave up: {}\n", ms_since(start), e.what());
    }

    fmt::print("[{:4} ms] main returns; run() now cancels the heartbeat\n", ms_since(start));
    co_return 0;
}

}  // namespace

int main() {
    try {
        return corio::run(amain());
    } catch (const std::exception& e) {
        fmt::print(stderr, "demo failed: {}\n", e.what());
        return 1;
    }
}
