// corio/loop.hpp: event_loop, run(), spawn() and join_handle<T>.
//
// - event_loop is one thread's scheduler: an asio::io_context (owned, or
//   adopted from the user), a FIFO ready queue of coroutines to resume, and a
//   timer heap driven by one asio::steady_timer. The ready queue is drained by
//   one posted handler at a time, in bounded batches, so I/O is never starved
//   and corio runs under whoever calls io_context::run().
// - Destroying a loop destroys the frames of tasks still alive (their
//   destructors run; an Asio object in such a frame cancels its operations),
//   task-group children included, deepest first. With an adopted io_context
//   that keeps running, every handler of the loop still queued there,
//   use_task completions included, then does nothing.
// - A join_handle may outlive its loop: it can still be queried, moved and
//   dropped. A task destroyed with the loop reads as cancelled; an error no
//   one took is reported by the loop when it is destroyed (nobody can await
//   it any more); name() is then empty. Awaiting such a handle throws
//   invalid_state_error. Nothing else the loop creates outlives it (frames,
//   scopes and task groups die with it).
// - Awaiting a join_handle from a task of another loop throws
//   invalid_state_error at the await.
// - Single-threaded: a loop and everything created on it are used from the
//   thread that runs it. No locks on hot paths. The one exception is
//   call_soon_threadsafe(f), callable from any thread (more in thread.hpp).
// - Tests only: run_options::schedule_seed runs the ready steps in a seeded
//   random order (each step's own wake-ups stay in order; see
//   detail/schedule_fuzz.hpp), for tests/stress.cpp.
// - run_options also carries thread_pool_size (thread.hpp),
//   cancel_on_signals (signal.hpp: run() cancels main on SIGINT/SIGTERM by
//   default) and debug / slow_step_threshold (debug.hpp; or CORIO_DEBUG=1).
// - run(main, options) is asyncio.run: it makes a loop, runs `main` as a task
//   until it finishes, then cancels every task still alive and waits for them,
//   and returns main's value or rethrows its exception. With
//   `run_options{.virtual_time = true}` the loop's clock jumps to the next
//   deadline whenever nothing is ready, so timing is exact and instant.
// - spawn(task, name) starts a task concurrently and returns a join_handle.
//   The task starts at the loop's next turn; a task cancelled before that
//   never runs a statement. Awaiting the handle (an lvalue is fine) is a
//   cancellation point: it suspends until the task finishes and returns its
//   value or rethrows its exception (cancelled_error if it ended cancelled).
//   An await cut short by the awaiter's own cancellation consumes nothing;
//   once an await has taken the result, awaiting again throws
//   invalid_state_error. Awaiting observes: cancelling the awaiter does not
//   cancel the task; `h.cancel()` does. Dropping a handle detaches the task.
// - A task that fails with nobody to take its error (its handle was dropped,
//   or destroyed without awaiting) is reported to the loop's exception
//   handler (default: a line on stderr), like asyncio's "exception was never
//   retrieved".
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "detail/asio_loop_registry.hpp"
#include "detail/awaitable_traits.hpp"
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <vector>

#include "detail/frame_allocator.hpp"
#include "detail/observer.hpp"
#include "detail/park.hpp"
#include "detail/remote_gate.hpp"
#include "detail/running_loop.hpp"
#include "detail/schedule_fuzz.hpp"
#include "detail/scheduler.hpp"
#include "detail/signal_hub.hpp"
#include "detail/spawn_state.hpp"
#include "detail/task_tree.hpp"
#include "detail/to_task.hpp"
#include "errors.hpp"
#include "task.hpp"

