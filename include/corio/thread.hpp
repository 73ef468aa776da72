// corio/thread.hpp: blocking work on a thread pool, thread-safe entry points
// into a loop, and several loops on several threads.
//
// - to_thread(f, args...) -> task<R>: runs f(args...) (decayed copies, passed
//   as rvalues) on the process-wide asio::thread_pool and resumes the awaiting
//   task on its own loop with f's value or exception. The pool is made on
//   first use with run_options::thread_pool_size threads (0: one per hardware
//   thread) of the loop that first uses it; shutdown_thread_pool() joins it,
//   after which to_thread throws invalid_state_error (reset_thread_pool()
//   allows a new one). Cancellation point: in a cancelled scope f is not
//   started. Cancelled while f runs: if f takes a std::stop_token first, stop
//   is requested; either way the awaiter stays suspended until f returns (f
//   may reference the awaiter's locals), then f's result is dropped and
//   cancelled_error is thrown. A loop destroyed while f runs requests stop
//   the same way and waits for f. The loop stays alive (no deadlock report)
//   while f runs. GCC PR 100611: name a lambda with non-trivial captures
//   before `co_await to_thread(lambda)`. Latency: a pool thread stays hot
//   (polling) up to 50 us after a call and the loop polls up to 50 us for a
//   pending result before it sleeps, both with back-off (docs/design.md,
//   "to_thread's wake-ups"): a round trip costs no wake-up when both threads
//   have a core, at the price of that bounded CPU.
// - to_thread_detached(f) -> task<R>: the explicit opt-out for an f that owns
//   all its data: on cancellation the awaiter gets cancelled_error at once
//   (stop requested if f takes a stop_token) and f runs on, its result dropped.
// - event_loop::call_soon_threadsafe(f) (loop.hpp): f() runs on the loop's
//   thread. run_coroutine_threadsafe(loop, task) -> std::future<T>: the task
//   runs as a spawned task of `loop`. spawn_on(loop, task) ->
//   remote_join_handle<T>, awaitable from a task on any loop (the safe
//   cross-loop join; a plain join_handle belongs to its own loop). All three
//   throw invalid_state_error for a closed or destroyed loop.
// - loop_pool(n): n event loops on n threads. spawn(task) places a task
//   round-robin, spawn(task, i) on loop i; run(main) runs main on loop 0,
//   waits for it, shuts the pool down and returns main's value or rethrows.
//   shutdown() (also the destructor) cancels every task on every loop,
//   awaits them and joins the threads. loop_pool(0) throws invalid_argument.
#pragma once

#include <atomic>
#include <cstdio>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include "detail/remote_gate.hpp"
#include "detail/thread_pool.hpp"
#include "detail/wait_list.hpp"
#include "errors.hpp"
#include "loop.hpp"
#include "sync.hpp"
#include "task.hpp"

namespace corio {

/// Waits for every function queued on to_thread's pool, then joins its
/// threads; to_thread then throws invalid_state_error until reset_thread_pool().
inline void shutdown_thread_pool() { detail::pool_registry().shutdown(); }
/// After shutdown_thread_pool(): the next to_thread makes a new pool.
inline void reset_thread_pool() { detail::pool_registry().reset(); }
/// Threads of to_thread's pool (0 before its first use).
inline std::size_t thread_pool_size() { return detail::pool_registry().size(); }

namespace detail {

template <class F, class... Args>
inline constexpr bool takes_stop_token = std::is_invocable_v<F&&, std::stop_token, Args&&...>;

template <class F, class... Args>
struct thread_result {
    using type = std::invoke_result_t<F&&, Args&&...>;
};
template <class F, class... Args>
requires takes_stop_token<F, Args...>
struct thread_result<F, Args...> {
    using type = std::invoke_result_t<F&&, std::stop_token, Args&&...>;
};

using loop_work = asio::executor_work_guard<asio::io_context::executor_type>;

/// The await inside to_thread: `call(token)` runs on the pool; the awaiter
/// waits for it on every path (the destructor too, when the loop tears down).
///
/// Hand-over (docs/design.md, "to_thread's wake-ups"): the call goes to a hot
/// pool thread when one polls (else through asio::post), and a handler
/// posted to the loop polls `state_` for at most loop_spin before the loop
/// sleeps. `state_`: running -> done (the pool finished while the loop still
/// polls, or before: the loop resumes the task itself), or running -> parked
/// (the loop stopped polling) -> released (the pool posted the completion).
template <class R, class Call, bool Stoppable>
class thread_call : waiter_base, hot_job {
public:
    explicit thread_call(Call& call) noexcept : call_(call) {}
    thread_call(const thread_call&) = delete;
    thread_call& operator=(const thread_call&) = delete;
    ~thread_call() {
        // Only at loop teardown can the frame go while f still runs: ask a
        // stoppable f to stop (else this waits forever for one that runs
        // until stopped), then wait for the pool to be done with it.
        if (in_flight_) {
            if constexpr (Stoppable) stop_.request_stop();
            while (!pool_is_done(state_.load(std::memory_order_acquire))) std::this_thread::yield();
        }
    }

