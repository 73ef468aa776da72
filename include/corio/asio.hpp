// corio/asio.hpp: Asio interop. use_task makes any Asio async operation
// awaitable from a corio task; a corio task awaits an asio::awaitable<T>
// directly; corio::co_spawn runs a corio task from Asio code with any
// completion token.
//
// use_task:
//   std::size_t n = co_await sock.async_read_some(asio::buffer(buf), corio::use_task);
//
// - The operation starts when awaited (not when the initiating function is
//   called), from the awaiting task, on the task's loop.
// - Results: a completion signature (error_code, Ts...) yields void, T, or a
//   std::tuple<Ts...>; a non-zero error_code is thrown as std::system_error;
//   (std::exception_ptr, Ts...) rethrows a non-null exception_ptr.
// - Cancellation point: in a cancelled scope the operation is not started and
//   cancelled_error is thrown. When the task's scope is cancelled while the
//   operation is pending, a terminal cancellation is emitted on the
//   operation's cancellation slot and the task waits for the operation to
//   complete (Asio may still be writing into its buffers). If it completes
//   with operation_aborted the task gets cancelled_error; if it completed
//   anyway, its result is returned and the next suspension throws.
// - The completion handler runs on the awaiting task's loop (its associated
//   executor), whichever io_context the I/O object belongs to.
// - If the awaiting frame is destroyed while the operation is pending (its
//   loop was destroyed), a terminal cancellation is emitted first, so that
//   an operation on an I/O object outside the frame (a socket of a class)
//   stops before it writes into the frame's buffers. An operation that
//   ignores cancellation slots cannot be stopped that way.
//
// Awaiting an asio::awaitable<T, E> (needs ASIO_HAS_CO_AWAIT; the CMake
// target sets it for clang):
//   std::string line = co_await read_line(sock);   // read_line returns asio::awaitable<std::string>
//
// - Runs the awaitable as an Asio "thread of execution" whose executor is
//   E(loop executor), started inline from the awaiting task (no post, no
//   co_spawn). It returns its value (T may be void) or rethrows its exception.
//   An lvalue is moved from; an empty awaitable throws invalid_state_error.
// - Cancellation point, like use_task: in a cancelled scope the awaitable is
//   not started. When the task's scope is cancelled (cancel_scope, timeout,
//   join_handle::cancel) while it runs, a terminal cancellation is emitted
//   into the awaitable's cancellation state and so into its pending
//   operation, and the task waits for the awaitable to finish. If it ends with
//   asio::error::operation_aborted the task sees cancelled_error (or the
//   timeout's timeout_error); a value it returns anyway is returned. The
//   cancellation state keeps the request, so a later `co_await` of another
//   awaitable inside it throws too; an operation started after it had caught
//   operation_aborted does not see it (Asio's rule).
// - Movable until awaited: `timeout(d, f())`, `race(f(), sleep(d))` and
//   `gather(f(), g())` take it like any corio awaitable.
// - If the awaiting frame is destroyed while the awaitable runs (its loop was
//   destroyed), the awaitable is cancelled and left to finish in the
//   io_context; nothing of the frame is touched again.
//
// co_spawn (Asio awaits corio):
//   int v = co_await corio::co_spawn(ex, lookup(key), asio::use_awaitable);
//
// - corio::co_spawn(executor or io_context&, task<T> or a callable returning
//   one, token) with any Asio completion token: use_awaitable, use_future,
//   deferred, a callback void(std::exception_ptr, T) (void(std::exception_ptr)
//   for task<void>). T must be default-constructible (the handler gets T{}
//   with an error), as with asio::co_spawn.
// - The task runs on the event_loop bound to the executor's io_context: the
//   first event_loop constructed on it, or one created on first use and owned
//   by the io_context (destroyed when it shuts down). So a plain Asio program
//   that calls io_context::run() runs corio tasks with no other change. That
//   io_context must be run by one thread at a time (a loop is single-threaded).
// - The task starts at the loop's next turn; the handler is dispatched on its
//   associated executor (inline when that is the loop's own io_context, as
//   Asio's co_spawn does), with outstanding work held on both io_contexts.
// - A terminal cancellation emitted on the token's cancellation slot
//   (awaitable operators `||`, bind_cancellation_slot) cancels the task: it
//   ends with cancelled_error's exception_ptr. Emit it on the io_context's
//   thread, as Asio requires of every cancellation slot.
// - Bad input: an empty task throws invalid_state_error, an executor that does
//   not belong to an io_context throws std::invalid_argument, both at once.
#pragma once

