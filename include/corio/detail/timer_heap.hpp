// corio/detail/timer_heap.hpp: the loop's deadlines, an intrusive binary heap.
//
// Invariants:
// - A timer_node lives inside whoever waits (a sleep awaiter in a coroutine
//   frame, a deadline scope); the heap only holds pointers, so inserting and
//   removing allocate nothing beyond the vector's capacity, and a removed node
//   owes the heap nothing.
// - node->index is the node's position in the heap, or not_queued.
// - Ties are broken by insertion sequence, so timers with equal deadlines fire
//   in the order they were armed (tests under virtual time rely on this).
// - A node is 16 bytes: it sits in every sleeping frame and every timeout.
//   What a due node does is decided by the scheduler: a deadline scope's node
//   is recognised by scope_flag (it cancels the scope); every other node is a
//   wake_timer and is woken through its notify function.
// - The heap pops a node (queued() turns false) before it is notified, so an
//   owner that is also a chain's waiter (a sleep) uses one function for both:
//   still queued means cancelled, popped means the deadline came.
// - The array's capacity halves when the heap falls below a quarter of it, so
//   a burst of a million deadlines does not pin memory afterwards.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "big_array.hpp"
#include "clock.hpp"
#include "wakeable.hpp"

namespace corio::detail {

struct timer_node {
    static constexpr std::uint32_t not_queued = 0xffffffffu;
    static constexpr std::uint8_t scope_flag = 0x80;  // in owner_bits: a deadline scope's node

    clock::time_point deadline{};
    std::uint32_t index = not_queued;
    std::uint32_t seq : 24 = 0;        // arming order, modulo 2^24 (see less())
    std::uint32_t owner_bits : 8 = 0;  // the owner's flags (bit 7: scope_flag)

    bool queued() const noexcept { return index != not_queued; }
};

/// A timer node woken through its own notify function when its deadline
/// comes (sleeps, the limiter, wait()). One that is also a chain's waiter
/// may share that notify; it leaves `deadline` at max() when not armed.
struct wake_timer : wakeable, timer_node {
    /// In a shared notify: the deadline came (the heap popped an armed
    /// node), as opposed to a cancellation (still queued, or never armed).
    bool deadline_came() const noexcept { return !queued() && deadline != clock::time_point::max(); }
};

class timer_heap {
public:
    bool empty() const noexcept { return count_ == 0; }
    std::size_t size() const noexcept { return count_; }
    timer_node* top() const noexcept { return nodes_[0]; }

    void push(timer_node* n) {
        if (count_ == nodes_.capacity()) nodes_.reallocate(count_ ? 2 * count_ : 64);
        n->seq = next_seq_++ & 0xffffffu;
        n->index = static_cast<std::uint32_t>(count_);
        nodes_[count_++] = n;
        sift_up(n->index);
    }

    void remove(timer_node* n) noexcept {
        std::uint32_t i = n->index;
        n->index = timer_node::not_queued;
        timer_node* last = nodes_[--count_];
        if (last != n) {
            nodes_[i] = last;
            last->index = i;
            if (i > 0 && less(last, nodes_[(i - 1) / 2])) sift_up(i);
            else sift_down(i);
        }
        if (nodes_.capacity() > 4096 && count_ < nodes_.capacity() / 4) {
            try {
                nodes_.reallocate(nodes_.capacity() / 2);
            } catch (...) {  // keeping the bigger buffer is fine
            }
        }
    }

    timer_node* pop() noexcept {
        timer_node* n = nodes_[0];
        remove(n);
        return n;
    }

private:
    // Equal deadlines fire in arming order. The sequence number wraps at 2^24
    // (it shares a word with the owner's flags to keep nodes at 16 bytes), so
    // ties compare by wrapped difference: exact unless two tied timers were
    // armed more than 2^23 timers apart, and a wrong tie order can never make
    // a later deadline fire first.
    static bool less(const timer_node* a, const timer_node* b) noexcept {
        if (a->deadline != b->deadline) return a->deadline < b->deadline;
        return ((a->seq - b->seq) & 0xffffffu) >= 0x800000u;
    }
    void place(std::uint32_t i, timer_node* n) noexcept {
        nodes_[i] = n;
        n->index = i;
    }
    void sift_up(std::uint32_t i) noexcept {
        timer_node* n = nodes_[i];
        while (i > 0) {
            std::uint32_t parent = (i - 1) / 2;
            if (!less(n, nodes_[parent])) break;
            place(i, nodes_[parent]);
            i = parent;
        }
        place(i, n);
    }
    void sift_down(std::uint32_t i) noexcept {
        timer_node* n = nodes_[i];
        const std::uint32_t count = static_cast<std::uint32_t>(count_);
        for (;;) {
            std::uint32_t child = 2 * i + 1;
            if (child >= count) break;
            if (child + 1 < count && less(nodes_[child + 1], nodes_[child])) ++child;
            if (!less(nodes_[child], n)) break;
            place(i, nodes_[child]);
            i = child;
        }
        place(i, n);
    }

    big_array<timer_node*> nodes_;
    std::size_t count_ = 0;
    std::uint32_t next_seq_ = 0;
};

}  // namespace corio::detail
