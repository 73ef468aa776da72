// corio/batcher.hpp: micro_batcher<In, Out>, request coalescing
// (DataLoader-style): many tasks submit one item each and get their own
// result, while the handler is called once per batch.
//
//   micro_batcher<int, std::string> b(lookup_many, 100, 5ms);
//   std::string s = co_await b.submit(42);   // from many tasks at once
//   ...
//   co_await b.close();
//
// - handler: task<std::vector<Out>>(std::vector<In>), called with a batch
//   and returning one output per input, in the same order.
// - A batch is sent to the handler when it holds max_size items, or
//   max_wait after its first item arrived, or at close(). At most
//   max_concurrent_batches handler calls run at once (default 1); a batch
//   that is ready while they are busy waits, unsent, for one to finish.
// - submit(x) returns a task<Out> (so submissions can be gathered); the
//   task resumes with this caller's output. Suspends until its batch has
//   been handled: a cancellation point.
// - When the handler returns, its call resumes the batch's callers itself,
//   one after the other in batch order (not through the ready queue): each
//   runs until its next suspension before the next one gets its output, and
//   all of them before anything the handler woke or that was queued
//   meanwhile. A resumed caller may submit again (to a later batch), close
//   the batcher, or cancel a caller of the same batch not resumed yet (that
//   one then ends with cancelled_error, its output dropped).
// - Errors: a handler that throws fails exactly the callers of that batch
//   with its exception; a handler that returns the wrong number of outputs
//   fails them with invalid_state_error. Other batches are unaffected.
// - Cancellation: a caller cancelled before its batch was sent is removed
//   from the batch (its item is never handled; a batch left empty is never
//   sent). A caller cancelled after its batch was sent throws
//   cancelled_error at once; its output is dropped and the handler call
//   goes on for the other callers.
// - close(): no more submissions (submit then throws invalid_state_error);
//   sends the partial batch at once and waits until every handler call has
//   finished and every caller has its result. Cancelling close() cancels
//   the handler calls still running (their callers get cancelled_error) and
//   waits for them. close() twice is fine.
// - Background work (the flush timer and the handler calls) runs as hidden
//   tasks that close() awaits: call close() before destroying a batcher
//   that was used. Destroying it without close() cancels that work (it
//   unwinds at the loop's next turn) and fails submissions still waiting
//   with invalid_state_error.
// - Bad input: max_size 0, max_concurrent_batches 0, a negative max_wait or
//   an empty handler throw std::invalid_argument.
#pragma once

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cancel.hpp"
#include "errors.hpp"
#include "loop.hpp"
#include "semaphore.hpp"
#include "stream.hpp"
#include "sync.hpp"
#include "task.hpp"
#include "time.hpp"

namespace corio {

/// Coalesces concurrent submit() calls into batched calls of one handler (see the header comment).
template <class In, class Out>
class micro_batcher {
public:
    /// The batch handler: takes the inputs of one batch, returns one output per input, in order.
    using handler_type = std::function<task<std::vector<Out>>(std::vector<In>)>;

    /// A batch is handed to `handler` when it holds `max_size` inputs or `max_wait` after its first one;
    /// at most `max_concurrent_batches` handler calls run at once.
    template <class Rep, class Period>
    micro_batcher(handler_type handler, std::size_t max_size, std::chrono::duration<Rep, Period> max_wait,
                  std::size_t max_concurrent_batches = 1) {
        if (!handler) throw std::invalid_argument("corio: micro_batcher needs a handler");
        detail::require_positive(max_size, "micro_batcher: max_size");
        detail::require_positive(max_concurrent_batches, "micro_batcher: max_concurrent_batches");
        if (max_wait < std::chrono::duration<Rep, Period>::zero())
            throw std::invalid_argument("corio: micro_batcher: max_wait must not be negative");
        s_ = std::make_shared<state>(std::move(handler), max_size, detail::to_clock_duration(max_wait),
                                     max_concurrent_batches);
    }
    micro_batcher(const micro_batcher&) = delete;
    micro_batcher& operator=(const micro_batcher&) = delete;
    ~micro_batcher() {
        if (s_) s_->abandon();
    }