#include <cassert>
#include <concepts>
#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_state.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#if defined(ASIO_HAS_CO_AWAIT)
#include <asio/awaitable.hpp>
#endif

#include "detail/wait_list.hpp"
#include "errors.hpp"
#include "loop.hpp"
#include "task.hpp"

namespace corio {

/// The type of use_task: `co_await op(args..., corio::use_task)`.
struct use_task_t {
    constexpr use_task_t() noexcept = default;
};
/// The completion token that makes an Asio async operation awaitable from a corio task (see the header comment).
inline constexpr use_task_t use_task{};

namespace detail {

template <class... Ts>
struct asio_values {
    using type = std::tuple<Ts...>;
};
template <class T>
struct asio_values<T> {
    using type = T;
};
template <>
struct asio_values<> {
    using type = void;
};

template <class Signature>
struct asio_signature;

template <class R, class... Args>
struct asio_signature<R(Args...)> {
    using stored = std::tuple<std::decay_t<Args>...>;
    static constexpr bool has_error_code = false;
    static constexpr bool has_exception = false;
    using value_type = typename asio_values<std::decay_t<Args>...>::type;
};
template <class R, class... Args>
struct asio_signature<R(std::error_code, Args...)> {
    using stored = std::tuple<std::error_code, std::decay_t<Args>...>;
    static constexpr bool has_error_code = true;
    static constexpr bool has_exception = false;
    using value_type = typename asio_values<std::decay_t<Args>...>::type;
};
template <class R, class... Args>
struct asio_signature<R(const std::error_code&, Args...)> : asio_signature<R(std::error_code, Args...)> {};
template <class R, class... Args>
struct asio_signature<R(std::exception_ptr, Args...)> {
    using stored = std::tuple<std::exception_ptr, std::decay_t<Args>...>;
    static constexpr bool has_error_code = false;
    static constexpr bool has_exception = true;
    using value_type = typename asio_values<std::decay_t<Args>...>::type;
};

template <class Value, class Tuple, std::size_t... I>
Value tuple_tail(Tuple&& t, std::index_sequence<I...>) {
    if constexpr (std::is_void_v<Value>) return;
    else if constexpr (sizeof...(I) == 1) return std::move(std::get<1 + I...>(t));
    else return Value(std::move(std::get<1 + I>(t))...);
}

/// Cancellation signals for use_task operations, recycled per thread with the
/// handler memory Asio placed in them: a fresh signal per operation costs an
/// allocation and a free of that memory (Asio's own coroutines keep one
/// signal per thread of execution).
struct op_signal_cache {
    static constexpr unsigned max_cached = 64;
    asio::cancellation_signal* items[max_cached];
    unsigned n = 0;
    ~op_signal_cache() {
        while (n) delete items[--n];
    }
};

inline op_signal_cache& op_signals() noexcept {
    static thread_local op_signal_cache cache;
    return cache;
}

// Out of line, so that no coroutine body reads the thread_local (clang may
// cache its address across a suspension).
[[gnu::noinline]] inline asio::cancellation_signal* take_op_signal() {
    op_signal_cache& c = op_signals();
    if (c.n) return c.items[--c.n];
    return new asio::cancellation_signal;
}

/// `s` belongs to an operation that completed.
[[gnu::noinline]] inline void recycle_op_signal(asio::cancellation_signal* s) noexcept {
    struct idle {
        void operator()(asio::cancellation_type) const noexcept {}
    };
    // The finished operation's handler may point at freed state: replace it
    // by one that does nothing, in the same memory, before anyone can emit.
    if (s->slot().has_handler()) s->slot().template emplace<idle>();
    op_signal_cache& c = op_signals();
    if (c.n < op_signal_cache::max_cached) c.items[c.n++] = s;
    else delete s;
}

template <class Signature, class Initiation, class... InitArgs>
class asio_operation : waiter_base {
    using sig = asio_signature<Signature>;
    using stored = typename sig::stored;
    using value_type = typename sig::value_type;

public:
    template <class I, class... A>
    explicit asio_operation(std::in_place_t, I&& init, A&&... args)
        : init_(std::forward<I>(init)), args_(std::forward<A>(args)...) {}

