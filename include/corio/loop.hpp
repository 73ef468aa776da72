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
#include "detail/remote_gate.hpp"
#include "detail/scheduler.hpp"
#include "detail/signal_hub.hpp"
#include "errors.hpp"
#include "task.hpp"

namespace corio {

using clock = detail::clock;

class event_loop;
template <class T>
class join_handle;

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
    std::chrono::nanoseconds slow_step_threshold = std::chrono::milliseconds(100);
};

namespace detail {

// ------------------------------------------------- what entry points take ---
// Every entry point (run, spawn, task_group::spawn, the combinators) takes
// (a) any awaitable, or (b) a callable returning one: corio invokes it inside
// a task that keeps the callable (a lambda and its captures) alive for as
// long as the coroutine it returned runs.

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

template <class A>
concept awaitable_object = requires(A&& a) { get_awaiter(static_cast<A&&>(a)).await_ready(); };

/// A callable corio invokes itself (never an awaitable that happens to be callable).
template <class F>
concept awaitable_factory =
    !awaitable_object<F> && std::is_invocable_v<std::decay_t<F>&> && awaitable_object<std::invoke_result_t<std::decay_t<F>&>>;

template <class A>
task<await_result_t<A>> await_in_task(A a) {
    static_assert(std::is_move_constructible_v<A>,
                  "corio: this awaitable cannot be moved into a combinator or task; wrap it in a task, "
                  "e.g. [&]() -> corio::task<T> { co_return co_await aw; }");
    if constexpr (std::is_void_v<await_result_t<A>>) co_await std::move(a);
    else co_return co_await std::move(a);
}

/// Calls `f` and awaits what it returns; `f` lives in this frame meanwhile.
template <class F, class R = await_result_t<std::invoke_result_t<F&>>>
task<R> call_in_task(F f) {
    if constexpr (std::is_void_v<R>) co_await f();
    else co_return co_await f();
}

/// Anything an entry point takes, as the task<T> that runs it.
template <class A>
auto to_task(A&& a) {
    using D = std::remove_cvref_t<A>;
    if constexpr (is_task<D>::value) return D(std::move(a));
    else if constexpr (awaitable_factory<A>) return call_in_task(std::decay_t<A>(std::forward<A>(a)));
    else {
        static_assert(awaitable_object<A>, "corio: expected an awaitable or a callable returning one");
        static_assert(!std::is_lvalue_reference_v<A> || std::is_copy_constructible_v<D>,
                      "corio: a named operation cannot be copied into a task; pass std::move(op), or the call "
                      "itself (spawn(q.get()))");
        return await_in_task<D>(std::forward<A>(a));
    }
}

template <class A>
using to_task_t = decltype(to_task(std::declval<A>()));

/// A combinator operand: a callable becomes the task that calls it; an
/// awaitable is passed on as it is (an lvalue stays a reference).
template <class A>
decltype(auto) as_operand(A&& a) {
    if constexpr (awaitable_factory<A>) return call_in_task(std::decay_t<A>(std::forward<A>(a)));
    else return static_cast<A&&>(a);
}

template <class A>
using operand_t = decltype(as_operand(std::declval<A>()));

}  // namespace detail

namespace detail {

inline thread_local event_loop* tls_running_loop = nullptr;

[[gnu::noinline]] inline event_loop* running_loop() noexcept { return tls_running_loop; }
[[gnu::noinline]] inline event_loop* exchange_running_loop(event_loop* l) noexcept {
    return std::exchange(tls_running_loop, l);
}

/// Marks `loop` as the one running on this thread for the guard's lifetime.
class running_loop_guard {
public:
    explicit running_loop_guard(event_loop* loop) noexcept : prev_(exchange_running_loop(loop)) {}
    ~running_loop_guard() { exchange_running_loop(prev_); }
    running_loop_guard(const running_loop_guard&) = delete;
    running_loop_guard& operator=(const running_loop_guard&) = delete;

private:
    event_loop* prev_;
};

/// Something to notify when a spawned task finishes (an awaiting join, a
/// wait(), a task group). The list's head is the task frame's
/// promise_base::link, whose bit 0 marks the frame as a chain's outermost:
/// every link of the list carries that bit, so unlinking through `pprev`
/// keeps it wherever it writes.
struct observer {
    static constexpr std::uintptr_t tag = promise_base::root_bit;
    // `next` stays the first member: notify_observers walks back through pprev.

