// corio/pool.hpp: pool<T>, a bounded pool of async resources (connections).
//
//   corio::pool<conn> p([&]() -> corio::task<conn> { co_return co_await connect(url); },
//                       corio::pool_options<conn>{.max_size = 8});
//   {
//       auto c = co_await p.acquire();   // pool<conn>::lease, move-only
//       co_await c->query("...");        // c-> and *c reach the resource
//   }                                    // returned here (or c.discard() if broken)
//   co_await p.close();
//
// - Bounded: at most max_size resources exist at once, counting those being
//   created and those being closed. Resources are built by the factory (a
//   callable returning task<T>), on demand, and reused most-recently-returned
//   first.
// - acquire() suspends only when no idle resource can be handed out at once.
//   An uncontended acquire of an idle resource (nobody waiting) completes
//   without suspending and allocates nothing. Waiters are served strictly
//   FIFO: a returned resource goes straight to the oldest waiter (scheduled in
//   the same loop turn), and nobody arriving later can take it first.
// - Cancellation: acquire() is a cancellation point. A waiter cancelled while
//   queued leaves no trace; one cancelled after a resource was handed to it
//   (before it resumed) passes that resource to the next waiter. Creations,
//   health checks and closes run as the pool's own background jobs (spawned
//   tasks that close() awaits), never in the acquiring task: cancelling an
//   acquire never abandons a half-made resource; it finishes and goes to the
//   next waiter or idle. Factory errors go to the oldest waiter (creations
//   are started for waiters in FIFO order), free the slot, and affect nobody
//   else.
// - Limits: max_idle_time (a resource idle that long is closed by a reaper
//   job, down to min_idle); max_lifetime (a resource older than that is closed
//   instead of reused when it is returned or found idle); check (a callable
//   T& -> task<bool>, run on a resource idle longer than check_after before it
//   is handed out; false or an exception discards it and the acquire goes on
//   with another or a new one); min_idle (creations are started to keep that
//   many idle once the pool is in use).
// - Closing a resource: a T with aclose() is closed by awaiting aclose()
//   (shielded) in a background job of the pool; a T without it is destroyed.
//   An error from aclose() is reported to the loop's exception handler (the
//   resource is dropped either way). A lease's destructor cannot co_await, so
//   a resource it returns that must be closed (discarded, too old, or the
//   pool is closing) is handed to such a job.
// - close(): acquire() throws invalid_state_error from then on; queued
//   waiters are woken with invalid_state_error; close waits until every lease
//   was returned and every background job ended, closes every resource, and
//   returns. A cancellation point (while it waits): a cancelled close leaves
//   the pool closing; awaiting close() again finishes the job.
// - Destroying a pool while leases are out is a programming error: a message
//   on stderr, and an assert unless NDEBUG is defined (with NDEBUG the
//   leases stay valid and their resources are closed when returned: the
//   pool's state outlives the pool object). Destroying an open pool with
//   idle resources closes them in background jobs if a loop is running
//   (destroys them otherwise).
// - A lease used after it was returned, discarded or moved from throws
//   invalid_state_error.
// - Single loop: a pool is used from the thread of one event loop. It can be
//   constructed anywhere, without a running loop.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "cancel.hpp"
#include "detail/scheduler.hpp"
#include "detail/intrusive_list.hpp"
#include "detail/wait_list.hpp"
#include "errors.hpp"
#include "loop.hpp"
#include "resource.hpp"
#include "sync.hpp"
#include "task.hpp"
#include "time.hpp"

