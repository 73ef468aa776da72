// corio/http.hpp: http::client, an HTTP client on libcurl driven by corio's
// loop (an add-on: CMake target corio::http, which links CURL::libcurl; not
// included from corio.hpp).
//
//   corio::http::client c;                          // on the running loop
//   auto r = co_await c.get("http://127.0.0.1:8080/");
//   r.raise_for_status();                           // http::status_error for >= 400
//   std::cout << r.status << ' ' << r.headers.value_or("content-type", "?") << r.body;
//
// - One client = one libcurl multi handle on the loop it was created on; its
//   sockets and its timer are driven by Asio on that loop's io_context
//   (libcurl's multi-socket API). Connections are kept alive and reused
//   across requests; HTTP/2 is used when a TLS server offers it (ALPN).
//   Single-loop: a client is used from its loop's thread only; a request
//   awaited anywhere else throws invalid_state_error.
// - get/post/put/request return task<response>: lazy, movable until awaited,
//   so they go into every combinator (timeout, move_on_after, shield,
//   with_token, gather, gather_settled, race). A 404 or 500 is a response,
//   not an exception; raise_for_status() turns status >= 400 into
//   http::status_error.
// - Suspends: every request, until its transfer is done. Cancellation point:
//   in a cancelled scope the request is not started (cancelled_error). When
//   the awaiting task is cancelled mid-transfer, the transfer is removed
//   from the multi handle at once (its connection is closed; no libcurl
//   callback touches the request afterwards) and cancelled_error is thrown.
//   Other transfers of the client go on.
// - Timeouts are corio's: options::timeout / request_options::timeout end the
//   transfer exactly like timeout(d, c.get(u)) does, with timeout_error.
//   connect_timeout is libcurl's (an http::error "Timeout was reached").
// - Errors: transport failures (refused, reset, unresolvable host, malformed
//   URL, unsupported scheme, TLS) throw http::error, a std::system_error in
//   http::curl_category() whose message names the method, the URL and
//   libcurl's reason. Bad arguments (an empty or malformed method, a header
//   name or value with CR/LF, negative durations) throw std::invalid_argument.
// - Destroying a client with transfers in flight removes them and makes each
//   awaiting request throw invalid_state_error (a bug in the caller: keep the
//   client alive longer than its requests).
// - stream(url) returns a stream_response once the response head arrived
//   (status, headers); its chunks() or lines() is an async_generator of the
//   body as it arrives, which owns the transfer: a consumer that stops
//   pulling pauses it (libcurl stops reading once 64 KiB wait), destroying
//   the generator (or the stream_response whose body was never taken) aborts
//   it. Pulling is a cancellation point; a cancelled pull aborts the
//   transfer. A timeout option bounds the wait for the head only.
// - TLS certificates are verified by default (options::verify_tls); redirects
//   are not followed unless options::follow_redirects (or the request's
//   override) is set, up to max_redirects; response::effective_url is the
//   final URL.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <compare>
#include <cstdint>
#include <iterator>
#include <memory>
#include <coroutine>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "cancel.hpp"
#include "detail/curl_multi.hpp"
#include "detail/wait_list.hpp"
#include "errors.hpp"
#include "generator.hpp"
#include "loop.hpp"
#include "task.hpp"

namespace corio::http {

/// Header lines to send: (name, value) pairs, in order.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// Response headers, in arrival order; lookups ignore the name's case.
///
/// Stored as one text buffer (each name followed by its value) and an index
/// of offsets: a response's headers cost two allocations, not two strings
/// per line. Iteration yields (name, value) pairs of string_views into it.
class headers {
    struct entry {
        std::uint32_t at;  // offset of the name in text_; the value follows it
        std::uint32_t name_size, value_size;
    };

public:
    /// A (name, value) pair; the views point into the headers object.
    using value_type = std::pair<std::string_view, std::string_view>;

    /// Iteration over the header lines in the order received.
    class const_iterator {
    public:
        using iterator_category = std::random_access_iterator_tag;  ///< random access
        using iterator_concept = std::random_access_iterator_tag;   ///< random access (C++20)
        using value_type = headers::value_type;                     ///< a (name, value) pair of views
        using difference_type = std::ptrdiff_t;                     ///< a distance in lines
        using reference = value_type;                               ///< a proxy: the pair, made on access
        using pointer = void;                                       ///< none (the pairs are made on access)

