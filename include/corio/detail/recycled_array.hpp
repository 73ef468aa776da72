// corio/detail/recycled_array.hpp: a fixed-size array in the thread's
// recycled big block (frame_allocator.hpp's big_allocate), for combinators'
// per-child arrays.
//
// Invariants: T is trivially destructible (nothing to destroy); n
// value-constructed T, or with for_overwrite raw storage whose elements the
// user constructs before reading them; the block goes back to the thread's cache (one block), so the next combinator
// of about the same size reuses it without mapping and faulting it in again.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>

#include "frame_allocator.hpp"

namespace corio::detail {

/// Asks recycled_array for raw storage: the user constructs each element
/// (placement new) before anything reads it.
struct for_overwrite_t {
    explicit for_overwrite_t() = default;
};
inline constexpr for_overwrite_t for_overwrite{};

/// A fixed-size array of default-constructed T in a recycled big block.
template <class T>
class recycled_array {
public:
    explicit recycled_array(std::size_t n) : recycled_array(n, for_overwrite) {
        std::uninitialized_value_construct_n(data_, n_);
    }
    /// Raw storage for n T, constructed by the user as it goes: one pass over
    /// the block instead of two (a gather of a million children writes ~90
    /// MiB of slots); elements never constructed (the user stopped early)
    /// need no destruction.
    recycled_array(std::size_t n, for_overwrite_t) : n_(n), bytes_(n * sizeof(T)) {
        static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
        static_assert(std::is_trivially_destructible_v<T>);
        data_ = static_cast<T*>(big_allocate(bytes_));
    }
    recycled_array(const recycled_array&) = delete;
    recycled_array& operator=(const recycled_array&) = delete;
    ~recycled_array() { big_deallocate(data_, bytes_); }
    T* data() noexcept { return data_; }
    std::size_t size() const noexcept { return n_; }
    T& operator[](std::size_t i) noexcept { return data_[i]; }

private:
    T* data_;
    std::size_t n_;
    std::size_t bytes_;
};

}  // namespace corio::detail