    bool await_ready() const noexcept { return false; }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (!begin_park(caller, ch_)) {
            cancelled_ = true;
            return false;
        }
        event_loop& loop = detail::loop_access::loop_of(*ch_->sched);
        asio::thread_pool& pool = pool_registry().get(loop.options().thread_pool_size);
        if constexpr (Stoppable) token_ = stop_.get_token();
        work_.emplace(loop.get_executor());
        life_ = detail::loop_access::life(loop);
        run = &run_hot;
        asio::post(loop.get_executor(), [self = this, life = life_] {
            if (event_loop* l = *life) self->poll_then_park(*l);  // null once the loop is gone
        });
        finish_park(ch_, this, &on_cancel, h_, caller);
        in_flight_ = true;
        // Publish last: from here on the pool thread owns value_ and token_
        // until it leaves `running`. Posting the completion straight to the
        // io_context is safe: this frame, which the loop destroys before its
        // io_context, waits for the pool to be done with it.
        if (!hot_pool_threads().try_hand(this))
            asio::post(pool, [self = this] {
                self->run_call();
                hot_pool_threads().stay_hot();
            });
        return true;
    }

    R await_resume() {
        work_.reset();
        life_.reset();
        if (cancelled_) throw cancelled_error{};  // f finished; its result is dropped
        return value_.take();
    }

private:
    enum : int { running, done, parked, released };
    static bool pool_is_done(int s) noexcept { return s == done || s == released; }

    static void run_hot(hot_job* j) noexcept { static_cast<thread_call*>(j)->run_call(); }

    /// On the pool thread.
    void run_call() noexcept {
        value_.capture([&]() -> R { return call_(std::move(token_)); });
        int s = running;
        if (state_.compare_exchange_strong(s, done, std::memory_order_acq_rel)) return;  // the last touch
        // The loop stopped polling: wake it. `life_` is not written while parked.
        asio::post(work_->get_executor(), [self = this, life = life_] {
            if (event_loop* l = *life) self->resume_on(*l);
        });
        state_.store(released, std::memory_order_release);  // the last touch
    }

    /// On the loop, in a handler posted at suspension (so the tasks and
    /// handlers queued before it ran first): polls for the result, then lets
    /// the loop sleep until the pool's completion arrives.
    void poll_then_park(event_loop& l) noexcept {
        static thread_local spin_backoff backoff;
        if (spinning_helps() && backoff.should_spin()) {
            bool found = spin_until(loop_spin, [this] { return state_.load(std::memory_order_acquire) == done; });
            backoff.record(found);
        }
        int s = running;
        if (state_.compare_exchange_strong(s, parked, std::memory_order_acq_rel)) return;  // the pool wakes us
        resume_on(l);
    }

    void resume_on(event_loop& l) noexcept {
        ch_->unpark();
        detail::loop_access::resume_from_handler(l, h_);
    }

    static void on_cancel(waiter_base* w) noexcept {
        auto* self = static_cast<thread_call*>(w);
        self->cancelled_ = true;
        if constexpr (Stoppable) self->stop_.request_stop();
        // No wake-up here: the completion resumes the task once f returned.
    }

    Call& call_;
    cross_value<R> value_;
    [[no_unique_address]] std::conditional_t<Stoppable, std::stop_source, std::monostate> stop_{};
    std::stop_token token_;
    std::optional<loop_work> work_;
    std::shared_ptr<event_loop*> life_;
    chain* ch_ = nullptr;
    std::coroutine_handle<> h_{};
    std::atomic<int> state_{running};
    bool in_flight_ = false;
    bool cancelled_ = false;
};

template <class R, class F, bool Stoppable>
class detached_call : waiter_base {
    struct state {
        F f;
        cross_value<R> value;
        std::stop_source stop;
        detached_call* waiter = nullptr;  // loop thread only
    };

public:
    explicit detached_call(F f) : f_(std::move(f)) {}
    detached_call(const detached_call&) = delete;
    detached_call& operator=(const detached_call&) = delete;
    ~detached_call() {
        if (st_) st_->waiter = nullptr;
    }