        const_iterator() = default;
        /// The (name, value) pair here.
        value_type operator*() const noexcept { return h_->at(i_); }
        /// The pair `n` lines away.
        value_type operator[](difference_type n) const noexcept { return h_->at(i_ + static_cast<std::size_t>(n)); }
        /// The next line.
        const_iterator& operator++() noexcept { return ++i_, *this; }
        /// The next line (postfix).
        const_iterator operator++(int) noexcept { return {h_, i_++}; }
        /// The previous line.
        const_iterator& operator--() noexcept { return --i_, *this; }
        /// The previous line (postfix).
        const_iterator operator--(int) noexcept { return {h_, i_--}; }
        /// Moves `n` lines on.
        const_iterator& operator+=(difference_type n) noexcept { return i_ += static_cast<std::size_t>(n), *this; }
        /// Moves `n` lines back.
        const_iterator& operator-=(difference_type n) noexcept { return i_ -= static_cast<std::size_t>(n), *this; }
        /// `n` lines on.
        friend const_iterator operator+(const_iterator it, difference_type n) noexcept { return it += n; }
        /// `n` lines on.
        friend const_iterator operator+(difference_type n, const_iterator it) noexcept { return it += n; }
        /// `n` lines back.
        friend const_iterator operator-(const_iterator it, difference_type n) noexcept { return it -= n; }
        /// The distance between two positions.
        friend difference_type operator-(const const_iterator& a, const const_iterator& b) noexcept {
            return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
        }
        /// Same position.
        friend bool operator==(const const_iterator& a, const const_iterator& b) noexcept { return a.i_ == b.i_; }
        /// Order of positions.
        friend auto operator<=>(const const_iterator& a, const const_iterator& b) noexcept { return a.i_ <=> b.i_; }

    private:
        friend class headers;
        const_iterator(const headers* h, std::size_t i) noexcept : h_(h), i_(i) {}
        const headers* h_ = nullptr;
        std::size_t i_ = 0;
    };
    /// The same as const_iterator: headers are read-only through iteration.
    using iterator = const_iterator;

    headers() = default;

    /// The first header named `name` (any case), if any.
    std::optional<std::string_view> get(std::string_view name) const noexcept {
        for (const entry& e : index_)
            if (iequals(name_of(e), name)) return value_of(e);
        return std::nullopt;
    }
    /// The first value of `name` (case-insensitive), or `fallback`.
    std::string_view value_or(std::string_view name, std::string_view fallback) const noexcept {
        auto v = get(name);
        return v ? *v : fallback;
    }
    /// Whether a header `name` (case-insensitive) is present.
    bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
    /// Every value of `name`, in order (Set-Cookie, ...).
    std::vector<std::string_view> get_all(std::string_view name) const {
        std::vector<std::string_view> out;
        for (const entry& e : index_)
            if (iequals(name_of(e), name)) out.push_back(value_of(e));
        return out;
    }

    /// Number of header lines.
    std::size_t size() const noexcept { return index_.size(); }
    /// True when there is no header line.
    bool empty() const noexcept { return index_.empty(); }
    /// The (name, value) pair of line `i` (i < size()).
    value_type at(std::size_t i) const noexcept { return {name_of(index_[i]), value_of(index_[i])}; }
    /// Iteration over (name, value) pairs, in the order received.
    const_iterator begin() const noexcept { return {this, 0}; }
    /// The end of the iteration.
    const_iterator end() const noexcept { return {this, index_.size()}; }

    /// Appends a header line (length_error past 4 GiB of header text).
    void add(std::string_view name, std::string_view value) {
        if (text_.size() + name.size() + value.size() > UINT32_MAX)
            throw std::length_error("corio::http::headers: more than 4 GiB of header text");
        if (index_.capacity() == 0) {  // a response's usual size: one allocation each
            index_.reserve(16);
            text_.reserve(512);
        }
        auto at = static_cast<std::uint32_t>(text_.size());
        text_.append(name).append(value);
        index_.push_back({at, static_cast<std::uint32_t>(name.size()), static_cast<std::uint32_t>(value.size())});
    }
    /// Removes every header line.
    void clear() noexcept {
        index_.clear();
        text_.clear();
    }

    /// ASCII case-insensitive comparison (header names).
    static bool iequals(std::string_view a, std::string_view b) noexcept {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (lower(a[i]) != lower(b[i])) return false;
        return true;
    }

private:
    static char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
    std::string_view name_of(const entry& e) const noexcept { return {text_.data() + e.at, e.name_size}; }
    std::string_view value_of(const entry& e) const noexcept {
        return {text_.data() + e.at + e.name_size, e.value_size};
    }

