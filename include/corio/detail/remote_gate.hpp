// corio/detail/remote_gate.hpp: the one door through which other threads
// reach an event loop (call_soon_threadsafe, to_thread completions, spawn_on,
// run_coroutine_threadsafe, loop_pool).
//
// Invariants: the gate outlives its loop (shared ownership with whoever holds
// a reference on another thread); `ctx` is non-null exactly while the loop
// and its io_context exist, and a post happens under the mutex, so it never
// reaches a destroyed io_context. `accepting` is false once the loop was
// closed: new work from other threads is refused (internal completions of
// work already started still pass).
#pragma once

#include <mutex>
#include <utility>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

namespace corio::detail {

struct remote_gate {
    std::mutex m;
    asio::io_context* ctx = nullptr;
    void* loop = nullptr;  // the event_loop (type-erased: detail knows no public header)
    bool accepting = true;

    /// Posts `h` to the loop unless it is gone; true when posted.
    template <class H>
    bool post(H&& h) {
        std::lock_guard<std::mutex> lock(m);
        if (!ctx) return false;
        asio::post(*ctx, std::forward<H>(h));
        return true;
    }
    /// Posts new work: refused (false) once the loop was closed or is gone.
    template <class H>
    bool post_new(H&& h) {
        std::lock_guard<std::mutex> lock(m);
        if (!ctx || !accepting) return false;
        asio::post(*ctx, std::forward<H>(h));
        return true;
    }
    void close() {
        std::lock_guard<std::mutex> lock(m);
        accepting = false;
    }
    void detach() {
        std::lock_guard<std::mutex> lock(m);
        ctx = nullptr;
        loop = nullptr;
        accepting = false;
    }
};

}  // namespace corio::detail
