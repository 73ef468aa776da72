// corio/detail/task_promise.hpp: task_promise<T>, the promise of a
// task<T> frame: promise_base plus the slot for the body's value (T, a
// reference, or nothing for void).
//
// - The value is constructed in place by co_return and taken (moved out) by
//   take(), which rethrows the body's exception instead when it has one.
// - T is at most 16-byte aligned (checked here), so promise_of() finds the
//   promise_base from the frame address.
// - task<T> itself is public (task.hpp); this header only declares it.
#pragma once

#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "promise.hpp"

namespace corio {
template <class T = void>
class task;
}  // namespace corio

namespace corio::detail {

template <class T>
struct task_promise final : promise_base {
    // The scheduler, sleeps and spawned tasks find a frame's promise from the
    // frame address as if it were a promise_base; both compilers place a
    // promise of alignment <= 16 at that same offset.
    static_assert(alignof(T) <= 2 * sizeof(void*),
                  "corio: task<T> does not support over-aligned T; return it in a std::unique_ptr");

    task_promise() noexcept {}
    ~task_promise() {
        if (has_value_) std::destroy_at(ptr());
    }

    task<T> get_return_object() noexcept;

    void return_value(T&& v) noexcept(std::is_nothrow_move_constructible_v<T>) { emplace(std::move(v)); }
    void return_value(const T& v) noexcept(std::is_nothrow_copy_constructible_v<T>) { emplace(v); }
    template <class U>
    requires(!std::is_same_v<std::remove_cvref_t<U>, T> && std::is_constructible_v<T, U&&>) void return_value(U&& v) {
        emplace(std::forward<U>(v));
    }

    T take() {
        rethrow_if_failed();
        return std::move(*ptr());
    }

private:
    template <class... A>
    void emplace(A&&... a) {
        ::new (static_cast<void*>(storage_)) T(std::forward<A>(a)...);
        has_value_ = true;
    }
    T* ptr() noexcept { return std::launder(reinterpret_cast<T*>(storage_)); }
    alignas(T) unsigned char storage_[sizeof(T)];
    bool has_value_ = false;
};

template <class T>
struct task_promise<T&> final : promise_base {
    task<T&> get_return_object() noexcept;
    void return_value(T& v) noexcept { ref_ = std::addressof(v); }
    T& take() {
        rethrow_if_failed();
        return *ref_;
    }

private:
    T* ref_ = nullptr;
};

template <>
struct task_promise<void> final : promise_base {
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() { rethrow_if_failed(); }
};

}  // namespace corio::detail
