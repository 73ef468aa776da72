// corio/detail/scheduler.hpp: the machinery under event_loop and task<T>:
// the cancel-scope tree, chains, waiters and the scheduler core.
//
// How chains, scopes and frames hang together. One loop; task A runs a
// task group (child B) and, inside the group's body, awaits
// `timeout(1s, gather(f(), g()))`:
//
//   the scope tree (scope_node: parent, first_child, siblings, newest first)
//
//   root_scope_                    loop_root: the scheduler's own
//   └─ A  spawn_state              chain_root: A's root scope + chain A + A.frame
//      └─ group scope              inner: entered by chain A (task_group)
//         ├─ B  spawn_state        chain_root: the group child, a task of its own
//         └─ T  scope_record       inner: the timeout's, in a frame of chain A
//            ├─ F  child_slot      chain_root: gather child f(), its chain F
//            └─ G  child_slot      chain_root: gather child g(), its chain G
//
//   chain A (inside A's block)          chain A's frames (task<T> frames)
//     sched  -> the scheduler             A.frame <-- f1 <-- f2
//     scope  -> T, its innermost          each promise: ch = &A.ch, link = the
//     waiter -> what A is parked in,      frame awaiting it; A.frame's link is
//               or null                   root_bit (+ A's observers)
//
//   While A awaits the gather, f2 is suspended and chains F and G run; each
//   child's outermost frame (link = root_bit) hands its chain back to the
//   gather from its final_suspend. A chain's inner scopes form one line (each
//   is entered under the innermost); every other child of a scope is the
//   root of another chain.
//
// Vocabulary and invariants:
// - A *chain* is one line of execution: the stack of task<T> frames that a
//   spawned task, or one concurrent child of a combinator, runs. Every frame
//   of a chain points to its chain (promise_base::ch).
// - Cancel scopes form a tree. Each chain has exactly one innermost scope
//   (chain::scope). Every scope but the loop's root belongs to one chain: the
//   chain it is the root of (chain_root) or the chain that entered it
//   (inner_scope). Entering a scope on a chain makes the new scope a child of
//   the chain's innermost scope, so a scope is its chain's innermost exactly
//   when it has no child of kind `inner`.
// - Cancelling a scope marks it and wakes every chain suspended in its subtree
//   that is not behind a shielded scope. Waking never resumes anything
//   inline: the waiter unlinks itself and the chain is put on the ready queue.
// - A chain is "cancel requested" when a scope on its path to the first
//   shielded scope (inclusive) is cancelled, or its deadline has passed; that
//   is checked at every suspension (level-triggered cancellation).
// - chain::waiter is the suspension the chain is parked in, or null when the
//   chain is running, queued or parked somewhere cancellation cannot reach.
// - Costs in the nesting depth d: entering and leaving a scope are O(1);
//   cancelling one is O(its subtree), iterative; the owner of a cancellation
//   is found in O(d) once per unwinding (memoised, see owner_memo); only the
//   check at a suspension walks up to the first shield (O(d) per suspension).
// - scheduler::next_ is the trampoline slot: a finishing frame stores its
//   continuation there and returns to scheduler::resume, which resumes it.
//   This bounds stack depth even where symmetric transfer is not a tail call
//   (g++ -O0, ASan).
#pragma once

#include <bit>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <unordered_map>

#include "clock.hpp"
#include "ready_queue.hpp"
#include "timer_heap.hpp"
#include "wakeable.hpp"

namespace corio::detail {

class scheduler;
struct chain;

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
    bool has_deadline = false;  // this is a deadline_scope (next to cancel_called: the walk tests both)
    bool shielded = false;
    bool cancelled_caught = false;
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

    /// Whether the chain would see a cancellation now (every suspension asks: inlined).
    [[gnu::always_inline]] inline bool cancel_requested();

    /// Parks the chain on `w` until it is woken or cancelled.
    void park(waiter_base* w) noexcept { waiter = w; }
    void unpark() noexcept { waiter = nullptr; }

    /// Makes `s` the innermost scope of this chain.
    inline void enter(scope_node* s) noexcept;
    /// Leaves the innermost scope `s` (which must be this chain's innermost).
    void leave(scope_node* s) noexcept {
        scope = s->parent;
        s->unlink();
    }
};