    /// Moving is for wrapping the operation (timeout(d, op), ...) before it
    /// starts; a started operation is never moved.
    asio_operation(asio_operation&& o) noexcept(std::is_nothrow_move_constructible_v<Initiation>)
        : init_(std::move(o.init_)), args_(std::move(o.args_)) {}
    asio_operation& operator=(asio_operation&&) = delete;
    /// Destroyed while pending (only when the loop destroys the awaiting
    /// frame): the operation may still write into buffers in that frame, or
    /// into an I/O object outside it; cancel it now so that it completes
    /// (with operation_aborted, through a handler that sees the loop gone)
    /// without touching the frame.
    ~asio_operation() {
        if (!signal_) return;
        if (result_) {
            recycle_op_signal(signal_);
            return;
        }
        if (h_) signal_->emit(asio::cancellation_type::terminal);
        delete signal_;  // still pending (its loop was destroyed): as a member signal would be
    }

    bool await_ready() const noexcept { return false; }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (!begin_park(caller, ch_)) {
            cancelled_ = true;
            return false;
        }
        signal_ = take_op_signal();  // may allocate: before the chain is parked
        finish_park(ch_, this, &on_cancel, h_, caller);
        initiating_ = true;
        event_loop& loop = detail::loop_access::loop_of(*ch_->sched);
        std::apply(
            [&](auto&&... a) {
                std::move(init_)(handler{this, detail::loop_access::life(loop), loop.get_executor()}, std::move(a)...);
            },
            std::move(args_));
        initiating_ = false;
        if (result_) {
            // Completed inside the initiating function (asio::dispatch from the
            // loop's thread, an immediate completion): go on without suspending,
            // instead of resuming the task from inside its own await_suspend.
            ch_->unpark();
            return false;
        }
        return true;
    }

    value_type await_resume() {
        if (!result_) throw cancelled_error{};  // never started: the scope was already cancelled
        stored& r = *result_;
        if constexpr (sig::has_error_code) {
            std::error_code ec = std::get<0>(r);
            if (ec) {
                if (cancel_emitted_ && ec == asio::error::operation_aborted) throw cancelled_error{};
                throw std::system_error(ec);
            }
        } else if constexpr (sig::has_exception) {
            if (std::get<0>(r)) std::rethrow_exception(std::get<0>(r));
        }
        if constexpr (sig::has_error_code || sig::has_exception)
            return tuple_tail<value_type>(std::move(r), std::make_index_sequence<std::tuple_size_v<stored> - 1>{});
        else if constexpr (std::is_void_v<value_type>) return;
        else if constexpr (std::tuple_size_v<stored> == 1) return std::move(std::get<0>(r));
        else return std::move(r);
    }

private:
    // The completion handler. It may run after the loop was destroyed (an
    // adopted io_context that keeps running): the loop then destroyed the
    // awaiting frame, and with it this operation, so it checks `life` first.
    struct handler {
        asio_operation* self;
        std::shared_ptr<event_loop*> life;
        asio::io_context::executor_type ex;

        using executor_type = asio::io_context::executor_type;
        executor_type get_executor() const noexcept { return ex; }
        using cancellation_slot_type = asio::cancellation_slot;
        cancellation_slot_type get_cancellation_slot() const noexcept { return self->signal_->slot(); }

        template <class... A>
        void operator()(A&&... a) {
            event_loop* loop = *life;
            if (!loop) return;  // the frame that awaited this is gone
            asio_operation* op = self;
            op->result_.emplace(std::forward<A>(a)...);
            if (op->initiating_) return;  // await_suspend goes on without suspending
            op->ch_->unpark();
            detail::loop_access::resume_from_handler(*loop, op->h_);
        }
    };

    static void on_cancel(waiter_base* w) noexcept {
        auto* self = static_cast<asio_operation*>(w);
        self->cancel_emitted_ = true;
        // The operation completes (with operation_aborted) through the handler.
        self->signal_->emit(asio::cancellation_type::terminal);
    }

    Initiation init_;
    std::tuple<InitArgs...> args_;
    std::optional<stored> result_;
    asio::cancellation_signal* signal_ = nullptr;  // from take_op_signal(), once started
    chain* ch_ = nullptr;
    std::coroutine_handle<> h_{};
    bool cancelled_ = false;
    bool cancel_emitted_ = false;
    bool initiating_ = false;
};

}  // namespace detail
}  // namespace corio

template <class Signature>
struct asio::async_result<corio::use_task_t, Signature> {
    template <class Initiation, class... InitArgs>
    static auto initiate(Initiation&& init, corio::use_task_t, InitArgs&&... args) {
        return corio::detail::asio_operation<Signature, std::decay_t<Initiation>, std::decay_t<InitArgs>...>(
            std::in_place, std::forward<Initiation>(init), std::forward<InitArgs>(args)...);
    }
};