    std::uintptr_t next = tag;  // tagged link to the next observer (tag alone: none)
    std::uintptr_t* pprev = nullptr;
    void (*fn)(observer*) noexcept = nullptr;

    static observer* at(std::uintptr_t link) noexcept { return reinterpret_cast<observer*>(link & ~tag); }
    std::uintptr_t as_link() noexcept { return reinterpret_cast<std::uintptr_t>(this) | tag; }

    void unlink() noexcept {
        if (!pprev) return;
        *pprev = next;
        if (observer* n = at(next)) n->pprev = pprev;
        next = tag;
        pprev = nullptr;
    }
};

/// The task context of a spawned task: its root scope, its chain and its
/// outermost frame (a chain_root), whose promise keeps the result until the
/// handle lets go and, until the task finishes, the list of observers (in
/// the continuation slot an outermost frame does not use). Owned jointly by
/// the running task and the join_handle (refs). Kept small on purpose (a
/// million sleeping tasks pay for every byte): 72 bytes, names in a side table.
struct spawn_state : chain_root, pooled {
    spawn_state() noexcept { spawned = true; }

    bool finished() const noexcept { return status >= task_status::done; }
    scope_node* root() noexcept { return this; }

    /// The frame's promise (found from the frame: see promise_of).
    promise_base& promise() const noexcept {
        return promise_of(frame);
    }

    /// Adds `o` to the observers notified when the task finishes (only while
    /// it has not finished: the list lives in the running frame).
    void add_observer(observer* o) noexcept {
        std::uintptr_t& head = promise().link;
        o->next = head;
        o->pprev = &head;
        if (observer* first = observer::at(head)) first->pprev = &o->next;
        head = o->as_link();
    }

    /// Unlinks and calls every observer, oldest first, so joiners resume in
    /// the order they began to wait. An observer's fn only schedules (nothing
    /// runs inline), but it may unlink other observers of this task: a task
    /// group's observer cancels the group's scope, whose waiters (a joiner of
    /// this very task, a wait() over it) unlink themselves. So the next
    /// observer is taken from the list as it is after each call, never from a
    /// pointer fetched before it: an unlinked observer is never called, and
    /// none behind it is skipped.
    void notify_observers() noexcept {
        std::uintptr_t& head = promise().link;
        observer* o = oldest_observer(head);
        while (o) {
            observer* newer = newer_observer(o, head);
            o->unlink();
            o->fn(o);
            // Still linked: nothing older is left, it is the oldest. Unlinked
            // by fn: find the oldest again (rare: only after a cancellation).
            o = newer && newer->pprev ? newer : oldest_observer(head);
        }
    }

    static observer* oldest_observer(std::uintptr_t head) noexcept {
        observer* o = observer::at(head);
        if (o)
            while (observer* n = observer::at(o->next)) o = n;  // the list is newest first
        return o;
    }
    /// The observer linked just before `o` (newer), or null. `next` is an
    /// observer's first member: a pprev that is not the head points into it.
    static observer* newer_observer(observer* o, std::uintptr_t& head) noexcept {
        return o->pprev == &head ? nullptr : reinterpret_cast<observer*>(o->pprev);
    }

    /// Drops one reference; the last one frees the task. Safe after the
    /// loop is gone: the loop then detached it (ch.sched null, no name).
    void release() noexcept {
        if (--refs != 0) return;
        unlink();  // from the loop's list of held, finished tasks
        if (frame) frame.destroy();
        if (named) ch.sched->task_names_.erase(this);
        delete this;
    }

    std::string_view name() const noexcept {
        if (!named) return {};
        auto it = ch.sched->task_names_.find(this);
        return it == ch.sched->task_names_.end() ? std::string_view() : std::string_view(it->second);
    }

    static spawn_state* from_chain(chain* c) noexcept { return static_cast<spawn_state*>(chain_root::from_chain(c)); }
    static spawn_state* from_root(scope_node* s) noexcept { return static_cast<spawn_state*>(s); }
};

// A million sleeping tasks pay for every byte: keep it at 72 on 64-bit targets.
static_assert(sizeof(void*) != 8 || sizeof(spawn_state) == 72, "corio: spawn_state grew");
static_assert(alignof(spawn_state) <= 8, "corio: pooled objects use 8-byte size classes");

inline void* tag_start(spawn_state* s) noexcept {
    return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(s) | 1u);
}

