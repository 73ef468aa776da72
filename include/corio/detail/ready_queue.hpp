// corio/detail/ready_queue.hpp: FIFO ring buffer of things to resume.
//
// Invariants: capacity is a power of two (mask indexing); entries are opaque
// pointers (a coroutine frame address, or a tagged task state to start); the
// buffer grows by doubling and never reorders entries.
#pragma once

#include <cstddef>
#include <utility>

#include "frame_allocator.hpp"

namespace corio::detail {

class ready_queue {
public:
    ready_queue() noexcept = default;
    ready_queue(const ready_queue&) = delete;
    ready_queue& operator=(const ready_queue&) = delete;
    ~ready_queue() { release(); }

    bool empty() const noexcept { return head_ == tail_; }
    std::size_t size() const noexcept { return tail_ - head_; }

    void push(void* entry) {
        if (tail_ - head_ == capacity_) grow();
        slots_[tail_++ & (capacity_ - 1)] = entry;
    }

    void* pop() noexcept { return slots_[head_++ & (capacity_ - 1)]; }

    /// Gives a burst's memory back as the queue drains: to nothing once empty,
    /// to half when under an eighth full (so a million queued starts do not
    /// keep 8 MB while a million tasks sleep).
    void shrink() noexcept {
        if (capacity_ <= idle_capacity) return;
        if (head_ == tail_) {
            release();
            head_ = tail_ = 0;
        } else if (size() < capacity_ / 8) {
            try {
                resize(capacity_ / 2);
            } catch (...) {  // keeping the bigger buffer is fine
            }
        }
    }

private:
    static constexpr std::size_t idle_capacity = 64 * 1024;

    void grow() { resize(capacity_ ? capacity_ * 2 : 256); }

    void resize(std::size_t cap) {
        const std::size_t n = size();
        void** fresh = large_allocator<void*>().allocate(cap);
        for (std::size_t i = 0; i < n; ++i) fresh[i] = slots_[(head_ + i) & (capacity_ - 1)];
        release();
        tail_ = n;
        head_ = 0;
        capacity_ = cap;
        slots_ = fresh;
    }

    void release() noexcept {
        if (slots_) large_allocator<void*>().deallocate(slots_, capacity_);
        slots_ = nullptr;
        capacity_ = 0;
    }

    void** slots_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t head_ = 0;
    std::size_t tail_ = 0;
};

}  // namespace corio::detail