    std::string text_;          // every line's name then value, back to back
    std::vector<entry> index_;  // one per line, in arrival order
};

/// The error category of libcurl's CURLcode values.
inline const std::error_category& curl_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "curl"; }
        std::string message(int c) const override { return curl_easy_strerror(static_cast<CURLcode>(c)); }
    };
    static const category c;
    return c;
}

/// The error category of HTTP status codes (status_error).
inline const std::error_category& status_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "http status"; }
        std::string message(int c) const override { return "HTTP status " + std::to_string(c); }
    };
    static const category c;
    return c;
}

/// A request that failed: transport errors (code() in curl_category()) and,
/// as status_error, responses with status >= 400 passed to raise_for_status().
/// what() is the whole message: "corio::http: GET <url>: <libcurl's reason>".
class error : public std::system_error {
public:
    /// An error `ec` of the request for `url`; `message` is what what() returns.
    error(std::error_code ec, std::string url, std::string message)
        : std::system_error(ec), url_(std::move(url)), message_(std::move(message)) {}
    /// The URL of the failed request.
    const std::string& url() const noexcept { return url_; }
    /// The whole message: "corio::http: GET <url>: <reason>".
    const char* what() const noexcept override { return message_.c_str(); }

private:
    std::string url_;
    std::string message_;
};

/// A response whose status is >= 400, thrown by raise_for_status(); code() is in status_category().
class status_error : public error {
public:
    /// The error for `status` from `url`.
    status_error(long status, std::string url)
        : error(std::error_code(static_cast<int>(status), status_category()), url,
                "corio::http: " + url + ": HTTP status " + std::to_string(status)),
          status_(status) {}
    /// The HTTP status code.
    long status() const noexcept { return status_; }

private:
    long status_;
};

/// A complete response: status, headers and the whole body.
struct response {
    /// The HTTP status code (200, 404, ...).
    long status = 0;
    /// The response headers, in the order received (the last response's, after redirects).
    http::headers headers;
    /// The body, decoded (libcurl handles the transfer encoding).
    std::string body;
    std::string effective_url;             ///< after redirects
    std::chrono::microseconds elapsed{0};  ///< libcurl's total time of the transfer

    /// Status 2xx or 3xx.
    bool ok() const noexcept { return status >= 200 && status < 400; }
    /// Throws status_error when status >= 400; returns *this otherwise.
    const response& raise_for_status() const {
        if (status >= 400) throw status_error(status, effective_url);
        return *this;
    }
};

/// Settings of a client, fixed when it is made (bad values: invalid_argument).
struct options {
    /// Total time per request (corio's timeout; timeout_error). Empty: none.
    std::optional<clock::duration> timeout{};
    /// Time to establish a connection (libcurl's; http::error).
    clock::duration connect_timeout = std::chrono::seconds(30);
    std::size_t max_connections = 0;            ///< open at once; 0: unlimited
    std::size_t max_connections_per_host = 0;   ///< 0: unlimited
    bool http2 = true;                          ///< HTTP/2 over TLS when the server offers it
    bool verify_tls = true;                     ///< peer certificate and host name
    bool follow_redirects = false;              ///< follow 3xx responses (Location)
    long max_redirects = 10;                    ///< when following redirects
    std::string user_agent = "corio-http/0.1";  ///< the User-Agent header
    header_list default_headers{};              ///< sent with every request
};

/// Settings of one request, overriding the client's.
struct request_options {
    std::optional<clock::duration> timeout{};  ///< overrides options::timeout
    header_list headers{};                     ///< added to the client's default headers
    std::optional<bool> follow_redirects{};    ///< overrides options::follow_redirects
};

class client;