template <class T>
T take_result(spawn_state* s) {
    if (s->result_taken) throw invalid_state_error("corio: the result of this join_handle was already taken");
    s->result_taken = true;
    if (s->status == task_status::cancelled && !s->frame) throw cancelled_error{};
    auto& p = static_cast<task_promise<T>&>(s->promise());
    return p.take();
}

/// The name of the spawned task a frame runs in (a combinator child's frame
/// is named after the task that awaits the combinator), or "".
inline std::string task_name_of(std::coroutine_handle<> h) {
    chain* c = promise_of(h).ch;
    scope_node* s = c ? chain_root::from_chain(c) : nullptr;
    for (; s; s = s->parent) {
        if (s->kind == scope_kind::chain_root && static_cast<chain_root*>(s)->spawned)
            return std::string(static_cast<spawn_state*>(s)->name());
    }
    return {};
}

/// Set by debug.hpp (which formats with fmt); without it, a plain fprintf.
inline void (*slow_step_hook)(std::string_view task, std::chrono::nanoseconds took,
                              std::chrono::nanoseconds threshold) noexcept = nullptr;
/// Set by debug.hpp: dump_tasks() text, appended to the deadlock report.
inline std::string (*task_dump_hook)(event_loop&) = nullptr;

inline void report_slow_step(std::string_view task, std::chrono::nanoseconds took, std::chrono::nanoseconds threshold) noexcept {
    if (slow_step_hook) return slow_step_hook(task, took, threshold);
    std::fprintf(stderr, "corio: task '%.*s' held the loop for %.1f ms in one step (threshold %.1f ms)\n",
                 static_cast<int>(task.size()), task.data(), took.count() / 1e6, threshold.count() / 1e6);
}

}  // namespace detail

/// The event loop of the calling thread, or invalid_state_error when none runs.
event_loop& current_loop();

class event_loop : private detail::scheduler {
public:
    using executor_type = asio::io_context::executor_type;
    using exception_handler = std::function<void(std::exception_ptr, std::string_view task_name)>;

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

    asio::io_context& context() noexcept { return ctx_; }
    executor_type get_executor() noexcept { return ctx_.get_executor(); }

    /// The loop's clock: steady_clock::now(), or the virtual clock.
    clock::time_point now() const noexcept { return scheduler::now(); }
    bool virtual_time() const noexcept { return scheduler::virtual_time(); }

    /// Spawned tasks that have not finished yet.
    std::size_t live_tasks() const noexcept { return live_; }
    /// Deadlines (sleeps, timeouts) currently armed.
    std::size_t pending_timers() const noexcept { return timers_.size(); }

    bool closed() const noexcept { return closed_; }
    /// After close(), spawn() throws invalid_state_error.
    void close() noexcept {
        closed_ = true;
        gate_->close();
    }

    /// Starts `t` as a new task on this loop (at the loop's next turn).
    template <class T>
    join_handle<T> spawn(task<T> t, std::string_view name = {}) {
        return join_handle<T>(start(std::move(t), name, &root_scope_));
    }
    /// Spawns any awaitable, or a callable returning one (invoked inside the
    /// task, which keeps it alive: `spawn([&]() -> task<void> {...})` is safe).
    template <class A>
        requires(!detail::is_task<std::remove_cvref_t<A>>::value)
    auto spawn(A&& a, std::string_view name = {}) {
        return spawn(detail::to_task(std::forward<A>(a)), name);
    }

    /// Runs `main` as a task until it finishes, then cancels and awaits every
    /// task still alive; returns main's value or rethrows its exception.
    template <class T>
    T run_until_complete(task<T> main);
    /// run_until_complete() of any awaitable or callable returning one.
    template <class A>
        requires(!detail::is_task<std::remove_cvref_t<A>>::value)
    auto run_until_complete(A&& a) {
        return run_until_complete(detail::to_task(std::forward<A>(a)));
    }

    void set_exception_handler(exception_handler h) { handler_ = std::move(h); }