// ===================================================== corio awaits Asio ===
#if defined(ASIO_HAS_CO_AWAIT)

namespace corio::detail {

/// Reused Asio threads of execution. Awaiting an asio::awaitable from corio
/// needs an Asio "thread" (the bottom frame that owns the executor and the
/// cancellation state). Making one per await costs a coroutine frame, a
/// cancellation state and the thread's bookkeeping, about twice what the
/// awaitable itself costs; so each io_context keeps a few idle threads and an
/// await pushes the awaitable's frame onto one of them, as an Asio coroutine
/// pushes a child frame onto its own thread.
///
/// A thread's bottom frame is worker_main(). Idle, it is suspended in
/// `park`, and the thread object (which owns the frames) sits in
/// `asio_worker::parked`. An await moves the thread out, pushes its frame over
/// worker_main and pumps it; when the awaitable returns, worker_main is on top
/// again, moves the thread back into `parked` (so the pump, or Asio's handler
/// that was pumping, ends with an empty thread), returns the worker to the
/// pool and resumes the awaiter.
template <class E>
using asio_entry_t = asio::awaitable<asio::detail::awaitable_thread_entry_point, E>;

/// An Asio thread object owned by corio; destroys a frame it still holds at
/// once (an idle thread has no pending operation), instead of posting it.
template <class E>
struct asio_thread : asio::detail::awaitable_thread<E> {
    using base = asio::detail::awaitable_thread<E>;
    using base::base;
    explicit asio_thread(base&& o) noexcept : base(std::move(o)) {}
    asio_thread(asio_thread&& o) noexcept : base(std::move(o)) {}
    ~asio_thread() {
        if (this->bottom_of_stack_.valid()) asio_entry_t<E> frame(std::move(this->bottom_of_stack_));
    }
};

/// The awaiter's side of a job, not a template on the awaitable's T.
struct asio_job_target {
    void (*done)(asio_job_target*) noexcept;  // the awaitable returned (or threw)
    void (*lost)(asio_job_target*) noexcept;  // its thread was destroyed unfinished
};

template <class E>
class asio_worker_pool;

template <class E>
struct asio_worker {
    explicit asio_worker(asio_worker_pool<E>* p) noexcept : pool(p) {}
    asio_worker_pool<E>* pool;
    asio_job_target* target = nullptr;     // the awaiter, while it waits for the job
    std::optional<asio_thread<E>> parked;  // the thread, while idle
    asio::cancellation_signal signal;      // the thread's parent cancellation slot
    void* orphan = nullptr;                // the awaitable of an awaiter destroyed mid-job
    void (*drop_orphan)(void*) noexcept = nullptr;
    bool busy = false;

    void drop() noexcept {
        if (void* o = std::exchange(orphan, nullptr)) drop_orphan(o);
    }
    /// The thread's frame is being destroyed.
    void end() noexcept {
        if (asio_job_target* t = std::exchange(target, nullptr)) t->lost(t);
        drop();
    }
};

template <class E>
asio_entry_t<E> worker_main(asio_worker<E>* w);

/// The idle threads of one io_context (an Asio service: shutting the
/// io_context down destroys them; a thread busy then ends with its operation).
template <class E>
class asio_worker_pool final : public asio::execution_context::service {
public:
    using key_type = asio_worker_pool;
    inline static asio::execution_context::id id;
    static constexpr unsigned max_idle = 32;