namespace detail {

using corio::detail::chain;
using corio::detail::waiter_base;

inline void check_header_text(std::string_view what, std::string_view s) {
    if (s.find_first_of("\r\n", 0) != std::string_view::npos || s.find('\0') != std::string_view::npos)
        throw std::invalid_argument("corio::http: " + std::string(what) + " contains CR, LF or NUL: '" +
                                    std::string(s) + "'");
}

inline void check_headers(const header_list& hs) {
    for (const auto& [k, v] : hs) {
        if (k.empty() || k.find_first_of(": \t") != std::string::npos)
            throw std::invalid_argument("corio::http: invalid header name '" + k + "'");
        check_header_text("header name", k);
        check_header_text("value of header '" + k + "'", v);
    }
}

inline void check_method(std::string_view m) {
    bool ok = !m.empty() && std::all_of(m.begin(), m.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
    if (!ok) throw std::invalid_argument("corio::http: invalid HTTP method '" + std::string(m) + "'");
}

inline void check_duration(const char* what, clock::duration d) {
    if (d < clock::duration::zero())
        throw std::invalid_argument(std::string("corio::http: ") + what + " must not be negative");
}

/// An owning curl_slist.
class slist {
public:
    slist() = default;
    slist(const slist&) = delete;
    slist& operator=(const slist&) = delete;
    ~slist() { curl_slist_free_all(head_); }
    void append(const std::string& line) {
        curl_slist* n = curl_slist_append(head_, line.c_str());
        if (!n) throw std::bad_alloc();
        head_ = n;
    }
    void append(const header_list& hs) {
        for (const auto& [k, v] : hs) append(v.empty() ? k + ";" : k + ": " + v);
    }
    curl_slist* get() const noexcept { return head_; }

private:
    curl_slist* head_ = nullptr;
};

/// Parses one header line from libcurl into `h` (a status line starts over:
/// redirects and 1xx responses have headers of their own).
inline void take_header_line(http::headers& h, std::string_view line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.starts_with("HTTP/")) {
        h.clear();
        return;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    h.add(line.substr(0, colon), value);
}

/// One request in flight: its easy handle, buffers and the waiting task.
/// Lives in the request's coroutine frame.
struct exchange : corio::detail::curl::transfer, waiter_base {
    exchange(corio::detail::curl::multi& m, std::string meth, std::string u, std::string b)
        : multi(&m), method(std::move(meth)), url(std::move(u)), body(std::move(b)) {
        easy = m.acquire_easy(fresh);
        on_done = &exchange::done;
        m.adopt(this);
    }
    exchange(const exchange&) = delete;
    exchange& operator=(const exchange&) = delete;
    ~exchange() {
        if (multi_gone) {
            curl_easy_cleanup(easy);
            return;
        }
        multi->remove(this);
        multi->disown(this);
        multi->release_easy(easy);
        if (staging.capacity() != 0) multi->release_buffer(std::move(staging));
    }

    static void done(corio::detail::curl::transfer* t) noexcept {
        auto* x = static_cast<exchange*>(t);
        x->finished = true;
        if (!x->ch) return;  // never awaited (cannot happen: added only in await_suspend)
        x->ch->unpark();
        x->ch->sched->schedule(x->h);
    }

    static void on_cancel(waiter_base* w) noexcept {
        auto* x = static_cast<exchange*>(w);
        x->multi->remove(x);
        x->cancelled = true;
        x->ch->sched->schedule(x->h);
    }

    static std::size_t on_body(char* p, std::size_t size, std::size_t n, void* ud) {
        auto* x = static_cast<exchange*>(ud);
        try {
            x->add_body(p, size * n);
        } catch (...) {
            return 0;  // CURLE_WRITE_ERROR
        }
        return size * n;
    }
    static std::size_t on_header(char* p, std::size_t size, std::size_t n, void* ud) {
        auto* x = static_cast<exchange*>(ud);
        try {
            take_header_line(x->resp.headers, std::string_view(p, size * n));
        } catch (...) {
            return 0;
        }
        return size * n;
    }

    /// Bodies up to this size are received into a pooled buffer of the
    /// client and copied into the response once, when the request returns
    /// (see take_response); larger ones are received into the response.
    static constexpr std::size_t staged_body_limit = 64 * 1024;
    enum class body_mode : unsigned char { unknown, staged, direct };

    void add_body(const char* p, std::size_t n) {
        if (mode == body_mode::unknown) choose_body_mode();
        if (mode == body_mode::staged) {
            if (staging.size() + n <= staged_body_limit) {
                staging.append(p, n);
                return;
            }
            resp.body = std::move(staging);  // grew past the limit: the buffer becomes the body
            staging = std::string();
            mode = body_mode::direct;
        }
        resp.body.append(p, n);
    }

    /// At the first body bytes: a body announced larger than the limit is
    /// received into the response (one allocation, up to 64 MiB reserved),
    /// any other into a buffer from the client's pool.
    void choose_body_mode() {
        curl_off_t len = -1;
        if (curl_easy_getinfo(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) != CURLE_OK) len = -1;
        if (len > static_cast<curl_off_t>(staged_body_limit)) {
            resp.body.reserve(static_cast<std::size_t>(std::min<curl_off_t>(len, curl_off_t{64} << 20)));
            mode = body_mode::direct;
            return;
        }
        staging = multi->acquire_buffer();
        if (len > 0) staging.reserve(static_cast<std::size_t>(len));
        mode = body_mode::staged;
    }

    /// After the await: the response, or the reason there is none.
    void check() const {
        if (orphaned)
            throw invalid_state_error("corio::http: the client was destroyed while " + method + " " + url +
                                      " was in flight");
        if (cancelled) throw cancelled_error{};
        if (result != CURLE_OK) {
            std::string reason = curl_easy_strerror(result);
            std::string what = "corio::http: " + method + " " + url + ": ";
            if (!errbuf[0]) what += reason;
            else if (std::string_view(errbuf).find(reason) != std::string_view::npos) what += errbuf;
            else what += std::string(errbuf) + " (" + reason + ")";
            throw error(std::error_code(static_cast<int>(result), curl_category()), url, std::move(what));
        }
    }

    response take_response() {
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        resp.status = status;
        char* eff = nullptr;
        if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) {
            if (url == eff) resp.effective_url = std::move(url);  // the usual case: no copy (the request is over)
            else resp.effective_url = eff;
        }
        curl_off_t us = 0;
        if (curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK)
            resp.elapsed = std::chrono::microseconds(us);
        if (mode == body_mode::staged) {
            // An exact-size copy made now and usually freed soon after by the
            // caller: the heap reuses the same memory request after request,
            // where a body grown during the transfer interleaves with every
            // other transfer's and glibc trims and re-faults the heap top.
            resp.body.assign(staging);
            staging.clear();
        }
        return std::move(resp);
    }

    corio::detail::curl::multi* multi;
    std::string method, url, body;
    slist own_headers;
    response resp;
    std::string staging;  // the body so far, in a buffer of the client's pool (body_mode::staged)
    chain* ch = nullptr;
    std::coroutine_handle<> h{};
    bool cancelled = false;
    bool finished = false;
    bool fresh = false;  // a new easy handle: the client's fixed options are not set yet
    body_mode mode = body_mode::unknown;
    char errbuf[CURL_ERROR_SIZE] = {};
};

/// `co_await perform_awaiter{&x}`: runs x's transfer to its end.
struct perform_awaiter {
    exchange* x;

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (!corio::detail::begin_park(caller, x->ch)) {
            x->cancelled = true;
            return false;
        }
        x->multi->add(x);
        corio::detail::finish_park(x->ch, x, &exchange::on_cancel, x->h, caller);
        return true;
    }
    void await_resume() const { x->check(); }
};