    /// Reports an error nobody can receive (a detached task that failed).
    void report_unhandled(std::exception_ptr e, std::string_view task_name) noexcept {
        if (handler_) {
            try {
                handler_(e, task_name);
            } catch (...) {
            }
            return;
        }
        std::string what = "unknown exception";
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            what = ex.what();
        } catch (...) {
        }
        std::fprintf(stderr, "corio: unhandled exception in task '%.*s': %s\n", static_cast<int>(task_name.size()),
                     task_name.data(), what.c_str());
    }

    /// corio internals: the scheduler core (used by awaitables and combinators).
    detail::scheduler& core() noexcept { return *this; }
    static event_loop& from(detail::scheduler& s) noexcept { return static_cast<event_loop&>(s); }

    /// corio internals: starts a task whose root scope lives under `parent`.
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

    /// corio internals: null once this loop is destroyed (for handlers that
    /// may outlive it in an adopted io_context).
    const std::shared_ptr<event_loop*>& life() const noexcept { return life_; }

    /// corio internals: resumes `h` from an Asio completion handler.
    void resume_from_handler(std::coroutine_handle<> h) noexcept {
        detail::running_loop_guard g(this);
        resume(h);
        sync_timer();
    }

private:
    void init() {
        complete_task_ = &on_task_complete;
        life_ = std::make_shared<event_loop*>(this);
        detail::loop_registry::bind(ctx_, this);  // the loop corio::co_spawn uses for ctx_ (asio.hpp)
        gate_ = std::make_shared<detail::remote_gate>();
        gate_->ctx = &ctx_;
        gate_->loop = this;
        const char* env = std::getenv("CORIO_DEBUG");
        debug_ = options_.debug || (env && env[0] == '1');
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
        drain_requested_ = true;  // what the announcements schedule is never run
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
            report_unhandled(s->promise().error, s->name());
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
        switch (s->promise().state()) {
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
            report_unhandled(s->promise().error, s->name());
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
        detail::running_loop_guard g(this);
        if (debug_) [[unlikely]] drain_timed();  // one branch per drain, not per resumption
        else
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
            detail::running_loop_guard g(l);
            l->fire_due_timers(clock::now());
            l->sync_timer();
        });
    }

    /// Drives the io_context until `done()`; throws when nothing can make progress.
    template <class Pred>
    void drive(Pred done) {
        detail::running_loop_guard g(this);
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
            "(deadlock: nothing can ever wake it)";
        if (detail::task_dump_hook) msg += "\n" + detail::task_dump_hook(*this);  // debug.hpp's dump_tasks()
        throw invalid_state_error(msg);
    }

    static constexpr std::size_t max_batch = 1024;  // resumptions per drain before I/O gets a turn

    bool (*drive_done_)(void*) = nullptr;  // run_until_done(): its predicate, while it runs
    void* drive_arg_ = nullptr;
    std::shared_ptr<event_loop*> life_;  // null once the loop is destroyed: see ~event_loop
    detail::scope_node held_;  // finished tasks a join_handle still holds (never cancelled: not a real scope)
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

    /// corio internals: the door other threads post through (thread.hpp).
    const std::shared_ptr<detail::remote_gate>& remote() const noexcept { return gate_; }
    /// corio internals: the loop's signal set, made on first use (signal.hpp).
    detail::signal_hub& signals() {
        if (!signals_) signals_ = std::make_unique<detail::signal_hub>(ctx_);
        return *signals_;
    }

    /// corio internals: runs a callable posted from another thread, as a loop step.
    template <class F>
    void run_threadsafe_call(F& f) noexcept {
        detail::running_loop_guard g(this);
        try {
            f();
        } catch (...) {
            report_unhandled(std::current_exception(), "call_soon_threadsafe");
        }
        sync_timer();
    }

private:
    /// drain() under run_options::debug: times every step and reports those
    /// longer than slow_step_threshold, naming the task.
    void drain_timed() noexcept {
        for (std::size_t n = max_batch; n != 0 && !ready_.empty(); --n) {
            void* e = ready_.pop();
            auto bits = reinterpret_cast<std::uintptr_t>(e);
            auto* s = (bits & 1u) ? reinterpret_cast<detail::spawn_state*>(bits & ~std::uintptr_t{1}) : nullptr;
            std::string name = s ? std::string(s->name()) : detail::task_name_of(std::coroutine_handle<>::from_address(e));
            const auto t0 = std::chrono::steady_clock::now();
            if (s) start_spawned(s);
            else resume(std::coroutine_handle<>::from_address(e));
            const auto took = std::chrono::steady_clock::now() - t0;
            if (took > options_.slow_step_threshold) detail::report_slow_step(name, took, options_.slow_step_threshold);
        }
    }

    run_options options_;
    std::shared_ptr<detail::remote_gate> gate_;
    std::unique_ptr<detail::signal_hub> signals_;  // destroyed before the io_context
    bool debug_ = false;

    template <class T>
    friend class join_handle;
};

