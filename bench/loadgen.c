/*
 * loadgen — a small single-threaded epoll load generator for the diocp wire
 * protocol (see PROTOCOL.md: 16-byte big-endian header, magic 0xD1 0x0C).
 *
 * Build:  cc -O2 -o bench/.build/loadgen bench/loadgen.c
 * Usage:  loadgen --host 127.0.0.1 --port P --connections N --depth D
 *                 --duration-ms T --warmup-ms W --payload 64 --command 1
 *                 [--timeout-ms 2000] [--check-payload]
 *
 * Opens N connections and keeps D requests in flight on each: every response
 * that arrives frees its slot, and after each read all freed slots of that
 * connection are refilled with one write (pipelining, batched writes).
 * Request ids are unique per connection: id = seq * D + slot + 1, where seq is
 * the per-slot sequence number, so a response maps back to its slot in O(1)
 * even when the server answers out of order.
 *
 * Latency is measured per request with CLOCK_MONOTONIC (send time stored in
 * the slot; one clock read per write batch and one per read) and recorded in a
 * fixed histogram of 1 µs buckets up to 1 s plus an overflow bucket.
 * Responses that arrive during the warmup are checked but not counted.
 *
 * Output: ONE line of JSON on stdout, e.g.
 *   {"requests":..,"seconds":..,"rps":..,"p50_us":..,"p99_us":..,"max_us":..,
 *    "errors":..,"connections":N,"depth":D, ...}
 * A breakdown of the errors goes to stderr when there are any.
 * Exit status: 0 = ran, no errors; 1 = ran, errors > 0; 2 = usage or connect
 * failure (message on stderr, no JSON).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define HDR 16
#define FLAG_RESPONSE 0x01
#define FLAG_ERROR 0x02
#define FLAG_PUSH 0x04
#define HIST_MAX_US 1000000u /* 1 s of 1 µs buckets; index HIST_MAX_US = overflow */
#define MAX_FRAME (64u * 1024u * 1024u)
#define RBUF_MIN (256u * 1024u)

typedef struct {
    int fd;
    int alive;
    int want_out;          /* EPOLLOUT currently registered */
    uint32_t *seq;         /* per slot: seq of the request in flight / next */
    uint64_t *sent_ns;     /* per slot: send time of the request in flight */
    uint8_t *busy;         /* per slot: request in flight */
    uint32_t *due;         /* stack of free slots waiting to be sent */
    uint32_t ndue;
    uint8_t *rbuf;
    size_t rcap, rstart, rend;
    uint8_t *wbuf;         /* capacity: depth * (HDR + payload) */
    size_t wcap, wstart, wend;
    uint64_t ok_measured;  /* OK responses during the measured window */
} conn_t;

/* options */
static const char *opt_host = "127.0.0.1";
static int opt_port = -1;
static int opt_conns = 100;
static int opt_depth = 16;
static long opt_duration_ms = 5000;
static long opt_warmup_ms = 1000;
static long opt_payload = 64;
static long opt_command = 1;
static long opt_timeout_ms = 2000;
static int opt_check_payload = 0;

/* state */
static uint8_t *payload_tmpl;
static uint32_t *hist;
static int measuring = 0;
static int stopping = 0;
static uint64_t n_ok = 0, lat_sum_ns = 0, lat_max_ns = 0;
static uint64_t n_ok_total = 0;

/* error counters (whole run, warmup included) */
static uint64_t e_magic, e_version, e_flags, e_command, e_status, e_length,
    e_id, e_payload, e_closed, e_timeout, e_stalled, e_frame_too_big, n_push;
static long first_bad_status = -1;
static int closed_msgs = 0;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void die(const char *fmt, const char *a) {
    fprintf(stderr, "loadgen: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    exit(2);
}

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n, sz);
    if (!p) die("%s", "out of memory");
    return p;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --port P [--host 127.0.0.1] [--connections 100] [--depth 16]\n"
            "               [--duration-ms 5000] [--warmup-ms 1000] [--payload 64] [--command 1]\n"
            "               [--timeout-ms 2000] [--check-payload]\n");
    exit(2);
}