inline task<void> perform(exchange& x) { co_await perform_awaiter{&x}; }

/// A streamed request: the body is handed over in chunks as it arrives, and
/// the transfer is paused while `high_water` bytes wait for the consumer.
/// One task waits on it at a time (stream() for the head, then the body's
/// generator for data).
struct stream_exchange : exchange {
    static constexpr std::size_t high_water = 64 * 1024;

    stream_exchange(corio::detail::curl::multi& m, std::string u, bool follow)
        : exchange(m, "GET", std::move(u), {}), follow_redirects(follow) {
        on_done = &stream_exchange::stream_done;
    }

    void bind_callbacks() noexcept {
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &stream_exchange::on_chunk);
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &stream_exchange::on_head_line);
    }

    /// Hands the waiting task back to the scheduler (never inline).
    void wake() noexcept {
        if (!waiting) return;
        waiting = false;
        ch->unpark();
        ch->sched->schedule(h);
    }

    static void stream_done(corio::detail::curl::transfer* t) noexcept {
        auto* x = static_cast<stream_exchange*>(t);
        x->finished = true;
        x->wake();
    }

    static void on_wait_cancel(waiter_base* w) noexcept {
        auto* x = static_cast<stream_exchange*>(w);
        x->waiting = false;
        x->multi->remove(x);
        x->cancelled = true;
        x->ch->sched->schedule(x->h);
    }

    static std::size_t on_chunk(char* p, std::size_t size, std::size_t n, void* ud) {
        auto* x = static_cast<stream_exchange*>(ud);
        std::size_t len = size * n;
        if (!x->pending.empty() && x->pending.size() + len > high_water) {
            x->paused = true;  // backpressure: libcurl keeps the data and stops reading
            return CURL_WRITEFUNC_PAUSE;
        }
        try {
            x->pending.append(p, len);
        } catch (...) {
            return 0;
        }
        x->head_ready = true;
        x->wake();
        return len;
    }

    static std::size_t on_head_line(char* p, std::size_t size, std::size_t n, void* ud) {
        auto* x = static_cast<stream_exchange*>(ud);
        std::string_view line(p, size * n);
        try {
            take_header_line(x->resp.headers, line);
        } catch (...) {
            return 0;
        }
        if (line == "\r\n" || line == "\n") x->head_ended();
        return size * n;
    }

    /// The end of one header block: the final head unless libcurl goes on
    /// to another response (1xx, or a redirect it follows).
    void head_ended() noexcept {
        long code = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
        if (code < 200) return;
        if (follow_redirects && code / 100 == 3 && resp.headers.contains("location")) return;
        head_ready = true;
        wake();
    }

    /// Takes what arrived so far and lets a paused transfer go on.
    std::string take_pending() {
        std::string out = std::move(pending);
        pending.clear();
        if (paused && !multi_gone) {
            paused = false;
            multi->unpause(this);  // may deliver more into `pending` at once
        }
        return out;
    }

    std::string pending;
    bool follow_redirects;
    bool head_ready = false;
    bool paused = false;
    bool waiting = false;
    bool started = false;
};

