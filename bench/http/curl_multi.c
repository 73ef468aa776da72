/* bench/http/curl_multi.c: libcurl's own ceiling for bench/http/run.sh.
 *
 * A plain C program driving libcurl's multi interface directly (curl_multi_poll,
 * no event library): PAGES GETs of URL_PREFIX<i % FILES>, CONCURRENCY in flight,
 * a finished easy handle re-used for the next page at once, at most
 * CONCURRENCY connections per host. Prints the same line as corio's
 * fetch_with_limit: pages/s and latency percentiles (ms).
 *
 *   curl_multi URL_PREFIX PAGES CONCURRENCY FILES
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
    CURL* easy;
    size_t bytes;
    double started;
    char url[512];
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t on_body(char* p, size_t size, size_t n, void* ud) {
    (void)p;
    ((struct slot*)ud)->bytes += size * n;
    return size * n;
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
    if (argc != 5) {
        fprintf(stderr, "usage: %s URL_PREFIX PAGES CONCURRENCY FILES\n", argv[0]);
        return 2;
    }
    const char* prefix = argv[1];
    long pages = atol(argv[2]), conc = atol(argv[3]), files = atol(argv[4]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM* m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conc);
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
        start(m, &slots[i], prefix, next++, files);
    }
    while (done < pages) {
        int running = 0, left = 0;
        curl_multi_perform(m, &running);
        CURLMsg* msg;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct slot* s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char**)&s);
            if (msg->data.result != CURLE_OK) ++failed;
            lat[done++] = now_ms() - s->started;
            bytes += s->bytes;
            s->bytes = 0;
            curl_multi_remove_handle(m, s->easy);
            if (next < pages) start(m, s, prefix, next++, files);
        }
        if (done < pages) curl_multi_poll(m, NULL, 0, 1000, NULL);
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