namespace corio {

/// The loop clock, std::chrono::steady_clock (a loop under virtual time keeps its own now() in its time points).
using clock = detail::clock;

class event_loop;
template <class T>
class join_handle;
namespace detail {
struct loop_access;
}  // namespace detail

/// Options of an event_loop and of run().
struct run_options {
    /// The clock jumps to the next deadline whenever nothing is ready.
    bool virtual_time = false;
    /// Threads of the shared to_thread pool, when this loop is the first to
    /// use it (0: std::thread::hardware_concurrency()). See thread.hpp.
    std::size_t thread_pool_size = 0;
    /// run() / run_until_complete(): the first of these signals that no
    /// wait_for_signal() takes cancels main; a second one ends the process
    /// (exit status 128 + signal). Empty: leave signals alone. See signal.hpp.
    std::vector<int> cancel_on_signals = {SIGINT, SIGTERM};
    /// Diagnostics (also on when the environment has CORIO_DEBUG=1): warn on
    /// stderr when one step of a task holds the loop longer than
    /// slow_step_threshold. See debug.hpp.
    bool debug = false;
    /// With debug: the longest one task step may hold the loop before a warning.
    std::chrono::nanoseconds slow_step_threshold = std::chrono::milliseconds(100);
    /// Test-only schedule fuzzing (tests/stress.cpp): the loop runs what is
    /// ready in a seeded random order of steps, keeping the order within
    /// each step, and sometimes defers a step's wake-ups behind all others
    /// (an injected yield). Same seed, same program: same order. See
    /// detail/schedule_fuzz.hpp and docs/design.md ("Schedule fuzzing").
    /// Unset: no cost (one flag per drain, shared with `debug`).
    std::optional<std::uint64_t> schedule_seed{};
};

namespace detail {

/// Set by debug.hpp (which formats with fmt); without it, a plain fprintf.
inline void (*slow_step_hook)(std::string_view task, std::chrono::nanoseconds took,
                              std::chrono::nanoseconds threshold) noexcept = nullptr;

inline void report_slow_step(std::string_view task, std::chrono::nanoseconds took,
                             std::chrono::nanoseconds threshold) noexcept {
    if (slow_step_hook) return slow_step_hook(task, took, threshold);
    std::fprintf(stderr, "corio: task '%.*s' held the loop for %.1f ms in one step (threshold %.1f ms)\n",
                 static_cast<int>(task.size()), task.data(), took.count() / 1e6, threshold.count() / 1e6);
}

}  // namespace detail

/// The event loop of the calling thread, or invalid_state_error when none runs.
event_loop& current_loop();

/// The event loop: runs tasks on one thread over an asio::io_context (its own or a user's).
class event_loop : private detail::scheduler {
public:
    /// The executor of the loop's io_context.
    using executor_type = asio::io_context::executor_type;
    /// Receives errors nobody can observe (a detached task that failed) with the task's name.
    using exception_handler = std::function<void(std::exception_ptr, std::string_view task_name)>;

    /// A loop on an io_context of its own.
    explicit event_loop(run_options options = {})
        : detail::scheduler(options.virtual_time),
          owned_ctx_(std::make_unique<asio::io_context>(1)),
          ctx_(*owned_ctx_),
          timer_(ctx_),
          options_(std::move(options)) {
        init();
    }
    /// Adopts a user's io_context; the user may drive it with io_context::run().
    explicit event_loop(asio::io_context& ctx, run_options options = {})
        : detail::scheduler(options.virtual_time), ctx_(ctx), timer_(ctx_), options_(std::move(options)) {
        init();
    }
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    ~event_loop() {
        detail::loop_registry::unbind(ctx_, this);  // corio::co_spawn no longer finds this loop
        // Handlers of ours still queued in an adopted io_context (a drain, a
        // timer expiry) find the loop gone and do nothing.
        *life_ = nullptr;
        gate_->detach();  // other threads can no longer post here
        tear_down();
        // Cached frame slabs stay for the next loop on this thread unless they
        // already sat unused for a decay period (see frame_allocator.hpp).
        detail::decay_frame_cache();
    }

    /// The loop's io_context: build Asio I/O objects on it.
    asio::io_context& context() noexcept { return ctx_; }
    /// The executor of context().
    executor_type get_executor() noexcept { return ctx_.get_executor(); }

    /// The loop's clock: steady_clock::now(), or the virtual clock.
    clock::time_point now() const noexcept { return scheduler::now(); }
    /// True when the loop runs under virtual time.
    bool virtual_time() const noexcept { return scheduler::virtual_time(); }

    /// Spawned tasks that have not finished yet.
    std::size_t live_tasks() const noexcept { return live_; }
    /// Deadlines (sleeps, timeouts) currently armed.
    std::size_t pending_timers() const noexcept { return timers_.size(); }

    /// True once close() was called.
    bool closed() const noexcept { return closed_; }
    /// After close(), spawn() throws invalid_state_error.
    void close() noexcept {
        closed_ = true;
        gate_->close();
    }