/// `co_await stream_wait{x, for_head}`: until the head arrived (for_head) or
/// body data is pending, or the transfer finished. Starts the transfer on
/// first use.
struct stream_wait {
    stream_exchange* x;
    bool for_head;

    bool ready() const noexcept { return x->finished || (for_head ? x->head_ready : !x->pending.empty()); }
    bool await_ready() const noexcept { return x->started && ready(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (!corio::detail::begin_park(caller, x->ch)) {
            x->cancelled = true;
            if (x->started) x->multi->remove(x);
            return false;
        }
        if (!x->started) {
            x->started = true;
            x->multi->add(x);
        }
        x->waiting = true;
        corio::detail::finish_park(x->ch, x, &stream_exchange::on_wait_cancel, x->h, caller);
        return true;
    }
    void await_resume() const {
        if (x->orphaned || x->cancelled) x->check();
    }
};

inline task<void> wait_head(stream_exchange& x) { co_await stream_wait{&x, true}; }

/// The body's chunks as they arrive; owns the transfer (destroying the
/// generator aborts it).
inline async_generator<std::string> stream_chunks(std::unique_ptr<stream_exchange> x) {
    for (;;) {
        if (!x->pending.empty()) {
            co_yield x->take_pending();
            continue;
        }
        if (x->finished) {
            x->check();
            co_return;
        }
        co_await stream_wait{x.get(), false};
    }
}

/// Splits chunks into text lines (without "\n" or "\r\n"); a last line
/// without a newline is yielded too.
inline async_generator<std::string> stream_lines(async_generator<std::string> chunks) {
    std::string buf;
    while (std::optional<std::string> c = co_await chunks.next()) {
        buf += *c;
        std::size_t start = 0;
        for (std::size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
            std::size_t end = nl > start && buf[nl - 1] == '\r' ? nl - 1 : nl;
            co_yield buf.substr(start, end - start);
        }
        buf.erase(0, start);
    }
    if (!buf.empty()) {
        if (buf.back() == '\r') buf.pop_back();
        co_yield std::move(buf);
    }
}

}  // namespace detail

/// The head of a streamed response, and its body to pull (chunks() or
/// lines(), once). Move-only. Destroying it (or the generator it handed
/// out) aborts an unfinished transfer.
class stream_response {
public:
    /// The HTTP status code.
    long status = 0;
    /// The response headers.
    http::headers headers;
    /// The URL of the response, after redirects.
    std::string effective_url;

    /// Takes over `o`'s transfer.
    stream_response(stream_response&&) noexcept = default;
    /// Aborts this response's unfinished transfer, then takes over `o`'s.
    stream_response& operator=(stream_response&&) noexcept = default;

    /// Status 2xx or 3xx.
    bool ok() const noexcept { return status >= 200 && status < 400; }
    /// Throws status_error when status >= 400; returns *this otherwise.
    const stream_response& raise_for_status() const {
        if (status >= 400) throw status_error(status, effective_url);
        return *this;
    }