static long parse_long(const char *name, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "loadgen: bad value for %s: '%s' (allowed %ld..%ld)\n", name, s, lo, hi);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--check-payload")) { opt_check_payload = 1; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage();
        if (i + 1 >= argc) { fprintf(stderr, "loadgen: missing value for %s\n", a); usage(); }
        const char *v = argv[++i];
        if (!strcmp(a, "--host")) opt_host = v;
        else if (!strcmp(a, "--port")) opt_port = (int)parse_long(a, v, 1, 65535);
        else if (!strcmp(a, "--connections")) opt_conns = (int)parse_long(a, v, 1, 60000);
        else if (!strcmp(a, "--depth")) opt_depth = (int)parse_long(a, v, 1, 65536);
        else if (!strcmp(a, "--duration-ms")) opt_duration_ms = parse_long(a, v, 1, 3600000);
        else if (!strcmp(a, "--warmup-ms")) opt_warmup_ms = parse_long(a, v, 0, 3600000);
        else if (!strcmp(a, "--payload")) opt_payload = parse_long(a, v, 0, 16 * 1024 * 1024);
        else if (!strcmp(a, "--command")) opt_command = parse_long(a, v, 0, 0xFFFF);
        else if (!strcmp(a, "--timeout-ms")) opt_timeout_ms = parse_long(a, v, 1, 3600000);
        else { fprintf(stderr, "loadgen: unknown option %s\n", a); usage(); }
    }
    if (opt_port < 0) { fprintf(stderr, "loadgen: --port is required\n"); usage(); }
}

static int connect_one(const struct addrinfo *ai) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return -1;
    struct timeval tv = {5, 0}; /* connect() honours SO_SNDTIMEO on Linux */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    tv.tv_sec = 0;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    return fd;
}

static void conn_close(int ep, conn_t *c, const char *why) {
    if (!c->alive) return;
    c->alive = 0;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (!stopping) {
        e_closed++;
        if (closed_msgs++ < 5) fprintf(stderr, "loadgen: connection closed: %s\n", why);
    }
}

static void set_out(int ep, conn_t *c, int idx, int want) {
    if (c->want_out == want) return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = (uint32_t)idx};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

/* Write out pending bytes; returns 0 on success (possibly partial), -1 if closed. */
static int try_write(int ep, conn_t *c, int idx) {
    while (c->wstart < c->wend) {
        ssize_t n = send(c->fd, c->wbuf + c->wstart, c->wend - c->wstart, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) { c->wstart += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(ep, c, idx, 1);
            return 0;
        }
        conn_close(ep, c, n < 0 ? strerror(errno) : "write returned 0");
        return -1;
    }
    c->wstart = c->wend = 0;
    set_out(ep, c, idx, 0);
    return 0;
}

/* Encode every due slot into the write buffer and send them with one write. */
static void flush_due(int ep, conn_t *c, int idx) {
    if (!c->alive || c->ndue == 0 || stopping) return;
    if (c->wstart > 0 && c->wstart == c->wend) c->wstart = c->wend = 0;
    if (c->wstart > 0) { /* compact the unsent tail to the front */
        memmove(c->wbuf, c->wbuf + c->wstart, c->wend - c->wstart);
        c->wend -= c->wstart;
        c->wstart = 0;
    }
    const size_t fsz = HDR + (size_t)opt_payload;
    uint64_t t = now_ns();
    while (c->ndue > 0) {
        uint32_t s = c->due[--c->ndue];
        uint32_t id = c->seq[s] * (uint32_t)opt_depth + s + 1;
        uint8_t *p = c->wbuf + c->wend; /* room guaranteed: at most depth frames unsent */
        p[0] = 0xD1; p[1] = 0x0C; p[2] = 1; p[3] = 0;
        put16(p + 4, (uint32_t)opt_command);
        put16(p + 6, 0);
        put32(p + 8, id);
        put32(p + 12, (uint32_t)opt_payload);
        if (opt_payload) memcpy(p + HDR, payload_tmpl, (size_t)opt_payload);
        c->wend += fsz;
        c->busy[s] = 1;
        c->sent_ns[s] = t;
    }
    if (!c->want_out) try_write(ep, c, idx); /* else: EPOLLOUT will flush it */
}

