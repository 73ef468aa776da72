// corio/detail/curl_multi.hpp: one libcurl multi handle driven by Asio on one
// io_context (libcurl's multi-socket API). The engine under http::client.
//
// Invariants:
// - Every socket libcurl asks us to watch (CURLMOPT_SOCKETFUNCTION) gets a
//   watched_socket: a posix::stream_descriptor assigned the fd without owning
//   it. It is released (deregistered from the reactor, never closed) when
//   libcurl closes the fd (CURLOPT_CLOSESOCKETFUNCTION); a connection libcurl
//   opened through CURLOPT_OPENSOCKETFUNCTION stays registered while it idles
//   in libcurl's cache (CURL_POLL_REMOVE only clears what it wants), any other
//   fd is released at CURL_POLL_REMOVE. libcurl alone closes its fds.
// - At most one read wait and one write wait are pending per socket; a wait's
//   handler holds the watched_socket alive and does nothing once it is
//   released or its multi is gone.
// - libcurl is never re-entered from its own callbacks: socket_action runs
//   only from Asio handlers; the timer callback only arms the timer or posts.
//   `in_action_` is true while libcurl runs; removing a transfer then is a bug
//   (asserted): transfers are removed only from corio code (cancellation,
//   destruction) or after curl_multi_info_read reported them done.
// - A transfer is linked in `active_` exactly while it is added to the multi
//   handle, and in `alive_` from its construction to its destruction (a
//   multi that dies first marks each `multi_gone`). Its completion hook runs after it was removed, and only schedules
//   (never resumes a coroutine inline).
// - The timer is re-armed only when libcurl's deadline moves earlier than the
//   armed one (arming costs two timerfd_settime calls); a timer that fires
//   early for a later deadline re-arms itself instead of running libcurl.
// - Receive buffers (acquire_buffer/release_buffer) are plain strings a
//   transfer borrows for its body and gives back empty when it dies; the
//   pool keeps at most 128 of at most 128 KiB each (16 MiB at worst; as
//   many as transfers ran at once, of the sizes their bodies had).
#pragma once

#include <curl/curl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "../errors.hpp"

namespace corio::detail::curl {

/// curl_global_init once per process, before the first handle.
inline void global_init() {
    static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        throw std::runtime_error(std::string("corio::http: curl_global_init failed: ") + curl_easy_strerror(rc));
}

class multi;

/// One easy handle in flight. Lives in the awaiting coroutine's frame.
struct transfer {
    CURL* easy = nullptr;
    CURLcode result = CURLE_OK;
    bool added = false;        // linked in the multi handle and in active_
    bool orphaned = false;     // the client died while it was in flight
    bool multi_gone = false;   // the multi handle is gone: the easy handle is ours to clean up
    transfer* prev = nullptr;  // in multi::active_
    transfer* next = nullptr;
    transfer* alive_prev = nullptr;  // in multi::alive_
    transfer* alive_next = nullptr;
    /// Called once the transfer was removed from the multi handle (done,
    /// or orphaned by the client's destruction). Must not resume inline.
    void (*on_done)(transfer*) noexcept = nullptr;
};

/// Transfer limits and connection-cache settings of one multi handle.
struct multi_settings {
    long max_connections = 0;           // 0: unlimited
    long max_connections_per_host = 0;  // 0: unlimited
    bool multiplex = true;              // HTTP/2 multiplexing when offered
};

class multi {
public:
    multi(asio::io_context& ctx, const multi_settings& s) : ctx_(ctx), timer_(ctx) {
        global_init();
        m_ = curl_multi_init();
        if (!m_) throw std::runtime_error("corio::http: curl_multi_init failed");
        curl_multi_setopt(m_, CURLMOPT_SOCKETFUNCTION, &multi::on_socket);
        curl_multi_setopt(m_, CURLMOPT_SOCKETDATA, this);
        curl_multi_setopt(m_, CURLMOPT_TIMERFUNCTION, &multi::on_timer);
        curl_multi_setopt(m_, CURLMOPT_TIMERDATA, this);
        curl_multi_setopt(m_, CURLMOPT_MAX_TOTAL_CONNECTIONS, s.max_connections);
        curl_multi_setopt(m_, CURLMOPT_MAX_HOST_CONNECTIONS, s.max_connections_per_host);
        // The connection cache (open connections, busy or idle). libcurl's
        // default follows the number of transfers added at the moment, which
        // under corio dips between a transfer's end and its task's next
        // request: connections would be closed and reopened.
        long cache = s.max_connections ? s.max_connections : std::max(256L, 4 * s.max_connections_per_host);
        curl_multi_setopt(m_, CURLMOPT_MAXCONNECTS, cache);
        curl_multi_setopt(m_, CURLMOPT_PIPELINING, s.multiplex ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
    }
    multi(const multi&) = delete;
    multi& operator=(const multi&) = delete;

    ~multi() {
        orphan_all();
        for (transfer* t = alive_; t; t = t->alive_next) t->multi_gone = true;
        *life_ = nullptr;
        closing_ = true;
        timer_.cancel();
        for (CURL* e : easy_pool_) curl_easy_cleanup(e);
        curl_multi_cleanup(m_);  // closes cached connections through on_close
        for (auto& s : socks_)
            if (s) release(*s);
    }

    asio::io_context& context() noexcept { return ctx_; }
    std::size_t active() const noexcept { return active_count_; }
    /// Transfer objects alive (adopted, not yet disowned), finished ones included.
    std::size_t alive() const noexcept { return alive_count_; }

    /// An easy handle from the pool, or a new one (`fresh`). A pooled handle
    /// keeps the options of its last request: the client sets the ones that
    /// differ between requests every time, the others only on a fresh handle
    /// (curl_easy_reset and setting 20 options again cost more than a
    /// request's own work in libcurl).
    CURL* acquire_easy(bool& fresh) {
        if (!easy_pool_.empty()) {
            CURL* e = easy_pool_.back();
            easy_pool_.pop_back();
            fresh = false;
            return e;
        }
        CURL* e = curl_easy_init();
        if (!e) throw std::bad_alloc();
        fresh = true;
        return e;
    }
    void release_easy(CURL* e) noexcept {
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, nullptr);
        if (easy_pool_.size() < 256) {
            try {
                easy_pool_.push_back(e);
                return;
            } catch (...) {
            }
        }
        curl_easy_cleanup(e);
    }

