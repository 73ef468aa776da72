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
    task<Out> submit(In x) { return submit_impl(s_, std::move(x)); }

    /// Sends the partial batch and waits for every handler call. See above.
    task<void> close() { return close_impl(s_); }

    /// True once close() was called: submit() then throws.
    bool closed() const noexcept { return s_->closed; }
    /// Submissions waiting in the batch that is being collected.
    std::size_t pending() const noexcept { return s_->pending_live; }

private:
    struct job;
    struct state;

    /// One submission; lives in the submitting coroutine's frame.
    struct request : detail::wakeable {
        explicit request(In&& x) : item(std::move(x)) {}
        In item;
        std::optional<Out> out;
        std::exception_ptr error;
        state* st = nullptr;
        job* in_job = nullptr;      // null while in the batch being collected
        std::size_t index = 0;      // position in that batch
        detail::chain* ch = nullptr;
        std::coroutine_handle<> h{};
        bool cancelled = false;

        void finish() noexcept {
            ch->unpark();
            ch->sched->schedule(h);
        }
    };

    /// A batch handed over for sending; owned by its handler call. Requests
    /// still attached when it dies (never sent) are failed.
    struct job {
        std::vector<request*> reqs;
        std::size_t live = 0;
        bool sent = false;
        ~job() {
            for (request* r : reqs)
                if (r) {
                    r->error = std::make_exception_ptr(
                        invalid_state_error("corio: micro_batcher destroyed before this submission's batch was handled"));
                    r->finish();
                }
        }
    };

    struct state {
        state(handler_type h, std::size_t n, clock::duration w, std::size_t c)
            : handler(std::move(h)), max(n), wait(w), slots(static_cast<std::ptrdiff_t>(c)) {}
        handler_type handler;
        std::size_t max;
        clock::duration wait;
        semaphore slots;                 // concurrent handler calls
        std::vector<request*> pending;   // the batch being collected (null: cancelled)
        std::size_t pending_live = 0;
        clock::time_point first_at{};
        event changed;                   // wakes the flusher
        bool closed = false;
        bool flusher_started = false;
        detail::crew work;

        void abandon() noexcept {
            closed = true;
            for (request* r : pending)
                if (r) {
                    r->error = std::make_exception_ptr(
                        invalid_state_error("corio: micro_batcher destroyed with submissions waiting"));
                    r->finish();
                }
            pending.clear();
            pending_live = 0;
            if (work.live() != 0) work.cancel();
        }
    };

    static void dispatch(const std::shared_ptr<state>& s, detail::scheduler& sched) {
        auto j = std::make_unique<job>();
        j->reqs = std::move(s->pending);
        s->pending = {};
        s->pending.reserve(std::min<std::size_t>(s->max, 4096));
        j->live = std::exchange(s->pending_live, 0);
        if (j->live == 0) {
            j->reqs.clear();
            return;
        }
        for (request* r : j->reqs)
            if (r) r->in_job = j.get();
        s->work.spawn(sched, run_job(detail::crew_ticket<state>(s), std::move(j)));
        s->changed.set();
    }

    class enqueue_awaiter {
    public:
        enqueue_awaiter(const std::shared_ptr<state>& s, request* r) noexcept : s_(s), r_(r) {}
        bool await_ready() const noexcept { return false; }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) {
            request& r = *r_;
            r.ch = detail::chain_of(caller);
            if (r.ch->cancel_requested()) {
                r.cancelled = true;
                return false;
            }
            state& s = *s_;
            r.st = &s;
            r.h = caller;
            r.index = s.pending.size();
            s.pending.push_back(&r);
            if (++s.pending_live == 1) {
                s.first_at = r.ch->sched->now();
                if (!s.flusher_started) {
                    s.flusher_started = true;
                    s.work.spawn(*r.ch->sched, flusher(detail::crew_ticket<state>(s_)));
                }
                s.changed.set();
            }
            if (s.pending_live >= s.max) dispatch(s_, *r.ch->sched);
            r.notify = &on_cancel;
            r.ch->park(&r);
            return true;
        }
        void await_resume() const noexcept {}

    private:
        static void on_cancel(detail::wakeable* w) noexcept {
            auto* r = static_cast<request*>(w);
            if (!r->in_job) {
                r->st->pending[r->index] = nullptr;
                --r->st->pending_live;
            } else {
                r->in_job->reqs[r->index] = nullptr;
                if (!r->in_job->sent) --r->in_job->live;
            }
            r->cancelled = true;
            r->ch->sched->schedule(r->h);
        }
        const std::shared_ptr<state>& s_;  // the submitting frame's
        request* r_;
    };

    static task<Out> submit_impl(std::shared_ptr<state> s, In x) {
        if (s->closed) throw invalid_state_error("corio: micro_batcher::submit after close()");
        request r(std::move(x));
        co_await enqueue_awaiter(s, &r);
        if (r.cancelled) throw cancelled_error{};
        if (r.error) std::rethrow_exception(r.error);
        co_return std::move(*r.out);
    }

    static task<void> close_impl(std::shared_ptr<state> s) {
        s->closed = true;
        detail::chain* c = co_await detail::this_chain{};
        if (s->pending_live != 0) dispatch(s, *c->sched);
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
            if (s.pending_live == 0) {
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

    static task<void> run_job(detail::crew_ticket<state> t, std::unique_ptr<job> j) {
        state& s = *t;
        auto permit = co_await s.slots.acquire();
        std::vector<In> items;
        std::vector<std::size_t> sent;  // positions in j->reqs of the items handed over, when some were removed
        items.reserve(j->live);
        if (j->live != j->reqs.size()) {
            sent.reserve(j->live);
            for (std::size_t i = 0; i < j->reqs.size(); ++i)
                if (j->reqs[i]) sent.push_back(i);
        }
        for (request* r : j->reqs)
            if (r) items.push_back(std::move(r->item));
        j->sent = true;
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
            request* r = std::exchange(j->reqs[sent.empty() ? k : sent[k]], nullptr);
            if (!r) continue;  // cancelled after the batch was sent
            if (err) r->error = err;
            else r->out.emplace(std::move(outs[k]));
            r->finish();
        }
    }

    std::shared_ptr<state> s_;
};

}  // namespace corio