    bool await_ready() const noexcept { return false; }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (!begin_park(caller, ch_)) {
            cancelled_ = true;
            return false;
        }
        event_loop& loop = detail::loop_access::loop_of(*ch_->sched);
        asio::thread_pool& pool = pool_registry().get(loop.options().thread_pool_size);
        st_ = std::make_shared<state>(state{std::move(*f_), {}, {}, this});
        work_.emplace(loop.get_executor());
        finish_park(ch_, this, &on_cancel, h_, caller);
        asio::post(pool, [st = st_, gate = detail::loop_access::remote(loop)] {
            st->value.capture([&]() -> R {
                if constexpr (Stoppable) return std::move(st->f)(st->stop.get_token());
                else return std::move(st->f)();
            });
            gate->post([st, gate] {
                auto* l = static_cast<event_loop*>(gate->loop);
                detached_call* self = st->waiter;
                if (!l || !self) return;  // the awaiter left (cancelled) or the loop is gone
                self->ch_->unpark();
                detail::loop_access::resume_from_handler(*l, self->h_);
            });
        });
        return true;
    }

    R await_resume() {
        work_.reset();
        if (cancelled_) throw cancelled_error{};
        std::shared_ptr<state> st = std::move(st_);
        st->waiter = nullptr;
        return st->value.take();
    }

private:
    static void on_cancel(waiter_base* w) noexcept {
        auto* self = static_cast<detached_call*>(w);
        self->cancelled_ = true;
        self->st_->waiter = nullptr;
        self->st_->stop.request_stop();
        self->st_.reset();
        self->ch_->sched->schedule(self->h_);  // leave at once; f runs on
    }

    std::optional<F> f_;
    std::shared_ptr<state> st_;
    std::optional<loop_work> work_;
    chain* ch_ = nullptr;
    std::coroutine_handle<> h_{};
    bool cancelled_ = false;
};

}  // namespace detail

/// Runs f(args...) on the shared thread pool; see the header comment.
/// Cancellation point; a cancelled await still waits for f to return.
template <class F, class... Args>
task<typename detail::thread_result<std::decay_t<F>, std::decay_t<Args>...>::type> to_thread(F f, Args... args) {
    using R = typename detail::thread_result<std::decay_t<F>, std::decay_t<Args>...>::type;
    constexpr bool stoppable = detail::takes_stop_token<F, Args...>;
    auto call = [&](std::stop_token token) -> R {
        if constexpr (stoppable) return std::invoke(std::move(f), std::move(token), std::move(args)...);
        else return std::invoke(std::move(f), std::move(args)...);
    };
    if constexpr (std::is_void_v<R>) co_await detail::thread_call<R, decltype(call), stoppable>(call);
    else co_return co_await detail::thread_call<R, decltype(call), stoppable>(call);
}

/// Runs f() on the shared thread pool; a cancelled await returns at once
/// and f runs on (f must own everything it touches). Cancellation point.
template <class F>
task<typename detail::thread_result<std::decay_t<F>>::type> to_thread_detached(F f) {
    using R = typename detail::thread_result<std::decay_t<F>>::type;
    static_assert(!std::is_reference_v<R>, "corio: to_thread_detached cannot return a reference (f owns its data)");
    using awaiter = detail::detached_call<R, F, detail::takes_stop_token<F>>;
    if constexpr (std::is_void_v<R>) co_await awaiter(std::move(f));
    else co_return co_await awaiter(std::move(f));
}

// ---------------------------------------------------------------------------
// Thread-safe entry points

namespace detail {

template <class T>
task<void> settle_into_promise(task<T> t, std::promise<T> p) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(t);
            p.set_value();
        } else {
            p.set_value(co_await std::move(t));
        }
    } catch (...) {
        p.set_exception(std::current_exception());
    }
}

/// What a remote_join_handle shares with the task running on its loop.
template <class T>
struct remote_state {
    struct waiter;
    std::mutex m;
    bool done = false;
    bool ended_cancelled = false;
    bool taken = false;
    cross_value<T> value;
    waiter* w = nullptr;  // the awaiting task on some loop (under m)
    std::shared_ptr<remote_gate> target;
    spawn_state* inner = nullptr;  // target loop thread only; valid until `done`

