// Windows backend of poller.h: one I/O completion port. Readiness comes from AFD poll requests
// (IOCTL_AFD_POLL on a handle to the \Device\Afd driver that sits under Winsock), posted per
// socket and completed through the port — the technique libuv, wepoll and mio use to get
// epoll-like readiness on IOCP. wake() posts a completion with its own key.
//
// Level-triggered like the epoll backend: a socket whose poll completed is re-armed at the next
// wait(), and AFD completes it again at once if the condition still holds.
//
// Written against the same interface as poller-epoll.cc; NOT built or tested in this
// repository (Linux only here): binding.gyp selects it for OS=='win'. See docs/transports.md.
#include "poller.h"

#ifdef _WIN32

#include <windows.h>
#include <winternl.h>
#include <mswsock.h>

#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace diocp {

namespace {

constexpr ULONG kIoctlAfdPoll = 0x00012024;
constexpr ULONG kAfdPollReceive = 0x0001;
constexpr ULONG kAfdPollSend = 0x0004;
constexpr ULONG kAfdPollDisconnect = 0x0008;
constexpr ULONG kAfdPollAbort = 0x0010;
constexpr ULONG kAfdPollLocalClose = 0x0020;
constexpr ULONG kAfdPollAccept = 0x0080;
constexpr ULONG kAfdPollConnectFail = 0x0100;
constexpr NTSTATUS kStatusSuccess = 0x00000000L;
constexpr NTSTATUS kStatusPending = 0x00000103L;
constexpr NTSTATUS kStatusCancelled = static_cast<NTSTATUS>(0xC0000120L);
constexpr ULONG_PTR kWakeKey = 1;
constexpr ULONG_PTR kAfdKey = 2;

struct AfdPollHandleInfo {
  HANDLE handle;
  ULONG events;
  NTSTATUS status;
};

struct AfdPollInfo {
  LARGE_INTEGER timeout;
  ULONG numberOfHandles;
  ULONG exclusive;
  AfdPollHandleInfo handles[1];
};

using NtDeviceIoControlFileFn = NTSTATUS(NTAPI*)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, ULONG, PVOID, ULONG, PVOID, ULONG);
using NtCancelIoFileExFn = NTSTATUS(NTAPI*)(HANDLE, PIO_STATUS_BLOCK, PIO_STATUS_BLOCK);
using NtCreateFileFn = NTSTATUS(NTAPI*)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG, ULONG, ULONG, ULONG, PVOID, ULONG);

/** One registered socket and its (at most one) outstanding poll request. */
struct Entry {
  IO_STATUS_BLOCK iosb;  // first: the completion's OVERLAPPED* points here
  AfdPollInfo info;
  SOCKET base;
  void* tag;
  uint32_t bits;
  bool pending = false;
  bool dead = false;
  bool queued = false;
};

ULONG afdEvents(uint32_t bits) {
  // Hang-ups and errors are always asked for, as epoll always reports them.
  ULONG e = kAfdPollAbort | kAfdPollDisconnect | kAfdPollLocalClose | kAfdPollConnectFail;
  if (bits & kPollIn) e |= kAfdPollReceive | kAfdPollAccept;
  if (bits & kPollOut) e |= kAfdPollSend;
  return e;
}

}  // namespace

struct Poller::Impl {
  HANDLE port = nullptr;
  HANDLE afd = INVALID_HANDLE_VALUE;
  NtDeviceIoControlFileFn ioctl = nullptr;
  NtCancelIoFileExFn cancel = nullptr;
  std::unordered_map<SOCKET, Entry*> bySocket;
  /** Removed while a request was outstanding: freed when its (cancelled) completion arrives. */
  std::unordered_set<Entry*> dying;
  /** Entries to (re)arm at the next wait(). */
  std::vector<Entry*> arm;

  void queue(Entry* e) {
    if (!e->queued) {
      e->queued = true;
      arm.push_back(e);
    }
  }

  int submit(Entry* e) {
    e->info.timeout.QuadPart = INT64_MAX;
    e->info.numberOfHandles = 1;
    e->info.exclusive = FALSE;
    e->info.handles[0].handle = reinterpret_cast<HANDLE>(e->base);
    e->info.handles[0].events = afdEvents(e->bits);
    e->info.handles[0].status = 0;
    e->iosb.Status = kStatusPending;
    NTSTATUS st = ioctl(afd, nullptr, nullptr, &e->iosb, &e->iosb, kIoctlAfdPoll, &e->info, sizeof e->info, &e->info, sizeof e->info);
    if (st != kStatusSuccess && st != kStatusPending) return -EIO;
    e->pending = true;  // completed or not, the result arrives through the port
    return 0;
  }

  void drop(Entry* e) {
    if (e->pending) {
      e->dead = true;
      dying.insert(e);
      IO_STATUS_BLOCK cancelIosb;
      cancel(afd, &e->iosb, &cancelIosb);
    } else if (e->queued) {
      e->dead = true;  // still in `arm`: freed there
    } else {
      delete e;
    }
  }
};

