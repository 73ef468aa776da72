// corio/detail/wait_list.hpp: the FIFO of parked waiters every primitive
// (semaphore, mutex, event, condition_variable, barrier, queue, limiter) uses.
//
// Invariants: nodes live in the awaiters (in coroutine frames), so parking
// allocates nothing; `wait_node::linked` is true exactly while the node is in
// a list; `parked::wake()` hands the chain to the scheduler and never resumes
// inline.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstddef>

#include "scheduler.hpp"

namespace corio::detail {

/// A node of a wait_list. Invariant: `linked` is true exactly while the node is
/// in some list; prev/next are meaningful only then.
struct wait_node {
    wait_node* prev = nullptr;
    wait_node* next = nullptr;
    bool linked = false;
};

/// Intrusive doubly linked FIFO of waiters; owns nothing and never allocates.
class wait_list {
public:
    wait_list() noexcept = default;
    wait_list(const wait_list&) = delete;
    wait_list& operator=(const wait_list&) = delete;

    bool empty() const noexcept { return head_ == nullptr; }
    std::size_t size() const noexcept { return size_; }
    wait_node* front() const noexcept { return head_; }

    void push_back(wait_node* n) noexcept {
        n->prev = tail_;
        n->next = nullptr;
        n->linked = true;
        if (tail_) tail_->next = n;
        else head_ = n;
        tail_ = n;
        ++size_;
    }

    wait_node* pop_front() noexcept {
        wait_node* n = head_;
        if (n) erase(n);
        return n;
    }

    void erase(wait_node* n) noexcept {
        if (n->prev) n->prev->next = n->next;
        else head_ = n->next;
        if (n->next) n->next->prev = n->prev;
        else tail_ = n->prev;
        n->prev = n->next = nullptr;
        n->linked = false;
        --size_;
    }

private:
    wait_node* head_ = nullptr;
    wait_node* tail_ = nullptr;
    std::size_t size_ = 0;
};

/// The common part of a parked waiter: the chain and the coroutine to resume.
struct parked : waiter_base, wait_node {
    chain* ch = nullptr;
    std::coroutine_handle<> h{};

    parked() noexcept = default;
    /// Movable until started: an operation is moved into a combinator or a
    /// task before it is awaited. Once it has looked at its caller's chain
    /// (or parked) it is pinned: its address is in lists and handlers.
    parked([[maybe_unused]] parked&& o) noexcept : waiter_base(), wait_node() {
        assert(!o.ch && !o.linked && "corio: an operation was moved after it started (awaiters are pinned once awaited)");
    }
    parked& operator=(parked&&) = delete;

    /// The start of every parking await_suspend: records the caller's chain;
    /// in a cancelled scope returns false (do not suspend: the caller throws);
    /// otherwise links this waiter into `list` and parks the chain on it.
    template <class P>
    bool park_on(std::coroutine_handle<P> caller, wait_list& list, void (*on_cancel)(waiter_base*) noexcept) {
        ch = caller.promise().ch;
        if (ch->cancel_requested()) return false;
        h = caller;
        notify = on_cancel;
        list.push_back(this);
        ch->park(this);
        return true;
    }

    /// Hands the chain back to the scheduler (never resumes inline).
    void wake() noexcept {
        ch->unpark();
        ch->sched->schedule(h);
    }
};

}  // namespace corio::detail