/// Handle to a spawned task: await it (as an lvalue or rvalue) for the task's
/// value, cancel it, query it. Move-only. Destroying it detaches the task.
template <class T>
class join_handle {
public:
    join_handle() noexcept = default;
    explicit join_handle(detail::spawn_state* s) noexcept : s_(s) {}
    join_handle(join_handle&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
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

    bool valid() const noexcept { return s_ != nullptr; }
    /// The task has finished (with a value, an error, or cancelled).
    bool done() const noexcept { return s_ && s_->finished(); }
    /// The task ended because a cancelled_error reached its boundary.
    bool cancelled() const noexcept { return s_ && s_->status == detail::task_status::cancelled; }
    std::string_view name() const noexcept { return s_ ? s_->name() : std::string_view(); }

    /// Cancels the task's root scope (no-op once it finished). Idempotent.
    void cancel() noexcept {
        if (s_ && !s_->finished()) detail::cancel_scope_node(s_->root());
    }

    class awaiter : detail::waiter_base, detail::observer {
    public:
        explicit awaiter(detail::spawn_state* s) noexcept : s_(s) {}
        awaiter(const awaiter&) = default;  // only before the await begins
        /// A frame destroyed mid-await (with the loop) leaves no dangling observer.
        ~awaiter() { observer::unlink(); }
        bool await_ready() const {
            if (!s_) throw invalid_state_error("corio: co_await on an empty join_handle (moved-from or default-constructed)");
            if (s_->result_taken) throw invalid_state_error("corio: the result of this join_handle was already taken");
            // Even a finished task goes through await_suspend (which then does
            // not suspend): that is where the awaiter's loop is known.
            return false;
        }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) {
            ch_ = detail::chain_of(caller);
            check_loop(s_, ch_);
            if (s_->finished()) return false;
            if (ch_->cancel_requested()) {
                cancelled_ = true;
                return false;
            }
            h_ = caller;
            notify = &on_cancel;
            fn = &on_done;
            s_->add_observer(this);
            ch_->park(this);
            return true;
        }
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

    awaiter operator co_await() & noexcept { return awaiter(s_); }
    awaiter operator co_await() && noexcept { return awaiter(s_); }

    /// corio internals.
    detail::spawn_state* state() const noexcept { return s_; }

private:
    void reset() noexcept {
        if (!s_) return;
        detail::spawn_state* s = std::exchange(s_, nullptr);
        if (s->status == detail::task_status::failed && !s->result_taken && !s->error_observed) {
            event_loop::from(*s->ch.sched).report_unhandled(s->promise().error, s->name());
            s->result_taken = true;
        }
        s->detached = true;
        s->release();
    }

    detail::spawn_state* s_ = nullptr;
};

namespace detail {
/// The chain (task) running right now on this thread's loop, or null outside
/// any task (e.g. while a loop tears down). Every frame a scheduler resumes is
/// a corio task frame, whose promise sits where a promise_base would.
inline chain* running_chain() noexcept {
    event_loop* l = running_loop();
    if (!l) return nullptr;
    std::coroutine_handle<> h = l->core().running_;
    if (!h) return nullptr;
    return promise_of(h).ch;
}
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
    requires(!detail::is_task<std::remove_cvref_t<A>>::value)
auto spawn(A&& a, std::string_view name = {}) {
    return current_loop().spawn(detail::to_task(std::forward<A>(a)), name);
}

template <class T>
T event_loop::run_until_complete(task<T> main) {
    if (detail::running_loop())
        throw invalid_state_error("corio: run() called from inside a running event loop; co_await the task or spawn() it instead");
    join_handle<T> h = spawn(std::move(main), "main");
    detail::cancel_target_guard on_signal;  // run_options::cancel_on_signals, see signal.hpp
    if (!options_.cancel_on_signals.empty()) {
        signals().set_cancel_target(h.state()->root(), options_.cancel_on_signals);
        on_signal.hub = signals_.get();
    }
    drive([&] { return h.done(); });
    // Like asyncio.run: cancel every task still alive and wait for them.
    detail::cancel_scope_node(&root_scope_);
    drive([&] { return live_ == 0; });
    root_scope_.cancel_called = false;
    return detail::take_result<T>(h.state());
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
    requires(!detail::is_task<std::remove_cvref_t<A>>::value)
auto run(A&& main, run_options options = {}) {
    return run(detail::to_task(std::forward<A>(main)), options);
}

}  // namespace corio
