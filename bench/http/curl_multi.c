/* bench/http/curl_multi.c: libcurl's own ceiling for bench/http/run.sh.
 *
 * A plain C program driving libcurl's multi interface directly (curl_multi_poll,
 * no event library): PAGES GETs of URL_PREFIX<i % FILES>, CONCURRENCY in flight,
 * a finished easy handle re-used for the next page at once, at most
 * CONCURRENCY connections per host. Prints the same line as corio's
 * fetch_with_limit: pages/s and latency percentiles (ms).
 *
 *   curl_multi URL_PREFIX PAGES CONCURRENCY FILES [keep] [socket]
 *
 * By default the bodies are counted and dropped: the ceiling of libcurl
 * itself. With `keep`, each body is kept in memory until its page is done
 * and freed then: one allocation of the length the response announced
 * (doubling past it; a chunked body starts at 16 KiB), one copy of every
 * chunk. That is the least a C program that hands each page to its caller
 * pays, as corio's client does (corio also keeps the response headers).
 *
 * With `socket`, libcurl is driven through its multi-socket API instead of
 * curl_multi_perform: an epoll set of the sockets libcurl asks to watch
 * (level-triggered, changed only when libcurl's wishes change) and its timer
 * as epoll_wait's timeout; each ready socket goes to curl_multi_socket_action.
 * This is the API an event loop must use (corio's client does, on Asio), so
 * it is the ceiling of any client built on one.
 */
#include <curl/curl.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>

static int keep_bodies;

struct slot {
    CURL* easy;
    size_t bytes;
    char* body;      /* keep: the body so far (bytes long) */
    size_t capacity; /* keep: bytes allocated at body */
    double started;
    char url[512];
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t on_body(char* p, size_t size, size_t n, void* ud) {
    struct slot* s = ud;
    size_t len = size * n;
    if (keep_bodies) {
        if (s->bytes + len > s->capacity) { /* the announced length at once, else doubling */
            curl_off_t announced = -1;
            curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
            size_t want = s->capacity ? 2 * s->capacity : announced > 0 ? (size_t)announced : 16384;
            if (want < s->bytes + len) want = s->bytes + len;
            char* grown = realloc(s->body, want);
            if (!grown) return 0; /* CURLE_WRITE_ERROR */
            s->body = grown;
            s->capacity = want;
        }
        memcpy(s->body + s->bytes, p, len);
    }
    s->bytes += len;
    return len;
}

/* --- the multi-socket driver (`socket`) ---
 * The epoll set changes only when libcurl's wishes do: a connection going idle
 * (CURL_POLL_REMOVE) stays registered, so the next transfer on it costs no
 * epoll_ctl; an event on a socket nobody wants removes it then (an idle
 * connection the server closed), and libcurl's close clears its entry (the fd
 * number may come back for a new socket). */
static int epoll_fd = -1;
static long timeout_ms = -1;         /* libcurl's timer: -1 none, 0 now */
static unsigned registered[1 << 16]; /* by fd: epoll events + 1, 0 not in the set */
static unsigned wanted[1 << 16];     /* by fd: what libcurl asked for last */

/* fd is in range: on_socket, the only caller, checked it. */
static void watch(int fd, unsigned events) {
    if (registered[fd] == events + 1) return;
    struct epoll_event ev = {0};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd, registered[fd] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    registered[fd] = events + 1;
}

static int on_socket(CURL* e, curl_socket_t fd, int what, void* userp, void* socketp) {
    (void)e, (void)userp, (void)socketp;
    if (fd < 0 || fd >= (1 << 16)) return -1;
    if (what == CURL_POLL_REMOVE) {
        wanted[fd] = 0; /* stays in the set until it fires or closes */
        return 0;
    }
    wanted[fd] = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    watch(fd, wanted[fd]);
    return 0;
}

static int on_close(void* clientp, curl_socket_t fd) {
    (void)clientp;
    if (fd >= 0 && fd < (1 << 16) && registered[fd]) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        registered[fd] = wanted[fd] = 0;
    }
    return close(fd);
}

