// socket-ops.h — the socket calls the engine makes, one definition per platform, so that
// engine.cc has no #ifdef: POSIX here (built and tested: Linux), Winsock for the Windows/IOCP
// backend (poller-iocp.cc; written against the same interface, not built in this repository's
// CI — see docs/transports.md, "Platforms").
//
// Errors are returned as positive errno values on every platform (Winsock codes are mapped:
// WSAEWOULDBLOCK -> EAGAIN, ...), so the engine compares against EAGAIN/EINTR/EMFILE alone.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mutex>
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#endif

namespace diocp {

#ifdef _WIN32
using SocketHandle = SOCKET;
const SocketHandle kNoSocket = INVALID_SOCKET;
/** One buffer of a gathered send (WSABUF: length first). */
using IoBuf = WSABUF;
inline void setIoBuf(IoBuf& b, const void* p, size_t n) {
  b.buf = static_cast<char*>(const_cast<void*>(p));
  b.len = static_cast<ULONG>(n);
}
inline size_t ioBufLen(const IoBuf& b) { return b.len; }

inline int mapWsaError(int e) {
  switch (e) {
    case WSAEWOULDBLOCK: return EAGAIN;
    case WSAEINTR: return EINTR;
    case WSAEMFILE: return EMFILE;
    case WSAENOBUFS: return ENOBUFS;
    case WSAECONNABORTED: return ECONNABORTED;
    case WSAECONNRESET: return ECONNRESET;
    case WSAEADDRINUSE: return EADDRINUSE;
    case WSAEACCES: return EACCES;
    case WSAEADDRNOTAVAIL: return EADDRNOTAVAIL;
    default: return EIO;
  }
}
inline int sockLastError() { return mapWsaError(WSAGetLastError()); }

inline void sockStartup() {
  static std::once_flag once;
  std::call_once(once, [] {
    WSADATA d;
    WSAStartup(MAKEWORD(2, 2), &d);
  });
}
inline SocketHandle sockSocket(int family) {
  sockStartup();
  SocketHandle s = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s != INVALID_SOCKET) {
    u_long on = 1;
    ioctlsocket(s, FIONBIO, &on);
  }
  return s;
}
inline SocketHandle sockAccept(SocketHandle l, sockaddr_storage* ss, socklen_t* len) {
  int n = static_cast<int>(*len);
  SocketHandle s = accept(l, reinterpret_cast<sockaddr*>(ss), &n);
  *len = static_cast<socklen_t>(n);
  if (s != INVALID_SOCKET) {
    u_long on = 1;
    ioctlsocket(s, FIONBIO, &on);
    SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
  }
  return s;
}
inline long sockRecv(SocketHandle s, void* p, size_t n) { return recv(s, static_cast<char*>(p), static_cast<int>(n), 0); }
inline long sockSendv(SocketHandle s, IoBuf* bufs, int n) {
  DWORD sent = 0;
  if (WSASend(s, bufs, static_cast<DWORD>(n), &sent, 0, nullptr, nullptr) != 0) return -1;
  return static_cast<long>(sent);
}
inline void sockShutdownWrite(SocketHandle s) { shutdown(s, SD_SEND); }
/** Windows cannot stop a listening socket without closing it: the IO thread's close does it. */
inline void sockStopListening(SocketHandle) {}
inline void sockClose(SocketHandle s) { closesocket(s); }
inline int sockSetInt(SocketHandle s, int level, int name, int value) {
  return setsockopt(s, level, name, reinterpret_cast<const char*>(&value), sizeof value);
}
/** Windows has no per-process descriptor limit to raise. */
inline void raiseDescriptorLimit() {}
inline void nameThisThread(const char*) {}
#else
using SocketHandle = int;
constexpr SocketHandle kNoSocket = -1;
using IoBuf = iovec;
inline void setIoBuf(IoBuf& b, const void* p, size_t n) {
  b.iov_base = const_cast<void*>(p);
  b.iov_len = n;
}
inline size_t ioBufLen(const IoBuf& b) { return b.iov_len; }
inline int sockLastError() { return errno; }
inline SocketHandle sockSocket(int family) { return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }
inline SocketHandle sockAccept(SocketHandle l, sockaddr_storage* ss, socklen_t* len) {
  return accept4(l, reinterpret_cast<sockaddr*>(ss), len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
/** recv, not read: no VFS layer (rw_verify_area, fsnotify) on the way to the socket. */
inline long sockRecv(SocketHandle s, void* p, size_t n) { return recv(s, p, n, 0); }
/**
 * MSG_NOSIGNAL: a peer that is gone gives EPIPE, never SIGPIPE (outside node too). One buffer
 * (the usual case: a connection's answers of one submit lie side by side) goes out with send,
 * which spares the kernel copying in a msghdr and an iovec array.
 */
inline long sockSendv(SocketHandle s, IoBuf* bufs, int n) {
  if (n == 1) return send(s, bufs[0].iov_base, bufs[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
  msghdr msg{};
  msg.msg_iov = bufs;
  msg.msg_iovlen = static_cast<size_t>(n);
  return sendmsg(s, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}
inline void sockShutdownWrite(SocketHandle s) { shutdown(s, SHUT_WR); }
/**
 * Stop a listening socket from another thread without closing it (so its descriptor cannot be
 * reused under the IO thread): on Linux, SHUT_RD moves it out of LISTEN, and new connection
 * attempts are refused at once.
 */
inline void sockStopListening(SocketHandle s) { shutdown(s, SHUT_RD); }
inline void sockClose(SocketHandle s) { close(s); }
inline int sockSetInt(SocketHandle s, int level, int name, int value) { return setsockopt(s, level, name, &value, sizeof value); }
/** 15,000 connections need more than the usual soft limit of 1024 descriptors. */
inline void raiseDescriptorLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}
inline void nameThisThread(const char* name) {
#ifdef __linux__
  pthread_setname_np(pthread_self(), name);
#else
  (void)name;
#endif
}
#endif

}  // namespace diocp