    /// Starts `t` as a new task on this loop (at the loop's next turn).
    template <class T>
    join_handle<T> spawn(task<T> t, std::string_view name = {}) {
        return join_handle<T>(start(std::move(t), name, &root_scope_));  // a friend of join_handle
    }
    /// Spawns any awaitable, or a callable returning one (invoked inside the
    /// task, which keeps it alive: `spawn([&]() -> task<void> {...})` is safe).
    template <class A>
    requires(!detail::is_task<std::remove_cvref_t<A>>::value) auto spawn(A&& a, std::string_view name = {}) {
        return spawn(detail::to_task(std::forward<A>(a)), name);
    }

    /// Runs `main` as a task until it finishes, then cancels and awaits every
    /// task still alive; returns main's value or rethrows its exception.
    template <class T>
    T run_until_complete(task<T> main);
    /// run_until_complete() of any awaitable or callable returning one.
    template <class A>
    requires(!detail::is_task<std::remove_cvref_t<A>>::value) auto run_until_complete(A&& a) {
        return run_until_complete(detail::to_task(std::forward<A>(a)));
    }

    /// Replaces the handler of errors nobody can observe (by default they are printed to stderr).
    void set_exception_handler(exception_handler h) { handler_ = std::move(h); }

    /// Reports an error nobody can receive (a detached task that failed) to
    /// the exception handler, or else as a line on stderr.
    void report_unhandled(std::exception_ptr e, std::string_view task_name) noexcept {
        report_error(e, task_name, nullptr);
    }

private:
    // corio internals, reached through detail::loop_access (below join_handle).
    friend struct detail::loop_access;

    /// A spawned task's error nobody took. The handler gets the task's name
    /// ("" when unnamed); the stderr line names an unnamed task by the
    /// coroutine it runs.
    void report_task_error(const detail::spawn_state* s) noexcept { report_error(s->promise().error, s->name(), s); }

    void report_error(std::exception_ptr e, std::string_view task_name, const detail::spawn_state* s) noexcept {
        if (handler_) {
            try {
                handler_(e, task_name);
            } catch (...) {
            }
            return;
        }
        try {
            const std::string who = s ? detail::task_label(s) : "task '" + std::string(task_name) + "'";
            const std::string what = detail::exception_message(e);
            std::fprintf(stderr, "corio: unhandled exception in %s: %s\n", who.c_str(), what.c_str());
        } catch (...) {
            std::fputs("corio: unhandled exception (out of memory while describing it)\n", stderr);
        }
    }

    /// The scheduler core (used by awaitables and combinators).
    detail::scheduler& core() noexcept { return *this; }
    static event_loop& from(detail::scheduler& s) noexcept { return static_cast<event_loop&>(s); }

    /// Starts a task whose root scope lives under `parent`.
    template <class T>
    detail::spawn_state* start(task<T> t, std::string_view name, detail::scope_node* parent) {
        if (closed_) throw invalid_state_error("corio: spawn on a closed event loop");
        if (!t.valid()) throw invalid_state_error("corio: spawn of an empty task (moved-from or already awaited)");
        auto* s = new detail::spawn_state;
        if (!name.empty()) {
            task_names_.emplace(s, name);
            s->named = true;
        }
        static_assert(alignof(detail::task_promise<T>) <= 2 * sizeof(void*),
                      "corio: over-aligned task results are not supported by spawn()");
        auto h = t.release();
        s->frame = h;
        h.promise().ch = &s->ch;
        h.promise().link = detail::observer::tag;  // outermost frame, no observers yet
        s->ch.sched = this;
        s->ch.scope = s->root();
        s->link_under(parent);
        ++live_;
        push_ready(detail::tag_start(s));
        return s;
    }

    /// Null once this loop is destroyed (for handlers that
    /// may outlive it in an adopted io_context).
    const std::shared_ptr<event_loop*>& life() const noexcept { return life_; }

    /// Resumes `h` from an Asio completion handler.
    void resume_from_handler(std::coroutine_handle<> h) noexcept {
        detail::running_loop_guard g(this, this);
        resume(h);
        sync_timer();
    }

    void init() {
        complete_task_ = &on_task_complete;
        life_ = std::make_shared<event_loop*>(this);
        detail::loop_registry::bind(ctx_, this);  // the loop corio::co_spawn uses for ctx_ (asio.hpp)
        gate_ = std::make_shared<detail::remote_gate>();
        gate_->ctx = &ctx_;
        gate_->loop = this;
        const char* env = std::getenv("CORIO_DEBUG");
        debug_ = options_.debug || (env && env[0] == '1');
        if (options_.schedule_seed) {
            fuzz_ = std::make_unique<detail::schedule_fuzzer>(*options_.schedule_seed);
            fuzz_defer_one_in_ = 2 + static_cast<unsigned>(fuzz_->next() % 15);  // each seed its own yield rate
        }
        special_drain_ = debug_ || fuzz_;
        request_drain_ = [](detail::scheduler* s) {
            auto* self = static_cast<event_loop*>(s);
            asio::post(self->ctx_, [life = self->life_] {
                if (event_loop* l = *life) l->drain();
            });
        };
    }