enum class task_status : std::uint8_t { pending, running, done, failed, cancelled };

/// A chain together with its outermost scope and outermost frame: one block
/// per spawned task (spawn_state) or combinator child (child_root). The
/// scope finds its chain by layout; the outermost frame is marked in its
/// promise (promise_base::root_bit), whose final suspension then reports to
/// the chain's owner: the loop for a spawned task, the child's own
/// child_owner for a combinator child.
struct chain_root : scope_node {
    // Bits for spawn_state (a combinator child leaves them at their initial
    // values, except `spawned`); they fill scope_node's tail padding. Each
    // field's meaning and invariant:

    // How far the spawned task got. pending until its first step (a task
    // cancelled before it never runs and goes straight to cancelled); running
    // from then on; done, failed or cancelled once its outermost frame
    // finished (or the loop destroyed it: cancelled). Only moves forward.
    task_status status : 3 = task_status::pending;
    // Owners of this block: 2 at spawn (the running task and the join_handle).
    // The task's end drops one (event_loop::finish), the handle's reset the
    // other; the release() that reaches 0 destroys the frame and frees the
    // block. Never above 2.
    unsigned refs : 2 = 2;
    // The join_handle was dropped: nobody can take the result any more, so an
    // error is reported when the task fails (unless error_observed).
    bool detached : 1 = false;
    // An await took the result (value or error), or the handle reported the
    // error when dropped. Set once; a second await throws invalid_state_error.
    bool result_taken : 1 = false;
    // The scheduler's side table (task_names_) holds this task's name. Only
    // then is the table consulted; cleared when the loop detaches the block.
    bool named : 1 = false;
    // Someone else received the error (a task group, or the loop's report at
    // teardown): it is never reported again.
    bool error_observed : 1 = false;
    // This block is a spawn_state (a spawned task); else a combinator's
    // child_root. Set at construction, never changes: final_suspend picks
    // where the completion goes by it (the loop's complete_task, or the
    // child's own owner through child_root::report_done).
    bool spawned : 1 = false;

    chain ch;                         // the chain; ch.scope starts as this node
    std::coroutine_handle<> frame{};  // the outermost frame (null once destroyed)

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

struct child_root;

/// Whoever runs combinator children (the engine of child_chain.hpp, or any
/// other): the one function its children report to. A child records its
/// owner when it is bound (child_root::owner), so each child's completion
/// goes to the engine that started it, however many engines are alive on the
/// scheduler at once; nothing on the scheduler is written to start a child.
struct child_owner {
    void (*on_child_done)(child_root*) noexcept = nullptr;
};

/// A combinator child's chain_root: the block above plus the owner its
/// completion is dispatched to (see task.hpp's final_awaiter).
struct child_root : chain_root {
    child_owner* owner = nullptr;