    /// This caller's output for `x`, once its batch has been handled.
    task<Out> submit(In x) { return submit_impl(submit_ref(s_), std::move(x)); }

    /// Sends the partial batch and waits for every handler call. See above.
    task<void> close() { return close_impl(s_); }

    /// True once close() was called: submit() then throws.
    bool closed() const noexcept { return s_->closed; }
    /// Submissions waiting in the batch that is being collected.
    std::size_t pending() const noexcept { return s_->collecting ? s_->collecting->live : 0; }

private:
    struct batch;
    struct state;
    struct request;
    using handle = std::coroutine_handle<detail::task_promise<Out>>;

    /// A caller in a batch: its request (null once it was cancelled or
    /// resumed) and its frame (kept here, not in the frame, so the frame stays
    /// small; set as the caller parks).
    struct entry {
        request* r;
        std::coroutine_handle<> h;

        detail::chain* chain() const noexcept { return detail::promise_of(h).ch; }
        /// Through the ready queue: cancellation and the failure paths (which
        /// run in destructors and in notify, where nothing is resumed inline).
        void schedule() const noexcept {
            detail::chain* ch = chain();
            ch->unpark();
            ch->sched->schedule(h);
        }
        /// Inline: the handler call resuming its callers (see run_job).
        void resume() const noexcept {
            detail::chain* ch = chain();
            ch->unpark();
            ch->sched->resume(h);
        }
    };

    /// One submission; lives in the submitting coroutine's frame and is what
    /// that frame awaits. Kept small: a million of them may wait at once.
    /// Until it joins a batch it knows the state and its item; once joined,
    /// the batch and its position there (the item moved into the batch); once
    /// handled, where its output is: in the handler call's vector, which the
    /// caller reads as it is resumed inline, before the handler call goes on.
    struct request : detail::wakeable {
        request(state& s, In& x) noexcept : st(&s), item(&x) {}
        request(const request&) = delete;
        request& operator=(const request&) = delete;

        union {
            state* st;  // before joining
            batch* in;  // after: the batch it joined (collected, then sent)
            Out* out;   // once its batch was handled without an error: its output
        };
        union {
            In* item;           // before joining
            std::size_t index;  // after: its position in the batch
        };
        std::exception_ptr error;  // the handler's error, or the shared cancellation

        bool await_ready() const noexcept { return false; }
        bool await_suspend(handle caller) {
            detail::chain* ch;
            if (!detail::begin_park(caller, ch)) {
                error = detail::promise_base::shared_cancellation();
                return false;
            }
            entry& e = join(*st, *ch->sched);  // may throw (allocation, In's move): not parked yet
            detail::finish_park(ch, this, &on_cancel, e.h, caller);
            return true;
        }
        Out await_resume() {
            if (error) std::rethrow_exception(error);
            return std::move(*out);
        }

    private:
        entry& join(state& s, detail::scheduler& sched);
        static batch& make_room(state& s);
        static void on_first_or_full(state& s, detail::scheduler& sched, batch& b);
        static void on_cancel(detail::wakeable* w) noexcept {
            auto* r = static_cast<request*>(w);
            entry& e = r->in->reqs[r->index];
            e.r = nullptr;
            if (!r->in->sent) --r->in->live;
            r->error = detail::promise_base::shared_cancellation();
            e.schedule();
        }
    };

    /// A batch: collected in state::collecting, then owned by its handler
    /// call (the same object: joining it is the only per-request write, and
    /// the items are already in the order the handler takes them, so the
    /// handler call does not read every caller's frame before it starts).
    /// Both vectors are reserved together (reserve_more) and always have the
    /// same capacity, so joining grows them in one place, before anything
    /// changed, and the two push_backs then never reallocate.
    /// Requests still in it when it dies unsent are failed.
    struct batch {
        std::vector<entry> reqs;  // r null: that caller was cancelled
        std::vector<In> items;    // items[i] is reqs[i]'s
        std::size_t live = 0;     // non-null entries, until sent
        bool sent = false;

