// corio/detail/wait_list.hpp: the FIFO of parked waiters every primitive
// (semaphore, mutex, event, condition_variable, barrier, queue, limiter) uses.
//
// Invariants: nodes live in the awaiters (in coroutine frames), so parking
// allocates nothing; `wait_node::linked()` is true exactly while the node is
// in a list, and a node destroyed while linked unlinks itself; `parked::wake()` hands the chain to the scheduler and
// never resumes inline.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstddef>

#include "intrusive_list.hpp"
#include "park.hpp"
#include "scheduler.hpp"

namespace corio::detail {

/// A node of a wait_list: linked() is true exactly while it is in a list; a
/// node destroyed while linked unlinks itself (intrusive_list.hpp).
struct wait_node : list_hook<> {};

/// Intrusive doubly linked FIFO of waiters; owns nothing and never allocates.
using wait_list = intrusive_list<wait_node>;

/// The common part of a parked waiter: the chain and the coroutine to resume.
struct parked : waiter_base, wait_node {
    chain* ch = nullptr;
    std::coroutine_handle<> h{};

    parked() noexcept = default;
    /// Movable until started: an operation is moved into a combinator or a
    /// task before it is awaited. Once it has looked at its caller's chain
    /// (or parked) it is pinned: its address is in lists and handlers.
    parked([[maybe_unused]] parked&& o) noexcept : waiter_base(), wait_node() {
        assert(!o.ch && !o.linked() &&
               "corio: an operation was moved after it started (awaiters are pinned once awaited)");
    }
    parked& operator=(parked&&) = delete;

    /// The parking prologue (park.hpp) for a waiter on a wait_list: records
    /// the caller's chain; in a cancelled scope returns false (do not
    /// suspend: the caller throws); otherwise links this waiter into `list`
    /// and parks the chain on it.
    template <class P>
    bool park_on(std::coroutine_handle<P> caller, wait_list& list, void (*on_cancel)(waiter_base*) noexcept) {
        if (!begin_park(caller, ch)) return false;
        list.push_back(this);
        finish_park(ch, this, on_cancel, h, caller);
        return true;
    }

    /// Hands the chain back to the scheduler (never resumes inline).
    void wake() noexcept {
        ch->unpark();
        ch->sched->schedule(h);
    }
};

}  // namespace corio::detail