    void report_done() noexcept { owner->on_child_done(this); }
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
/// scope the chain of the chain_root above it. O(depth): the hot paths know
/// their chain and never call it per frame (see deliver_cancel).
inline chain* owner_chain(scope_node* s) noexcept {
    while (s && s->kind == scope_kind::inner) s = s->parent;
    return s && s->kind == scope_kind::chain_root ? &static_cast<chain_root*>(s)->ch : nullptr;
}

/// Bumped whenever a scope is entered or cancelled: a cancellation_owner()
/// answer remembered under an older value may be stale.
inline thread_local std::uint64_t tls_scope_epoch = 1;

inline void chain::enter(scope_node* s) noexcept {
    s->link_under(scope);
    scope = s;
    ++tls_scope_epoch;
}

inline void wake_for_cancel(chain* c) noexcept {
    if (waiter_base* w = c->waiter) {
        c->waiter = nullptr;
        w->notify(w);
    }
}

/// Whether a cancellation of an ancestor goes on into `s` (and below).
inline bool reached_by_cancel(const scope_node* s) noexcept { return !s->shielded && !s->cancel_called; }

/// The oldest child of `s` a cancellation reaches, or null (children are
/// linked newest first).
inline scope_node* oldest_reached_child(scope_node* s) noexcept {
    scope_node* c = s->first_child;
    if (!c) return nullptr;
    while (c->next_sibling) c = c->next_sibling;
    while (c && !reached_by_cancel(c)) c = c->prev_sibling;
    return c;
}
inline scope_node* newer_reached_sibling(scope_node* s) noexcept {
    scope_node* c = s->prev_sibling;
    while (c && !reached_by_cancel(c)) c = c->prev_sibling;
    return c;
}

/// A scope is its chain's innermost exactly when it has no inner child: a
/// chain enters each new scope under its innermost one, and every other
/// child is the root of another chain.
inline bool is_innermost(const scope_node* s) noexcept {
    for (const scope_node* c = s->first_child; c; c = c->next_sibling)
        if (c->kind == scope_kind::inner) return false;
    return s->kind != scope_kind::loop_root;
}

/// Wakes every chain suspended in the subtree of `top` that the cancellation
/// reaches (not behind a shielded or already cancelled scope), oldest first,
/// so tasks cancelled together resume in the order they were started.
/// Iterative (any depth) and O(subtree): the chain of each scope visited is
/// carried down from the chain roots passed (a few levels remembered on the
/// way back up; beyond that, or for `top` without `top_chain`, it is looked
/// up only where a chain is to be woken).
inline void deliver_cancel(scope_node* top, chain* top_chain) noexcept {
    constexpr int remembered = 32;
    chain* saved[remembered];
    int roots = 0;  // chain roots entered below `top` on the current path
    chain* cur = top->kind == scope_kind::chain_root ? &static_cast<chain_root*>(top)->ch : top_chain;
    auto descend = [&](scope_node* n) noexcept {
        if (n->kind != scope_kind::chain_root) return;
        if (roots < remembered) saved[roots] = cur;
        ++roots;
        cur = &static_cast<chain_root*>(n)->ch;
    };
    auto ascend = [&](scope_node* n) noexcept {
        if (n->kind != scope_kind::chain_root) return;
        --roots;
        cur = roots < remembered ? saved[roots] : nullptr;
    };
    scope_node* s = top;
    for (;;) {
        if (is_innermost(s)) {
            chain* c = cur ? cur : owner_chain(s);
            if (c && c->scope == s) wake_for_cancel(c);
        }
        if (scope_node* child = oldest_reached_child(s)) {
            descend(child);
            s = child;
            continue;
        }
        for (;;) {
            if (s == top) return;
            scope_node* sib = newer_reached_sibling(s);
            ascend(s);
            if (sib) {
                descend(sib);
                s = sib;
                break;
            }
            s = s->parent;
        }
    }
}

/// Cancels scope `s` (idempotent): level-triggered from now on. `owner`,
/// when the caller knows it, is the chain `s` belongs to (saves a lookup).
inline void cancel_scope_node(scope_node* s, chain* owner = nullptr) noexcept {
    if (s->cancel_called) return;
    s->cancel_called = true;
    ++tls_scope_epoch;
    deliver_cancel(s, owner);
}

class scheduler {
public:
    explicit scheduler(bool virtual_time) noexcept : virtual_time_(virtual_time), virtual_now_(clock::now()) {}
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

