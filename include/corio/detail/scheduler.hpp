// corio/detail/scheduler.hpp: the machinery under event_loop and task<T>:
// the cancel-scope tree, chains, waiters and the scheduler core.
//
// Vocabulary and invariants:
// - A *chain* is one line of execution: the stack of task<T> frames that a
//   spawned task, or one concurrent child of a combinator, runs. Every frame
//   of a chain points to its chain (promise_base::ch).
// - Cancel scopes form a tree. Each chain has exactly one innermost scope
//   (chain::scope) and that scope points back at it (scope_node::attached);
//   a scope has at most one attached chain. Entering a scope on a chain makes
//   the new scope a child of the chain's innermost scope.
// - Cancelling a scope marks it and wakes every chain suspended in its subtree
//   that is not behind a shielded scope. Waking never resumes anything
//   inline: the waiter unlinks itself and the chain is put on the ready queue.
// - A chain is "cancel requested" when a scope on its path to the first
//   shielded scope (inclusive) is cancelled, or its deadline has passed; that
//   is checked at every suspension (level-triggered cancellation).
// - chain::waiter is the suspension the chain is parked in, or null when the
//   chain is running, queued or parked somewhere cancellation cannot reach.
// - scheduler::next_ is the trampoline slot: a finishing frame stores its
//   continuation there and returns to scheduler::resume, which resumes it.
//   This bounds stack depth even where symmetric transfer is not a tail call
//   (g++ -O0, ASan).
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "ready_queue.hpp"
#include "timer_heap.hpp"

namespace corio::detail {

class scheduler;
struct chain;

/// A suspension that cancellation can interrupt.
struct waiter_base {
    /// Called on the loop thread when the chain's scope is cancelled: must
    /// unlink the waiter from whatever it waits on and arrange for the chain
    /// to resume (and then throw cancelled_error), never resume inline.
    void (*cancel_fn)(waiter_base*) noexcept = nullptr;
};

struct scope_node {
    scope_node* parent = nullptr;
    scope_node* first_child = nullptr;
    scope_node* prev_sibling = nullptr;
    scope_node* next_sibling = nullptr;
    chain* attached = nullptr;
    bool cancel_called = false;
    bool shielded = false;
    bool cancelled_caught = false;
    bool has_deadline = false;  // this is a deadline_scope

    void link_under(scope_node* p) noexcept {
        parent = p;
        prev_sibling = nullptr;
        next_sibling = p->first_child;
        if (next_sibling) next_sibling->prev_sibling = this;
        p->first_child = this;
    }
    void unlink() noexcept {
        if (!parent) return;
        if (prev_sibling) prev_sibling->next_sibling = next_sibling;
        else parent->first_child = next_sibling;
        if (next_sibling) next_sibling->prev_sibling = prev_sibling;
        parent = prev_sibling = next_sibling = nullptr;
    }
};

struct chain {
    scheduler* sched = nullptr;
    scope_node* scope = nullptr;
    waiter_base* waiter = nullptr;
    /// Called (from final_suspend of the chain's outermost frame) when the chain finishes.
    void (*on_complete)(chain*) noexcept = nullptr;

    inline bool cancel_requested();

    /// Parks the chain on `w` until it is woken or cancelled.
    void park(waiter_base* w) noexcept { waiter = w; }
    void unpark() noexcept { waiter = nullptr; }

    /// Makes `s` the innermost scope of this chain.
    void enter(scope_node* s) noexcept {
        s->link_under(scope);
        scope->attached = nullptr;
        s->attached = this;
        scope = s;
    }
    /// Leaves the innermost scope `s` (which must be this chain's innermost).
    void leave(scope_node* s) noexcept {
        scope = s->parent;
        scope->attached = this;
        s->attached = nullptr;
        s->unlink();
    }
};

inline void wake_for_cancel(chain* c) noexcept {
    if (waiter_base* w = c->waiter) {
        c->waiter = nullptr;
        w->cancel_fn(w);
    }
}

inline void deliver_cancel(scope_node* s) noexcept {
    if (s->attached) wake_for_cancel(s->attached);
    // Children are linked newest first; wake them oldest first, so tasks
    // cancelled together resume in the order they were started.
    scope_node* child = s->first_child;
    while (child && child->next_sibling) child = child->next_sibling;
    for (; child; child = child->prev_sibling) {
        if (!child->shielded && !child->cancel_called) deliver_cancel(child);
    }
}

/// Cancels scope `s` (idempotent): level-triggered from now on.
inline void cancel_scope_node(scope_node* s) noexcept {
    if (s->cancel_called) return;
    s->cancel_called = true;
    deliver_cancel(s);
}

class scheduler {
public:
    explicit scheduler(bool virtual_time) noexcept
        : virtual_time_(virtual_time), virtual_now_(clock::now()) {}
    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    clock::time_point now() const noexcept { return virtual_time_ ? virtual_now_ : clock::now(); }
    bool virtual_time() const noexcept { return virtual_time_; }