    /// The body as it arrives, in chunks (no empty chunk). The generator
    /// owns the transfer; a consumer that stops pulling pauses it.
    async_generator<std::string> chunks() { return detail::stream_chunks(take("chunks()")); }
    /// The body as text lines, without their line ends.
    async_generator<std::string> lines() { return detail::stream_lines(chunks()); }

private:
    friend class client;
    explicit stream_response(std::unique_ptr<detail::stream_exchange> x) : x_(std::move(x)) {}

    std::unique_ptr<detail::stream_exchange> take(const char* what) {
        if (!x_)
            throw invalid_state_error(std::string("corio::http: stream_response::") + what +
                                      ": the body was already taken");
        return std::move(x_);
    }

    std::unique_ptr<detail::stream_exchange> x_;
};

/// An HTTP client: one libcurl multi handle on one corio loop.
class client {
public:
    /// A client on the loop running on this thread (invalid_state_error if none).
    explicit client(options o = {}) : client(current_loop(), std::move(o)) {}
    /// A client on `loop`, with the settings `o` (invalid_argument when one is out of range).
    client(event_loop& loop, options o) : loop_(&loop), opts_(std::move(o)) {
        validate(opts_);
        multi_ = std::make_unique<corio::detail::curl::multi>(loop.context(), settings(opts_));
        fill_headers(base_headers_, false, {}, {});
        fill_headers(body_headers_, true, {}, {});
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    /// Transfers still in flight are removed; their requests throw invalid_state_error.
    ~client() = default;

    /// GET `url`. The response, whatever its status (raise_for_status() turns >= 400 into status_error);
    /// http::error on a transport error, timeout_error when a timeout expires. Cancellation point.
    task<response> get(std::string url, request_options o = {}) {
        return request("GET", std::move(url), {}, {}, std::move(o));
    }
    /// POST `body` to `url`; as get().
    task<response> post(std::string url, std::string body, request_options o = {}) {
        return request("POST", std::move(url), std::move(body), {}, std::move(o));
    }
    /// PUT `body` to `url`; as get().
    task<response> put(std::string url, std::string body, request_options o = {}) {
        return request("PUT", std::move(url), std::move(body), {}, std::move(o));
    }
    /// Any method; `headers` and `o.headers` are added to the default headers.
    task<response> request(std::string method, std::string url, std::string body = {}, header_list headers = {},
                           request_options o = {});

    /// GET `url` and return once the response head arrived; the body is then
    /// pulled from the stream_response (chunks() or lines()). A timeout
    /// (request_options or options) bounds the wait for the head only.
    task<stream_response> stream(std::string url, request_options o = {});

    /// Transfers currently in the multi handle.
    std::size_t active_transfers() const noexcept { return multi_->active(); }
    /// Transfers whose request (or stream body) still exists, finished or
    /// not: 0 once every request of this client has returned and every
    /// stream_response and body generator is gone (a leak check for tests).
    std::size_t live_transfers() const noexcept { return multi_->alive(); }
    /// The client's settings.
    const options& settings() const noexcept { return opts_; }
    /// The loop the client runs on.
    event_loop& loop() const noexcept { return *loop_; }

private:
    static void validate(const options& o) {
        if (o.timeout) detail::check_duration("options::timeout", *o.timeout);
        detail::check_duration("options::connect_timeout", o.connect_timeout);
        if (o.max_redirects < 0)
            throw std::invalid_argument("corio::http: options::max_redirects must not be negative");
        if (o.max_connections > LONG_MAX || o.max_connections_per_host > LONG_MAX)
            throw std::invalid_argument("corio::http: options::max_connections is too large");
        detail::check_header_text("options::user_agent", o.user_agent);
        detail::check_headers(o.default_headers);
    }
    static corio::detail::curl::multi_settings settings(const options& o) {
        return {static_cast<long>(o.max_connections), static_cast<long>(o.max_connections_per_host), o.http2};
    }

    void check_loop() const {
        if (corio::detail::running_loop() != loop_)
            throw invalid_state_error(
                "corio::http::client: used off its loop (a client belongs to the loop it was created on)");
    }

    /// The user agent as a header line of the list, unless a header of the
    /// client's or of `more` names one: a fixed line costs libcurl less than
    /// CURLOPT_USERAGENT, which it formats into a header for every request.
    void append_user_agent(detail::slist& to, std::initializer_list<const header_list*> more) const {
        if (opts_.user_agent.empty()) return;
        auto names_it = [](const header_list& hs) {
            return std::any_of(hs.begin(), hs.end(),
                               [](const auto& kv) { return headers::iequals(kv.first, "User-Agent"); });
        };
        if (names_it(opts_.default_headers)) return;
        for (const header_list* hs : more)
            if (names_it(*hs)) return;
        to.append("User-Agent: " + opts_.user_agent);
    }

    /// The header lines a request sends: the client's default headers,
    /// "Expect:" for one with a body (no 100-continue round trip), `extra`
    /// and `per_request`, then the user agent unless one of them names it.
    void fill_headers(detail::slist& to, bool has_body, const header_list& extra,
                      const header_list& per_request) const {
        to.append(opts_.default_headers);
        if (has_body) to.append("Expect:");
        to.append(extra);
        to.append(per_request);
        append_user_agent(to, {&extra, &per_request});
    }

    void setup(detail::exchange& x, const header_list& extra, const request_options& o) const;
    void setup_method(detail::exchange& x) const;
    void setup_fixed(CURL* e) const;

    event_loop* loop_;
    options opts_;
    detail::slist base_headers_;  // for requests without a body: libcurl scans every line per request
    detail::slist body_headers_;  // with a body: base_headers_ and "Expect:"
    std::unique_ptr<corio::detail::curl::multi> multi_;
};

inline void client::setup_method(detail::exchange& x) const {
    CURL* e = x.easy;
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);  // clears what a pooled handle's last request set
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, nullptr);
    if (x.method == "GET" && x.body.empty()) return;
    if (x.method == "HEAD") {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(x.body.size()));
    if (x.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x.method.c_str());
}