    void finish(bool cancelled);
};

template <class T>
struct remote_state<T>::waiter : waiter_base {
    std::shared_ptr<remote_gate> gate;  // the awaiter's loop
    chain* ch = nullptr;
    std::coroutine_handle<> h{};
};

template <class T>
void remote_state<T>::finish(bool cancelled) {
    waiter* wt;
    std::shared_ptr<remote_gate> gate;
    {
        std::lock_guard<std::mutex> lock(m);
        done = true;
        ended_cancelled = cancelled;
        wt = std::exchange(w, nullptr);
        if (wt) gate = wt->gate;
    }
    if (!wt) return;
    gate->post([wt, gate] {
        if (auto* l = static_cast<event_loop*>(gate->loop)) {
            wt->ch->unpark();
            detail::loop_access::resume_from_handler(*l, wt->h);
        }
    });
}

/// Ends a remote task whose frame is destroyed unfinished (its loop tore
/// down): the joiner on the other loop gets cancelled_error instead of
/// waiting forever.
template <class T>
struct remote_finish_guard {
    remote_state<T>& st;
    bool finished = false;
    ~remote_finish_guard() {
        if (finished) return;
        st.value.fail(std::make_exception_ptr(cancelled_error{}));
        st.finish(true);
    }
};

template <class T>
task<void> run_remote(task<T> t, std::shared_ptr<remote_state<T>> st) {
    remote_finish_guard<T> guard{*st};
    bool cancelled = false;
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(t);
            st->value.capture([] {});
        } else {
            T v = co_await std::move(t);
            st->value.capture([&]() -> T { return static_cast<T&&>(v); });
        }
    } catch (const cancelled_error&) {
        cancelled = true;
        st->value.fail(std::current_exception());
    } catch (...) {
        st->value.fail(std::current_exception());
    }
    guard.finished = true;
    st->finish(cancelled);
}

}  // namespace detail

/// A task spawned on a loop by spawn_on(), joinable from a task on any loop.
/// Await it (lvalue or rvalue) for the task's value or exception; cancel()
/// and done() may be called from any thread. Awaiting observes: cancelling
/// the awaiter does not cancel the task. Move-only; dropping it detaches.
template <class T>
class remote_join_handle {
    using state = detail::remote_state<T>;

public:
    remote_join_handle() noexcept = default;
    /// Wraps the shared state of a task started by spawn_on() (used by spawn_on()).
    explicit remote_join_handle(std::shared_ptr<state> s) noexcept : s_(std::move(s)) {}

    /// Holds a task (not default-constructed or moved from).
    bool valid() const noexcept { return s_ != nullptr; }
    /// The task has finished. Callable from any thread.
    bool done() const {
        if (!s_) return false;
        std::lock_guard<std::mutex> lock(s_->m);
        return s_->done;
    }
    /// Requests cancellation of the task (thread-safe, idempotent).
    void cancel() const {
        if (!s_) return;
        s_->target->post([s = s_] {
            // On the task's loop: `inner` lives until the task set `done` there.
            bool finished;
            {
                std::lock_guard<std::mutex> lock(s->m);
                finished = s->done;
            }
            if (!finished && s->inner) detail::cancel_scope_node(s->inner->root());
        });
    }

    /// Awaits the remote task from a task on any loop (what `co_await handle` uses).
    class awaiter : detail::remote_state<T>::waiter {
    public:
        /// Observes the task of `s`.
        explicit awaiter(std::shared_ptr<state> s) noexcept : s_(std::move(s)) {}
        /// Movable until the await starts.
        awaiter(awaiter&& o) noexcept : s_(std::move(o.s_)) {}  // before the await starts
        awaiter& operator=(awaiter&&) = delete;
        ~awaiter() {
            // Only when this loop tears down while waiting: stop the task's
            // loop from waking a frame that is gone.
            if (!s_ || !this->h) return;
            std::lock_guard<std::mutex> lock(s_->m);
            if (s_->w == this) s_->w = nullptr;
        }
        /// Awaiter protocol: ready when the task already finished.
        bool await_ready() const {
            if (!s_) throw invalid_state_error("corio: co_await on an empty remote_join_handle");
            std::lock_guard<std::mutex> lock(s_->m);
            if (s_->taken) throw invalid_state_error("corio: the result of this remote_join_handle was already taken");
            return s_->done;
        }
        /// Awaiter protocol: parks the caller until the remote task finishes (or the caller is cancelled).
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) {
            if (!detail::begin_park(caller, this->ch)) {
                cancelled_ = true;
                return false;
            }
            event_loop& loop = detail::loop_access::loop_of(*this->ch->sched);
            this->gate = detail::loop_access::remote(loop);
            std::lock_guard<std::mutex> lock(s_->m);
            if (s_->done) return false;
            work_.emplace(loop.get_executor());
            detail::finish_park(this->ch, this, &on_cancel, this->h, caller);
            s_->w = this;
            return true;
        }
        /// Awaiter protocol: the task's value, or rethrows its exception (cancelled_error when the awaiter was
        /// cancelled).
        T await_resume() {
            work_.reset();
            if (cancelled_) throw cancelled_error{};
            {
                std::lock_guard<std::mutex> lock(s_->m);
                if (s_->taken)
                    throw invalid_state_error("corio: the result of this remote_join_handle was already taken");
                s_->taken = true;
            }
            return s_->value.take();
        }

