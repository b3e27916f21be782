// poller.h — the event-loop backend of the engine: readiness of sockets plus a cross-thread
// wake-up. One implementation per platform, chosen at build time (binding.gyp):
//   poller-epoll.cc   Linux, level-triggered epoll + an eventfd for wake()
// The engine only sees this class, so a kqueue backend (macOS/BSD) drops in as one more file.
// Windows' IOCP is completion-based, not readiness-based: see docs/transports.md
// ("Platforms") for how it maps onto the engine and what is not written yet.
#pragma once

#include <cstdint>

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
  int add(int fd, void* tag, uint32_t bits);
  int modify(int fd, void* tag, uint32_t bits);
  int remove(int fd);
  /** Wait up to timeoutMs (-1: forever). Returns the number of events, a wake-up is not one. */
  int wait(PollEvent* out, int max, int timeoutMs);
  /** Wake a wait() from any thread. */
  void wake();
  /** 0 when the backend opened, else -errno (then nothing else may be called). */
  int status() const { return status_; }

 private:
  int fd_ = -1;
  int wakeFd_ = -1;
  int status_ = 0;
};

}  // namespace diocp