/// The options that are the same for every request of this client.
inline void client::setup_fixed(CURL* e) const {
    multi_->bind_easy(e);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    auto connect_ms = std::chrono::duration_cast<std::chrono::milliseconds>(opts_.connect_timeout).count();
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max<decltype(connect_ms)>(connect_ms, 1)));
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, opts_.max_redirects);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, opts_.verify_tls ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, opts_.verify_tls ? 2L : 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, opts_.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
}

inline void client::setup(detail::exchange& x, const header_list& extra, const request_options& o) const {
    CURL* e = x.easy;
    if (x.fresh) setup_fixed(e);
    curl_easy_setopt(e, CURLOPT_PRIVATE, static_cast<corio::detail::curl::transfer*>(&x));
    curl_easy_setopt(e, CURLOPT_URL, x.url.c_str());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x.errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &detail::exchange::on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &detail::exchange::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, o.follow_redirects.value_or(opts_.follow_redirects) ? 1L : 0L);
    if (extra.empty() && o.headers.empty()) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x.body.empty() ? base_headers_.get() : body_headers_.get());
    } else {
        fill_headers(x.own_headers, !x.body.empty(), extra, o.headers);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x.own_headers.get());
    }
    setup_method(x);
}

inline task<response> client::request(std::string method, std::string url, std::string body, header_list headers,
                                      request_options o) {
    check_loop();
    detail::check_method(method);
    detail::check_headers(headers);
    detail::check_headers(o.headers);
    if (o.timeout) detail::check_duration("request_options::timeout", *o.timeout);
    detail::exchange x(*multi_, std::move(method), std::move(url), std::move(body));
    setup(x, headers, o);
    const std::optional<clock::duration>& limit = o.timeout ? o.timeout : opts_.timeout;
    if (limit) co_await corio::timeout(*limit, detail::perform(x));
    else co_await detail::perform_awaiter{&x};
    co_return x.take_response();
}

inline task<stream_response> client::stream(std::string url, request_options o) {
    check_loop();
    detail::check_headers(o.headers);
    if (o.timeout) detail::check_duration("request_options::timeout", *o.timeout);
    auto x = std::make_unique<detail::stream_exchange>(*multi_, std::move(url),
                                                       o.follow_redirects.value_or(opts_.follow_redirects));
    setup(*x, {}, o);
    x->bind_callbacks();
    const std::optional<clock::duration>& limit = o.timeout ? o.timeout : opts_.timeout;
    if (limit) co_await corio::timeout(*limit, detail::wait_head(*x));
    else co_await detail::stream_wait{x.get(), true};
    if (!x->head_ready) x->check();  // failed before a head arrived
    stream_response r(std::move(x));
    detail::stream_exchange& s = *r.x_;
    long status = 0;
    curl_easy_getinfo(s.easy, CURLINFO_RESPONSE_CODE, &status);
    char* eff = nullptr;
    if (curl_easy_getinfo(s.easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) r.effective_url = eff;
    r.status = status;
    r.headers = s.resp.headers;
    co_return r;
}

}  // namespace corio::http