namespace corio {

/// How a pool<T> sizes, ages and checks its resources.
template <class T>
struct pool_options {
    /// At most this many resources exist at once (>= 1).
    std::size_t max_size = 10;
    /// Keep at least this many idle once the pool is in use (<= max_size).
    std::size_t min_idle = 0;
    /// A resource idle this long is closed (max(): never).
    clock::duration max_idle_time = clock::duration::max();
    /// A resource older than this is closed instead of reused (max(): never).
    clock::duration max_lifetime = clock::duration::max();
    /// Health check: true when the resource is still good.
    std::function<task<bool>(T&)> check{};
    /// A resource idle longer than this is checked before it is handed out.
    clock::duration check_after = clock::duration::zero();
};

/// A snapshot of a pool's counters.
struct pool_stats {
    std::size_t size = 0;     ///< resources alive or being created
    std::size_t idle = 0;     ///< ready to be handed out
    std::size_t in_use = 0;   ///< leases out
    std::size_t waiters = 0;  ///< acquires waiting
    std::size_t created = 0;  ///< made by the factory, in total
    std::size_t closed = 0;   ///< closed (or destroyed), in total
};

template <class T>
class pool;

namespace detail {

template <class T>
struct pool_item : list_hook<> {  // linked while idle
    explicit pool_item(T&& v) : value(std::move(v)) {}
    T value;
    clock::time_point born{}, idle_since{};
};

template <class T>
class pool_waiter;

/// The state of a pool, shared by the pool object, its leases and its
/// background jobs (it outlives a pool destroyed too early: see ~pool).
template <class T>
class pool_state {
public:
    using item = pool_item<T>;
    using waiter = pool_waiter<T>;

    pool_state(std::function<task<T>()> f, pool_options<T> o) : factory_(std::move(f)), opt_(std::move(o)) {
        if (!factory_) throw std::invalid_argument("corio: pool needs a factory (got an empty callable)");
        if (opt_.max_size == 0) throw std::invalid_argument("corio: pool max_size must be at least 1, got 0");
        if (opt_.min_idle > opt_.max_size)
            throw std::invalid_argument("corio: pool min_idle (" + std::to_string(opt_.min_idle) +
                                        ") exceeds max_size (" + std::to_string(opt_.max_size) + ")");
        if (opt_.max_idle_time <= clock::duration::zero() || opt_.max_lifetime <= clock::duration::zero())
            throw std::invalid_argument("corio: pool max_idle_time and max_lifetime must be positive");
        if (opt_.check_after < clock::duration::zero())
            throw std::invalid_argument("corio: pool check_after must not be negative");
        timed_ = opt_.max_idle_time != clock::duration::max() || opt_.max_lifetime != clock::duration::max() ||
                 static_cast<bool>(opt_.check) || opt_.min_idle > 0;
    }
    pool_state(const pool_state&) = delete;
    pool_state& operator=(const pool_state&) = delete;
    ~pool_state() {
        while (item* it = pop_idle_oldest()) destroy(it);
    }

    // ---- the hot paths (acquire and return without waiting) ----

    /// An idle resource that can be handed out now without a check, when
    /// nobody waits; expired ones met on the way are closed.
    item* try_take() {
        if (!waiters_.empty()) return nullptr;
        if (!timed_) {
            item* it = pop_idle_newest();
            if (it) ++in_use_;
            return it;
        }
        return take_timed();
    }

    /// A lease gives its resource back (broken: close it instead of reusing it).
    void give_back(item* it, bool broken) {
        --in_use_;
        if (!broken && !closing_ && !timed_ && waiters_.empty()) {
            push_idle(it);
            return;
        }
        if (broken) start_close(it);
        else place(it);
        pump();  // a slot a synchronous close freed may serve a waiter
        after_change();
    }

    // ---- waiters ----

    /// Parks `w` at the back of the waiters (the prologue: false, and no
    /// trace, in a cancelled scope), then starts what it needs.
    template <class P>
    bool enqueue(waiter* w, std::coroutine_handle<P> caller) {
        if (!w->park_on(caller, waiters_, &waiter::on_cancel)) return false;
        pump();
        return true;
    }
    void cancel_waiter(waiter* w) noexcept { waiters_.erase(w); }
    /// A waiter that was handed `it` was cancelled before it resumed.
    void pass_on(item* it) {
        --in_use_;
        place(it);
        pump();
        after_change();
    }

    // ---- close ----

    task<void> close();
    /// The pool object is gone; leases or jobs may still hold this state.
    void orphan();

