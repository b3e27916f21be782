// poller.h — the event-loop backend of the engine: level-triggered readiness of sockets plus a
// cross-thread wake-up. One implementation per platform, chosen at build time (binding.gyp):
//   poller-epoll.cc   Linux: epoll + an eventfd for wake() (built and tested)
//   poller-iocp.cc    Windows: an I/O completion port, readiness through AFD poll requests
//                     (as libuv and wepoll do), wake() by a posted completion (written against
//                     this interface, not built here)
// The engine only sees this class and socket-ops.h, so a kqueue backend (macOS/BSD) drops in
// as one more file.
#pragma once

#include <cstdint>

#include "socket-ops.h"

namespace diocp {

enum PollBits : uint32_t {
  kPollIn = 1,
  kPollOut = 2,
  /** Hang-up or error: the engine reads to learn which. */
  kPollErr = 4,
};

struct PollEvent {
  void* tag;
  uint32_t bits;
};

class Poller {
 public:
  Poller();
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  /** 0 or -errno. `bits` is a mask of kPollIn/kPollOut (errors are always reported). */
  int add(SocketHandle s, void* tag, uint32_t bits);
  int modify(SocketHandle s, void* tag, uint32_t bits);
  int remove(SocketHandle s);
  /**
   * The socket is about to be closed: forget it. epoll needs nothing (closing the descriptor
   * drops it from the set); IOCP cancels the socket's outstanding poll request.
   */
  void release(SocketHandle s);
  /** Wait up to timeoutMs (-1: forever). Returns the number of events, a wake-up is not one. */
  int wait(PollEvent* out, int max, int timeoutMs);
  /** Wake a wait() from any thread. */
  void wake();
  /** 0 when the backend opened, else -errno (then nothing else may be called). */
  int status() const { return status_; }

 private:
  int status_ = 0;
#ifdef _WIN32
  struct Impl;
  Impl* impl_ = nullptr;
#else
  int fd_ = -1;
  int wakeFd_ = -1;
#endif
};

}  // namespace diocp
