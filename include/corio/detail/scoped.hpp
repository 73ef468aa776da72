// corio/detail/scoped.hpp: scoped<Mode, External, A>, the awaiter that runs
// an operand inside a scope_record without a coroutine frame of its own (the
// engine of timeout, move_on_after, shield and cancel_scope::run).
//
// - The record lives in the awaiter (in the caller's frame), or, External,
//   in a cancel_scope object; the operand's awaiter resumes the caller
//   directly.
// - await_resume leaves the scope, then decides what a cancelled_error means
//   for it (on_own_cancel): absorb (an empty optional), throw_timeout
//   (timeout_error) or pass (rethrow). Only a cancellation this scope owns
//   (the outermost cancelled scope up to the first shield) is absorbed or
//   converted; any other passes through unchanged.
// - Destroyed mid-await (its frame destroyed with the loop), the operand, and
//   every scope nested in it, leaves first; then this scope leaves.
#pragma once

#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

#include "../errors.hpp"
#include "clock.hpp"
#include "operand.hpp"
#include "promise.hpp"
#include "scope_record.hpp"

namespace corio::detail {

template <class T>
using optional_result = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

enum class on_own_cancel { absorb, throw_timeout, pass };

/// Awaits an operand inside a scope, without a coroutine frame of its own:
/// the scope record lives in this awaiter (in the caller's frame), the
/// operand's awaiter resumes the caller directly, and await_resume leaves the
/// scope and decides what the operand's outcome means for this scope.
/// External: the record belongs to a cancel_scope object instead.
template <on_own_cancel Mode, bool External, class A>
class scoped {
    using inner_t = typename operand<A>::awaiter_type;
    using R = decltype(std::declval<inner_t&>().await_resume());
    /// A cancel_scope's record, left when the awaiter goes.
    struct record_ref {
        scope_record* p;
        ~record_ref() { p->leave(); }
    };
    // rec_ is declared before op_, so it is destroyed after it: an awaiter
    // destroyed mid-await (its frame destroyed with the loop) lets the operand,
    // and every scope nested in it, leave first; then this scope leaves.
    using record_t = std::conditional_t<External, record_ref, scope_record>;

public:
    using result_type = std::conditional_t<Mode == on_own_cancel::absorb, optional_result<R>, R>;

    template <class U>
    scoped(scope_record* record, U&& aw) : rec_{record}, op_(std::forward<U>(aw)) {}
    /// A scope whose deadline is `d` after the await begins (built in place:
    /// a record passed by value would be one more temporary in the frame).
    template <class U>
    scoped(clock::duration d, U&& aw) : rec_(clock::time_point(d)), op_(std::forward<U>(aw)) {
        rec_.owner_bits |= scope_record::relative_flag;
    }
    template <class U>
    scoped(clock::time_point deadline, bool shield, U&& aw) : rec_(deadline, shield), op_(std::forward<U>(aw)) {}
    scoped(scoped&&) = default;

    bool await_ready() const noexcept { return false; }

    template <class P>
    auto await_suspend(std::coroutine_handle<P> caller) {
        rec().enter(chain_of(caller));
        inner_t& in = op_.start();
        using S = decltype(in.await_suspend(caller));
        if (in.await_ready()) {
            if constexpr (std::is_same_v<S, void> || std::is_same_v<S, bool>) return false;
            else return std::coroutine_handle<>(caller);
        }
        if constexpr (std::is_same_v<S, void>) {
            in.await_suspend(caller);
            return true;
        } else if constexpr (std::is_same_v<S, bool>) {
            return in.await_suspend(caller);
        } else {
            return std::coroutine_handle<>(in.await_suspend(caller));
        }
    }

    result_type await_resume() {
        scope_record& r = rec();
        try {
            if constexpr (std::is_void_v<R>) {
                op_.get().await_resume();
                r.leave();
                if constexpr (Mode == on_own_cancel::absorb) return true;
                else return;
            } else if constexpr (Mode == on_own_cancel::absorb) {
                result_type value(op_.get().await_resume());
                r.leave();
                return value;
            } else {
                R value = op_.get().await_resume();
                r.leave();
                return static_cast<R&&>(value);
            }
        } catch (const cancelled_error&) {
            if (Mode == on_own_cancel::pass || r.current_phase() != scope_record::phase::running ||
                !r.owns_cancellation()) {
                r.leave();
                throw;
            }
            r.leave();
            r.cancelled_caught = true;
        } catch (...) {
            r.leave();
            throw;
        }
        if constexpr (Mode == on_own_cancel::throw_timeout) throw timeout_error{};
        else if constexpr (Mode == on_own_cancel::absorb) return result_type{};
        else throw cancelled_error{};  // unreachable: pass rethrows above
    }

private:
    scope_record& rec() noexcept {
        if constexpr (External) return *rec_.p;
        else return rec_;
    }

    record_t rec_;
    operand<A> op_;
};

template <class A>
using stored_operand = std::conditional_t<std::is_lvalue_reference_v<A>, A, std::remove_cvref_t<A>>;

template <on_own_cancel Mode, class A>
using scoped_for = scoped<Mode, false, stored_operand<A>>;

}  // namespace corio::detail
