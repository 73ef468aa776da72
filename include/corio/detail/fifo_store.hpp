// corio/detail/fifo_store.hpp: fifo_store<T>, queue<T>'s item storage (oldest
// item first).
//
// - A power-of-two ring that grows by doubling and never shrinks, so a queue
//   in steady state allocates nothing per put/get.
// - push/pop/size only: the queue (queue.hpp) decides who may take an item.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace corio::detail {

/// FIFO storage: a power-of-two ring that grows by doubling (never shrinks
/// below what a bounded queue needs), so steady-state put/get allocate nothing.
template <class T>
class fifo_store {
public:
    fifo_store() noexcept = default;
    fifo_store(const fifo_store&) = delete;
    fifo_store& operator=(const fifo_store&) = delete;
    ~fifo_store() {
        while (head_ != tail_) std::destroy_at(slot(head_++));
        if (buf_) std::allocator<T>().deallocate(buf_, cap_);
    }
    std::size_t size() const noexcept { return tail_ - head_; }
    template <class U>
    void push(U&& v) {
        if (tail_ - head_ == cap_) grow();
        ::new (static_cast<void*>(slot(tail_))) T(std::forward<U>(v));
        ++tail_;
    }
    T pop() {
        T* p = slot(head_);
        T v = std::move(*p);
        std::destroy_at(p);
        ++head_;
        return v;
    }

private:
    T* slot(std::size_t i) const noexcept { return buf_ + (i & (cap_ - 1)); }
    void grow() {
        std::size_t cap = cap_ ? cap_ * 2 : 16;
        T* fresh = std::allocator<T>().allocate(cap);
        std::size_t n = tail_ - head_;
        for (std::size_t i = 0; i < n; ++i) {
            T* from = slot(head_ + i);
            ::new (static_cast<void*>(fresh + i)) T(std::move(*from));
            std::destroy_at(from);
        }
        if (buf_) std::allocator<T>().deallocate(buf_, cap_);
        buf_ = fresh;
        cap_ = cap;
        head_ = 0;
        tail_ = n;
    }

    T* buf_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t head_ = 0;
    std::size_t tail_ = 0;
};

}  // namespace corio::detail