    /// Only finds tasks alive when the loop was abandoned (an error escaped
    /// run(), or a user-driven loop was destroyed early). Destroys the frame
    /// of every task still alive, wherever its root scope is (under the
    /// loop's root or inside a task group, at any depth), deepest first: a
    /// task group's children go before the frame holding the group, so the
    /// group and whoever awaits a child are still there when the child is
    /// announced as cancelled. Then detaches every state a join_handle still
    /// holds from this loop (see join_handle).
    void tear_down() noexcept {
        drain_requested_ = true;                 // what the announcements schedule is never run
        while (!timers_.empty()) timers_.pop();  // frames about to go hold these nodes
        std::vector<detail::spawn_state*> alive;
        try {
            collect_spawned(alive);
        } catch (...) {
            std::terminate();  // out of memory while tearing down: nothing safe is left to do
        }
        for (auto it = alive.rbegin(); it != alive.rend(); ++it) destroy_alive(*it);
        while (detail::scope_node* n = held_.first_child) {
            auto* s = detail::spawn_state::from_root(n);
            n->unlink();
            detach_from_loop(s);
        }
    }

    /// Every spawned task in the scope tree, each after the tasks it is inside of.
    void collect_spawned(std::vector<detail::spawn_state*>& out) {
        detail::scope_node* n = root_scope_.first_child;
        while (n) {
            if (n->kind == detail::scope_kind::chain_root && static_cast<detail::chain_root*>(n)->spawned)
                out.push_back(detail::spawn_state::from_root(n));
            if (n->first_child) {
                n = n->first_child;
                continue;
            }
            while (n != &root_scope_ && !n->next_sibling) n = n->parent;
            n = n == &root_scope_ ? nullptr : n->next_sibling;
        }
    }

    /// Ends a task that is still alive: it reads as cancelled from now on.
    void destroy_alive(detail::spawn_state* s) noexcept {
        s->status = detail::task_status::cancelled;
        s->notify_observers();  // a task group counts it off; joiners are scheduled, never run
        s->unlink();
        if (s->frame) {
            s->frame.destroy();
            s->frame = {};
        }
        --live_;
        if (s->refs > 1) detach_from_loop(s);  // a handle keeps it
        s->release();
    }

    /// A state a handle keeps past the loop: an error nobody took is reported
    /// now (nobody can await it any more), and it forgets the loop.
    void detach_from_loop(detail::spawn_state* s) noexcept {
        // A state its loop detached (ch.sched null) has nothing left to report.
        if (s->ch.sched && s->status == detail::task_status::failed && !s->result_taken && !s->error_observed) {
            report_task_error(s);
            s->error_observed = true;
        }
        if (s->named) {
            task_names_.erase(s);
            s->named = false;
        }
        s->ch.sched = nullptr;
    }

    static void on_task_complete(detail::chain_root* r) noexcept {
        auto* s = static_cast<detail::spawn_state*>(r);
        switch (s->promise().finished_as()) {
            case detail::outcome::cancelled: s->status = detail::task_status::cancelled; break;
            case detail::outcome::error: s->status = detail::task_status::failed; break;
            default: s->status = detail::task_status::done; break;
        }
        s->notify_observers();
        from(*s->ch.sched).finish(s);
    }

    /// The task finished and its observers were notified.
    void finish(detail::spawn_state* s) noexcept {
        s->unlink();
        --live_;
        if (drive_done_ && drive_done_(drive_arg_)) {  // see run_until_done()
            drive_done_ = nullptr;
            ctx_.stop();
        }
        if (s->detached && s->status == detail::task_status::failed && !s->result_taken && !s->error_observed)
            report_task_error(s);
        // A handle still holds it: the loop keeps track of it (its scope links
        // are free now), so that a loop destroyed first can detach it.
        if (s->refs > 1) s->link_under(&held_);
        s->release();
    }