    private:
        static void on_cancel(detail::waiter_base* w) noexcept {
            auto* self = static_cast<awaiter*>(w);
            std::lock_guard<std::mutex> lock(self->s_->m);
            if (self->s_->w != self) return;  // the task finished: its wake-up is on the way
            self->s_->w = nullptr;
            self->cancelled_ = true;
            self->ch->sched->schedule(self->h);
        }
        std::shared_ptr<state> s_;
        std::optional<detail::loop_work> work_;
        bool cancelled_ = false;
    };

    /// Awaits the task, keeping this handle valid.
    awaiter operator co_await() const& noexcept { return awaiter(s_); }
    /// Awaits the task, consuming this handle.
    awaiter operator co_await() && noexcept { return awaiter(std::move(s_)); }

private:
    std::shared_ptr<state> s_;
};

namespace detail {
inline std::shared_ptr<remote_gate> gate_of(event_loop& loop) { return detail::loop_access::remote(loop); }

template <class T>
remote_join_handle<T> spawn_through(const std::shared_ptr<remote_gate>& gate, task<T> t, std::string name) {
    if (!t.valid()) throw invalid_state_error("corio: spawn_on of an empty task (moved-from or already awaited)");
    auto st = std::make_shared<remote_state<T>>();
    st->target = gate;
    auto start = [st, t = std::move(t), name = std::move(name), gate]() mutable {
        auto* l = static_cast<event_loop*>(gate->loop);
        if (!l) return;
        try {
            st->inner = detail::loop_access::task_context(
                l->spawn(run_remote<T>(std::move(t), st), name));  // the handle detaches
        } catch (...) {
            st->value.fail(std::current_exception());
            st->finish(false);
        }
    };
    if (!gate->post_new(std::move(start))) throw invalid_state_error("corio: spawn_on a closed or stopped event loop");
    return remote_join_handle<T>(std::move(st));
}

template <class T>
std::future<T> run_through(const std::shared_ptr<remote_gate>& gate, task<T> t) {
    if (!t.valid())
        throw invalid_state_error("corio: run_coroutine_threadsafe of an empty task (moved-from or already awaited)");
    std::promise<T> p;
    std::future<T> f = p.get_future();
    auto start = [t = std::move(t), p = std::move(p), gate]() mutable {
        auto* l = static_cast<event_loop*>(gate->loop);
        if (!l) return;  // the promise breaks: the future throws broken_promise
        try {
            l->spawn(settle_into_promise<T>(std::move(t), std::move(p)), "run_coroutine_threadsafe");
        } catch (...) {
            p.set_exception(std::current_exception());
        }
    };
    if (!gate->post_new(std::move(start)))
        throw invalid_state_error("corio: run_coroutine_threadsafe on a closed or stopped event loop");
    return f;
}
}  // namespace detail

/// Thread-safe: runs `t` as a task of `loop`; the future gets its value or
/// exception (cancelled_error if the loop cancelled it at shutdown).
template <class T>
std::future<T> run_coroutine_threadsafe(event_loop& loop, task<T> t) {
    return detail::run_through(detail::loop_access::remote(loop), std::move(t));
}

/// Thread-safe: starts `t` as a task of `loop` and returns a handle that a
/// task on any loop may await.
template <class T>
remote_join_handle<T> spawn_on(event_loop& loop, task<T> t, std::string_view name = {}) {
    return detail::spawn_through(detail::loop_access::remote(loop), std::move(t), std::string(name));
}