    explicit asio_worker_pool(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
    asio_worker_pool(const asio_worker_pool&) = delete;
    asio_worker_pool& operator=(const asio_worker_pool&) = delete;
    ~asio_worker_pool() override { shutdown(); }

    /// An idle thread, or a new one (started: parked in worker_main).
    asio_worker<E>* take(const asio::io_context::executor_type& ex) {
        if (idle_n_) return idle_[--idle_n_];
        auto w = std::make_unique<asio_worker<E>>(this);
        asio_entry_t<E> entry = worker_main(w.get());  // the frame owns the worker from here on
        asio_worker<E>* raw = w.release();
        asio_thread<E> t(std::move(entry), E(ex), raw->signal.slot(), asio::cancellation_state(raw->signal.slot()));
        t.launch();  // runs worker_main into its first park
        return raw;
    }

    /// Whether a thread whose job ended may stay (else it ends).
    bool accepts() const noexcept { return !closed_ && idle_n_ < max_idle; }
    void give_back(asio_worker<E>* w) noexcept { idle_[idle_n_++] = w; }

private:
    void shutdown() override {
        closed_ = true;
        while (idle_n_) {
            asio_worker<E>* w = idle_[--idle_n_];
            asio_thread<E> t(std::move(*w->parked));
            w->parked.reset();
        }  // t destroys the frame, which deletes w
    }

    asio_worker<E>* idle_[max_idle];
    unsigned idle_n_ = 0;
    bool closed_ = false;
};

/// Parks the thread: moves it from whoever pumps it into `parked`, so that
/// pump ends, then hands the ended job to its awaiter.
template <class E>
struct asio_park {
    asio_worker<E>* w;
    asio::detail::awaitable_thread<E>* operator()(asio::detail::awaitable_frame_base<E>* frame) const noexcept {
        asio::detail::awaitable_thread<E>* th = frame->detach_thread();
        // The next job starts with a fresh cancellation state if this one saw a cancellation.
        if (th->get_cancellation_state().cancelled() != asio::cancellation_type::none) th->reset_cancellation_state();
        th->throw_if_cancelled(true);
        w->parked.emplace(std::move(*th));
        if (std::exchange(w->busy, false)) {
            w->drop();
            w->pool->give_back(w);
        }
        if (asio_job_target* t = std::exchange(w->target, nullptr)) t->done(t);
        return nullptr;
    }
};

template <class E>
asio_entry_t<E> worker_main(asio_worker<E>* w) {
    struct owner {
        asio_worker<E>* w;
        ~owner() {
            w->end();
            delete w;
        }
    } own{w};
    co_await asio_park<E>{w};  // back in the pool's take()
    for (;;) {
        // A job's awaitable returned: this frame is on top of the thread again.
        if (!w->pool->accepts()) break;
        co_await asio_park<E>{w};
    }
    // The thread ends (the pool is full or shut down): finish the job here.
    if (asio_job_target* t = std::exchange(w->target, nullptr)) t->done(t);
}

/// The idle threads of the loop's io_context (a cached lookup: the cache
/// keeps the loop's life block, so its address is never another loop's).
template <class E>
[[gnu::noinline]] asio_worker_pool<E>& worker_pool_of(event_loop& loop) {
    struct cache {
        std::shared_ptr<event_loop*> life;
        asio_worker_pool<E>* pool = nullptr;
    };
    static thread_local cache c;
    if (c.life != detail::loop_access::life(loop)) {
        c.pool = &asio::use_service<asio_worker_pool<E>>(loop.context());
        c.life = detail::loop_access::life(loop);
    }
    return *c.pool;
}

/// Awaits an asio::awaitable<T, E> from a corio task (see the header comment).
template <class T, class E>
class awaitable_awaiter : waiter_base, asio_job_target {
    static_assert(!std::is_reference_v<T>, "corio: asio::awaitable<T&> cannot be awaited; return a pointer");
    static_assert(std::is_constructible_v<E, asio::io_context::executor_type>,
                  "corio: an asio::awaitable<T, E> awaited from corio runs on the loop's io_context, so E must be "
                  "constructible from asio::io_context::executor_type (any_io_executor is)");
    using entry_frame = asio::detail::awaitable_frame<asio::detail::awaitable_thread_entry_point, E>;

public:
    explicit awaitable_awaiter(asio::awaitable<T, E>&& a) noexcept
        : asio_job_target{&on_done, &on_lost}, aw_(std::move(a)) {}
    /// Movable until awaited (into timeout(), race(), ...); never once started.
    awaitable_awaiter(awaitable_awaiter&& o) noexcept : asio_job_target{&on_done, &on_lost}, aw_(std::move(o.aw_)) {
        assert(!o.ch_ && "corio: an awaiter is moved only before it starts");
    }
    awaitable_awaiter& operator=(awaitable_awaiter&&) = delete;
    ~awaitable_awaiter() {
        if (worker_) abandon();
    }

    bool await_ready() const {
        if (!aw_.valid())
            throw invalid_state_error(
                "corio: co_await on an empty asio::awaitable (moved-from or default-constructed)");
        return false;
    }