    std::coroutine_handle<> next_{};     // trampoline slot, see the header comment
    std::coroutine_handle<> running_{};  // the frame this scheduler resumed last and is still inside (its chain runs)
    /// Completion of a spawned task's outermost frame (called from its
    /// final_suspend). A combinator child reports to its own owner instead
    /// (child_root::report_done): the scheduler knows no combinator.
    void complete_task(chain_root* r) noexcept { complete_task_(r); }
    scope_node root_scope_;                                    // parent of every spawned task's root scope
    std::unordered_map<const void*, std::string> task_names_;  // spawned task -> name, for named tasks only

protected:
    void (*complete_task_)(chain_root*) noexcept = nullptr;  // set once, by the event_loop this scheduler is
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

/// scope_expired() for a scope that was cancelled or has a deadline: out of
/// line, so that the walk below, which every suspension runs over every
/// scope up to the first shield, inlines and costs a plain scope one load
/// and one branch.
[[gnu::noinline]] inline bool scope_expired_slow(scope_node* s, scheduler& sched) {
    if (s->cancel_called) return true;
    auto* d = static_cast<deadline_scope*>(s);  // has_deadline
    if (d->deadline == clock::time_point::max()) return false;
    if (d->deadline <= sched.now()) {
        cancel_scope_node(s);
        return true;
    }
    if (!d->queued()) sched.add_timer(d);
    return false;
}

/// Whether `s` is cancelled; a passed deadline cancels it now, a pending one
/// is armed on the timer heap (this runs at every suspension).
inline bool scope_expired(scope_node* s, scheduler& sched) {
    if (!(s->cancel_called | s->has_deadline)) [[likely]]
        return false;
    return scope_expired_slow(s, sched);
}

/// Whether the walk below must look at `s`: it was cancelled, has a deadline
/// or is shielded. The three flags are adjacent bytes, read with one load (a
/// plain scope then costs the walk a test and a pointer chase).
inline bool scope_flagged(const scope_node* s) noexcept {
    static_assert(std::is_standard_layout_v<scope_node>);
    static_assert(offsetof(scope_node, has_deadline) == offsetof(scope_node, cancel_called) + 1 &&
                  offsetof(scope_node, shielded) == offsetof(scope_node, cancel_called) + 2 &&
                  offsetof(scope_node, cancelled_caught) == offsetof(scope_node, cancel_called) + 3);
    std::uint32_t w;  // the four flag bytes; cancelled_caught is masked out
    std::memcpy(&w, reinterpret_cast<const unsigned char*>(s) + offsetof(scope_node, cancel_called), sizeof w);
    constexpr std::uint32_t first_three = std::endian::native == std::endian::little ? 0x00ffffffu : 0xffffff00u;
    return (w & first_three) != 0;
}

/// Whether a chain whose innermost scope is `s` would see a cancellation: a
/// scope on the path up to the first shielded one (inclusive) is cancelled.
[[gnu::always_inline]] inline bool scope_cancel_requested(scope_node* s, scheduler& sched) {
    for (; s; s = s->parent) {
        if (!scope_flagged(s)) [[likely]]
            continue;
        if (scope_expired(s, sched)) return true;
        if (s->shielded) return false;
    }
    return false;
}

inline bool chain::cancel_requested() { return scope_cancel_requested(scope, *sched); }

/// The scope a cancellation seen inside `from` belongs to: the outermost
/// cancelled scope on the path up to the first shielded scope, or null.
inline scope_node* cancellation_owner(scope_node* from, scheduler& sched) {
    scope_node* owner = nullptr;
    for (scope_node* s = from; s; s = s->parent) {
        if (scope_expired(s, sched)) owner = s;
        if (s->shielded) break;
    }
    return owner;
}

/// What the last cancellation_owner(from, sched, c) saw above `from`: while a
/// cancellation unwinds a chain, each scope asks in turn, innermost first,
/// and the next one to ask is the parent of the last. Valid while nothing
/// was entered or cancelled since (the epoch).
struct owner_memo {
    const chain* c = nullptr;
    const scope_node* at = nullptr;  // the scope whose answer is remembered
    scope_node* above = nullptr;     // outermost cancelled scope strictly above `at`, up to the first shield
    std::uint64_t epoch = 0;
};
inline thread_local owner_memo tls_owner_memo;

/// cancellation_owner() for the chain `c` whose innermost scope is `from`:
/// O(depth) for the first scope of an unwinding to ask, O(1) for each of
/// the enclosing ones after it (so unwinding d nested scopes costs O(d)).
inline scope_node* cancellation_owner(scope_node* from, scheduler& sched, const chain* c) {
    owner_memo& m = tls_owner_memo;
    scope_node* above = nullptr;
    if (from->shielded) {
        // nothing above is seen through a shield
    } else if (m.c == c && m.at == from && m.epoch == tls_scope_epoch) {
        above = m.above;
    } else {
        for (scope_node* s = from->parent; s; s = s->parent) {
            if (scope_expired(s, sched)) above = s;
            if (s->shielded) break;
        }
    }
    if (scope_node* p = from->parent; p && !from->shielded)
        m = owner_memo{c, p, above == p ? nullptr : above, tls_scope_epoch};
    if (above) return above;
    return scope_expired(from, sched) ? from : nullptr;
}

}  // namespace corio::detail