    /// Resumes `h` and then whatever finishing frames hand over via next_.
    void resume(std::coroutine_handle<> h) noexcept {
        const std::coroutine_handle<> outer = running_;
        for (;;) {
            next_ = nullptr;
            running_ = h;
            h.resume();
            if (!next_) break;
            h = next_;
        }
        running_ = outer;
    }

    /// Queues a suspended coroutine to be resumed by the next drain.
    void schedule(std::coroutine_handle<> h) { push_ready(h.address()); }

    void push_ready(void* entry) {
        ready_.push(entry);
        if (!drain_requested_) {
            drain_requested_ = true;
            request_drain_(this);
        }
    }

    void add_timer(timer_node* n) { timers_.push(n); }
    void remove_timer(timer_node* n) noexcept {
        if (n->queued()) timers_.remove(n);
    }

    /// Fires every timer whose deadline is at or before `t`.
    void fire_due_timers(clock::time_point t) noexcept {
        while (!timers_.empty() && timers_.top()->deadline <= t) {
            timer_node* n = timers_.pop();
            n->fire(n);
        }
    }

    std::coroutine_handle<> next_{};  // trampoline slot, see the header comment
    std::coroutine_handle<> running_{};  // the frame this scheduler resumed last and is still inside (its chain runs)
    scope_node root_scope_;           // parent of every spawned task's root scope
    std::unordered_map<const void*, std::string> task_names_;  // spawned task -> name, for named tasks only

protected:
    void (*request_drain_)(scheduler*) = nullptr;
    ready_queue ready_;
    timer_heap timers_;
    bool drain_requested_ = false;
    bool virtual_time_;
    clock::time_point virtual_now_;
};

/// A scope with a deadline. The deadline joins the timer heap lazily, at the
/// first suspension inside the scope: a scope whose operand never suspends
/// costs no heap operation.
struct deadline_scope : scope_node, timer_node {
    deadline_scope() noexcept {
        has_deadline = true;
        deadline = clock::time_point::max();
        fire = &on_deadline;
    }
    static void on_deadline(timer_node* n) noexcept { cancel_scope_node(static_cast<deadline_scope*>(n)); }
};

/// Whether `s` is cancelled; a passed deadline cancels it now, a pending one
/// is armed on the timer heap (this runs at every suspension).
inline bool scope_expired(scope_node* s, scheduler& sched) {
    if (s->cancel_called) return true;
    if (s->has_deadline) {
        auto* d = static_cast<deadline_scope*>(s);
        if (d->deadline != clock::time_point::max()) {
            if (d->deadline <= sched.now()) {
                cancel_scope_node(s);
                return true;
            }
            if (!d->queued()) sched.add_timer(d);
        }
    }
    return false;
}

/// Whether a chain whose innermost scope is `s` would see a cancellation: a
/// scope on the path up to the first shielded one (inclusive) is cancelled.
inline bool scope_cancel_requested(scope_node* s, scheduler& sched) {
    for (; s; s = s->parent) {
        if (scope_expired(s, sched)) return true;
        if (s->shielded) return false;
    }
    return false;
}

inline bool chain::cancel_requested() { return scope_cancel_requested(scope, *sched); }

/// The scope a cancellation seen inside `from` belongs to: the outermost
/// cancelled scope on the path up to the first shielded scope (R2), or null.
inline scope_node* cancellation_owner(scope_node* from, scheduler& sched) {
    scope_node* owner = nullptr;
    for (scope_node* s = from; s; s = s->parent) {
        if (scope_expired(s, sched)) owner = s;
        if (s->shielded) break;
    }
    return owner;
}

}  // namespace corio::detail