        void reserve_more(std::size_t max) {
            const std::size_t n = reqs.empty() ? std::min<std::size_t>(max, 4096) : 2 * reqs.capacity();
            reqs.reserve(n);
            items.reserve(n);
        }
        ~batch() {
            for (entry& e : reqs)
                if (e.r) {
                    e.r->error = std::make_exception_ptr(invalid_state_error(
                        "corio: micro_batcher destroyed before this submission's batch was handled"));
                    e.schedule();
                }
        }
    };

    struct state {
        state(handler_type h, std::size_t n, clock::duration w, std::size_t c)
            : handler(std::move(h)), max(n), wait(w), slots(static_cast<std::ptrdiff_t>(c)) {}
        handler_type handler;
        std::size_t max;
        clock::duration wait;
        semaphore slots;                    // concurrent handler calls
        std::unique_ptr<batch> collecting;  // made by the first submission after a dispatch
        clock::time_point first_at{};
        event changed;  // wakes the flusher
        bool closed = false;
        bool flusher_started = false;
        detail::crew work;
        std::size_t submits = 0;      // submit frames alive (loop thread only: no atomics)
        std::shared_ptr<state> keep;  // this state, while submits != 0

        std::size_t pending_live() const noexcept { return collecting ? collecting->live : 0; }

        void abandon() noexcept {
            closed = true;
            if (collecting) {
                for (entry& e : collecting->reqs)
                    if (request* r = std::exchange(e.r, nullptr)) {
                        r->error = std::make_exception_ptr(
                            invalid_state_error("corio: micro_batcher destroyed with submissions waiting"));
                        e.schedule();
                    }
                collecting.reset();
            }
            if (work.live() != 0) work.cancel();
        }
    };

    /// A submit frame's hold on the state: a plain count instead of a
    /// shared_ptr copy per submission (two atomic operations each); the state
    /// holds itself while the count is not zero.
    class submit_ref {
    public:
        explicit submit_ref(const std::shared_ptr<state>& s) : s_(s.get()) {
            if (s_->submits++ == 0) s_->keep = s;
        }
        submit_ref(submit_ref&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
        submit_ref& operator=(submit_ref&&) = delete;
        ~submit_ref() {
            if (s_ && --s_->submits == 0) {
                std::shared_ptr<state> last = std::move(s_->keep);  // may destroy the state
            }
        }
        state* operator->() const noexcept { return s_; }
        state& operator*() const noexcept { return *s_; }

    private:
        state* s_;
    };

    static void dispatch(const std::shared_ptr<state>& s, detail::scheduler& sched) {
        std::unique_ptr<batch> b = std::move(s->collecting);
        if (!b || b->live == 0) return;  // every caller of it left: never sent
        s->work.spawn(sched, run_job(detail::crew_ticket<state>(s), std::move(b)));
        s->changed.set();
    }

    static task<Out> submit_impl(submit_ref s, In x) {
        if (s->closed) throw invalid_state_error("corio: micro_batcher::submit after close()");
        request r(*s, x);
        co_return co_await r;
    }

    static task<void> close_impl(std::shared_ptr<state> s) {
        s->closed = true;
        detail::chain* c = co_await detail::this_chain{};
        if (s->pending_live() != 0) dispatch(s, *c->sched);
        s->changed.set();
        const bool cancelled = co_await s->work.join();
        if (cancelled) throw cancelled_error{};
    }

    /// Sends the collected batch max_wait after its first item arrived.
    static task<void> flusher(detail::crew_ticket<state> t) {
        state& s = *t;
        detail::chain* c = co_await detail::this_chain{};
        while (!s.closed) {
            s.changed.clear();
            if (s.pending_live() == 0) {
                co_await s.changed.wait();
                continue;
            }
            const clock::time_point due = detail::saturating_add(s.first_at, s.wait);
            if (now() < due) {
                co_await move_on_at(due, s.changed.wait());
                continue;
            }
            dispatch(t.share(), *c->sched);
        }
    }

