// corio/errors.hpp: the exception types corio throws.
//
// - cancelled_error: thrown at a suspension point inside a cancelled scope. It
//   deliberately does NOT derive from std::exception, so a
//   `catch (const std::exception&)` cannot swallow a cancellation (the reason
//   Python made CancelledError a BaseException). Catch it only to clean up, and
//   rethrow it.
// - timeout_error: a timeout()'s own deadline expired (std::runtime_error).
// - invalid_state_error: an API used in a state where it cannot work (awaiting
//   an empty task, calling run() inside a running loop, ...); the message says
//   what was wrong (std::logic_error).
// - exception_group: several errors from concurrent children, in the order they
//   happened (std::exception; what() lists every member's message).
// - queue_closed, broken_barrier: a primitive was closed or aborted.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

namespace corio {

/// Thrown at a suspension point inside a cancelled cancel scope. Not a
/// std::exception on purpose; it carries no message.
class cancelled_error final {
public:
    /// "corio: operation cancelled".
    const char* what() const noexcept { return "corio: operation cancelled"; }
};

namespace detail {

/// The demangled type of the exception being handled (inside a catch), or
/// "an unknown type".
inline std::string current_exception_type_name() {
#if __has_include(<cxxabi.h>)
    if (const std::type_info* t = abi::__cxa_current_exception_type()) {
        int status = 0;
        std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(t->name(), nullptr, nullptr, &status), std::free);
        return status == 0 && d ? std::string(d.get()) : std::string(t->name());
    }
#endif
    return "an unknown type";
}

/// The message of a stored exception: what() of a std::exception or a
/// cancelled_error, else a sentence naming its type; "" for a null pointer.
inline std::string exception_message(const std::exception_ptr& e) {
    if (!e) return {};
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (const cancelled_error& x) {
        return x.what();
    } catch (...) {
        return "an exception of type " + current_exception_type_name() + " (not derived from std::exception)";
    }
}

}  // namespace detail

/// A timeout()'s own deadline expired before its operand finished.
class timeout_error : public std::runtime_error {
public:
    timeout_error() : std::runtime_error("corio: timeout expired") {}
    using std::runtime_error::runtime_error;
};

/// An operation was used in a state where it cannot work.
class invalid_state_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

/// put() on a closed queue, or get() on a closed and drained one.
class queue_closed : public std::runtime_error {
public:
    queue_closed() : std::runtime_error("corio: queue is closed") {}
    using std::runtime_error::runtime_error;
};

/// A barrier was aborted while (or before) a task waited on it.
class broken_barrier : public std::runtime_error {
public:
    broken_barrier() : std::runtime_error("corio: barrier is broken") {}
    using std::runtime_error::runtime_error;
};

/// Several errors raised by concurrent children of one task group, in the
/// order they happened. Never holds a cancelled_error.
class exception_group : public std::exception {
public:
    /// A group of `errors` (in the order they happened).
    explicit exception_group(std::vector<std::exception_ptr> errors)
        : errors_(std::move(errors)), message_(describe(errors_)) {}

    /// The grouped exceptions, in order.
    const std::vector<std::exception_ptr>& exceptions() const noexcept { return errors_; }
    /// The number of grouped exceptions.
    std::size_t size() const noexcept { return errors_.size(); }
    /// A message describing the grouped errors.
    const char* what() const noexcept override { return message_.c_str(); }

    /// True when some member is an E (or derives from it). Nested groups are not searched.
    template <class E>
    bool contains() const noexcept {
        return find<E>() != nullptr;
    }

    /// The first member that is an E, or nullptr. The pointer lives as long as the group.
    template <class E>
    const E* find() const noexcept {
        for (const auto& e : errors_) {
            try {
                std::rethrow_exception(e);
            } catch (const E& hit) {
                return &hit;
            } catch (...) {
            }
        }
        return nullptr;
    }

    /// When the group holds exactly one error, rethrows it; otherwise does nothing.
    void rethrow_if_single() const {
        if (errors_.size() == 1) std::rethrow_exception(errors_.front());
    }

private:
    static std::string describe(const std::vector<std::exception_ptr>& errors) {
        std::string text =
            "corio: " + std::to_string(errors.size()) + " error" + (errors.size() == 1 ? "" : "s") + " in task group";
        for (std::size_t i = 0; i < errors.size(); ++i) {
            text += i == 0 ? ": " : "; ";
            text += "[" + std::to_string(i + 1) + "] ";
            try {
                std::rethrow_exception(errors[i]);
            } catch (const std::exception& e) {
                text += e.what();
            } catch (const cancelled_error& e) {
                text += e.what();
            } catch (...) {
                text += "non-standard exception";
            }
        }
        return text;
    }

    std::vector<std::exception_ptr> errors_;
    std::string message_;
};

}  // namespace corio
