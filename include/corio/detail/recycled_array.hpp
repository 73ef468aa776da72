// corio/detail/recycled_array.hpp: a fixed-size array in the thread's
// recycled big block (frame_allocator.hpp's big_allocate), for combinators'
// per-child arrays.
//
// Invariants: n default-constructed T, destroyed in the destructor; the
// block goes back to the thread's cache (one block), so the next combinator
// of about the same size reuses it without mapping and faulting it in again.
#pragma once

#include <cstddef>
#include <memory>

#include "frame_allocator.hpp"

namespace corio::detail {

/// A fixed-size array of default-constructed T in a recycled big block.
template <class T>
class recycled_array {
public:
    explicit recycled_array(std::size_t n) : n_(n), bytes_(n * sizeof(T)) {
        static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
        data_ = static_cast<T*>(big_allocate(bytes_));
        std::uninitialized_value_construct_n(data_, n_);
    }
    recycled_array(const recycled_array&) = delete;
    recycled_array& operator=(const recycled_array&) = delete;
    ~recycled_array() {
        std::destroy_n(data_, n_);
        big_deallocate(data_, bytes_);
    }
    T* data() noexcept { return data_; }
    std::size_t size() const noexcept { return n_; }
    T& operator[](std::size_t i) noexcept { return data_[i]; }

private:
    T* data_;
    std::size_t n_;
    std::size_t bytes_;
};

}  // namespace corio::detail