    bool closing() const noexcept { return closing_; }
    pool_stats stats() const noexcept {
        return pool_stats{alive_ + creating_, idle_.size(), in_use_, waiters_.size(), created_, closed_};
    }
    std::size_t in_use() const noexcept { return in_use_; }

private:
    item* take_timed();
    void place(item* it);
    void pump();
    void grant(waiter* w, item* it);
    void fail_front(std::exception_ptr e);
    void fail_all_waiters();
    void start_close(item* it);
    void start_job(task<void> job);
    void job_done() noexcept;
    void after_change() {
        if (closing_) quiet_.set();
        maybe_delete();
    }
    void maybe_delete() noexcept {
        if (orphaned_ && in_use_ == 0 && jobs_ == 0) delete this;
    }
    void ensure_reaper();
    bool needs_check(const item* it, clock::time_point t) const {
        return opt_.check && t - it->idle_since > opt_.check_after;
    }
    bool too_old(const item* it, clock::time_point t) const {
        return opt_.max_lifetime != clock::duration::max() && t - it->born >= opt_.max_lifetime;
    }

    task<void> create_job();
    task<void> check_job(item* it);
    task<void> close_job(item* it);
    task<void> reap_job();
    task<void> close_now(item* it);

    /// Every job holds one: the count drops however the job ends.
    struct job_guard {
        pool_state* s;
        ~job_guard() { s->job_done(); }
    };
    /// Destroys an item unless it was handed on (even when the job's frame
    /// is destroyed before it ran, with its loop).
    struct item_guard {
        pool_state* s;
        item* it;
        ~item_guard() {
            if (it) s->destroy(it);
        }
    };
    void destroy(item* it) noexcept {
        delete it;
        --alive_;
        ++closed_;
    }

    void push_idle(item* it) noexcept { idle_.push_front(it); }  // newest first
    void unlink_idle(item* it) noexcept { idle_.erase(it); }
    item* pop_idle_newest() noexcept { return idle_.pop_front(); }
    item* pop_idle_oldest() noexcept {
        item* it = idle_.back();
        if (it) unlink_idle(it);
        return it;
    }

    std::function<task<T>()> factory_;
    pool_options<T> opt_;
    wait_list waiters_;
    intrusive_list<item> idle_;  // newest first
    std::size_t alive_ = 0;      // created, not closed yet (idle, leased, checking or closing)
    std::size_t creating_ = 0;   // factory calls in flight
    std::size_t checking_ = 0;   // health checks in flight
    std::size_t in_use_ = 0;     // handed to a waiter or a lease
    std::size_t created_ = 0, closed_ = 0;
    std::size_t jobs_ = 0;  // background jobs alive
    cancel_scope* reaper_ = nullptr;
    bool reaper_running_ = false;
    bool timed_ = false;  // some option needs the clock or the slow paths
    bool closing_ = false;
    bool orphaned_ = false;
    event quiet_;  // set on every change while closing
};

/// The awaiter of pool<T>::acquire(): movable until awaited.
template <class T>
class [[nodiscard]] pool_waiter : public parked {
public:
    using item = pool_item<T>;

    explicit pool_waiter(pool_state<T>* s) noexcept : s_(s) {}
    pool_waiter(pool_waiter&& o) noexcept : s_(o.s_) {}  // only before it is awaited
    pool_waiter(const pool_waiter&) = delete;
    ~pool_waiter() {
        // Only when the waiting frame is destroyed while suspended.
        // A waiter still in the list unlinks itself (its hook).
        if (!linked() && state_ == state::granted) {
            try {
                s_->pass_on(got_);
            } catch (...) {
            }
        }
    }

    bool await_ready() {
        if (s_->closing()) {
            error_ = std::make_exception_ptr(invalid_state_error("corio: acquire() on a closed pool"));
            state_ = state::failed;
            return true;
        }
        got_ = s_->try_take();
        if (!got_) return false;
        state_ = state::taken;
        return true;
    }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (s_->enqueue(this, caller)) return true;
        state_ = state::cancelled;
        return false;
    }