    /// A receive buffer from the pool (empty; the capacity it had is kept),
    /// or a new empty string.
    std::string acquire_buffer() noexcept {
        if (buffers_.empty()) return {};
        std::string b = std::move(buffers_.back());
        buffers_.pop_back();
        return b;
    }
    /// Takes a receive buffer back for the next transfer; one too large or
    /// beyond the pool's size is freed.
    void release_buffer(std::string&& b) noexcept {
        if (b.capacity() > max_pooled_buffer || buffers_.size() >= max_pooled_buffers) return;
        b.clear();
        try {
            buffers_.push_back(std::move(b));
        } catch (...) {
        }
    }

    /// Options every easy handle of this multi needs (after a reset).
    void bind_easy(CURL* e) noexcept {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &multi::on_open);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &multi::on_close);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    }

    /// Tracks a transfer object for its whole life (finished ones too), so
    /// the multi can tell each that it is gone.
    void adopt(transfer* t) noexcept {
        t->alive_prev = nullptr;
        t->alive_next = alive_;
        if (alive_) alive_->alive_prev = t;
        alive_ = t;
        ++alive_count_;
    }
    void disown(transfer* t) noexcept {
        if (t->alive_prev) t->alive_prev->alive_next = t->alive_next;
        else alive_ = t->alive_next;
        if (t->alive_next) t->alive_next->alive_prev = t->alive_prev;
        t->alive_prev = t->alive_next = nullptr;
        --alive_count_;
    }

    /// Starts `t` (its easy handle fully set up). libcurl may call the timer
    /// callback from here; the transfer begins at the next turn.
    void add(transfer* t) {
        assert(!in_action_);
        CURLMcode rc = curl_multi_add_handle(m_, t->easy);
        if (rc != CURLM_OK)
            throw std::runtime_error(std::string("corio::http: curl_multi_add_handle: ") + curl_multi_strerror(rc));
        link(t);
    }

    /// Takes `t` out of the multi handle at once: no callback of libcurl
    /// touches it afterwards (an unfinished transfer's connection is closed).
    void remove(transfer* t) noexcept {
        if (!t->added) return;
        assert(!in_action_ && "corio::http: a transfer was removed from inside a libcurl callback");
        unlink(t);
        curl_multi_remove_handle(m_, t->easy);
    }

    /// Resumes a transfer paused by its write callback. libcurl may deliver
    /// the held data from here and finish transfers: their messages are read.
    void unpause(transfer* t) noexcept {
        if (!t->added) return;
        in_action_ = true;
        curl_easy_pause(t->easy, CURLPAUSE_CONT);
        in_action_ = false;
        drain_messages();
    }

