// corio/detail/thread_pool.hpp: the process-wide asio::thread_pool behind
// to_thread(), and the storage of a value handed across threads.
//
// Invariants: the pool is made on first use (with the size the first user
// asks for) and lives until shutdown_thread_pool() or process exit; after a
// shutdown, get() throws until reset(). The fast path (pool running) is one
// acquire load; the mutex guards creation and shutdown only.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include <asio/thread_pool.hpp>

#include "../errors.hpp"

namespace corio::detail {

class thread_pool_registry {
public:
    thread_pool_registry() = default;
    thread_pool_registry(const thread_pool_registry&) = delete;
    thread_pool_registry& operator=(const thread_pool_registry&) = delete;
    ~thread_pool_registry() = default;  // the pool's destructor stops and joins it

    asio::thread_pool& get(std::size_t threads) {
        if (asio::thread_pool* p = fast_.load(std::memory_order_acquire)) return *p;
        std::lock_guard<std::mutex> lock(m_);
        if (shut_down_)
            throw invalid_state_error("corio: to_thread after shutdown_thread_pool(): the thread pool is gone");
        if (!pool_) {
            if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
            pool_ = std::make_unique<asio::thread_pool>(threads);
            size_ = threads;
            fast_.store(pool_.get(), std::memory_order_release);
        }
        return *pool_;
    }

    /// Waits for every queued and running function, then joins the threads.
    void shutdown() {
        std::unique_ptr<asio::thread_pool> p;
        {
            std::lock_guard<std::mutex> lock(m_);
            shut_down_ = true;
            fast_.store(nullptr, std::memory_order_release);
            p = std::move(pool_);
        }
        if (p) p->join();
    }

    void reset() {
        std::lock_guard<std::mutex> lock(m_);
        shut_down_ = false;
    }

    std::size_t size() {
        std::lock_guard<std::mutex> lock(m_);
        return pool_ ? size_ : 0;
    }

private:
    std::mutex m_;
    std::unique_ptr<asio::thread_pool> pool_;
    std::atomic<asio::thread_pool*> fast_{nullptr};
    std::size_t size_ = 0;
    bool shut_down_ = false;
};

inline thread_pool_registry& pool_registry() {
    static thread_pool_registry r;
    return r;
}

/// A value of type R (void, a reference, or an object) or an exception.
template <class R>
class cross_value {
    using stored = std::conditional_t<std::is_void_v<R>, std::monostate,
                                      std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*, R>>;

public:
    template <class F>
    void capture(F&& f) noexcept {
        try {
            if constexpr (std::is_void_v<R>) {
                std::forward<F>(f)();
                v_.emplace();
            } else if constexpr (std::is_reference_v<R>) {
                v_.emplace(std::addressof(std::forward<F>(f)()));
            } else {
                v_.emplace(std::forward<F>(f)());
            }
        } catch (...) {
            e_ = std::current_exception();
        }
    }
    void fail(std::exception_ptr e) noexcept { e_ = std::move(e); }

    R take() {
        if (e_) std::rethrow_exception(e_);
        if constexpr (std::is_void_v<R>) return;
        else if constexpr (std::is_reference_v<R>) return static_cast<R>(**v_);
        else return std::move(*v_);
    }

private:
    std::optional<stored> v_;
    std::exception_ptr e_;
};

}  // namespace corio::detail
