// corio/detail/scheduler.hpp: the machinery under event_loop and task<T>:
// the cancel-scope tree, chains, waiters and the scheduler core.
//
// Vocabulary and invariants:
// - A *chain* is one line of execution: the stack of task<T> frames that a
//   spawned task, or one concurrent child of a combinator, runs. Every frame
//   of a chain points to its chain (promise_base::ch).
// - Cancel scopes form a tree. Each chain has exactly one innermost scope
//   (chain::scope). Every scope but the loop's root belongs to one chain: the
//   chain it is the root of (chain_root) or the chain that entered it
//   (owned_scope); chain_inside(s) is that chain when s is its innermost
//   scope. Entering a scope on a chain makes the new scope a child of the
//   chain's innermost scope.
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

/// A suspension that cancellation can interrupt. notify is called on the
/// loop thread when the chain's scope is cancelled: it must unlink the waiter
/// from whatever it waits on and arrange for the chain to resume (and then
/// throw cancelled_error), never resume inline.
using waiter_base = wakeable;

enum class scope_kind : unsigned char {
    loop_root,   // the loop's root scope: no chain of its own
    chain_root,  // the outermost scope of a chain (a spawned task, a combinator child): a chain_root
    inner,       // entered by a running chain (cancel scopes, task groups): an inner_scope
};

struct scope_node {
    scope_node* parent = nullptr;
    scope_node* first_child = nullptr;
    scope_node* prev_sibling = nullptr;
    scope_node* next_sibling = nullptr;
    bool cancel_called = false;
    bool shielded = false;
    bool cancelled_caught = false;
    bool has_deadline = false;  // this is a deadline_scope
    scope_kind kind = scope_kind::loop_root;

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

    inline bool cancel_requested();

    /// Parks the chain on `w` until it is woken or cancelled.
    void park(waiter_base* w) noexcept { waiter = w; }
    void unpark() noexcept { waiter = nullptr; }

    /// Makes `s` the innermost scope of this chain.
    void enter(scope_node* s) noexcept {
        s->link_under(scope);
        scope = s;
    }
    /// Leaves the innermost scope `s` (which must be this chain's innermost).
    void leave(scope_node* s) noexcept {
        scope = s->parent;
        s->unlink();
    }
};

enum class task_status : std::uint8_t { pending, running, done, failed, cancelled };

/// A chain together with its outermost scope and outermost frame: one block
/// per spawned task (spawn_state) or combinator child (child_slot). The
/// scope finds its chain by layout; the outermost frame is marked in its
/// promise (promise_base::root_bit), whose final suspension then calls the
/// owner's completion hook on the scheduler.
struct chain_root : scope_node {
    // Bits for spawn_state; they fill scope_node's tail padding.
    task_status status : 3 = task_status::pending;
    unsigned refs : 2 = 2;
    bool detached : 1 = false;
    bool result_taken : 1 = false;
    bool named : 1 = false;
    bool error_observed : 1 = false;  // a task group received the error: never report it
    bool spawned : 1 = false;         // a spawned task's (else a combinator child's)
    chain ch;
    std::coroutine_handle<> frame{};

    chain_root() noexcept { kind = scope_kind::chain_root; }

    static chain_root* from_chain(chain* c) noexcept {
        // offsetof on a class with a base: conditionally supported, and
        // supported by g++ and clang++ for classes without virtual bases.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
        constexpr std::size_t offset = offsetof(chain_root, ch);
#pragma GCC diagnostic pop
        return reinterpret_cast<chain_root*>(reinterpret_cast<char*>(c) - offset);
    }
};

/// A scope a running chain entered below its innermost one. It stores no
/// chain: every scope from it up to the next chain_root was entered by that
/// same chain (see owner_chain). A timeout's scope sits in the frame that
/// awaits it, so a million tasks under timeouts pay for every field here.
struct inner_scope : scope_node {
    inner_scope() noexcept { kind = scope_kind::inner; }
};

/// The chain a scope belongs to (null for the loop's root, or for an inner
/// scope that is not entered): a chain_root's own chain, or for an inner
/// scope the chain of the chain_root above it.
inline chain* owner_chain(scope_node* s) noexcept {
    while (s && s->kind == scope_kind::inner) s = s->parent;
    return s && s->kind == scope_kind::chain_root ? &static_cast<chain_root*>(s)->ch : nullptr;
}

/// The chain whose innermost scope is `s`, if any.
inline chain* chain_inside(scope_node* s) noexcept {
    chain* c = owner_chain(s);
    return c && c->scope == s ? c : nullptr;
}

inline void wake_for_cancel(chain* c) noexcept {
    if (waiter_base* w = c->waiter) {
        c->waiter = nullptr;
        w->notify(w);
    }
}

inline void deliver_cancel(scope_node* s) noexcept {
    if (chain* c = chain_inside(s)) wake_for_cancel(c);
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
            notify_due(n);
        }
    }

    /// Acts on a timer whose deadline came (it was just popped).
    static inline void notify_due(timer_node* n) noexcept;

    std::coroutine_handle<> next_{};  // trampoline slot, see the header comment
    std::coroutine_handle<> running_{};  // the frame this scheduler resumed last and is still inside (its chain runs)
    /// Completion of a chain's outermost frame, by who owns the chain: a
    /// spawned task (set by event_loop) or a combinator child (set by the
    /// combinator when it starts one). Called from final_suspend.
    void (*complete_task_)(chain_root*) noexcept = nullptr;
    void (*complete_child_)(chain_root*) noexcept = nullptr;
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
struct deadline_scope : inner_scope, timer_node {
    deadline_scope() noexcept {
        has_deadline = true;
        deadline = clock::time_point::max();
        owner_bits = scope_flag;
    }
};

inline void scheduler::notify_due(timer_node* n) noexcept {
    if (n->owner_bits & timer_node::scope_flag) {
        cancel_scope_node(static_cast<deadline_scope*>(n));
    } else {
        auto* w = static_cast<wake_timer*>(n);
        w->notify(w);
    }
}

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
