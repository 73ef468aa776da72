// corio/asio.hpp: use_task, the completion token that makes any Asio async
// operation awaitable from a corio task.
//
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
#pragma once

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/error.hpp>

#include "errors.hpp"
#include "loop.hpp"
#include "task.hpp"

namespace corio {

/// Completion token: `co_await op(args..., corio::use_task)`.
struct use_task_t {
    constexpr use_task_t() noexcept = default;
};
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

    bool await_ready() const noexcept { return false; }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        ch_ = chain_of(caller);
        if (ch_->cancel_requested()) {
            cancelled_ = true;
            return false;
        }
        h_ = caller;
        notify = &on_cancel;
        ch_->park(this);
        initiating_ = true;
        event_loop& loop = event_loop::from(*ch_->sched);
        std::apply([&](auto&&... a) { std::move(init_)(handler{this, loop.life(), loop.get_executor()}, std::move(a)...); },
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
        else if constexpr (std::is_void_v<value_type>)
            return;
        else if constexpr (std::tuple_size_v<stored> == 1)
            return std::move(std::get<0>(r));
        else
            return std::move(r);
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
        cancellation_slot_type get_cancellation_slot() const noexcept { return self->signal_.slot(); }

        template <class... A>
        void operator()(A&&... a) {
            event_loop* loop = *life;
            if (!loop) return;  // the frame that awaited this is gone
            asio_operation* op = self;
            op->result_.emplace(std::forward<A>(a)...);
            if (op->initiating_) return;  // await_suspend goes on without suspending
            op->ch_->unpark();
            loop->resume_from_handler(op->h_);
        }
    };

    static void on_cancel(waiter_base* w) noexcept {
        auto* self = static_cast<asio_operation*>(w);
        self->cancel_emitted_ = true;
        // The operation completes (with operation_aborted) through the handler.
        self->signal_.emit(asio::cancellation_type::terminal);
    }

    Initiation init_;
    std::tuple<InitArgs...> args_;
    std::optional<stored> result_;
    asio::cancellation_signal signal_;
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