    /// Marks `b` sent and takes the items of the callers still in it.
    static std::vector<In> take_items(batch& b, std::vector<std::size_t>& sent) {
        b.sent = true;
        if (b.live == b.reqs.size()) return std::move(b.items);
        std::vector<In> items;
        items.reserve(b.live);
        sent.reserve(b.live);
        for (std::size_t i = 0; i < b.reqs.size(); ++i)
            if (b.reqs[i].r) {
                sent.push_back(i);
                items.push_back(std::move(b.items[i]));
            }
        return items;
    }

    /// Sends one batch once a handler slot is free, then resumes its callers
    /// inline, in batch order, each with its output or the batch's error.
    /// (Nothing of this call is touched by a resumed caller: the batch is this
    /// call's alone, a caller's later submissions go to other batches, and a
    /// caller that cancels another one still waiting here only marks it, see
    /// on_cancel, and the loop below skips it.)
    static task<void> run_job(detail::crew_ticket<state> t, std::unique_ptr<batch> j) {
        state& s = *t;
        auto permit = co_await s.slots.acquire();
        std::vector<std::size_t> sent;  // positions in j->reqs of the items handed over, when some were removed
        std::vector<In> items = take_items(*j, sent);
        if (items.empty()) co_return;
        const std::size_t n = items.size();
        std::exception_ptr err;
        std::vector<Out> outs;
        try {
            outs = co_await s.handler(std::move(items));
        } catch (...) {
            err = std::current_exception();
        }
        if (!err && outs.size() != n)
            err = std::make_exception_ptr(invalid_state_error("corio: micro_batcher handler returned " +
                                                              std::to_string(outs.size()) + " outputs for a batch of " +
                                                              std::to_string(n) + " inputs"));
        for (std::size_t k = 0; k < n; ++k) {
            entry& e = j->reqs[sent.empty() ? k : sent[k]];
            request* r = std::exchange(e.r, nullptr);
            if (!r) continue;  // cancelled after the batch was sent
            if (err) r->error = err;
            else r->out = &outs[k];
            e.resume();
        }
    }

    std::shared_ptr<state> s_;
};

/// Adds the request to the batch being collected. The common case (room in
/// the batch, neither its first item nor its last) stays on this path; the
/// rest is out of line (see make_room and on_first_or_full).
template <class In, class Out>
auto micro_batcher<In, Out>::request::join(state& s, detail::scheduler& sched) -> entry& {
    batch* b = s.collecting.get();
    if (!b || b->reqs.size() == b->reqs.capacity()) [[unlikely]]
        b = &make_room(s);
    b->items.push_back(std::move(*item));  // within capacity: throws only if In's move does
    entry& e = b->reqs.emplace_back(entry{this, {}});
    in = b;
    index = b->reqs.size() - 1;
    if (++b->live == 1 || b->live >= s.max) [[unlikely]]
        on_first_or_full(s, sched, *b);
    return e;
}

/// The batch being collected (made if there is none) with room for one more:
/// both vectors grow here, before the request changes anything, so neither
/// push_back in join can fail halfway.
template <class In, class Out>
[[gnu::noinline]] auto micro_batcher<In, Out>::request::make_room(state& s) -> batch& {
    if (!s.collecting) s.collecting = std::make_unique<batch>();
    batch& b = *s.collecting;
    if (b.reqs.size() == b.reqs.capacity()) b.reserve_more(s.max);
    return b;
}

/// A batch's first item starts its flush timer (and the flusher, once); a
/// full batch is sent.
template <class In, class Out>
[[gnu::noinline]] void micro_batcher<In, Out>::request::on_first_or_full(state& s, detail::scheduler& sched, batch& b) {
    if (b.live == 1) {
        s.first_at = sched.now();
        if (!s.flusher_started) {
            s.flusher_started = true;
            s.work.spawn(sched, flusher(detail::crew_ticket<state>(s.keep)));
        }
        s.changed.set();
    }
    if (b.live >= s.max) dispatch(s.keep, sched);  // `keep` is set: the submitting frame counts
}

}  // namespace corio
