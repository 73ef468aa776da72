// corio/detail/asio_loop_registry.hpp: which corio event_loop is bound to an
// asio::io_context (an Asio service of that io_context).
//
// Invariants:
// - At most one loop is bound to an io_context: the first event_loop
//   constructed on it (owned or adopted) binds itself and unbinds in its
//   destructor; a second loop on the same io_context stays unbound.
// - loop_for() returns the bound loop, or creates one (adopting the
//   io_context) that this service owns and destroys when the io_context shuts
//   down (its shutdown() runs before the io_context's own services are
//   destroyed, so the loop's timer and Asio objects go first).
// - Thread-safe: the binding is guarded by a mutex (co_spawn may be called
//   from any thread); the loop itself is single-threaded.
#pragma once

#include <mutex>

#include <asio/execution_context.hpp>
#include <asio/io_context.hpp>

namespace corio {
class event_loop;
}

namespace corio::detail {

class loop_registry final : public asio::execution_context::service {
public:
    using key_type = loop_registry;
    inline static asio::execution_context::id id;

    explicit loop_registry(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
    loop_registry(const loop_registry&) = delete;
    loop_registry& operator=(const loop_registry&) = delete;
    ~loop_registry() override { destroy_owned(); }

    /// Called by every event_loop on construction: binds it if none is bound.
    static void bind(asio::io_context& ctx, event_loop* loop) {
        loop_registry& r = asio::use_service<loop_registry>(ctx);
        std::lock_guard<std::mutex> g(r.m_);
        if (!r.loop_) r.loop_ = loop;
    }

    /// Called by every event_loop on destruction.
    static void unbind(asio::io_context& ctx, event_loop* loop) noexcept {
        if (!asio::has_service<loop_registry>(ctx)) return;
        loop_registry& r = asio::use_service<loop_registry>(ctx);
        std::lock_guard<std::mutex> g(r.m_);
        if (r.loop_ == loop) r.loop_ = nullptr;
    }

    /// The loop bound to `ctx`, if any (null otherwise).
    static event_loop* bound(asio::io_context& ctx) {
        loop_registry& r = asio::use_service<loop_registry>(ctx);
        std::lock_guard<std::mutex> g(r.m_);
        return r.loop_;
    }

    using make_fn = event_loop* (*)(asio::io_context&);
    using destroy_fn = void (*)(event_loop*) noexcept;

    /// The loop bound to `ctx`; creates one with `make` (owned by the
    /// io_context from then on) when none is bound.
    static event_loop& loop_for(asio::io_context& ctx, make_fn make, destroy_fn destroy) {
        loop_registry& r = asio::use_service<loop_registry>(ctx);
        {
            std::lock_guard<std::mutex> g(r.m_);
            if (r.loop_) return *r.loop_;
        }
        event_loop* made = make(ctx);  // binds itself (outside the lock: bind() takes it)
        std::unique_lock<std::mutex> g(r.m_);
        if (r.loop_ == made) {
            r.owned_ = made;
            r.destroy_ = destroy;
            return *made;
        }
        // Another thread bound a loop first: use that one.
        event_loop* winner = r.loop_;
        g.unlock();
        destroy(made);
        return *winner;
    }

    /// Whether the loop bound to `ctx` was created by co_spawn (owned by the io_context).
    static bool owns_its_loop(asio::io_context& ctx) {
        loop_registry& r = asio::use_service<loop_registry>(ctx);
        std::lock_guard<std::mutex> g(r.m_);
        return r.owned_ != nullptr && r.owned_ == r.loop_;
    }

private:
    void shutdown() override { destroy_owned(); }

    void destroy_owned() noexcept {
        event_loop* l = nullptr;
        destroy_fn d = nullptr;
        {
            std::lock_guard<std::mutex> g(m_);
            l = owned_;
            d = destroy_;
            owned_ = nullptr;
        }
        if (l) d(l);  // its destructor unbinds (takes the lock)
    }

    std::mutex m_;
    event_loop* loop_ = nullptr;   // the bound loop
    event_loop* owned_ = nullptr;  // the loop this service created, if it did
    destroy_fn destroy_ = nullptr;
};

}  // namespace corio::detail