    typename pool<T>::lease await_resume() {
        switch (state_) {
            case state::granted:
                ch->unpark();  // still parked since the hand-off
                state_ = state::taken;
                [[fallthrough]];
            case state::taken: return typename pool<T>::lease(s_, got_);
            case state::failed: std::rethrow_exception(error_);
            default:
                if (handed_) ch->unpark();
                throw cancelled_error{};
        }
    }

private:
    friend class pool_state<T>;
    enum class state : std::uint8_t { waiting, granted, taken, failed, cancelled };

    static void on_cancel(waiter_base* w) noexcept {
        auto* self = static_cast<pool_waiter*>(w);
        self->s_->cancel_waiter(self);
        self->state_ = state::cancelled;
        self->ch->sched->schedule(self->h);
    }
    /// Cancelled after a resource was handed over, before resuming (already
    /// scheduled): the resource goes to the next waiter.
    static void on_cancel_granted(waiter_base* w) noexcept {
        auto* self = static_cast<pool_waiter*>(w);
        self->state_ = state::cancelled;
        try {
            self->s_->pass_on(self->got_);
        } catch (...) {
        }
    }

    pool_state<T>* s_;
    item* got_ = nullptr;
    std::exception_ptr error_{};
    state state_ = state::waiting;
    bool handed_ = false;
};

}  // namespace detail

/// A bounded pool of async resources; see the header comment.
template <class T>
class pool {
public:
    /// The pool's configuration type.
    using options = pool_options<T>;
    class lease;

    /// `factory` is a callable returning task<T> (called once per resource).
    template <class F>
    requires std::is_invocable_r_v<task<T>, F&> explicit pool(F factory, options opt = {})
        : s_(new detail::pool_state<T>(std::function<task<T>()>(std::move(factory)), std::move(opt))) {}
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;
    ~pool() {
        if (s_->in_use() > 0) {
            std::fprintf(stderr,
                         "corio: pool destroyed with %zu lease(s) still out; return every lease and co_await "
                         "pool::close() before destroying a pool\n",
                         s_->in_use());
            assert(!"corio: pool destroyed with leases still out");
        }
        s_->orphan();
    }

    /// Waits (FIFO) for a resource and returns a lease on it. Cancellation point.
    [[nodiscard]] detail::pool_waiter<T> acquire() noexcept { return detail::pool_waiter<T>(s_); }

    /// Stops new acquires, waits for every lease and background job, closes
    /// every resource. Cancellation point while it waits.
    task<void> close() { return s_->close(); }

    /// Counters of the pool at this moment.
    pool_stats stats() const noexcept { return s_->stats(); }

private:
    detail::pool_state<T>* s_;
};