static inline void record(uint64_t lat_ns) {
    uint64_t us = lat_ns / 1000;
    hist[us < HIST_MAX_US ? us : HIST_MAX_US]++;
    lat_sum_ns += lat_ns;
    if (lat_ns > lat_max_ns) lat_max_ns = lat_ns;
    n_ok++;
}

static void handle_frame(conn_t *c, const uint8_t *h, uint64_t t) {
    uint8_t ver = h[2], flags = h[3];
    uint16_t cmd = be16(h + 4), status = be16(h + 6);
    uint32_t id = be32(h + 8), len = be32(h + 12);
    if (flags & FLAG_PUSH) { n_push++; return; } /* server-initiated, not an answer */
    int bad = 0;
    if (ver != 1) { e_version++; bad = 1; }
    if (status != 0) {
        e_status++; bad = 1;
        if (first_bad_status < 0) first_bad_status = status;
    }
    if (flags != FLAG_RESPONSE && !(status != 0 && flags == (FLAG_RESPONSE | FLAG_ERROR))) {
        e_flags++; bad = 1;
    }
    if (cmd != (uint16_t)opt_command) { e_command++; bad = 1; }
    if (!bad && len != (uint32_t)opt_payload) { e_length++; bad = 1; }
    if (!bad && opt_check_payload && opt_payload && memcmp(h + HDR, payload_tmpl, (size_t)opt_payload)) {
        e_payload++; bad = 1;
    }
    /* map the request id back to its slot */
    if (id == 0) { e_id++; return; }
    uint32_t s = (id - 1) % (uint32_t)opt_depth, q = (id - 1) / (uint32_t)opt_depth;
    if (!c->busy[s] || c->seq[s] != q) { e_id++; return; }
    c->busy[s] = 0;
    c->seq[s]++;
    c->due[c->ndue++] = s; /* refill the slot even after an error response */
    if (bad) return;
    n_ok_total++;
    if (measuring) {
        record(t - c->sent_ns[s]);
        c->ok_measured++;
    }
}

static void on_readable(int ep, conn_t *c, int idx) {
    if (c->rcap - c->rend < 4096) { /* keep room for a decent read */
        size_t need = c->rend - c->rstart + RBUF_MIN;
        if (c->rstart > 0) {
            memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
            c->rend -= c->rstart;
            c->rstart = 0;
        }
        if (c->rcap - c->rend < 4096) {
            c->rbuf = realloc(c->rbuf, need);
            if (!c->rbuf) die("%s", "out of memory");
            c->rcap = need;
        }
    }
    ssize_t n;
    do n = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) { conn_close(ep, c, n == 0 ? "closed by server (EOF)" : strerror(errno)); return; }
    c->rend += (size_t)n;
    uint64_t t = now_ns();
    while (c->rend - c->rstart >= HDR) {
        const uint8_t *h = c->rbuf + c->rstart;
        if (h[0] != 0xD1 || h[1] != 0x0C) {
            e_magic++;
            conn_close(ep, c, "bad magic in response stream (desync)");
            return;
        }
        uint32_t len = be32(h + 12);
        if (len > MAX_FRAME) {
            e_frame_too_big++;
            conn_close(ep, c, "response frame length over 64 MiB");
            return;
        }
        size_t fsz = HDR + (size_t)len;
        if (c->rend - c->rstart < fsz) { /* incomplete: make sure it will fit */
            if (fsz > c->rcap - c->rstart) {
                memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
                c->rend -= c->rstart;
                c->rstart = 0;
                if (fsz > c->rcap) {
                    c->rbuf = realloc(c->rbuf, fsz + RBUF_MIN);
                    if (!c->rbuf) die("%s", "out of memory");
                    c->rcap = fsz + RBUF_MIN;
                }
            }
            break;
        }
        handle_frame(c, h, t);
        c->rstart += fsz;
    }
    if (c->rstart == c->rend) c->rstart = c->rend = 0;
    flush_due(ep, c, idx);
}

