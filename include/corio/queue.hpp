// corio/queue.hpp: queue<T> (FIFO), priority_queue<T, Compare>, lifo_queue<T>.
//
// - queue<T>(maxsize): maxsize 0 means unbounded. `co_await q.put(v)` adds an
//   item, waiting while the queue is full; `T v = co_await q.get()` removes
//   one, waiting while it is empty. try_put(v) -> bool (false when full; v is
//   moved from only on success) and try_get() -> std::optional<T> never
//   suspend. size(), empty(), full(), maxsize(). T may be move-only.
// - priority_queue<T, Compare = std::greater<T>> pops the smallest item first
//   by default (asyncio.PriorityQueue); Compare has std::priority_queue's
//   meaning (the item that compares "less" than all others comes out last).
//   lifo_queue<T> pops the newest item first. Both share queue<T>'s API.
// - Suspends: put() when full, get() when empty, join() while items are
//   unfinished. Everything else never suspends. An operation that can finish
//   at once never suspends (and then may complete inside a cancelled scope).
// - Fair (FIFO, no barging): getters and putters are served in arrival order.
//   A blocked put hands its item into the queue the moment space appears; an
//   item arriving while getters wait is reserved for the oldest getter, which
//   takes it (the front item at that time) when it resumes. try_get() and
//   new get()s cannot take reserved items, and try_put() fails while putters
//   wait. size() counts reserved items until their getter resumes.
// - Cancellation: put(), get() and join() are cancellation points.
//   "put throws cancelled_error" means its item was NOT inserted, and "get
//   throws cancelled_error" means it took NO item: a getter that was woken
//   for an item and cancelled before it resumed leaves the item in the queue
//   for the next getter; a putter whose item was already inserted when its
//   cancellation arrived returns normally (its put took effect).
// - close(): later put()/try_put() throw queue_closed and every blocked
//   putter is woken with queue_closed (its item is not inserted); get() and
//   try_get() keep returning the items left and then throw queue_closed, and
//   every blocked getter is woken with queue_closed. No item is discarded.
// - task_done()/join(): each inserted item counts as unfinished until a
//   task_done() call; join() waits until none is unfinished (returns at once
//   if none is). task_done() with nothing unfinished throws std::logic_error.
// - Single loop; constructible anywhere. Waiter nodes (and a blocked put's
//   item) live in the awaiters, in the waiting coroutines' frames.
#pragma once

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <functional>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/fifo_store.hpp"
#include "detail/heap_store.hpp"
#include "detail/lifo_store.hpp"
#include "detail/scheduler.hpp"
#include "detail/wait_list.hpp"
#include "errors.hpp"
#include "task.hpp"

namespace corio {

/// The queue machinery shared by queue, priority_queue and lifo_queue;
/// `Store` decides which item get() takes.
template <class T, class Store>
class basic_queue {
    static_assert(std::is_move_constructible_v<T>, "corio queue items must be move-constructible");

public:
    class put_awaiter;
    class get_awaiter;
    class join_awaiter;

    /// maxsize 0 means unbounded.
    explicit basic_queue(std::size_t maxsize = 0) noexcept : maxsize_(maxsize) {}
    basic_queue(const basic_queue&) = delete;
    basic_queue& operator=(const basic_queue&) = delete;

    /// Adds `v`, waiting while the queue is full. Cancellation point.
    /// queue_closed when the queue is (or gets) closed.
    [[nodiscard]] put_awaiter put(T v) noexcept(std::is_nothrow_move_constructible_v<T>) {
        return put_awaiter(*this, std::move(v));
    }
    /// Removes and returns an item, waiting while the queue is empty.
    /// Cancellation point. queue_closed once closed and drained.
    [[nodiscard]] get_awaiter get() noexcept { return get_awaiter(*this); }
    /// Waits until every inserted item has been marked task_done(). Cancellation point.
    [[nodiscard]] join_awaiter join() noexcept { return join_awaiter(*this); }

    /// Adds an item if there is room and no putter waits; `v` is moved from
    /// only on success. Throws queue_closed when closed.
    template <class U = T>
    bool try_put(U&& v) {
        if (closed_) throw queue_closed("corio: try_put() on a closed queue");
        if (!putters_.empty() || !has_space()) return false;
        store_.push(std::forward<U>(v));
        ++unfinished_;
        pump();
        return true;
    }

    /// Removes an item if one is free; empty when none is. Throws
    /// queue_closed when closed and drained.
    std::optional<T> try_get() {
        if (store_.size() > reserved_) {
            std::optional<T> v(store_.pop());
            pump();
            return v;
        }
        if (closed_) throw queue_closed("corio: try_get() on a closed and drained queue");
        return std::nullopt;
    }

    /// Marks one item processed; std::logic_error with nothing unfinished.
    void task_done() {
        if (unfinished_ == 0) throw std::logic_error("corio: queue::task_done() called more times than items were put");
        if (--unfinished_ == 0) wake_all(joiners_, wait_result::waiting);
    }