/// One resource taken from a pool; gives it back when destroyed. Move-only.
template <class T>
class [[nodiscard]] pool<T>::lease {
public:
    lease() noexcept = default;
    /// Takes over `o`'s resource; `o` becomes empty.
    lease(lease&& o) noexcept : s_(std::exchange(o.s_, nullptr)), it_(std::exchange(o.it_, nullptr)) {}
    /// Gives back this lease's resource, then takes over `o`'s.
    lease& operator=(lease&& o) noexcept {
        if (this != &o) {
            release();
            s_ = std::exchange(o.s_, nullptr);
            it_ = std::exchange(o.it_, nullptr);
        }
        return *this;
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() { release(); }

    /// The resource (invalid_state_error on an empty lease).
    T& operator*() const { return checked()->value; }
    /// The resource (invalid_state_error on an empty lease).
    T* operator->() const { return &checked()->value; }
    /// The resource (invalid_state_error on an empty lease).
    T& get() const { return checked()->value; }

    /// Gives the resource back now for reuse (no-op on an empty lease).
    void release() noexcept {
        if (auto* it = std::exchange(it_, nullptr)) give(it, false);
    }
    /// Gives the resource back as broken: the pool closes it (awaiting its
    /// aclose() if it has one) and makes a replacement on demand.
    void discard() {
        give(checked(), true);
        it_ = nullptr;
    }
    /// Holds a resource (not returned, discarded or moved from).
    explicit operator bool() const noexcept { return it_ != nullptr; }

private:
    /// @cond
    friend class detail::pool_waiter<T>;
    /// @endcond
    lease(detail::pool_state<T>* s, detail::pool_item<T>* it) noexcept : s_(s), it_(it) {}

    detail::pool_item<T>* checked() const {
        if (!it_) [[unlikely]]
            throw invalid_state_error("corio: pool lease used after it was returned, discarded or moved from");
        return it_;
    }
    void give(detail::pool_item<T>* it, bool broken) noexcept {
        try {
            s_->give_back(it, broken);
        } catch (...) {
            // Only a failed spawn on a closed loop lands here; the item was dealt with.
        }
    }

    detail::pool_state<T>* s_ = nullptr;
    detail::pool_item<T>* it_ = nullptr;
};

// ---------------------------------------------------------------------------
// pool_state, the slow paths

namespace detail {

template <class T>
pool_item<T>* pool_state<T>::take_timed() {
    const clock::time_point t = now();
    while (item* it = idle_.front()) {
        if (too_old(it, t)) {
            unlink_idle(it);
            start_close(it);
            continue;
        }
        if (needs_check(it, t)) return nullptr;  // the slow path checks it
        unlink_idle(it);
        ++in_use_;
        if (idle_.size() < opt_.min_idle) pump();
        return it;
    }
    return nullptr;
}

/// A resource is available (new, returned, or checked): to the oldest
/// waiter, or idle; closed instead when it is too old or the pool closes.
template <class T>
void pool_state<T>::place(item* it) {
    if (closing_ || (timed_ && too_old(it, now()))) {
        start_close(it);
        return;
    }
    if (!waiters_.empty()) {
        grant(static_cast<waiter*>(static_cast<parked*>(waiters_.front())), it);
        return;
    }
    if (timed_) it->idle_since = now();
    push_idle(it);
    ensure_reaper();
}

/// Matches idle resources to waiters and starts the creations and checks
/// the waiters (and min_idle) need. Never resumes anything inline.
template <class T>
void pool_state<T>::pump() {
    if (closing_) return;
    const clock::time_point t = timed_ ? now() : clock::time_point{};
    while (!waiters_.empty() && idle_.front()) {
        item* it = pop_idle_newest();
        if (timed_ && too_old(it, t)) {
            start_close(it);
        } else if (timed_ && needs_check(it, t)) {
            ++checking_;
            start_job(check_job(it));
        } else {
            grant(static_cast<waiter*>(static_cast<parked*>(waiters_.front())), it);
        }
    }
    const std::size_t deficit = opt_.min_idle > idle_.size() ? opt_.min_idle - idle_.size() : 0;
    while (creating_ + checking_ < waiters_.size() + deficit && alive_ + creating_ < opt_.max_size) {
        ++creating_;
        start_job(create_job());
    }
}

template <class T>
void pool_state<T>::grant(waiter* w, item* it) {
    waiters_.erase(w);
    ++in_use_;
    w->got_ = it;
    w->state_ = waiter::state::granted;
    w->handed_ = true;
    w->notify = &waiter::on_cancel_granted;
    w->ch->sched->schedule(w->h);
}

template <class T>
void pool_state<T>::fail_front(std::exception_ptr e) {
    auto* w = static_cast<waiter*>(static_cast<parked*>(waiters_.pop_front()));
    if (!w) return;
    w->error_ = std::move(e);
    w->state_ = waiter::state::failed;
    w->wake();
}

template <class T>
void pool_state<T>::fail_all_waiters() {
    while (!waiters_.empty())
        fail_front(
            std::make_exception_ptr(invalid_state_error("corio: the pool was closed while this acquire() waited")));
}

template <class T>
void pool_state<T>::start_close(item* it) {
    if constexpr (closeable<T>) {
        if (running_loop()) {
            start_job(close_job(it));
            return;
        }
    }
    destroy(it);  // nothing to await (or no loop left to await it on)
}

template <class T>
void pool_state<T>::start_job(task<void> job) {
    ++jobs_;
    try {
        current_loop().spawn(std::move(job), "corio pool job");
    } catch (...) {
        --jobs_;
        throw;
    }
}

template <class T>
void pool_state<T>::job_done() noexcept {
    --jobs_;
    after_change();  // may delete this: the last thing a job does
}

template <class T>
task<void> pool_state<T>::close_now(item* it) {
    item_guard owned{this, it};
    chain* c = co_await this_chain{};
    std::exception_ptr err;
    try {
        co_await shield(it->value.aclose());
    } catch (...) {
        err = std::current_exception();
    }
    owned.it = nullptr;
    destroy(it);
    if (err) detail::loop_access::loop_of(*c->sched).report_unhandled(err, "corio pool: aclose()");
}

template <class T>
task<void> pool_state<T>::close_job(item* it) {
    job_guard guard{this};
    item_guard owned{this, it};
    owned.it = nullptr;  // close_now owns it from here
    if constexpr (closeable<T>) co_await close_now(it);
    else destroy(it);
    pump();
}

template <class T>
task<void> pool_state<T>::create_job() {
    job_guard guard{this};
    std::optional<T> v;
    std::exception_ptr err;
    bool cancelled = false;
    {
        struct count_guard {
            std::size_t& n;
            ~count_guard() { --n; }
        } creating{creating_};
        try {
            v.emplace(co_await factory_());
        } catch (...) {
            cancelled = current_exception_is_cancellation();
            err = std::current_exception();
        }
    }
    if (v) {
        auto* it = new item(std::move(*v));
        ++alive_;
        ++created_;
        if (timed_) it->born = now();
        place(it);
    } else if (!cancelled) {
        fail_front(std::move(err));
        pump();
    }
}

template <class T>
task<void> pool_state<T>::check_job(item* it) {
    job_guard guard{this};
    item_guard owned{this, it};
    struct count_guard {
        std::size_t& n;
        ~count_guard() { --n; }
    };
    bool ok = false;
    {
        count_guard checking{checking_};
        try {
            ok = co_await opt_.check(it->value);
        } catch (...) {
        }
    }
    owned.it = nullptr;
    if (ok) {
        it->idle_since = now();
        place(it);
    } else {
        if constexpr (closeable<T>) co_await close_now(it);
        else destroy(it);
        pump();
    }
}

template <class T>
void pool_state<T>::ensure_reaper() {
    if (reaper_running_ || opt_.max_idle_time == clock::duration::max() || idle_.size() <= opt_.min_idle) return;
    reaper_running_ = true;
    start_job(reap_job());
}

/// Closes resources idle for max_idle_time, oldest first, down to min_idle.
template <class T>
task<void> pool_state<T>::reap_job() {
    struct reaper_guard {
        pool_state* s;
        ~reaper_guard() {
            s->reaper_ = nullptr;
            s->reaper_running_ = false;
            s->job_done();
        }
    } guard{this};
    while (!closing_ && idle_.size() > opt_.min_idle) {
        const clock::time_point due = saturating_add(idle_.back()->idle_since, opt_.max_idle_time);
        if (now() < due) {
            cancel_scope sc;
            reaper_ = &sc;
            co_await sc.run(sleep_until(due));
            reaper_ = nullptr;
            continue;
        }
        item* it = pop_idle_oldest();
        if constexpr (closeable<T>) co_await close_now(it);
        else destroy(it);
        pump();
    }
}

template <class T>
task<void> pool_state<T>::close() {
    if (!closing_) {
        closing_ = true;
        fail_all_waiters();
        if (reaper_) reaper_->cancel();
        while (item* it = pop_idle_oldest()) start_close(it);
    }
    while (in_use_ > 0 || jobs_ > 0) {
        quiet_.clear();
        co_await quiet_.wait();
    }
}

template <class T>
void pool_state<T>::orphan() {
    orphaned_ = true;
    if (!closing_) {
        closing_ = true;
        fail_all_waiters();
        if (reaper_) reaper_->cancel();
        while (item* it = pop_idle_oldest()) start_close(it);
    }
    maybe_delete();
}

}  // namespace detail
}  // namespace corio