    void start_spawned(detail::spawn_state* s) noexcept {
        if (s->ch.cancel_requested()) {
            // Cancelled before its first step: the body never runs.
            s->status = detail::task_status::cancelled;
            s->notify_observers();  // the list lives in the frame
            s->frame.destroy();
            s->frame = {};
            finish(s);
            return;
        }
        s->status = detail::task_status::running;
        resume(s->frame);
    }

    void drain() noexcept {
        detail::running_loop_guard g(this, this);
        if (special_drain_) [[unlikely]]
            return drain_special();  // one branch per drain, not per resumption
        // A bounded batch, but not just what was queued at the start: a task
        // that a finishing task wakes runs in the same turn (otherwise every
        // spawn + join would cost an extra io_context turn and epoll_wait).
        for (std::size_t n = max_batch; n != 0 && !ready_.empty(); --n) {
            void* e = ready_.pop();
            auto bits = reinterpret_cast<std::uintptr_t>(e);
            if (bits & 1u) start_spawned(reinterpret_cast<detail::spawn_state*>(bits & ~std::uintptr_t{1}));
            else resume(std::coroutine_handle<>::from_address(e));
        }
        ready_.shrink();
        if (ready_.empty()) {
            drain_requested_ = false;
            detail::decay_frame_cache();
        } else {
            request_drain_(this);
        }
        sync_timer();
    }

    void sync_timer() noexcept {
        if (virtual_time_) return;
        if (timers_.empty()) {
            if (armed_) {
                armed_ = false;
                timer_.cancel();
            }
            return;
        }
        clock::time_point due = timers_.top()->deadline;
        if (armed_ && armed_at_ <= due) return;
        armed_ = true;
        armed_at_ = due;
        timer_.expires_at(due);
        timer_.async_wait([life = life_](const asio::error_code& ec) {
            event_loop* l = *life;
            if (ec == asio::error::operation_aborted || !l) return;
            l->armed_ = false;
            detail::running_loop_guard g(l, l);
            l->fire_due_timers(clock::now());
            l->sync_timer();
        });
    }

    /// Drives the io_context until `done()`; throws when nothing can make progress.
    template <class Pred>
    void drive(Pred done) {
        detail::running_loop_guard g(this, this);
        while (!done()) {
            if (ctx_.stopped()) ctx_.restart();
            if (virtual_time_) {
                if (ctx_.poll_one() != 0) continue;
                if (!timers_.empty()) {
                    if (timers_.top()->deadline > virtual_now_) virtual_now_ = timers_.top()->deadline;
                    fire_due_timers(virtual_now_);
                    continue;
                }
                if (ctx_.stopped()) throw_deadlock();
                ctx_.run_one();
            } else if (run_until_done(done) == 0) {
                throw_deadlock();
            }
        }
    }

    /// ctx_.run() until `done()` (checked whenever a task ends, which stops
    /// the io_context) or out of work. One run() for the whole drive, not a
    /// run_one() per turn: each run_one() makes and drops Asio's per-thread
    /// state, and with it the handler memory Asio recycles from turn to turn
    /// (a malloc/free per operation otherwise). Returns run()'s count.
    template <class Pred>
    std::size_t run_until_done(Pred& done) {
        struct reset {
            event_loop* l;
            ~reset() { l->drive_done_ = nullptr; }
        } r{this};
        drive_done_ = [](void* p) { return (*static_cast<Pred*>(p))(); };
        drive_arg_ = &done;
        std::size_t n = ctx_.run();
        if (!drive_done_) ctx_.restart();  // stopped by finish(), not by its owner: leave it runnable
        return n;
    }

    [[noreturn]] void throw_deadlock() {
        std::string msg =
            "corio: the event loop ran out of work while a task it waits for is still suspended "
            "(deadlock: nothing can ever wake it)\n";
        msg += detail::format_task_lines(detail::collect_tasks(*this));  // what each task is suspended in
        throw invalid_state_error(msg);
    }

    static constexpr std::size_t max_batch = 1024;  // resumptions per drain before I/O gets a turn

    bool (*drive_done_)(void*) = nullptr;  // run_until_done(): its predicate, while it runs
    void* drive_arg_ = nullptr;
    std::shared_ptr<event_loop*> life_;  // null once the loop is destroyed: see ~event_loop
    detail::scope_node held_;            // finished tasks a join_handle still holds (never cancelled: not a real scope)
    std::unique_ptr<asio::io_context> owned_ctx_;
    asio::io_context& ctx_;
    asio::steady_timer timer_;
    clock::time_point armed_at_{};
    bool armed_ = false;
    bool closed_ = false;
    std::size_t live_ = 0;
    exception_handler handler_;

public:
    /// The options this loop was made with.
    const run_options& options() const noexcept { return options_; }
    /// Whether slow steps are timed (run_options::debug or CORIO_DEBUG=1).
    bool debug() const noexcept { return debug_; }