    /// Closes the queue: puts fail, gets drain what is left, every blocked
    /// putter and getter is woken with queue_closed. Idempotent.
    void close() noexcept {
        closed_ = true;
        wake_all(putters_, wait_result::closed);
        wake_all(getters_, wait_result::closed);
    }

    /// Items in the queue.
    std::size_t size() const noexcept { return store_.size(); }
    /// True when no item is queued.
    bool empty() const noexcept { return store_.size() == 0; }
    /// True when bounded and holding maxsize() items.
    bool full() const noexcept { return maxsize_ != 0 && store_.size() >= maxsize_; }
    /// The bound (0: unbounded).
    std::size_t maxsize() const noexcept { return maxsize_; }
    /// True once close() was called.
    bool closed() const noexcept { return closed_; }
    /// Items put and not yet marked task_done().
    std::size_t unfinished() const noexcept { return unfinished_; }
    /// Tasks waiting in get().
    std::size_t getters() const noexcept { return getters_.size(); }
    /// Tasks waiting in put().
    std::size_t putters() const noexcept { return putters_.size(); }

private:
    /// How a waiter's operation stands; set by the queue when it wakes the
    /// waiter, or by the awaiter itself, and read by await_resume and the
    /// awaiter's destructor.
    enum class wait_result : std::uint8_t {
        waiting,    // not decided yet (parked, or not started)
        served,     // put: its item was inserted; get: an item is reserved for it
        closed,     // the queue is (or got) closed: queue_closed
        cancelled,  // its scope was cancelled before it was served: cancelled_error
        free_item,  // get: a free item was there at once (await_ready), take it
        taken,      // get: it took its item (nothing reserved is left to give back)
    };
    struct waiter : detail::parked {
        wait_result result = wait_result::waiting;
    };

    bool has_space() const noexcept { return maxsize_ == 0 || store_.size() < maxsize_; }

    static void wake_all(detail::wait_list& l, wait_result result) noexcept {
        while (detail::wait_node* n = l.pop_front()) {
            auto* w = static_cast<waiter*>(static_cast<detail::parked*>(n));
            w->result = result;
            w->wake();
        }
    }

    /// Moves blocked putters' items in while there is room, then reserves
    /// free items for blocked getters, oldest first.
    inline void pump();

    static void on_cancel(detail::waiter_base* w) noexcept {
        auto* self = static_cast<waiter*>(static_cast<detail::parked*>(w));
        self->result = wait_result::cancelled;
        self->ch->sched->schedule(self->h);
    }

    Store store_;
    std::size_t maxsize_;
    std::size_t reserved_ = 0;  // items promised to woken getters not yet resumed
    std::size_t unfinished_ = 0;
    bool closed_ = false;
    detail::wait_list putters_;
    detail::wait_list getters_;
    detail::wait_list joiners_;
};

/// What put() returns: waits (FIFO) for room, then puts the item.
template <class T, class Store>
class [[nodiscard]] basic_queue<T, Store>::put_awaiter : basic_queue<T, Store>::waiter {
public:
    /// A put of `v` into `q`.
    put_awaiter(basic_queue& q, T&& v) noexcept(std::is_nothrow_move_constructible_v<T>)
        : q_(&q), item_(std::move(v)) {}
    /// Movable until the await starts.
    put_awaiter(put_awaiter&&) = default;  // movable until started (parked asserts it)
    put_awaiter& operator=(const put_awaiter&) = delete;

    /// Awaiter protocol: puts at once when there is room and no putter waits (ready to throw queue_closed when closed).
    bool await_ready() {
        if (q_->closed_) {
            this->result = wait_result::closed;
            return true;
        }
        if (q_->putters_.empty() && q_->has_space()) {
            q_->store_.push(std::move(item_));
            ++q_->unfinished_;
            this->result = wait_result::served;
            q_->pump();
            return true;
        }
        return false;
    }

    /// Awaiter protocol: parks the caller (FIFO) until it is woken or its scope is cancelled.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (this->park_on(caller, q_->putters_, &on_cancel)) return true;
        this->result = wait_result::cancelled;
        return false;
    }

    /// Awaiter protocol: returns once the item is in; queue_closed or cancelled_error otherwise.
    void await_resume() const {
        if (this->result == wait_result::served) return;  // inserted (even if cancelled since)
        if (this->result == wait_result::closed) throw queue_closed("corio: put() on a closed queue");
        throw cancelled_error{};
    }

private:
    friend class basic_queue;
    static void on_cancel(detail::waiter_base* w) noexcept {
        auto* self = static_cast<put_awaiter*>(static_cast<detail::parked*>(w));
        self->q_->putters_.erase(self);
        basic_queue::on_cancel(w);
    }

    basic_queue* q_;
    T item_;
};