// ---------------------------------------------------------------------------
// loop_pool

/// n event loops on n threads (thread-per-core). See the header comment.
class loop_pool {
public:
    /// Starts `n` threads, each running an event loop made with `options` (signals are left to the owner);
    /// invalid_argument when n is 0.
    explicit loop_pool(std::size_t n, run_options options = {}) : slots_(check(n)) {
        options.cancel_on_signals.clear();  // the pool's owner decides about signals
        for (std::size_t i = 0; i < n; ++i) {
            std::promise<void> ready;
            std::future<void> is_ready = ready.get_future();
            slots_[i].thread = std::thread(
                [this, i, options, ready = std::move(ready)]() mutable { work(slots_[i], options, ready); });
            is_ready.get();
        }
    }
    loop_pool(const loop_pool&) = delete;
    loop_pool& operator=(const loop_pool&) = delete;
    ~loop_pool() { shutdown(); }

    /// The number of loops (and threads).
    std::size_t size() const noexcept { return slots_.size(); }
    /// Loop i (for call_soon_threadsafe, spawn_on, run_coroutine_threadsafe).
    event_loop& loop(std::size_t i) {
        event_loop* l = slots_.at(i).loop.load();
        if (!l) throw invalid_state_error("corio: loop_pool::loop() after the pool was shut down");
        return *l;
    }

    /// Starts `t` on the next loop, round-robin. Thread-safe.
    template <class T>
    remote_join_handle<T> spawn(task<T> t, std::string_view name = {}) {
        std::size_t i = next_.fetch_add(1, std::memory_order_relaxed) % slots_.size();
        return detail::spawn_through(slots_[i].gate, std::move(t), std::string(name));
    }
    /// Starts `t` on loop `index` (std::out_of_range when there is none).
    template <class T>
    remote_join_handle<T> spawn_at(std::size_t index, task<T> t, std::string_view name = {}) {
        if (index >= slots_.size())
            throw std::out_of_range("corio: loop_pool::spawn_at: no loop " + std::to_string(index));
        return detail::spawn_through(slots_[index].gate, std::move(t), std::string(name));
    }

    /// Runs `main` on loop 0 and waits for it; then shuts the pool down (every
    /// task left on every loop is cancelled and awaited) and returns main's
    /// value or rethrows its exception. Call from a thread outside the pool.
    template <class T>
    T run(task<T> main) {
        std::future<T> f = detail::run_through(slots_[0].gate, std::move(main));
        f.wait();
        shutdown();
        return f.get();
    }

    /// Cancels every task on every loop, awaits them and joins the threads.
    /// Idempotent; afterwards spawning on the pool throws invalid_state_error.
    void shutdown() {
        for (slot& s : slots_) {
            s.gate->close();  // no new work from other threads
            s.gate->post([&s] { s.stop(); });
        }
        for (slot& s : slots_)
            if (s.thread.joinable()) s.thread.join();
    }

private:
    struct slot {
        std::thread thread;
        std::atomic<event_loop*> loop{nullptr};     // valid while the thread runs
        std::shared_ptr<detail::remote_gate> gate;  // outlives the loop
        event* stop_event = nullptr;
        std::optional<detail::loop_work> keep_alive;
        void stop() {
            keep_alive.reset();
            stop_event->set();
        }
    };

    static std::size_t check(std::size_t n) {
        if (n == 0) throw std::invalid_argument("corio: loop_pool needs at least one loop (got 0)");
        return n;
    }

    static task<void> serve(event& stop) { co_await stop.wait(); }

    static void work(slot& s, const run_options& options, std::promise<void>& ready) {
        event_loop loop(options);
        event stop;
        s.loop = &loop;
        s.gate = detail::loop_access::remote(loop);
        s.stop_event = &stop;
        s.keep_alive.emplace(loop.get_executor());
        ready.set_value();
        // Until stop: serve; then run_until_complete cancels and awaits every
        // task left on this loop, as run() does.
        try {
            loop.run_until_complete(serve(stop));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "corio: loop_pool: a loop ended with an error: %s\n", e.what());
        } catch (...) {
            std::fprintf(stderr, "corio: loop_pool: a loop ended with an error\n");
        }
        s.keep_alive.reset();
        s.loop = nullptr;
    }

    std::vector<slot> slots_;
    std::atomic<std::size_t> next_{0};
};

}  // namespace corio