    /// Thread-safe: runs `f()` on this loop's thread at its next turn (like
    /// asyncio's call_soon_threadsafe). An exception from f goes to the
    /// exception handler. Throws invalid_state_error once the loop is closed.
    template <class F>
    void call_soon_threadsafe(F f) {
        auto call = [g = gate_, f = std::move(f)]() mutable {
            if (auto* l = static_cast<event_loop*>(g->loop)) l->run_threadsafe_call(f);
        };
        if (!gate_->post_new(std::move(call)))
            throw invalid_state_error("corio: call_soon_threadsafe on a closed or destroyed event loop");
    }

private:
    /// The door other threads post through (thread.hpp).
    const std::shared_ptr<detail::remote_gate>& remote() const noexcept { return gate_; }
    /// The loop's signal set, made on first use (signal.hpp).
    detail::signal_hub& signals() {
        if (!signals_) signals_ = std::make_unique<detail::signal_hub>(ctx_);
        return *signals_;
    }

    /// Runs a callable posted from another thread, as a loop step.
    template <class F>
    void run_threadsafe_call(F& f) noexcept {
        detail::running_loop_guard g(this, this);
        try {
            f();
        } catch (...) {
            report_unhandled(std::current_exception(), "call_soon_threadsafe");
        }
        sync_timer();
    }

private:
    /// drain() under run_options::debug (times every step and reports those
    /// longer than slow_step_threshold, naming the task) and/or
    /// run_options::schedule_seed (the fuzzer picks each next entry).
    void drain_special() noexcept {
        for (std::size_t n = max_batch; n != 0; --n) {
            void* e = nullptr;
            if (fuzz_) {
                fuzz_->absorb(ready_);  // what the last step made ready: one batch
                if (fuzz_->empty()) break;
                if (!(e = fuzz_->pick(fuzz_defer_one_in_))) continue;  // a batch deferred
            } else {
                if (ready_.empty()) break;
                e = ready_.pop();
            }
            if (debug_) run_timed(e);
            else run_entry(e);
        }
        if (fuzz_) fuzz_->absorb(ready_);
        ready_.shrink();
        if (ready_.empty() && (!fuzz_ || fuzz_->empty())) {
            drain_requested_ = false;
            detail::decay_frame_cache();
        } else {
            request_drain_(this);
        }
        sync_timer();
    }

    void run_entry(void* e) noexcept {
        auto bits = reinterpret_cast<std::uintptr_t>(e);
        if (bits & 1u) start_spawned(reinterpret_cast<detail::spawn_state*>(bits & ~std::uintptr_t{1}));
        else resume(std::coroutine_handle<>::from_address(e));
    }

    void run_timed(void* e) noexcept {
        auto bits = reinterpret_cast<std::uintptr_t>(e);
        auto* s = (bits & 1u) ? reinterpret_cast<detail::spawn_state*>(bits & ~std::uintptr_t{1}) : nullptr;
        std::string name = s ? std::string(s->name()) : detail::task_name_of(std::coroutine_handle<>::from_address(e));
        const auto t0 = std::chrono::steady_clock::now();
        run_entry(e);
        const auto took = std::chrono::steady_clock::now() - t0;
        if (took > options_.slow_step_threshold) detail::report_slow_step(name, took, options_.slow_step_threshold);
    }

    run_options options_;
    std::shared_ptr<detail::remote_gate> gate_;
    std::unique_ptr<detail::signal_hub> signals_;  // destroyed before the io_context
    bool debug_ = false;
    bool special_drain_ = false;  // debug_ or fuzz_: drain() takes drain_special()
    unsigned fuzz_defer_one_in_ = 0;
    std::unique_ptr<detail::schedule_fuzzer> fuzz_;  // run_options::schedule_seed