    /// Awaited from an Asio coroutine: the awaitable's own protocol.
    template <class U>
    void await_suspend(std::coroutine_handle<asio::detail::awaitable_frame<U, E>> h) {
        in_asio_ = true;
        aw_.await_suspend(h);
    }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (!begin_park(caller, ch_)) {
            cancelled_ = true;
            return false;
        }
        event_loop& loop = detail::loop_access::loop_of(*ch_->sched);
        asio_worker<E>* w = worker_pool_of<E>(loop).take(loop.get_executor());
        // Nothing below throws: the awaitable's exceptions stay in its frame.
        asio_thread<E> t(std::move(*w->parked));
        w->parked.reset();
        w->busy = true;
        w->target = this;
        worker_ = w;
        entry_frame* entry = t.entry_point();
        entry->attach_thread(&t);
        aw_.await_suspend(std::coroutine_handle<entry_frame>::from_promise(*entry));  // pushes its frame
        finish_park(ch_, this, &on_cancel, h_, caller);
        launching_ = true;
        t.launch();  // runs the awaitable until it first suspends (or returns)
        launching_ = false;
        if (finished_) {
            ch_->unpark();  // returned inside launch(): go on without suspending
            return false;
        }
        return true;
    }

    T await_resume() {
        if (in_asio_) return aw_.await_resume();
        if (cancelled_) throw cancelled_error{};
        try {
            return aw_.await_resume();
        } catch (const std::system_error& e) {
            if (cancel_emitted_ && e.code() == asio::error::operation_aborted) throw cancelled_error{};
            throw;
        }
    }

private:
    static void on_done(asio_job_target* t) noexcept {
        auto* self = static_cast<awaitable_awaiter*>(t);
        self->worker_ = nullptr;
        self->finished_ = true;
        if (self->launching_) return;  // await_suspend goes on without suspending
        self->ch_->unpark();
        event_loop& loop = detail::loop_access::loop_of(*self->ch_->sched);
        if (self->emitting_ || !loop.get_executor().running_in_this_thread()) {
            // Never resume inline from inside a cancellation, nor on a thread
            // that is not the loop's.
            asio::post(loop.get_executor(), [life = detail::loop_access::life(loop), h = self->h_] {
                if (event_loop* l = *life) detail::loop_access::resume_from_handler(*l, h);
            });
            return;
        }
        detail::loop_access::resume_from_handler(loop, self->h_);
    }

    /// Asio destroyed the thread unfinished (its io_context shut down): the
    /// awaiter must not wait for it, nor touch the worker again.
    static void on_lost(asio_job_target* t) noexcept { static_cast<awaitable_awaiter*>(t)->worker_ = nullptr; }

    static void on_cancel(waiter_base* w) noexcept {
        auto* self = static_cast<awaitable_awaiter*>(w);
        if (!self->worker_) return;  // it ended already (inside its own launch): nothing to cancel
        self->cancel_emitted_ = true;
        self->emitting_ = true;
        // The awaitable ends (operation_aborted, usually) and on_done resumes us.
        self->worker_->signal.emit(asio::cancellation_type::terminal);
        self->emitting_ = false;
    }

    /// The awaiting frame is destroyed while the awaitable runs: its frame is
    /// on the thread's stack, so the worker keeps it until the thread pops it.
    void abandon() noexcept {
        asio_worker<E>* w = std::exchange(worker_, nullptr);
        w->target = nullptr;
        w->orphan = new asio::awaitable<T, E>(std::move(aw_));
        w->drop_orphan = [](void* p) noexcept { delete static_cast<asio::awaitable<T, E>*>(p); };
        w->signal.emit(asio::cancellation_type::terminal);
    }

    asio::awaitable<T, E> aw_;
    asio_worker<E>* worker_ = nullptr;
    chain* ch_ = nullptr;
    std::coroutine_handle<> h_{};
    bool cancelled_ = false;
    bool cancel_emitted_ = false;
    bool emitting_ = false;
    bool launching_ = false;
    bool finished_ = false;
    bool in_asio_ = false;
};
}  // namespace corio::detail

namespace asio {

/// `co_await aw` on an asio::awaitable: found by argument-dependent lookup in
/// corio coroutines and combinators alike. Inside an Asio coroutine the
/// awaiter forwards to the awaitable's own protocol, unchanged.
template <class T, class E>
corio::detail::awaitable_awaiter<T, E> operator co_await(awaitable<T, E>&& a) noexcept {
    return corio::detail::awaitable_awaiter<T, E>(std::move(a));
}
/// An lvalue is moved from (in a corio coroutine; Asio's own coroutines reject lvalues).
template <class T, class E>
corio::detail::awaitable_awaiter<T, E> operator co_await(awaitable<T, E>& a) noexcept {
    return corio::detail::awaitable_awaiter<T, E>(std::move(a));
}

}  // namespace asio