static uint64_t percentile(uint64_t total, double q) {
    if (total == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
    if (rank < 1) rank = 1;
    uint64_t cum = 0;
    for (uint32_t i = 0; i <= HIST_MAX_US; i++) {
        cum += hist[i];
        if (cum >= rank) return i;
    }
    return HIST_MAX_US;
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);

    payload_tmpl = xcalloc((size_t)opt_payload + 1, 1);
    for (long i = 0; i < opt_payload; i++) payload_tmpl[i] = (uint8_t)('a' + i % 26);
    hist = xcalloc(HIST_MAX_US + 1, sizeof *hist);

    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", opt_port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(opt_host, portstr, &hints, &res);
    if (gai != 0 || !res) {
        fprintf(stderr, "loadgen: cannot resolve %s: %s\n", opt_host, gai_strerror(gai));
        return 2;
    }

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1: %s", strerror(errno));
    conn_t *conns = xcalloc((size_t)opt_conns, sizeof *conns);
    const size_t fsz = HDR + (size_t)opt_payload;
    for (int i = 0; i < opt_conns; i++) {
        conn_t *c = &conns[i];
        int fd = connect_one(res);
        if (fd < 0) {
            fprintf(stderr, "loadgen: cannot connect to %s:%d (connection %d of %d): %s\n",
                    opt_host, opt_port, i + 1, opt_conns, strerror(errno));
            return 2;
        }
        c->fd = fd;
        c->alive = 1;
        c->seq = xcalloc((size_t)opt_depth, sizeof *c->seq);
        c->sent_ns = xcalloc((size_t)opt_depth, sizeof *c->sent_ns);
        c->busy = xcalloc((size_t)opt_depth, 1);
        c->due = xcalloc((size_t)opt_depth, sizeof *c->due);
        c->rcap = RBUF_MIN > 2 * fsz ? RBUF_MIN : 2 * fsz;
        c->rbuf = xcalloc(c->rcap, 1);
        c->wcap = (size_t)opt_depth * fsz;
        c->wbuf = xcalloc(c->wcap ? c->wcap : 1, 1);
        for (int s = opt_depth - 1; s >= 0; s--) c->due[c->ndue++] = (uint32_t)s;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
    }
    freeaddrinfo(res);

    const uint64_t t0 = now_ns();
    const uint64_t t_measure = t0 + (uint64_t)opt_warmup_ms * 1000000ull;
    const uint64_t t_end = t_measure + (uint64_t)opt_duration_ms * 1000000ull;
    if (opt_warmup_ms == 0) measuring = 1;
    uint64_t measure_start = opt_warmup_ms == 0 ? t0 : 0, measure_stop = 0;

    for (int i = 0; i < opt_conns; i++) flush_due(ep, &conns[i], i);

    struct epoll_event *evs = xcalloc((size_t)opt_conns, sizeof *evs);
    for (;;) {
        uint64_t t = now_ns();
        if (!measuring && t >= t_measure) { measuring = 1; measure_start = t; }
        if (t >= t_end) { measure_stop = t; break; }
        int alive = 0;
        for (int i = 0; i < opt_conns && !alive; i++) alive = conns[i].alive;
        if (!alive) {
            fprintf(stderr, "loadgen: all connections closed, stopping early\n");
            measure_stop = t;
            break;
        }
        uint64_t next = measuring ? t_end : t_measure;
        int tmo = (int)((next - t + 999999) / 1000000);
        if (tmo > 100) tmo = 100;
        int n = epoll_wait(ep, evs, opt_conns, tmo);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int k = 0; k < n; k++) {
            int idx = (int)evs[k].data.u32;
            conn_t *c = &conns[idx];
            if (!c->alive) continue;
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(ep, c, idx);
            if (c->alive && (evs[k].events & EPOLLOUT)) {
                if (try_write(ep, c, idx) == 0) flush_due(ep, c, idx);
            }
        }
    }
    stopping = 1;
    if (!measuring) measure_start = measure_stop; /* stopped during warmup */

    /* requests still unanswered for longer than --timeout-ms, and connections
       that got no OK response at all while measuring, are errors */
    const uint64_t tmo_ns = (uint64_t)opt_timeout_ms * 1000000ull;
    for (int i = 0; i < opt_conns; i++) {
        conn_t *c = &conns[i];
        if (c->alive) {
            for (int s = 0; s < opt_depth; s++)
                if (c->busy[s] && measure_stop - c->sent_ns[s] > tmo_ns) e_timeout++;
            if (c->ok_measured == 0) e_stalled++;
            close(c->fd);
        }
    }

    uint64_t errors = e_magic + e_version + e_flags + e_command + e_status + e_length + e_id +
                      e_payload + e_closed + e_timeout + e_stalled + e_frame_too_big;
    double secs = (double)(measure_stop - measure_start) / 1e9;
    double rps = secs > 0 ? (double)n_ok / secs : 0;
    printf("{\"requests\":%llu,\"seconds\":%.3f,\"rps\":%.0f,\"p50_us\":%llu,\"p90_us\":%llu,"
           "\"p99_us\":%llu,\"p999_us\":%llu,\"max_us\":%llu,\"mean_us\":%.1f,\"errors\":%llu,"
           "\"connections\":%d,\"depth\":%d,\"payload\":%ld,\"command\":%ld,"
           "\"warmup_ms\":%ld,\"duration_ms\":%ld,\"pushes\":%llu}\n",
           (unsigned long long)n_ok, secs, rps,
           (unsigned long long)percentile(n_ok, 0.50), (unsigned long long)percentile(n_ok, 0.90),
           (unsigned long long)percentile(n_ok, 0.99), (unsigned long long)percentile(n_ok, 0.999),
           (unsigned long long)(lat_max_ns / 1000), n_ok ? (double)lat_sum_ns / (double)n_ok / 1000.0 : 0.0,
           (unsigned long long)errors, opt_conns, opt_depth, opt_payload, opt_command,
           opt_warmup_ms, opt_duration_ms, (unsigned long long)n_push);
    fflush(stdout);
    if (errors) {
        fprintf(stderr,
                "loadgen: %llu errors: bad_magic=%llu bad_version=%llu bad_flags=%llu "
                "bad_command=%llu bad_status=%llu (first status %ld) bad_length=%llu "
                "unknown_request_id=%llu payload_mismatch=%llu frame_too_big=%llu "
                "connections_closed=%llu timeouts(>%ldms)=%llu stalled_connections=%llu\n",
                (unsigned long long)errors, (unsigned long long)e_magic, (unsigned long long)e_version,
                (unsigned long long)e_flags, (unsigned long long)e_command, (unsigned long long)e_status,
                first_bad_status, (unsigned long long)e_length, (unsigned long long)e_id,
                (unsigned long long)e_payload, (unsigned long long)e_frame_too_big,
                (unsigned long long)e_closed, opt_timeout_ms, (unsigned long long)e_timeout,
                (unsigned long long)e_stalled);
        return 1;
    }
    return 0;
}