Poller::Poller() {
  impl_ = new Impl;
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  auto create = reinterpret_cast<NtCreateFileFn>(GetProcAddress(ntdll, "NtCreateFile"));
  impl_->ioctl = reinterpret_cast<NtDeviceIoControlFileFn>(GetProcAddress(ntdll, "NtDeviceIoControlFile"));
  impl_->cancel = reinterpret_cast<NtCancelIoFileExFn>(GetProcAddress(ntdll, "NtCancelIoFileEx"));
  if (create == nullptr || impl_->ioctl == nullptr || impl_->cancel == nullptr) {
    status_ = -ENOSYS;
    return;
  }
  impl_->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (impl_->port == nullptr) {
    status_ = -EIO;
    return;
  }
  wchar_t name[] = L"\\Device\\Afd\\diocp";
  UNICODE_STRING path{static_cast<USHORT>(sizeof name - sizeof(wchar_t)), static_cast<USHORT>(sizeof name), name};
  OBJECT_ATTRIBUTES attrs;
  InitializeObjectAttributes(&attrs, &path, 0, nullptr, nullptr);
  IO_STATUS_BLOCK iosb;
  NTSTATUS st = create(&impl_->afd, SYNCHRONIZE, &attrs, &iosb, nullptr, 0, FILE_SHARE_READ | FILE_SHARE_WRITE, 1 /* FILE_OPEN */, 0, nullptr, 0);
  if (st != kStatusSuccess || CreateIoCompletionPort(impl_->afd, impl_->port, kAfdKey, 0) == nullptr ||
      !SetFileCompletionNotificationModes(impl_->afd, FILE_SKIP_SET_EVENT_ON_HANDLE)) {
    status_ = -EIO;
  }
}

Poller::~Poller() {
  if (impl_ == nullptr) return;
  if (impl_->afd != INVALID_HANDLE_VALUE) CloseHandle(impl_->afd);  // cancels every request
  if (impl_->port != nullptr) CloseHandle(impl_->port);
  for (auto& kv : impl_->bySocket) delete kv.second;
  for (Entry* e : impl_->dying) delete e;
  for (Entry* e : impl_->arm)
    if (e->dead) delete e;
  delete impl_;
}

int Poller::add(SocketHandle s, void* tag, uint32_t bits) {
  SOCKET base = s;
  DWORD bytes = 0;
  if (WSAIoctl(s, SIO_BASE_HANDLE, nullptr, 0, &base, sizeof base, &bytes, nullptr, nullptr) != 0) base = s;
  auto* e = new Entry;
  e->base = base;
  e->tag = tag;
  e->bits = bits;
  impl_->bySocket[s] = e;
  impl_->queue(e);
  return 0;
}

int Poller::modify(SocketHandle s, void* tag, uint32_t bits) {
  auto it = impl_->bySocket.find(s);
  if (it == impl_->bySocket.end()) return -ENOENT;
  Entry* e = it->second;
  e->tag = tag;
  if (e->bits == bits) return 0;
  e->bits = bits;
  if (e->pending) {
    // The outstanding request asks for the old events: cancel it; its completion
    // (STATUS_CANCELLED) re-queues the entry, armed with the new events.
    IO_STATUS_BLOCK cancelIosb;
    impl_->cancel(impl_->afd, &e->iosb, &cancelIosb);
  } else {
    impl_->queue(e);
  }
  return 0;
}

int Poller::remove(SocketHandle s) {
  auto it = impl_->bySocket.find(s);
  if (it == impl_->bySocket.end()) return -ENOENT;
  Entry* e = it->second;
  impl_->bySocket.erase(it);
  impl_->drop(e);
  return 0;
}

void Poller::release(SocketHandle s) { remove(s); }

int Poller::wait(PollEvent* out, int max, int timeoutMs) {
  Impl& m = *impl_;
  if (max > 256) max = 256;
  int k = 0;
  std::vector<Entry*> arm;
  arm.swap(m.arm);
  for (Entry* e : arm) {
    e->queued = false;
    if (e->dead) {
      delete e;
      continue;
    }
    if (e->pending) continue;
    if (m.submit(e) != 0) {
      // Could not poll this socket: report it as failed, as epoll reports an error.
      if (k < max) {
        out[k].tag = e->tag;
        out[k].bits = kPollErr;
        k++;
      } else {
        m.queue(e);
      }
    }
  }
  if (k == max) return k;
  OVERLAPPED_ENTRY entries[256];
  ULONG n = 0;
  DWORD timeout = k > 0 ? 0 : timeoutMs < 0 ? INFINITE : static_cast<DWORD>(timeoutMs);
  if (!GetQueuedCompletionStatusEx(m.port, entries, static_cast<ULONG>(max - k), &n, timeout, FALSE)) {
    return GetLastError() == WAIT_TIMEOUT ? k : (k > 0 ? k : -EIO);
  }
  for (ULONG i = 0; i < n; i++) {
    if (entries[i].lpCompletionKey == kWakeKey) continue;
    auto* e = reinterpret_cast<Entry*>(reinterpret_cast<char*>(entries[i].lpOverlapped) - offsetof(Entry, iosb));
    e->pending = false;
    if (e->dead) {
      m.dying.erase(e);
      delete e;
      continue;
    }
    m.queue(e);  // level-triggered: ask again at the next wait()
    if (e->iosb.Status == kStatusCancelled) continue;  // a modify(): re-armed with the new events
    uint32_t bits = 0;
    if (e->iosb.Status < 0) {
      bits = kPollErr;
    } else {
      ULONG ev = e->info.handles[0].events;
      if (ev & (kAfdPollReceive | kAfdPollAccept | kAfdPollDisconnect)) bits |= kPollIn;
      if (ev & kAfdPollSend) bits |= kPollOut;
      if (ev & (kAfdPollAbort | kAfdPollConnectFail | kAfdPollLocalClose)) bits |= kPollErr;
    }
    if (bits == 0) continue;
    out[k].tag = e->tag;
    out[k].bits = bits;
    k++;
  }
  return k;
}

void Poller::wake() { PostQueuedCompletionStatus(impl_->port, 0, kWakeKey, nullptr); }

}  // namespace diocp

#endif  // _WIN32
