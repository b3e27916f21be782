/*
 * epoll-echo — a minimal single-threaded C epoll echo server for the diocp wire
 * protocol (PROTOCOL.md: 16-byte big-endian header, magic 0xD1 0x0C). It is the
 * hardware reference of the echo bench: what one core can do with no runtime at
 * all, so that the Node servers can be reported as a fraction of it.
 *
 * Build:  cc -O2 -o bench/.build/epoll-echo bench/epoll-echo.c
 * Usage:  epoll-echo --port P [--host 127.0.0.1] [--max-frame 16777216]
 *
 * Per connection: reassemble frames (split and sticky), answer every request
 * with flags RESPONSE, the same command and request id, status 0 and the
 * request's payload (ONEWAY requests get no answer); all answers of one read
 * go out with ONE write, like bench/baseline-echo.mjs. A bad frame (magic,
 * version, reserved or server-only flags, length over --max-frame) is answered
 * with a PROTOCOL_ERROR frame (command 0, request id 0) and the connection is
 * closed. While a connection has unsent answers it is not read (EPOLLOUT
 * first), so memory per connection stays bounded by one read's worth of
 * answers.
 *
 * Prints "listening <port>" once listening; exits 0 on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>

#define HDR 16
#define FLAG_RESPONSE 0x01
#define FLAG_ERROR 0x02
#define FLAG_PUSH 0x04
#define FLAG_ONEWAY 0x08
#define FLAG_RESERVED 0xF0
#define READ_CHUNK (64u * 1024u)

typedef struct conn {
    int fd;
    uint8_t *in;            /* unparsed bytes: an incomplete frame carried over */
    size_t in_len, in_cap;
    uint8_t *out;           /* answers not yet written */
    size_t out_start, out_len, out_cap;
    int closing;            /* close once `out` is flushed (after a protocol error) */
} conn_t;

static volatile sig_atomic_t stop_flag = 0;
static uint32_t max_frame = 16u * 1024u * 1024u;
static uint8_t rbuf[READ_CHUNK];

static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static inline uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) { fprintf(stderr, "epoll-echo: out of memory\n"); exit(1); }
    return q;
}

static void out_reserve(conn_t *c, size_t more) {
    if (c->out_start > 0 && c->out_start == c->out_len) c->out_start = c->out_len = 0;
    if (c->out_len + more <= c->out_cap) return;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + more) cap *= 2;
    c->out = xrealloc(c->out, cap);
    c->out_cap = cap;
}

