/*
 * idle-conns — opens many idle TCP connections to a diocp server and holds
 * them, for the idle-memory part of the bench (bench/run.mjs --part idle).
 *
 * Build:  cc -O2 -o bench/.build/idle-conns bench/idle-conns.c
 * Usage:  idle-conns --port P [--host 127.0.0.1] --connections N
 *                    [--window 256] [--timeout-ms 30000]
 *
 * 1. Raises its RLIMIT_NOFILE soft limit to the hard limit (N connections need
 *    N descriptors), then opens N connections with non-blocking connect(),
 *    at most --window handshakes outstanding at a time.
 * 2. Prints ONE line of JSON: {"phase":"open","opened":N,"failed":F,"ms":T}
 *    and then sends nothing: the connections are idle. The server's memory is
 *    measured now, by whoever started this program.
 * 3. On a line "ping" on stdin: sends one PING (0xFFFF, 8-byte payload) on
 *    every connection and waits for every answer (--timeout-ms), which proves
 *    that the server holds and serves every connection, then prints
 *    {"phase":"ping","answered":A,"bad":B,"closed":C,"ms":T}.
 * 4. On EOF or a line "exit" on stdin: closes every connection and exits
 *    (0 = every connection opened and, if pinged, answered; 1 otherwise).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR 16
#define PING_LEN 8

typedef struct {
    int fd;
    int state;      /* 0 connecting, 1 open, 2 answered, -1 failed/closed */
    uint8_t got;    /* bytes of the PING answer read so far */
    uint8_t buf[HDR + PING_LEN];
} conn_t;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static inline uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = -1, n = 0, window = 256;
    long timeout_ms = 30000;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) { fprintf(stderr, "idle-conns: missing value for %s\n", argv[i]); return 2; }
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--connections")) n = atoi(v);
        else if (!strcmp(a, "--window")) window = atoi(v);
        else if (!strcmp(a, "--timeout-ms")) timeout_ms = atol(v);
        else { fprintf(stderr, "idle-conns: unknown argument %s\n", a); return 2; }
    }
    if (port <= 0 || port > 65535 || n <= 0 || window <= 0 || timeout_ms <= 0) {
        fprintf(stderr, "usage: idle-conns --port P --connections N [--host H] [--window 256] [--timeout-ms 30000]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)n + 16 > rl.rlim_cur) {
        fprintf(stderr, "idle-conns: %d connections need more descriptors than the limit (%llu)\n", n,
                (unsigned long long)rl.rlim_cur);
        return 2;
    }

    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0 || !res) { fprintf(stderr, "idle-conns: cannot resolve %s: %s\n", host, gai_strerror(gai)); return 2; }

    conn_t *cs = calloc((size_t)n, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event *evs = calloc(1024, sizeof *evs);
    if (!cs || ep < 0 || !evs) { fprintf(stderr, "idle-conns: out of memory\n"); return 2; }

    /* Phase 1: open, at most `window` handshakes outstanding. */
    uint64_t t0 = now_ms();
    int next = 0, pending = 0, opened = 0, failed = 0;
    int one = 1;
    char first_err[128] = "";
    while (opened + failed < n) {
        while (next < n && pending < window) {
            conn_t *c = &cs[next];
            c->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c->fd < 0) {
                c->state = -1; failed++; next++;
                if (!first_err[0]) snprintf(first_err, sizeof first_err, "socket: %s", strerror(errno));
                continue;
            }
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            int r = connect(c->fd, res->ai_addr, res->ai_addrlen);
            if (r < 0 && errno != EINPROGRESS) {
                if (!first_err[0]) snprintf(first_err, sizeof first_err, "connect: %s", strerror(errno));
                close(c->fd); c->fd = -1; c->state = -1; failed++; next++;
                continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)next};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            pending++; next++;
        }
        if (now_ms() - t0 > (uint64_t)timeout_ms) break;
        int k = epoll_wait(ep, evs, 1024, 100);
        for (int j = 0; j < k; j++) {
            conn_t *c = &cs[evs[j].data.u32];
            if (c->state != 0) continue;
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            pending--;
            if (err) {
                if (!first_err[0]) snprintf(first_err, sizeof first_err, "connect: %s", strerror(err));
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd); c->fd = -1; c->state = -1; failed++;
                continue;
            }
            c->state = 1; opened++;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = evs[j].data.u32};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    for (int i = 0; i < n; i++) if (cs[i].state == 0) { /* timed out */
        close(cs[i].fd); cs[i].fd = -1; cs[i].state = -1; failed++;
    }
    printf("{\"phase\":\"open\",\"opened\":%d,\"failed\":%d,\"ms\":%llu", opened, failed,
           (unsigned long long)(now_ms() - t0));
    if (first_err[0]) printf(",\"first_error\":\"%s\"", first_err);
    printf("}\n");
    fflush(stdout);

    /* Phase 2: idle until told. Any event now means the server closed a connection. */
    int ok = failed == 0, closed = 0;
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "exit", 4)) break;
        if (strncmp(line, "ping", 4)) continue;
        uint64_t t1 = now_ms();
        int answered = 0, bad = 0, sent = 0;
        for (int i = 0; i < n; i++) {
            conn_t *c = &cs[i];
            if (c->state != 1) continue;
            uint8_t f[HDR + PING_LEN] = {0xD1, 0x0C, 1, 0, 0xFF, 0xFF, 0, 0};
            put32(f + 8, (uint32_t)i + 1);
            put32(f + 12, PING_LEN);
            memcpy(f + HDR, "IDLE", 4);
            put32(f + HDR + 4, (uint32_t)i + 1);
            if (send(c->fd, f, sizeof f, MSG_NOSIGNAL) != (ssize_t)sizeof f) { c->state = -1; closed++; continue; }
            c->got = 0;
            sent++;
        }
        while (answered + bad < sent && now_ms() - t1 < (uint64_t)timeout_ms) {
            int k = epoll_wait(ep, evs, 1024, 100);
            for (int j = 0; j < k; j++) {
                uint32_t i = evs[j].data.u32;
                conn_t *c = &cs[i];
                if (c->state != 1) continue;
                ssize_t r = recv(c->fd, c->buf + c->got, sizeof c->buf - c->got, 0);
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                if (r <= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); c->state = -1; closed++; bad++; continue; }
                c->got += (uint8_t)r;
                if (c->got < sizeof c->buf) continue;
                const uint8_t *h = c->buf;
                int good = h[0] == 0xD1 && h[1] == 0x0C && h[3] == 0x01 && h[4] == 0xFF && h[5] == 0xFF &&
                           h[6] == 0 && h[7] == 0 && be32(h + 8) == i + 1 && be32(h + 12) == PING_LEN &&
                           !memcmp(h + HDR, "IDLE", 4) && be32(h + HDR + 4) == i + 1;
                c->state = 2;
                if (good) answered++; else bad++;
            }
        }
        for (int i = 0; i < n; i++) if (cs[i].state == 2) cs[i].state = 1;
        printf("{\"phase\":\"ping\",\"sent\":%d,\"answered\":%d,\"bad\":%d,\"closed\":%d,\"ms\":%llu}\n", sent,
               answered, bad, closed, (unsigned long long)(now_ms() - t1));
        fflush(stdout);
        if (answered != opened) ok = 0;
    }
    for (int i = 0; i < n; i++) if (cs[i].fd >= 0) close(cs[i].fd);
    freeaddrinfo(res);
    return ok ? 0 : 1;
}
