// corio/detail/ready_queue.hpp: FIFO ring buffer of things to resume.
//
// Invariants: capacity is a power of two (mask indexing); entries are opaque
// pointers (a coroutine frame address, or a tagged task state to start); the
// buffer grows by doubling and never reorders entries.
#pragma once

#include <cstddef>
#include <cstring>

#include "big_array.hpp"

namespace corio::detail {

class ready_queue {
public:
    bool empty() const noexcept { return head_ == tail_; }
    std::size_t size() const noexcept { return tail_ - head_; }

    void push(void* entry) {
        if (tail_ - head_ == slots_.capacity()) grow();
        slots_[tail_++ & (slots_.capacity() - 1)] = entry;
    }

    void* pop() noexcept { return slots_[head_++ & (slots_.capacity() - 1)]; }

    /// Gives a burst's memory back as the queue drains: to nothing once empty,
    /// to half when under a quarter full (so a million queued starts do not
    /// keep 8 MB while the tasks they start fill the timer heap; after a
    /// halving the ring is under half full, so it does not grow right back).
    void shrink() noexcept {
        const std::size_t cap = slots_.capacity();
        if (cap <= idle_capacity) return;
        if (head_ == tail_) {
            slots_.reallocate(0);
            head_ = tail_ = released_ = 0;
        } else if (size() < cap / 4) {
            // Move the live entries to the front, then drop the back half.
            const std::size_t n = size();
            void** d = slots_.data();
            const std::size_t h = head_ & (cap - 1);
            if (h + n <= cap) {
                std::memmove(d, d + h, n * sizeof(void*));
            } else {
                // Wrapped: [h, cap) then [0, rest), n < cap / 4. The rest is
                // parked at [cap/2, 3cap/4) (clear of both: h > 3cap/4),
                // the first part moves to the front, the rest after it.
                const std::size_t first = cap - h, rest = n - first;
                std::memmove(d + cap / 2, d, rest * sizeof(void*));
                std::memmove(d, d + h, first * sizeof(void*));
                std::memmove(d + first, d + cap / 2, rest * sizeof(void*));
            }
            head_ = released_ = 0;
            tail_ = n;
            try {
                slots_.reallocate(cap / 2);
            } catch (...) {  // keeping the bigger buffer is fine
            }
        } else {
            release_consumed(cap);
        }
    }

private:
    static constexpr std::size_t idle_capacity = 64 * 1024;
    static constexpr std::size_t release_step = 128 * 1024;  // entries: 1 MiB

    /// A big ring drains for a while before it may halve: hand the pages the
    /// head has left behind back as it goes (a million queued starts would
    /// otherwise keep all 8 MiB resident while the timer heap fills up).
    void release_consumed(std::size_t cap) noexcept {
        // Slots of consumed entries may already hold new ones (tail - cap on).
        const std::size_t reused_to = tail_ > cap ? tail_ - cap : 0;
        const std::size_t from = released_ > reused_to ? released_ : reused_to;
        if (head_ < from + release_step) return;
        const std::size_t s = from & (cap - 1), e = head_ & (cap - 1);
        if (s < e) {
            slots_.discard(s, e);
        } else {
            slots_.discard(s, cap);
            slots_.discard(0, e);
        }
        released_ = head_;
    }

    /// Doubles the ring. The entries stay where they are; the ones that had
    /// wrapped around to the front move up into the new half.
    [[gnu::noinline]] void grow() {
        const std::size_t cap = slots_.capacity();
        if (cap == 0) {
            slots_.reallocate(256);
            head_ = tail_ = released_ = 0;
            return;
        }
        slots_.reallocate(2 * cap);
        const std::size_t h = head_ & (cap - 1);
        void** d = slots_.data();
        if (h != 0) std::memcpy(d + cap, d, h * sizeof(void*));  // the wrapped part [0, h)
        // Indices are taken modulo the new capacity from here: renumber.
        const std::size_t n = tail_ - head_;
        head_ = released_ = h;
        tail_ = h + n;
    }

    big_array<void*> slots_;
    std::size_t head_ = 0;
    std::size_t tail_ = 0;
    std::size_t released_ = 0;  // entries before this index have had their pages discarded
};

}  // namespace corio::detail