/// What get() returns: waits (FIFO) for an item and yields it.
template <class T, class Store>
class [[nodiscard]] basic_queue<T, Store>::get_awaiter : basic_queue<T, Store>::waiter {
public:
    /// A get from `q`.
    explicit get_awaiter(basic_queue& q) noexcept : q_(&q) {}
    /// Movable until the await starts.
    get_awaiter(get_awaiter&&) = default;  // movable until started (parked asserts it)
    get_awaiter& operator=(const get_awaiter&) = delete;
    ~get_awaiter() {
        if (this->linked()) {
            this->unlink();
        } else if (this->result == wait_result::served) {  // reserved, never resumed: free the item
            --q_->reserved_;
            q_->pump();
        }
    }

    /// Awaiter protocol: takes an item at once when one is queued and no getter waits.
    bool await_ready() noexcept {
        // Items beyond the reserved ones are free (no getter can be waiting then).
        if (q_->store_.size() > q_->reserved_) {
            this->result = wait_result::free_item;
            return true;
        }
        if (q_->closed_) {
            this->result = wait_result::closed;
            return true;
        }
        return false;
    }

    /// Awaiter protocol: parks the caller (FIFO) until it is woken or its scope is cancelled.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (this->park_on(caller, q_->getters_, &on_cancel)) return true;
        this->result = wait_result::cancelled;
        return false;
    }

    /// Awaiter protocol: the item; queue_closed once closed and drained, cancelled_error when cancelled.
    T await_resume() {
        switch (this->result) {
            case wait_result::served:  // an item was reserved for us
                --q_->reserved_;
                this->result = wait_result::taken;
                if (this->ch->cancel_requested()) {
                    q_->pump();  // the item goes to the next getter, or stays
                    throw cancelled_error{};
                }
                return take();
            case wait_result::free_item: return take();
            case wait_result::closed: throw queue_closed("corio: get() on a closed and drained queue");
            default: throw cancelled_error{};
        }
    }

private:
    friend class basic_queue;
    T take() {
        this->result = wait_result::taken;
        T v = q_->store_.pop();
        q_->pump();
        return v;
    }
    static void on_cancel(detail::waiter_base* w) noexcept {
        auto* self = static_cast<get_awaiter*>(static_cast<detail::parked*>(w));
        self->q_->getters_.erase(self);
        basic_queue::on_cancel(w);
    }

    basic_queue* q_;
};

/// What join() returns: waits until every item put was marked task_done().
template <class T, class Store>
class [[nodiscard]] basic_queue<T, Store>::join_awaiter : basic_queue<T, Store>::waiter {
public:
    /// A join of `q`.
    explicit join_awaiter(basic_queue& q) noexcept : q_(&q) {}
    /// Movable until the await starts.
    join_awaiter(join_awaiter&&) = default;  // movable until started (parked asserts it)
    join_awaiter& operator=(const join_awaiter&) = delete;

    /// Awaiter protocol: ready when no item is unfinished.
    bool await_ready() const noexcept { return q_->unfinished_ == 0; }
    /// Awaiter protocol: parks the caller (FIFO) until it is woken or its scope is cancelled.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (this->park_on(caller, q_->joiners_, &on_cancel)) return true;
        this->result = wait_result::cancelled;
        return false;
    }
    /// Awaiter protocol: returns once the item is in; queue_closed or cancelled_error otherwise.
    void await_resume() const {
        if (this->result == wait_result::cancelled) throw cancelled_error{};
    }

private:
    static void on_cancel(detail::waiter_base* w) noexcept {
        auto* self = static_cast<join_awaiter*>(static_cast<detail::parked*>(w));
        self->q_->joiners_.erase(self);
        basic_queue::on_cancel(w);
    }

    basic_queue* q_;
};

template <class T, class Store>
void basic_queue<T, Store>::pump() {
    while (!putters_.empty() && has_space()) {
        auto* p = static_cast<put_awaiter*>(static_cast<waiter*>(static_cast<detail::parked*>(putters_.pop_front())));
        store_.push(std::move(p->item_));
        ++unfinished_;
        p->result = wait_result::served;
        p->wake();
    }
    while (!getters_.empty() && store_.size() > reserved_) {
        auto* g = static_cast<waiter*>(static_cast<detail::parked*>(getters_.pop_front()));
        ++reserved_;
        g->result = wait_result::served;
        g->wake();
    }
}

/// FIFO queue (asyncio.Queue).
template <class T>
class queue : public basic_queue<T, detail::fifo_store<T>> {
public:
    using basic_queue<T, detail::fifo_store<T>>::basic_queue;
};

/// Smallest item first by default (asyncio.PriorityQueue); see the header comment.
template <class T, class Compare = std::greater<T>>
class priority_queue : public basic_queue<T, detail::heap_store<T, Compare>> {
public:
    using basic_queue<T, detail::heap_store<T, Compare>>::basic_queue;
};

/// Newest item first (asyncio.LifoQueue).
template <class T>
class lifo_queue : public basic_queue<T, detail::lifo_store<T>> {
public:
    using basic_queue<T, detail::lifo_store<T>>::basic_queue;
};

}  // namespace corio