private:
    struct watched_socket {
        explicit watched_socket(asio::io_context& c, multi* m, curl_socket_t f) : sd(c), owner(m), fd(f) {}
        asio::posix::stream_descriptor sd;
        multi* owner;
        curl_socket_t fd;
        int want = 0;             // CURL_POLL_IN / OUT / INOUT
        bool connection = false;  // opened through on_open: libcurl closes it through on_close
        bool reading = false;
        bool writing = false;
    };
    using sock_ptr = std::shared_ptr<watched_socket>;

    void link(transfer* t) noexcept {
        t->added = true;
        t->prev = nullptr;
        t->next = active_;
        if (active_) active_->prev = t;
        active_ = t;
        ++active_count_;
    }
    void unlink(transfer* t) noexcept {
        if (t->prev) t->prev->next = t->next;
        else active_ = t->next;
        if (t->next) t->next->prev = t->prev;
        t->prev = t->next = nullptr;
        t->added = false;
        --active_count_;
    }

    /// The client is going away with transfers in flight: each is removed and
    /// told so (its awaiter then fails with invalid_state_error).
    void orphan_all() noexcept {
        while (transfer* t = active_) {
            remove(t);
            t->orphaned = true;
            t->on_done(t);
        }
    }

    static void release(watched_socket& s) noexcept {
        s.owner = nullptr;
        std::error_code ignored;
        if (s.sd.is_open()) (void)s.sd.release();  // deregisters; pending waits end with operation_aborted
        (void)ignored;
    }

    sock_ptr* slot(curl_socket_t fd) {
        if (fd < 0) return nullptr;
        auto i = static_cast<std::size_t>(fd);
        if (i >= socks_.size()) socks_.resize(i + 1);
        return &socks_[i];
    }

    void forget(curl_socket_t fd) noexcept {
        if (fd < 0 || static_cast<std::size_t>(fd) >= socks_.size()) return;
        sock_ptr& p = socks_[static_cast<std::size_t>(fd)];
        if (p) {
            release(*p);
            p.reset();
        }
    }

    static int on_socket(CURL*, curl_socket_t fd, int what, void* userp, void*) {
        auto* self = static_cast<multi*>(userp);
        if (self->closing_) return 0;
        if (what == CURL_POLL_REMOVE) {
            // A connection going idle into libcurl's cache stays registered
            // with the reactor (no epoll_ctl pair per request); on_close
            // releases it. Other fds (a resolver's) are released now.
            sock_ptr* p = self->slot(fd);
            if (p && *p && (*p)->connection) (*p)->want = 0;
            else self->forget(fd);
            return 0;
        }
        try {
            sock_ptr& p = *self->slot(fd);
            if (!p) {
                p = std::make_shared<watched_socket>(self->ctx_, self, fd);
                p->sd.assign(fd);
            }
            p->want = what;
            self->arm(p);
        } catch (...) {
            return -1;  // libcurl fails the transfer
        }
        return 0;
    }

    static curl_socket_t on_open(void* clientp, curlsocktype, curl_sockaddr* addr) {
        auto* self = static_cast<multi*>(clientp);
        curl_socket_t fd = ::socket(addr->family, addr->socktype, addr->protocol);
        if (fd == CURL_SOCKET_BAD) return fd;
        try {
            sock_ptr& p = *self->slot(fd);
            if (p) self->forget(fd);  // a stale entry for a reused fd number
            p = std::make_shared<watched_socket>(self->ctx_, self, fd);
            p->sd.assign(fd);
            p->connection = true;
        } catch (...) {
            self->forget(fd);
            ::close(fd);
            return CURL_SOCKET_BAD;
        }
        return fd;
    }

    static int on_close(void* clientp, curl_socket_t fd) {
        static_cast<multi*>(clientp)->forget(fd);
        return ::close(fd);
    }

    void arm(const sock_ptr& p) {
        if ((p->want & CURL_POLL_IN) && !p->reading) {
            p->reading = true;
            p->sd.async_wait(asio::posix::descriptor_base::wait_read, [p](const std::error_code& ec) {
                p->reading = false;
                if (!ec && p->owner) p->owner->ready(p, CURL_CSELECT_IN, CURL_POLL_IN);
            });
        }
        if ((p->want & CURL_POLL_OUT) && !p->writing) {
            p->writing = true;
            p->sd.async_wait(asio::posix::descriptor_base::wait_write, [p](const std::error_code& ec) {
                p->writing = false;
                if (!ec && p->owner) p->owner->ready(p, CURL_CSELECT_OUT, CURL_POLL_OUT);
            });
        }
    }

    void ready(const sock_ptr& p, int select, int poll_bit) noexcept {
        if (!(p->want & poll_bit)) return;  // libcurl stopped caring meanwhile
        action(p->fd, select);
        if (p->owner) {
            try {
                arm(p);
            } catch (...) {
            }
        }
    }

    void action(curl_socket_t fd, int select) noexcept {
        int running = 0;
        in_action_ = true;
        curl_multi_socket_action(m_, fd, select, &running);
        in_action_ = false;
        drain_messages();
    }

    void drain_messages() noexcept {
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(m_, &left)) {
            if (msg->msg != CURLMSG_DONE) continue;
            void* priv = nullptr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            auto* t = static_cast<transfer*>(priv);
            t->result = msg->data.result;
            remove(t);
            t->on_done(t);
        }
    }

    static int on_timer(CURLM*, long ms, void* userp) {
        auto* self = static_cast<multi*>(userp);
        if (self->closing_) return 0;
        try {
            self->set_deadline(ms);
        } catch (...) {
            return -1;
        }
        return 0;
    }

    void set_deadline(long ms) {
        if (ms < 0) {
            want_deadline_ = false;
            return;  // an armed timer that fires finds nothing to do and stops
        }
        if (ms == 0) {
            want_deadline_ = false;
            if (!posted_) {
                posted_ = true;
                asio::post(ctx_, [life = life_] {
                    multi* m = *life;
                    if (!m) return;
                    m->posted_ = false;
                    m->action(CURL_SOCKET_TIMEOUT, 0);
                });
            }
            return;
        }
        auto when = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        want_deadline_ = true;
        deadline_ = when;
        if (timer_armed_ && armed_at_ <= when) return;  // it fires first and re-arms
        arm_timer(when);
    }

    void arm_timer(std::chrono::steady_clock::time_point when) {
        timer_armed_ = true;
        armed_at_ = when;
        timer_.expires_at(when);
        timer_.async_wait([life = life_, when](const std::error_code& ec) {
            multi* m = *life;
            if (!m || ec || m->armed_at_ != when) return;  // stale: a newer arm owns the timer
            m->timer_armed_ = false;
            m->timer_fired();
        });
    }

    void timer_fired() noexcept {
        if (!want_deadline_) return;
        if (deadline_ > std::chrono::steady_clock::now()) {
            try {
                arm_timer(deadline_);
            } catch (...) {
            }
            return;
        }
        want_deadline_ = false;
        action(CURL_SOCKET_TIMEOUT, 0);
    }

    asio::io_context& ctx_;
    CURLM* m_ = nullptr;
    asio::steady_timer timer_;
    std::shared_ptr<multi*> life_ = std::make_shared<multi*>(this);
    std::vector<sock_ptr> socks_;  // by fd
    std::vector<CURL*> easy_pool_;
    static constexpr std::size_t max_pooled_buffer = 128 * 1024;  // capacity
    static constexpr std::size_t max_pooled_buffers = 128;
    std::vector<std::string> buffers_;  // receive buffers of finished transfers
    transfer* active_ = nullptr;
    transfer* alive_ = nullptr;
    std::size_t active_count_ = 0;
    std::size_t alive_count_ = 0;
    std::chrono::steady_clock::time_point deadline_{};
    std::chrono::steady_clock::time_point armed_at_{};
    bool want_deadline_ = false;
    bool timer_armed_ = false;
    bool posted_ = false;
    bool in_action_ = false;
    bool closing_ = false;
};

}  // namespace corio::detail::curl
