// Linux backend of poller.h: level-triggered epoll, eventfd for cross-thread wake-ups.
// Level-triggered so that one read per ready socket per loop turn is enough: what is left is
// reported again on the next turn (no read until EAGAIN, one syscall less per turn).
#include "poller.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace diocp {

namespace {
uint32_t toEpoll(uint32_t bits) {
  uint32_t e = 0;
  if (bits & kPollIn) e |= EPOLLIN | EPOLLRDHUP;
  if (bits & kPollOut) e |= EPOLLOUT;
  return e;
}
}  // namespace

Poller::Poller() {
  fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (fd_ < 0) {
    status_ = -errno;
    return;
  }
  wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) {
    status_ = -errno;
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up fd is the only tag-less registration
  if (epoll_ctl(fd_, EPOLL_CTL_ADD, wakeFd_, &ev) < 0) status_ = -errno;
}

Poller::~Poller() {
  if (wakeFd_ >= 0) close(wakeFd_);
  if (fd_ >= 0) close(fd_);
}

int Poller::add(SocketHandle fd, void* tag, uint32_t bits) {
  epoll_event ev{};
  ev.events = toEpoll(bits);
  ev.data.ptr = tag;
  return epoll_ctl(fd_, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int Poller::modify(SocketHandle fd, void* tag, uint32_t bits) {
  epoll_event ev{};
  ev.events = toEpoll(bits);
  ev.data.ptr = tag;
  return epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int Poller::remove(SocketHandle fd) {
  epoll_event ev{};
  return epoll_ctl(fd_, EPOLL_CTL_DEL, fd, &ev) < 0 ? -errno : 0;
}

int Poller::wait(PollEvent* out, int max, int timeoutMs) {
  epoll_event evs[256];
  if (max > 256) max = 256;
  int n = epoll_wait(fd_, evs, max, timeoutMs);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (evs[i].data.ptr == nullptr) {
      // One read resets an eventfd's counter (no EFD_SEMAPHORE): no second read to see EAGAIN.
      uint64_t v;
      ssize_t r = read(wakeFd_, &v, sizeof v);
      (void)r;
      continue;
    }
    uint32_t bits = 0;
    if (evs[i].events & (EPOLLIN | EPOLLRDHUP)) bits |= kPollIn;
    if (evs[i].events & EPOLLOUT) bits |= kPollOut;
    if (evs[i].events & (EPOLLERR | EPOLLHUP)) bits |= kPollErr;
    out[k].tag = evs[i].data.ptr;
    out[k].bits = bits;
    k++;
  }
  return k;
}

void Poller::release(SocketHandle) {}

void Poller::wake() {
  uint64_t one = 1;
  ssize_t r = write(wakeFd_, &one, sizeof one);
  (void)r;  // EAGAIN: the counter is saturated, a wake-up is pending anyway
}

}  // namespace diocp