static void conn_free(int ep, conn_t *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* Write what is pending. 1 = all written, 0 = would block, -1 = connection gone. */
static int flush_out(conn_t *c) {
    while (c->out_start < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_start, c->out_len - c->out_start, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) { c->out_start += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
    c->out_start = c->out_len = 0;
    return 1;
}

static void protocol_error(conn_t *c, const char *msg) {
    char body[160];
    int n = snprintf(body, sizeof body, "{\"code\":1,\"message\":\"%s\"}", msg);
    out_reserve(c, HDR + (size_t)n);
    uint8_t *p = c->out + c->out_len;
    p[0] = 0xD1; p[1] = 0x0C; p[2] = 1; p[3] = FLAG_RESPONSE | FLAG_ERROR;
    p[4] = 0; p[5] = 0;      /* command 0: the header cannot be trusted */
    p[6] = 0; p[7] = 1;      /* status 1 PROTOCOL_ERROR */
    put32(p + 8, 0);
    put32(p + 12, (uint32_t)n);
    memcpy(p + HDR, body, (size_t)n);
    c->out_len += HDR + (size_t)n;
    c->closing = 1;
}

/* Parse complete frames of buf[0..len), append answers to c->out. Returns bytes consumed. */
static size_t parse(conn_t *c, const uint8_t *buf, size_t len) {
    size_t off = 0;
    while (len - off >= HDR) {
        const uint8_t *h = buf + off;
        if (h[0] != 0xD1 || h[1] != 0x0C) { protocol_error(c, "bad magic"); return len; }
        if (h[2] != 1) { protocol_error(c, "unsupported version"); return len; }
        if (h[3] & (FLAG_RESERVED | FLAG_RESPONSE | FLAG_ERROR | FLAG_PUSH)) { protocol_error(c, "bad flags"); return len; }
        uint32_t plen = be32(h + 12);
        if (plen > max_frame) { protocol_error(c, "frame too large"); return len; }
        if (len - off - HDR < plen) break;
        if (!(h[3] & FLAG_ONEWAY)) {
            out_reserve(c, HDR + plen);
            uint8_t *p = c->out + c->out_len;
            memcpy(p, h, HDR + plen);      /* command, request id, length, payload as received */
            p[3] = FLAG_RESPONSE;
            p[6] = 0; p[7] = 0;            /* status OK */
            c->out_len += HDR + plen;
        }
        off += HDR + plen;
    }
    return off;
}

/* Read once, answer everything complete with one write. -1 = close the connection. */
static int on_readable(int ep, conn_t *c) {
    ssize_t n;
    do n = recv(c->fd, rbuf, sizeof rbuf, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n <= 0) return -1;
    const uint8_t *buf = rbuf;
    size_t len = (size_t)n;
    if (c->in_len > 0) { /* a frame was split: append and parse from the carry-over */
        if (c->in_len + len > c->in_cap) {
            size_t cap = c->in_cap ? c->in_cap : 4096;
            while (cap < c->in_len + len) cap *= 2;
            c->in = xrealloc(c->in, cap);
            c->in_cap = cap;
        }
        memcpy(c->in + c->in_len, rbuf, len);
        c->in_len += len;
        buf = c->in;
        len = c->in_len;
    }
    size_t used = parse(c, buf, len);
    size_t rest = len - used;
    if (rest > 0 && buf == c->in) memmove(c->in, c->in + used, rest);
    else if (rest > 0) {
        if (rest > c->in_cap) { c->in = xrealloc(c->in, rest); c->in_cap = rest; }
        memcpy(c->in, rbuf + used, rest);
    }
    c->in_len = rest;
    if (c->in_len == 0 && c->in_cap > 65536) { free(c->in); c->in = NULL; c->in_cap = 0; }
    int r = flush_out(c);
    if (r < 0) return -1;
    if (r == 0) { /* stop reading until the answers are out */
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return 0;
    }
    return c->closing ? -1 : 0;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = -1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) { fprintf(stderr, "epoll-echo: missing value for %s\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--port")) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--host")) host = argv[++i];
        else if (!strcmp(argv[i], "--max-frame")) max_frame = (uint32_t)strtoul(argv[++i], NULL, 0);
        else { fprintf(stderr, "epoll-echo: unknown argument %s\n", argv[i]); return 2; }
    }
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: epoll-echo --port P [--host 127.0.0.1] [--max-frame N]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0 || !res) { fprintf(stderr, "epoll-echo: cannot resolve %s: %s\n", host, gai_strerror(gai)); return 2; }
    int lfd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, res->ai_addr, res->ai_addrlen) < 0 || listen(lfd, 4096) < 0) {
        fprintf(stderr, "epoll-echo: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
        return 2;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(lfd, (struct sockaddr *)&ss, &sl);
    int bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL = the listener */
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    printf("listening %d\n", bound);
    fflush(stdout);

    struct epoll_event evs[256];
    while (!stop_flag) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll-echo: epoll_wait");
            return 1;
        }
        for (int k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break; /* EAGAIN, or EMFILE: try again on the next event */
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *nc = calloc(1, sizeof *nc);
                    if (!nc) { close(fd); continue; }
                    nc->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (evs[k].events & EPOLLOUT) {
                int r = flush_out(c);
                if (r < 0 || (r == 1 && c->closing)) { conn_free(ep, c); continue; }
                if (r == 1) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
                continue;
            }
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (on_readable(ep, c) < 0) conn_free(ep, c);
            }
        }
    }
    return 0;
}