#endif  // ASIO_HAS_CO_AWAIT

// ===================================================== Asio awaits corio ===
namespace corio {
namespace detail {

template <class T>
inline constexpr bool is_corio_task_v = false;
template <class T>
inline constexpr bool is_corio_task_v<task<T>> = true;

inline event_loop* make_bound_loop(asio::io_context& ctx) { return new event_loop(ctx); }
inline void destroy_bound_loop(event_loop* l) noexcept { delete l; }

/// The event_loop bound to `ctx`, created (owned by ctx) on first use.
inline event_loop& loop_of(asio::io_context& ctx) {
    return loop_registry::loop_for(ctx, &make_bound_loop, &destroy_bound_loop);
}

template <class Ex>
concept io_context_executor = requires(const Ex& ex) {
    { ex.context() } -> std::same_as<asio::io_context&>;
};

[[noreturn]] inline void throw_not_an_io_context() {
    throw std::invalid_argument(
        "corio::co_spawn: the executor does not belong to an asio::io_context (corio runs tasks on the "
        "event_loop of an io_context; pass io_context.get_executor() or an any_io_executor holding it)");
}

/// The io_context an executor belongs to; std::invalid_argument if none.
inline asio::io_context& io_context_of(asio::io_context& ctx) noexcept { return ctx; }
template <class Ex>
asio::io_context& io_context_of(const Ex& ex) {
    if constexpr (io_context_executor<Ex>) {
        return ex.context();
    } else if constexpr (requires { ex.get_inner_executor(); }) {
        return io_context_of(ex.get_inner_executor());  // a strand
    } else if constexpr (requires { ex.target_type(); }) {
        using tracked = decltype(asio::prefer(std::declval<asio::io_context::executor_type>(),
                                              asio::execution::outstanding_work.tracked));
        // Asio 1.22's any_executor::target<T>() does not check the type: compare it here.
        if (ex && ex.target_type() == typeid(asio::io_context::executor_type))
            return ex.template target<asio::io_context::executor_type>()->context();
        if (ex && ex.target_type() == typeid(tracked)) return ex.template target<tracked>()->context();
        throw_not_an_io_context();
    } else {
        static_assert(io_context_executor<Ex>, "corio::co_spawn needs an executor of an asio::io_context");
    }
}

template <class T>
struct spawn_signature_of {
    using type = void(std::exception_ptr, T);
};
template <>
struct spawn_signature_of<void> {
    using type = void(std::exception_ptr);
};
template <class T>
using spawn_signature = typename spawn_signature_of<T>::type;

/// What a co_spawn'd task keeps: the handler, the outstanding work, and the
/// scope the token's cancellation slot cancels. Owned by the task's frame.
template <class T, class Handler>
class spawn_op {
public:
    using handler_executor = asio::associated_executor_t<Handler, asio::io_context::executor_type>;

    spawn_op(Handler&& h, asio::io_context& ctx)
        : handler_(std::move(h)),
          loop_work_(ctx.get_executor()),
          handler_work_(asio::get_associated_executor(handler_, ctx.get_executor())) {
        slot_ = asio::get_associated_cancellation_slot(handler_);
        if (slot_.is_connected()) slot_.template emplace<canceller>(this);
    }
    spawn_op(const spawn_op&) = delete;
    spawn_op& operator=(const spawn_op&) = delete;
    ~spawn_op() {
        // Destroyed unfinished (its loop went away): the handler is dropped
        // without a call, as Asio drops handlers of a destroyed io_context.
        if (slot_.is_connected()) slot_.clear();
    }

    /// Enters the scope the slot cancels; false when it was cancelled already.
    bool enter(chain* ch) noexcept {
        ch->enter(&scope_);
        ch_ = ch;
        return !cancelled_;
    }

    void leave() noexcept {
        if (ch_) ch_->leave(&scope_);
        ch_ = nullptr;
    }

