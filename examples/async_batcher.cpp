// The asyncio seed's stream pipeline, the corio way:
//
//   async def stream_data(n):            # an async generator
//       for i in range(n):
//           await asyncio.sleep(0.001); yield {"id": i, "value": 2 * i}
//   batcher = AsyncBatcher(batch_size=50)
//   async for batch in batcher.batches(stream_data(200)):
//       total = await process_batch(batch)
//
// 1. stream_data -> batch(50, 100ms) -> process_batch, one batch at a time;
// 2. the same batches through map_concurrent(4, process_batch): four batches
//    processed at once, results still in stream order;
// 3. request coalescing: 200 tasks each ask for one item's result, and a
//    micro_batcher turns that into a few handler calls of up to 50 items.
//
// Runs under virtual time (the loop's clock jumps to the next deadline), so
// it finishes at once and prints exact loop times.
#include <corio/corio.hpp>

#include <fmt/core.h>

#include <chrono>
#include <numeric>
#include <vector>

using namespace std::chrono_literals;

struct record {
    int id;
    int value;
};

corio::async_generator<record> stream_data(int n) {
    for (int i = 0; i < n; ++i) {
        co_await corio::sleep(1ms);  // the data arrives over time
        co_yield record{i, 2 * i};
    }
}

corio::task<long> process_batch(std::vector<record> batch) {
    co_await corio::sleep(100ms);  // e.g. one bulk insert
    long sum = 0;
    for (const record& r : batch) sum += r.value;
    co_return sum;
}

double ms_since(corio::clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(corio::now() - t0).count();
}

corio::task<long> sequential_pipeline() {
    auto t0 = corio::now();
    auto batches = stream_data(200) | corio::batch(50, 100ms);
    long total = 0;
    int k = 0;
    while (auto b = co_await batches.next()) {
        const std::size_t size = b->size();
        const long sum = co_await process_batch(std::move(*b));
        total += sum;
        fmt::print("  batch {}: {} items, sum {} (done at {:.0f} ms)\n", k++, size, sum, ms_since(t0));
    }
    fmt::print("  sequential: {} batches, total {} in {:.0f} ms\n", k, total, ms_since(t0));
    co_return total;
}

corio::task<long> concurrent_pipeline() {
    auto t0 = corio::now();
    // buffer(4) keeps pulling batches while four process_batch calls run at once.
    auto sums = stream_data(200) | corio::batch(50, 100ms) | corio::buffer(4) | corio::map_concurrent(4, process_batch);
    long total = 0;
    int k = 0;
    while (auto s = co_await sums.next()) {
        total += *s;
        fmt::print("  result {}: sum {} (at {:.0f} ms)\n", k++, *s, ms_since(t0));
    }
    fmt::print("  map_concurrent(4): total {} in {:.0f} ms\n", total, ms_since(t0));
    co_return total;
}

corio::task<long> coalesced_requests() {
    auto t0 = corio::now();
    int calls = 0;
    // One handler call answers a whole batch of single-item requests.
    auto lookup_many = [&calls](std::vector<int> ids) -> corio::task<std::vector<long>> {
        ++calls;
        fmt::print("  handler call {}: {} ids, {}..{}\n", calls, ids.size(), ids.front(), ids.back());
        co_await corio::sleep(10ms);
        std::vector<long> out;
        for (int id : ids) out.push_back(2L * id);
        co_return out;
    };
    corio::micro_batcher<int, long> batcher(lookup_many, 50, 5ms, /*max_concurrent_batches=*/4);
    std::vector<corio::task<long>> requests;
    for (int id = 0; id < 200; ++id) requests.push_back(batcher.submit(id));
    std::vector<long> values = co_await corio::gather(std::move(requests));
    co_await batcher.close();
    const long total = std::accumulate(values.begin(), values.end(), 0L);
    fmt::print("  micro_batcher: 200 requests, {} handler calls, total {} in {:.0f} ms\n", calls, total, ms_since(t0));
    co_return total;
}

int main() {
    return corio::run(
        []() -> corio::task<int> {
            fmt::print("1. stream_data -> batch(50) -> process_batch\n");
            long a = co_await sequential_pipeline();
            fmt::print("2. the same with map_concurrent(4, process_batch)\n");
            long b = co_await concurrent_pipeline();
            fmt::print("3. 200 single-item requests through micro_batcher(max_size 50, 4 calls at once)\n");
            long c = co_await coalesced_requests();
            const bool ok = a == 39800 && b == a && c == a;
            fmt::print("{}\n", ok ? "all three agree" : "MISMATCH");
            co_return ok ? 0 : 1;
        }(),
        corio::run_options{.virtual_time = true});
}