static int on_timer(CURLM* m, long ms, void* userp) {
    (void)m, (void)userp;
    timeout_ms = ms;
    return 0;
}

/* One turn: waits for sockets or the timer, hands each to libcurl. */
static void socket_turn(CURLM* m) {
    struct epoll_event evs[64];
    int running = 0;
    if (timeout_ms == 0) {
        timeout_ms = -1;
        curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
        return;
    }
    int n = epoll_wait(epoll_fd, evs, 64, timeout_ms < 0 ? 1000 : (int)timeout_ms);
    if (n == 0) {
        timeout_ms = -1;
        curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        if (!wanted[fd]) { /* an idle connection: libcurl is not watching it */
            epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
            registered[fd] = 0;
            continue;
        }
        int bits = (evs[i].events & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
                   (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                   (evs[i].events & EPOLLERR ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(m, fd, bits, &running);
    }
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

static void start(CURLM* m, struct slot* s, const char* prefix, long page, long files) {
    snprintf(s->url, sizeof s->url, "%s%ld", prefix, page % files);
    curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
    s->started = now_ms();
    curl_multi_add_handle(m, s->easy);
}

int main(int argc, char** argv) {
    int socket_api = 0, bad = argc < 5;
    for (int i = 5; i < argc; ++i) {
        if (strcmp(argv[i], "keep") == 0) keep_bodies = 1;
        else if (strcmp(argv[i], "socket") == 0) socket_api = 1;
        else bad = 1;
    }
    if (bad) {
        fprintf(stderr, "usage: %s URL_PREFIX PAGES CONCURRENCY FILES [keep] [socket]\n", argv[0]);
        return 2;
    }
    const char* prefix = argv[1];
    long pages = atol(argv[2]), conc = atol(argv[3]), files = atol(argv[4]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM* m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conc);
    if (socket_api) {
        epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(m, CURLMOPT_SOCKETDATA, m);
        curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
    }
    struct slot* slots = calloc((size_t)conc, sizeof *slots);
    double* lat = calloc((size_t)pages, sizeof *lat);
    long next = 0, done = 0, failed = 0;
    size_t bytes = 0;
    double t0 = now_ms();
    for (long i = 0; i < conc && next < pages; ++i) {
        slots[i].easy = curl_easy_init();
        curl_easy_setopt(slots[i].easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(slots[i].easy, CURLOPT_WRITEDATA, &slots[i]);
        curl_easy_setopt(slots[i].easy, CURLOPT_PRIVATE, &slots[i]);
        if (socket_api) curl_easy_setopt(slots[i].easy, CURLOPT_CLOSESOCKETFUNCTION, on_close);
        start(m, &slots[i], prefix, next++, files);
    }
    while (done < pages) {
        int running = 0, left = 0;
        if (socket_api) socket_turn(m);
        else curl_multi_perform(m, &running);
        CURLMsg* msg;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct slot* s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char**)&s);
            if (msg->data.result != CURLE_OK) ++failed;
            lat[done++] = now_ms() - s->started;
            bytes += s->bytes;
            s->bytes = 0;
            free(s->body); /* keep: the page was handed over and is done with */
            s->body = NULL;
            s->capacity = 0;
            curl_multi_remove_handle(m, s->easy);
            if (next < pages) start(m, s, prefix, next++, files);
        }
        if (done < pages && !socket_api) curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    double secs = (now_ms() - t0) / 1e3;
    qsort(lat, (size_t)pages, sizeof *lat, cmp_double);
    printf("pages=%ld bytes=%zu seconds=%.3f pages_per_s=%.0f p50_ms=%.3f p99_ms=%.3f failed=%ld\n", pages, bytes, secs,
           (double)pages / secs, lat[pages / 2], lat[(long)((double)pages * 0.99)], failed);
    for (long i = 0; i < conc; ++i)
        if (slots[i].easy) curl_easy_cleanup(slots[i].easy);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    free(slots);
    free(lat);
    return failed != 0;
}