    template <class... V>
    void complete(std::exception_ptr e, V&&... v) {
        // The handler may own the signal behind the slot: forget the slot first.
        if (slot_.is_connected()) slot_.clear();
        slot_ = asio::cancellation_slot();
        asio::dispatch(
            handler_work_.get_executor(),
            [h = std::move(handler_), e, ... v = std::forward<V>(v)]() mutable { std::move(h)(e, std::move(v)...); });
    }

private:
    struct canceller {
        explicit canceller(spawn_op* o) noexcept : op(o) {}
        spawn_op* op;
        void operator()(asio::cancellation_type t) const noexcept {
            if ((t & asio::cancellation_type::terminal) == asio::cancellation_type::none) return;
            op->cancelled_ = true;
            if (op->ch_) cancel_scope_node(&op->scope_);
        }
    };

    Handler handler_;
    asio::executor_work_guard<asio::io_context::executor_type> loop_work_;
    asio::executor_work_guard<handler_executor> handler_work_;
    asio::cancellation_slot slot_;
    inner_scope scope_;
    chain* ch_ = nullptr;
    bool cancelled_ = false;
};

template <class B>
struct spawn_body_traits;  // task<T> or a callable returning one
template <class T>
struct spawn_body_traits<task<T>> {
    using value_type = T;
};
template <class B>
requires(!is_corio_task_v<B> && std::is_invocable_v<B&>) struct spawn_body_traits<B> {
    static_assert(is_corio_task_v<std::invoke_result_t<B&>>,
                  "corio::co_spawn: the callable must return a corio::task<T>");
    using value_type = typename std::invoke_result_t<B&>::value_type;
};

/// The spawned task: runs the body inside the op's scope and hands the
/// outcome to the handler. Never fails itself.
template <class T, class Body, class Op>
task<void> run_spawned(Body body, std::unique_ptr<Op> op) {
    chain* ch = co_await this_chain{};
    std::exception_ptr e;
    std::optional<std::conditional_t<std::is_void_v<T>, char, T>> v;
    if (op->enter(ch)) {
        try {
            if constexpr (is_corio_task_v<Body>) {
                if constexpr (std::is_void_v<T>) co_await std::move(body);
                else v.emplace(co_await std::move(body));
            } else {
                // The callable lives in this frame for as long as its coroutine runs.
                if constexpr (std::is_void_v<T>) co_await std::invoke(body);
                else v.emplace(co_await std::invoke(body));
            }
        } catch (...) {
            e = std::current_exception();
        }
    } else {
        e = std::make_exception_ptr(cancelled_error{});  // cancelled before it started: the body never runs
    }
    op->leave();
    if constexpr (std::is_void_v<T>) op->complete(e);
    else if (v) op->complete(e, std::move(*v));
    else op->complete(e, T{});
}

struct initiate_spawn {
    asio::io_context* ctx;

    template <class Handler, class Body>
    void operator()(Handler&& handler, Body body) const {
        using T = typename spawn_body_traits<Body>::value_type;
        using op_t = spawn_op<T, std::decay_t<Handler>>;
        auto op = std::make_unique<op_t>(std::forward<Handler>(handler), *ctx);
        event_loop& loop = loop_of(*ctx);
        task<void> t = run_spawned<T>(std::move(body), std::move(op));
        if (ctx->get_executor().running_in_this_thread()) {
            loop.spawn(std::move(t));  // starts at the loop's next turn
        } else {
            asio::post(*ctx, [&loop, t = std::move(t)]() mutable { loop.spawn(std::move(t)); });
        }
    }
};

}  // namespace detail

/// Runs corio task `t` (or the task a callable returns) on the event_loop
/// bound to `ex`'s io_context and completes `token` with its outcome:
/// void(std::exception_ptr, T), or void(std::exception_ptr) for task<void>.
/// See the header comment.
template <class Executor, class Body, class Token>
requires(detail::is_corio_task_v<std::remove_cvref_t<Body>> ||
         std::is_invocable_v<std::decay_t<Body>&>) auto co_spawn(Executor&& ex, Body&& body, Token&& token) {
    using B = std::decay_t<Body>;
    using T = typename detail::spawn_body_traits<B>::value_type;
    static_assert(std::is_void_v<T> || std::is_default_constructible_v<T>,
                  "corio::co_spawn: T must be default-constructible (the handler gets T{} with an error), as with "
                  "asio::co_spawn");
    asio::io_context& ctx = detail::io_context_of(ex);
    if constexpr (detail::is_corio_task_v<B>)
        if (!body.valid())
            throw invalid_state_error("corio::co_spawn: the task is empty (moved-from or already awaited)");
    return asio::async_initiate<Token, detail::spawn_signature<T>>(detail::initiate_spawn{&ctx}, token,
                                                                   B(std::forward<Body>(body)));
}

}  // namespace corio
