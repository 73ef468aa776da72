// corio/result.hpp: result<T>, a value or an exception_ptr.
//
// gather_settled() returns these. has_value() tells which; value() returns the
// value or rethrows the stored exception; error() gives the exception_ptr (null
// when a value is held); error_message() gives the error's message as text
// (what() of a std::exception or of cancelled_error; for any other type a
// sentence naming it; "" when a value is held) without the caller rethrowing. A result is never empty: default
// construction makes a value-initialised T (result<void>: success).
#pragma once

#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "errors.hpp"

namespace corio {

/// A value of type T or an exception: what gather_settled() gives per child.
template <class T>
class result {
public:
    static_assert(!std::is_reference_v<T>, "corio::result<T&> is not supported; use result<std::reference_wrapper<T>>");

    result() = default;
    /// A result holding `value`.
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    /// A result holding the exception `error`.
    result(std::exception_ptr error) : v_(std::in_place_index<1>, std::move(error)) {}

    /// True when it holds a value.
    bool has_value() const noexcept { return v_.index() == 0; }
    /// has_value().
    explicit operator bool() const noexcept { return has_value(); }

    /// The value, or rethrows the stored exception.
    T& value() & {
        rethrow_if_error();
        return std::get<0>(v_);
    }
    /// The value, or rethrows the stored exception.
    const T& value() const& {
        rethrow_if_error();
        return std::get<0>(v_);
    }
    /// The value (moved out), or rethrows the stored exception.
    T&& value() && {
        rethrow_if_error();
        return std::get<0>(std::move(v_));
    }

    /// The stored exception, or null when it holds a value.
    std::exception_ptr error() const noexcept { return has_value() ? nullptr : std::get<1>(v_); }

    /// True when the stored error is a cancelled_error.
    bool cancelled() const noexcept { return is_cancelled(error()); }

    /// The stored error's message ("" when a value is held).
    std::string error_message() const { return detail::exception_message(error()); }

    /// True when `e` is a cancelled_error.
    static bool is_cancelled(const std::exception_ptr& e) noexcept {
        if (!e) return false;
        try {
            std::rethrow_exception(e);
        } catch (const cancelled_error&) {
            return true;
        } catch (...) {
            return false;
        }
    }

private:
    void rethrow_if_error() const {
        if (!has_value()) std::rethrow_exception(std::get<1>(v_));
    }
    std::variant<T, std::exception_ptr> v_;
};

/// The outcome of a task<void>: success or an exception.
template <>
class result<void> {
public:
    result() = default;
    /// A result holding `error` (null: success).
    result(std::exception_ptr error) : error_(std::move(error)) {}

    /// True on success.
    bool has_value() const noexcept { return !error_; }
    /// has_value().
    explicit operator bool() const noexcept { return has_value(); }
    /// Returns on success, or rethrows the stored exception.
    void value() const {
        if (error_) std::rethrow_exception(error_);
    }
    /// The stored exception, or null on success.
    std::exception_ptr error() const noexcept { return error_; }
    /// True when the stored error is a cancelled_error.
    bool cancelled() const noexcept { return result<int>::is_cancelled(error_); }
    /// The stored error's message ("" on success).
    std::string error_message() const { return detail::exception_message(error_); }

private:
    std::exception_ptr error_;
};

}  // namespace corio