    template <class T>
    friend class join_handle;
};

/// Handle to a spawned task: await it (as an lvalue or rvalue) for the task's
/// value, cancel it, query it. Move-only. Destroying it detaches the task.
template <class T>
class join_handle {
public:
    join_handle() noexcept = default;
    /// Takes over `o`'s task; `o` becomes empty.
    join_handle(join_handle&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    /// Detaches this handle's task, then takes over `o`'s.
    join_handle& operator=(join_handle&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    join_handle(const join_handle&) = delete;
    join_handle& operator=(const join_handle&) = delete;
    ~join_handle() { reset(); }

    /// Holds a task (not default-constructed or moved from).
    bool valid() const noexcept { return s_ != nullptr; }
    /// The task has finished (with a value, an error, or cancelled).
    bool done() const noexcept { return s_ && s_->finished(); }
    /// The task ended because a cancelled_error reached its boundary.
    bool cancelled() const noexcept { return s_ && s_->status == detail::task_status::cancelled; }
    /// The task's name given to spawn() ("" when none).
    std::string_view name() const noexcept { return s_ ? s_->name() : std::string_view(); }

    /// Cancels the task's root scope (no-op once it finished). Idempotent.
    void cancel() noexcept {
        if (s_ && !s_->finished()) detail::cancel_scope_node(s_->root());
    }

    /// What `co_await handle` uses: observes the task until it finishes.
    class awaiter : detail::waiter_base, detail::observer {
    public:
        /// An awaiter observing the task `s`.
        explicit awaiter(detail::spawn_state* s) noexcept : s_(s) {}
        /// Copyable until the await begins.
        awaiter(const awaiter&) = default;  // only before the await begins
        /// A frame destroyed mid-await (with the loop) leaves no dangling observer.
        ~awaiter() { observer::unlink(); }
        /// Awaiter protocol: ready when the task already finished.
        bool await_ready() const {
            if (!s_)
                throw invalid_state_error(
                    "corio: co_await on an empty join_handle (moved-from or default-constructed)");
            if (s_->result_taken) throw invalid_state_error("corio: the result of this join_handle was already taken");
            // Even a finished task goes through await_suspend (which then does
            // not suspend): that is where the awaiter's loop is known.
            return false;
        }
        /// Awaiter protocol: parks the caller until the task finishes (or the caller's scope is cancelled).
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) {
            ch_ = detail::chain_of(caller);
            check_loop(s_, ch_);
            if (s_->finished()) return false;
            if (!detail::begin_park(caller, ch_)) {
                cancelled_ = true;
                return false;
            }
            fn = &on_done;
            s_->add_observer(this);
            detail::finish_park(ch_, this, &on_cancel, h_, caller);
            return true;
        }
        /// Awaiter protocol: the task's value, or rethrows its exception; cancelled_error when the await was cancelled.
        T await_resume() {
            if (cancelled_) throw cancelled_error{};
            return detail::take_result<T>(s_);
        }

    private:
        /// A task is awaited only from a task of its own loop: another loop
        /// would never be woken by it (and its frame could go first).
        static void check_loop(const detail::spawn_state* s, const detail::chain* awaiting) {
            if (s->ch.sched == awaiting->sched) [[likely]]
                return;
            if (!s->ch.sched)
                throw invalid_state_error("corio: co_await on a join_handle whose event loop was destroyed");
            throw invalid_state_error(
                "corio: co_await on a join_handle of another event loop (a task can only await tasks "
                "spawned on the loop it runs on)");
        }
        static void on_done(detail::observer* o) noexcept {
            auto* self = static_cast<awaiter*>(o);
            self->ch_->unpark();
            self->ch_->sched->schedule(self->h_);
        }
        static void on_cancel(detail::waiter_base* w) noexcept {
            auto* self = static_cast<awaiter*>(w);
            self->observer::unlink();
            self->cancelled_ = true;
            self->ch_->sched->schedule(self->h_);
        }
        detail::spawn_state* s_;
        detail::chain* ch_ = nullptr;
        std::coroutine_handle<> h_{};
        bool cancelled_ = false;
    };

    /// Awaits the task (the handle stays valid).
    awaiter operator co_await() & noexcept { return awaiter(s_); }
    /// Awaits the task.
    awaiter operator co_await() && noexcept { return awaiter(s_); }

private:
    friend class event_loop;
    friend struct detail::loop_access;
    explicit join_handle(detail::spawn_state* s) noexcept : s_(s) {}
    /// The spawned task's context (reached through detail::loop_access).
    detail::spawn_state* task_context() const noexcept { return s_; }

    void reset() noexcept {
        if (!s_) return;
        detail::spawn_state* s = std::exchange(s_, nullptr);
        if (s->status == detail::task_status::failed && !s->result_taken && !s->error_observed) {
            event_loop::from(*s->ch.sched).report_task_error(s);
            s->result_taken = true;
        }
        s->detached = true;
        s->release();
    }

    detail::spawn_state* s_ = nullptr;
};

namespace detail {
/// The one door to the internals of event_loop and join_handle (private
/// members, one friend: Asio's awaitable.hpp style). Awaitables, combinators
/// and the other corio headers go through it; user code has no business here.
struct loop_access {
    /// The scheduler core of a loop, and the loop of a scheduler core.
    static scheduler& core(event_loop& l) noexcept { return l.core(); }
    static event_loop& loop_of(scheduler& s) noexcept { return event_loop::from(s); }
    /// Starts `t` as a spawned task whose root scope lives under `parent`.
    template <class T>
    static spawn_state* start(event_loop& l, task<T> t, std::string_view name, scope_node* parent) {
        return l.start(std::move(t), name, parent);
    }
    /// The handle of a task start() returned (takes over the reference start() left for it).
    template <class T>
    static join_handle<T> make_handle(spawn_state* s) noexcept {
        return join_handle<T>(s);
    }
    template <class T>
    static spawn_state* task_context(const join_handle<T>& h) noexcept {
        return h.task_context();
    }
    /// Null once the loop is destroyed (for handlers that may outlive it).
    static const std::shared_ptr<event_loop*>& life(const event_loop& l) noexcept { return l.life(); }
    /// Resumes `h` from an Asio completion handler, as a step of the loop.
    static void resume_from_handler(event_loop& l, std::coroutine_handle<> h) noexcept { l.resume_from_handler(h); }
    /// The door other threads post through (thread.hpp).
    static const std::shared_ptr<remote_gate>& remote(const event_loop& l) noexcept { return l.remote(); }
    /// The loop's signal set, made on first use (signal.hpp).
    static signal_hub& signals(event_loop& l) { return l.signals(); }
    /// Runs a callable posted from another thread, as a step of the loop.
    template <class F>
    static void run_threadsafe_call(event_loop& l, F& f) noexcept {
        l.run_threadsafe_call(f);
    }
};
}  // namespace detail

/// Returns the memory this thread keeps for reuse (empty frame slabs) to the
/// system now. Without it, that memory goes back once a running loop has not
/// reused it for a second.
inline void trim_memory() noexcept { detail::trim_frame_cache(); }

inline event_loop& current_loop() {
    event_loop* l = detail::running_loop();
    if (!l) throw invalid_state_error("corio: current_loop() called with no event loop running on this thread");
    return *l;
}

/// Starts `t` as a task on the running loop; see event_loop::spawn.
template <class T>
join_handle<T> spawn(task<T> t, std::string_view name = {}) {
    return current_loop().spawn(std::move(t), name);
}
/// spawn() of any awaitable, or of a callable returning one (kept alive inside the task).
template <class A>
requires(!detail::is_task<std::remove_cvref_t<A>>::value) auto spawn(A&& a, std::string_view name = {}) {
    return current_loop().spawn(detail::to_task(std::forward<A>(a)), name);
}

template <class T>
T event_loop::run_until_complete(task<T> main) {
    if (detail::running_loop())
        throw invalid_state_error(
            "corio: run() called from inside a running event loop; co_await the task or spawn() it instead");
    join_handle<T> h = spawn(std::move(main), "main");
    detail::cancel_target_guard on_signal;  // run_options::cancel_on_signals, see signal.hpp
    if (!options_.cancel_on_signals.empty()) {
        signals().set_cancel_target(h.task_context()->root(), options_.cancel_on_signals);
        on_signal.hub = signals_.get();
    }
    drive([&] { return h.done(); });
    // Like asyncio.run: cancel every task still alive and wait for them.
    detail::cancel_scope_node(&root_scope_);
    drive([&] { return live_ == 0; });
    root_scope_.cancel_called = false;
    return detail::take_result<T>(h.task_context());
}

/// asyncio.run: runs `main` on a new event loop until it finishes, cancels
/// and awaits every task left, and returns main's value or rethrows its error.
template <class T>
T run(task<T> main, run_options options = {}) {
    event_loop loop(options);  // run_until_complete rejects a nested run()
    return loop.run_until_complete(std::move(main));
}
/// run() of any awaitable, or of a callable returning one (kept alive while it runs).
template <class A>
requires(!detail::is_task<std::remove_cvref_t<A>>::value) auto run(A&& main, run_options options = {}) {
    return run(detail::to_task(std::forward<A>(main)), options);
}

}  // namespace corio
