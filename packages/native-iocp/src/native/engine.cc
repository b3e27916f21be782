// The engine's IO thread: accept, read + decode into arena blocks, apply the owner's op
// batches (coalesced writev per connection), idle and close deadlines. See engine.h.
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

namespace diocp {

// ---- memory ----

namespace {
/**
 * Arena blocks that JavaScript has let go of (their ArrayBuffer was collected), kept for the
 * next arena instead of a fresh mmap (whose pages the kernel must fault in and zero again).
 * Process-wide: a block may outlive the engine that read into it. At most kArenaPoolMax.
 */
constexpr size_t kArenaPoolMax = 16;
// Plain arrays, never destructed: pooled blocks stay reachable (LeakSanitizer sees them) until exit.
std::mutex arenaPoolLock;
uint8_t* arenaPool[kArenaPoolMax];
size_t arenaPoolSize = 0;
}  // namespace

Block* Block::create(size_t size) {
  Block* b = new Block;
  b->refs.store(1, std::memory_order_relaxed);
  b->size = size;
  b->data = nullptr;
  if (size == kArenaBlockSize) {
    std::lock_guard<std::mutex> g(arenaPoolLock);
    if (arenaPoolSize > 0) b->data = arenaPool[--arenaPoolSize];
  }
  if (b->data == nullptr) b->data = static_cast<uint8_t*>(malloc(size > 0 ? size : 1));
  if (b->data == nullptr) throw std::bad_alloc();
  return b;
}

Block* Block::adopt(uint8_t* data, size_t size) {
  Block* b = new Block;
  b->refs.store(1, std::memory_order_relaxed);
  b->size = size;
  b->data = data;
  return b;
}

void Block::unref() {
  if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (size == kArenaBlockSize) {
    std::lock_guard<std::mutex> g(arenaPoolLock);
    if (arenaPoolSize < kArenaPoolMax) {
      arenaPool[arenaPoolSize++] = data;
      data = nullptr;
    }
  }
  free(data);
  delete this;
}

/**
 * A send block: bytes copied from one submit. Touched by the IO thread only once handed over.
 * Full-size blocks go back to the owner thread through `pool` when their last byte is sent, so
 * a busy connection does not make malloc hand out (and the kernel zero) fresh pages per tick.
 */
struct SendChunk {
  uint32_t refs;
  uint32_t size;
  SpscRing<SendChunk*>* pool;
  uint8_t data[1];
  static SendChunk* create(size_t size, SpscRing<SendChunk*>* pool) {
    SendChunk* c = nullptr;
    if (size == kSendBlockSize && pool != nullptr && pool->tryPop(c)) {
      c->refs = 0;
      return c;
    }
    c = static_cast<SendChunk*>(malloc(offsetof(SendChunk, data) + size));
    if (c == nullptr) throw std::bad_alloc();
    c->refs = 0;
    c->size = static_cast<uint32_t>(size);
    c->pool = size == kSendBlockSize ? pool : nullptr;
    return c;
  }
  void unref() {
    if (--refs != 0) return;
    if (pool != nullptr && pool->tryPush(this)) return;
    free(this);
  }
};

struct Seg {
  SendChunk* chunk;
  const uint8_t* p;
  uint32_t len;
};

struct Op {
  uint32_t type, slot, gen;
  uint32_t segBegin, segEnd;
  uint64_t bytes;
};

struct OutBatch {
  std::vector<Op> ops;
  std::vector<Seg> segs;
};

struct Connection {
  SocketHandle fd;
  uint32_t slot;
  uint32_t gen;
  FrameDecoder decoder;
  uint64_t lastRead;
  uint64_t closeDeadline = 0;
  Seg* q = nullptr;
  uint32_t qHead = 0, qEnd = 0, qCap = 0;
  uint64_t queued = 0;
  uint32_t interest = 0;
  bool registered = false;
  CloseReason reason = kClosePeer;
  bool hasReason = false;
  bool closing = false;
  bool dirty = false;
  bool throttled = false;
  bool protoFailed = false;
  DecodeError perr{};

  Connection(SocketHandle fd_, uint32_t slot_, uint32_t gen_, uint32_t maxFrame, uint64_t now)
      : fd(fd_), slot(slot_), gen(gen_), decoder(maxFrame, kServerForbidden), lastRead(now) {}

  bool queueEmpty() const { return qHead == qEnd; }

  void append(const Seg& s) {
    if (qEnd > qHead) {
      Seg& last = q[qEnd - 1];
      if (last.chunk == s.chunk && last.p + last.len == s.p) {
        // Frames of one submit for one connection lie side by side in a send block: one iovec.
        last.len += s.len;
        s.chunk->unref();
        return;
      }
    }
    if (qEnd == qCap) {
      if (qHead > 0) {
        memmove(q, q + qHead, (qEnd - qHead) * sizeof(Seg));
        qEnd -= qHead;
        qHead = 0;
      } else {
        uint32_t cap = qCap == 0 ? 4 : qCap * 2;
        auto* nq = static_cast<Seg*>(realloc(q, cap * sizeof(Seg)));
        if (nq == nullptr) throw std::bad_alloc();
        q = nq;
        qCap = cap;
      }
    }
    q[qEnd++] = s;
  }

  /** Drop everything queued; returns the bytes dropped. */
  uint64_t dropQueue() {
    for (uint32_t i = qHead; i < qEnd; i++) q[i].chunk->unref();
    free(q);
    q = nullptr;
    qHead = qEnd = qCap = 0;
    uint64_t n = queued;
    queued = 0;
    return n;
  }
};

namespace {
char listenTag;

uint32_t align4(uint32_t n) { return (n + 3) & ~3u; }

uint32_t readLE(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

}  // namespace

// ---- owner thread ----

Engine::Engine(const EngineOptions& options, WakeFn wake, void* wakeArg)
    : opt_(options), wake_(wake), wakeArg_(wakeArg), inbox_(4096), spentBatches_(64), chunkPool_(64) {
  uint32_t cap = 8192;  // a read needs room for kReadSize / kHeaderSize records
  while (cap < opt_.ringRecords) cap <<= 1;
  ringMem_ = Block::create(static_cast<size_t>(cap) * sizeof(Record));
  memset(ringMem_->data, 0, ringMem_->size);
  ring_ = reinterpret_cast<Record*>(ringMem_->data);
  mask_ = cap - 1;
  counterMem_ = Block::create(kCounterCount * sizeof(uint64_t));
  counters_ = reinterpret_cast<uint64_t*>(counterMem_->data);
  memset(counters_, 0, kCounterCount * sizeof(uint64_t));
  if (opt_.idleTimeoutMs > 0) {
    housekeepingEvery_ = std::max<uint32_t>(10, std::min<uint32_t>(1000, opt_.idleTimeoutMs / 4));
  }
}

int Engine::start(const char** syscall) {
  if (poller_.status() != 0) {
    *syscall = "epoll_create1";
    return poller_.status();
  }
  raiseDescriptorLimit();
  sockaddr_storage ss{};
  socklen_t sslen = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, opt_.host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(opt_.port);
    sslen = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, opt_.host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(opt_.port);
    sslen = sizeof(sockaddr_in6);
  } else {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    if (getaddrinfo(opt_.host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
      *syscall = "getaddrinfo";
      return -ENOENT;
    }
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    sslen = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss.ss_family == AF_INET) a4->sin_port = htons(opt_.port);
    else a6->sin6_port = htons(opt_.port);
  }
  SocketHandle fd = sockSocket(ss.ss_family);
  if (fd == kNoSocket) {
    *syscall = "socket";
    return -sockLastError();
  }
  sockSetInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (ss.ss_family == AF_INET6) sockSetInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);  // "::" takes IPv4 too, as node does
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sslen) < 0) {
    int e = sockLastError();
    sockClose(fd);
    *syscall = "bind";
    return -e;
  }
  if (listen(fd, opt_.backlog) < 0) {
    int e = sockLastError();
    sockClose(fd);
    *syscall = "listen";
    return -e;
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  boundPort_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                 : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  int rc = poller_.add(fd, &listenTag, kPollIn);
  if (rc < 0) {
    sockClose(fd);
    *syscall = "epoll_ctl";
    return rc;
  }
  listenFd_ = fd;
  listenShared_.store(fd);
  nextHousekeeping_ = nowMs() + housekeepingEvery_;
  running_.store(true, std::memory_order_release);
  thread_ = std::thread(&Engine::run, this);
  return 0;
}

void Engine::submit(const uint8_t* ops, size_t len) {
  OutBatch* b = nullptr;
  if (!spentBatches_.tryPop(b)) b = new OutBatch;  // a recycled one keeps its vectors' capacity
  // Echo-sized frames are ~100 bytes with their op header: reserve so the vectors do not regrow.
  b->ops.reserve(len / 64 + 4);
  b->segs.reserve(len / 64 + 4);
  SendChunk* cur = nullptr;
  size_t curUsed = 0;
  size_t pos = 0;
  while (pos + 16 <= len) {
    Op op{readLE(ops + pos), readLE(ops + pos + 4), readLE(ops + pos + 8), 0, 0, 0};
    uint32_t n = readLE(ops + pos + 12);
    pos += 16;
    op.segBegin = static_cast<uint32_t>(b->segs.size());
    if (op.type == kOpSend) {
      if (n > len - pos) break;  // a torn op: the wrapper never writes one
      op.bytes = n;
      const uint8_t* src = ops + pos;
      uint32_t left = n;
      while (left > 0) {
        if (cur == nullptr || cur->size == curUsed) {
          // Small submits get a block of their size; big payloads are cut into send blocks.
          size_t size = std::min(kSendBlockSize, std::max<size_t>(len - (src - ops), 256));
          cur = SendChunk::create(size, &chunkPool_);
          curUsed = 0;
        }
        uint32_t take = std::min<uint32_t>(left, cur->size - curUsed);
        memcpy(cur->data + curUsed, src, take);
        cur->refs++;
        b->segs.push_back(Seg{cur, cur->data + curUsed, take});
        curUsed += take;
        src += take;
        left -= take;
      }
      pos += align4(n);
    }
    op.segEnd = static_cast<uint32_t>(b->segs.size());
    b->ops.push_back(op);
  }
  while (!inbox_.tryPush(b)) std::this_thread::yield();  // 4096 batches behind: let the IO thread catch up
  if (!ioWake_.exchange(true)) poller_.wake();
}

void Engine::stopAcceptingNow() {
  SocketHandle s = listenShared_.exchange(kNoSocket);
  if (s != kNoSocket) sockStopListening(s);
}

void Engine::release(uint32_t newTail) {
  tail_.store(newTail, std::memory_order_seq_cst);
  if (ioWantsRoom_.load(std::memory_order_seq_cst)) poller_.wake();
}

void Engine::join() {
  if (thread_.joinable()) thread_.join();
}

void Engine::dropUnread() {
  auto drop = [](const Record& r) {
    uint32_t type = r.w[0] & 0xFF;
    if (type == kRecBlock || (type == kRecFrameOwned && r.w[6] > 0)) takeBlock(r)->unref();
  };
  uint32_t h = head_.load(std::memory_order_acquire);
  for (uint32_t i = tail_.load(std::memory_order_relaxed); i != h; i++) drop(ring_[i & mask_]);
  tail_.store(h);
  // Records the IO thread wrote but never published, then the overflow.
  for (uint32_t i = h; i != localHead_; i++) drop(ring_[i & mask_]);
  for (const Record& r : overflow_) drop(r);
  overflow_.clear();
  localHead_ = h;
}

Engine::~Engine() {
  if (thread_.joinable()) {
    abort_.store(true, std::memory_order_seq_cst);
    poller_.wake();
    thread_.join();
  }
  for (Connection* c : slots_) {
    if (c == nullptr) continue;
    if (c->fd != kNoSocket) {
      poller_.release(c->fd);
      sockClose(c->fd);
    }
    c->dropQueue();
    delete c;
  }
  if (listenFd_ != kNoSocket) {
    poller_.release(listenFd_);
    sockClose(listenFd_);
  }
  OutBatch* b;
  while (inbox_.tryPop(b)) {
    for (Seg& s : b->segs) s.chunk->unref();
    delete b;
  }
  for (Connection* c : graveyard_) delete c;
  while (spentBatches_.tryPop(b)) delete b;
  SendChunk* chunk;
  while (chunkPool_.tryPop(chunk)) free(chunk);
  if (arena_ != nullptr) arena_->unref();
  dropUnread();
  ringMem_->unref();
  counterMem_->unref();
}

// ---- IO thread ----

uint64_t Engine::nowMs() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

void Engine::run() {
  nameThisThread("diocp-io");
  PollEvent evs[256];
  bool skippedPoll = false;
  while (!abort_.load(std::memory_order_relaxed) && !(stopLoop_ && overflow_.empty())) {
    uint64_t now = nowMs();
    int timeout = nextHousekeeping_ > now ? static_cast<int>(nextHousekeeping_ - now) : 0;
    if (!overflow_.empty() || !throttled_.empty()) timeout = std::min(timeout, 10);
    // About to sleep: say so first, then look at the inbox once more. While ioWake_ is set
    // (the whole time this thread is awake) submit() does not write the wake-up eventfd.
    int n = 0;
    if (!skippedPoll && !inbox_.empty() && overflow_.empty()) {
      // Ops arrived during this turn: apply and send them now; poll the sockets on the next turn.
      skippedPoll = true;
    } else {
      skippedPoll = false;
      ioWake_.store(false, std::memory_order_seq_cst);
      if (!inbox_.empty()) timeout = 0;
      n = poller_.wait(evs, 256, timeout);
      ioWake_.store(true, std::memory_order_seq_cst);
    }
    if (abort_.load(std::memory_order_relaxed)) break;
    turnNow_ = nowMs();
    drainOps();
    for (int i = 0; i < n; i++) {
      if (evs[i].tag == &listenTag) {
        onAccept();
        continue;
      }
      auto* c = static_cast<Connection*>(evs[i].tag);
      if (c->fd == kNoSocket) continue;  // closed earlier in this turn
      if (evs[i].bits & kPollOut) onWritable(c);
      if (c->fd != kNoSocket && (evs[i].bits & (kPollIn | kPollErr))) onReadable(c, evs[i].bits);
    }
    for (size_t i = 0; i < dirty_.size(); i++) {
      Connection* c = dirty_[i];
      c->dirty = false;
      if (c->fd != kNoSocket) flush(c);
    }
    dirty_.clear();
    now = turnNow_;
    if (now >= nextHousekeeping_) {
      housekeeping(now);
      nextHousekeeping_ = now + housekeepingEvery_;
    }
    if (!throttled_.empty() && overflow_.empty() && ringHasRoom(kReadSize / kHeaderSize + 8)) {
      for (Connection* c : throttled_) {
        c->throttled = false;
        updateInterest(c);
      }
      throttled_.clear();
      ioWantsRoom_.store(false, std::memory_order_seq_cst);
    }
    publish();
    for (Connection* c : graveyard_) delete c;
    graveyard_.clear();
  }
  running_.store(false, std::memory_order_release);
}

void Engine::onAccept() {
  for (int i = 0; i < 64; i++) {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    SocketHandle fd = sockAccept(listenFd_, &ss, &len);
    if (fd == kNoSocket) {
      int e = sockLastError();
      if (e == EINTR || e == ECONNABORTED) continue;
      if (e == EINVAL) {
        // stopAcceptingNow() took the socket out of LISTEN; its op follows and closes it.
        poller_.remove(listenFd_);
        listenPaused_ = true;
        listenResumeAt_ = UINT64_MAX;
        return;
      }
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        // Out of descriptors: stop polling the listener for a moment instead of spinning on it.
        count(kCntAcceptErrors);
        poller_.remove(listenFd_);
        listenPaused_ = true;
        listenResumeAt_ = nowMs() + 100;
      }
      return;
    }
    if (shuttingDown_ || liveConnections_ >= opt_.maxConnections) {
      count(kCntRejected);
      sockClose(fd);
      continue;
    }
    sockSetInt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    uint32_t slot;
    if (freeHead_ < freeSlots_.size()) {
      slot = freeSlots_[freeHead_++];
      if (freeHead_ == freeSlots_.size()) {
        freeSlots_.clear();
        freeHead_ = 0;
      }
    } else {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.push_back(nullptr);
      gens_.push_back(0);
    }
    uint32_t gen = gens_[slot] + 1;
    if (gen == 0) gen = 1;
    gens_[slot] = gen;
    auto* c = new Connection(fd, slot, gen, opt_.maxFrameSize, turnNow_);
    slots_[slot] = c;
    liveConnections_++;
    count(kCntAccepted);
    count(kCntConnections);
    Record r{};
    r.w[0] = kRecOpen;
    r.w[1] = slot;
    r.w[2] = gen;
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      r.w[3] = ntohs(a->sin_port) | (4u << 16);
      memcpy(&r.w[4], &a->sin_addr, 4);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      r.w[3] = ntohs(a->sin6_port) | (6u << 16);
      memcpy(&r.w[4], &a->sin6_addr, 16);
    }
    pushRecord(r);
    updateInterest(c);
  }
}

namespace {
/** Turns the decoder's callbacks into event records. */
struct RecordSink {
  Engine* engine;
  Connection* c;
  uint32_t base;  // offset of the chunk in the arena block
  uint32_t frames = 0;
  void (*push)(Engine*, const Record&);
  void frame(const FrameHeader& h, size_t off) {
    Record r;
    r.w[0] = kRecFrame | (static_cast<uint32_t>(h.flags) << 8) | (static_cast<uint32_t>(h.command) << 16);
    r.w[1] = c->slot;
    r.w[2] = c->gen;
    r.w[3] = h.status;
    r.w[4] = h.requestId;
    r.w[5] = base + static_cast<uint32_t>(off);
    r.w[6] = h.length;
    r.w[7] = 0;
    push(engine, r);
    frames++;
  }
  void ownedFrame(const FrameHeader& h, uint8_t* body) {
    Record r;
    r.w[0] = kRecFrameOwned | (static_cast<uint32_t>(h.flags) << 8) | (static_cast<uint32_t>(h.command) << 16);
    r.w[1] = c->slot;
    r.w[2] = c->gen;
    r.w[3] = h.status;
    r.w[4] = h.requestId;
    r.w[5] = 0;
    r.w[6] = h.length;
    r.w[7] = 0;
    if (h.length > 0) {
      auto p = reinterpret_cast<uintptr_t>(Block::adopt(body, h.length));
      r.w[5] = static_cast<uint32_t>(p);
      r.w[7] = static_cast<uint32_t>(p >> 32);
    }
    push(engine, r);
    frames++;
  }
  void error(const DecodeError& e) {
    c->protoFailed = true;
    c->perr = e;
    Record r;
    r.w[0] = kRecProtoError | (static_cast<uint32_t>(e.command) << 16);
    r.w[1] = c->slot;
    r.w[2] = c->gen;
    r.w[3] = static_cast<uint32_t>(e.kind);
    r.w[4] = e.requestId;
    r.w[5] = e.value;
    r.w[6] = e.limit;
    r.w[7] = 0;
    push(engine, r);
  }
};
}  // namespace

void Engine::onReadable(Connection* c, uint32_t bits) {
  bool reading = !c->closing && !c->protoFailed && !readingPaused_ && !c->throttled;
  if (!reading) {
    // A readiness reported before reading stopped this turn: nothing to do.
    if (!(bits & kPollErr)) return;
    // Not reading, yet woken: the peer hung up or the socket failed. Find out by writing
    // what is left, else the connection is over.
    if (!c->queueEmpty()) flush(c);
    if (c->fd != kNoSocket && c->queueEmpty()) abort(c, c->hasReason ? c->reason : kClosePeer);
    return;
  }
  if (!overflow_.empty() || !ringHasRoom(kReadSize / kHeaderSize + 8)) {
    // The owner is behind: leave the bytes in the socket (TCP pushes back) until it drains.
    c->throttled = true;
    count(kCntThrottled);
    throttled_.push_back(c);
    ioWantsRoom_.store(true, std::memory_order_seq_cst);
    updateInterest(c);
    return;
  }
  if (arena_ == nullptr || arena_->size - arenaUsed_ < kReadSize) newArena();
  long n = sockRecv(c->fd, arena_->data + arenaUsed_, kReadSize);
  if (n < 0) {
    int e = sockLastError();
    if (e == EAGAIN || e == EINTR) return;
    abort(c, kCloseError);
    return;
  }
  if (n == 0) {
    beginClose(c, kClosePeer);
    return;
  }
  count(kCntReads);
  count(kCntBytesIn, static_cast<uint64_t>(n));
  c->lastRead = turnNow_;  // the turn's clock: one clock read per turn, not per read
  RecordSink sink{this, c, static_cast<uint32_t>(arenaUsed_), 0, [](Engine* e, const Record& r) { e->pushRecord(r); }};
  size_t keep = c->decoder.feed(arena_->data + arenaUsed_, static_cast<size_t>(n), sink);
  arenaUsed_ += (keep + 7) & ~static_cast<size_t>(7);
  if (sink.frames > 0) count(kCntFramesIn, sink.frames);
  if (c->protoFailed) {
    count(kCntProtocolErrors);
    updateInterest(c);
  }
}

void Engine::newArena() {
  if (arena_ != nullptr) arena_->unref();
  arena_ = Block::create(kArenaBlockSize);
  arena_->ref();  // one reference for the owner, taken with the BLOCK record
  arenaUsed_ = 0;
  Record r{};
  r.w[0] = kRecBlock;
  auto p = reinterpret_cast<uintptr_t>(arena_);
  r.w[5] = static_cast<uint32_t>(p);
  r.w[7] = static_cast<uint32_t>(p >> 32);
  r.w[6] = static_cast<uint32_t>(kArenaBlockSize);
  pushRecord(r);
}

void Engine::onWritable(Connection* c) { flush(c); }

void Engine::flush(Connection* c) {
  while (!c->queueEmpty()) {
    IoBuf iov[64];
    int k = 0;
    for (uint32_t i = c->qHead; i < c->qEnd && k < 64; i++, k++) setIoBuf(iov[k], c->q[i].p, c->q[i].len);
    // Counted before the call: a peer may read the bytes before sendmsg returns here.
    count(kCntWrites);
    long n = sockSendv(c->fd, iov, k);
    if (n < 0) {
      int e = sockLastError();
      if (e == EAGAIN || e == EINTR) break;
      abort(c, c->closing && c->hasReason ? c->reason : kCloseError);
      return;
    }
    count(kCntBytesOut, static_cast<uint64_t>(n));
    uncount(kCntQueuedBytes, static_cast<uint64_t>(n));
    c->queued -= static_cast<uint64_t>(n);
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      Seg& s = c->q[c->qHead];
      if (left >= s.len) {
        left -= s.len;
        s.chunk->unref();
        c->qHead++;
      } else {
        s.p += left;
        s.len -= static_cast<uint32_t>(left);
        left = 0;
      }
    }
    size_t offered = 0;
    for (int i = 0; i < k; i++) offered += ioBufLen(iov[i]);
    if (static_cast<size_t>(n) < offered) break;  // the socket buffer is full: wait for POLLOUT
  }
  if (c->queueEmpty()) {
    free(c->q);  // an idle connection holds no send memory
    c->q = nullptr;
    c->qHead = c->qEnd = c->qCap = 0;
    if (c->closing) {
      finishClose(c);
      return;
    }
  }
  updateInterest(c);
}

void Engine::updateInterest(Connection* c) {
  if (c->fd == kNoSocket) return;
  bool reading = !c->closing && !c->protoFailed && !readingPaused_ && !c->throttled;
  uint32_t want = (reading ? static_cast<uint32_t>(kPollIn) : 0u) | (c->queueEmpty() ? 0u : static_cast<uint32_t>(kPollOut));
  if (c->registered && want == c->interest) return;
  int rc = c->registered ? poller_.modify(c->fd, c, want) : poller_.add(c->fd, c, want);
  if (rc < 0) {
    abort(c, kCloseError);
    return;
  }
  c->registered = true;
  c->interest = want;
}

void Engine::beginClose(Connection* c, CloseReason reason) {
  if (c->fd == kNoSocket) return;
  if (!c->hasReason) {
    c->reason = reason;
    c->hasReason = true;
  }
  if (!c->closing) {
    c->closing = true;
    c->closeDeadline = nowMs() + kCloseGraceMs;
  }
  if (c->queueEmpty()) {
    finishClose(c);
    return;
  }
  if (!c->dirty) {
    c->dirty = true;
    dirty_.push_back(c);
  }
  updateInterest(c);
}

void Engine::abort(Connection* c, CloseReason reason) {
  if (c->fd == kNoSocket) return;
  if (!c->hasReason || reason == kCloseSlow || reason == kCloseIdle) {
    c->reason = reason;
    c->hasReason = true;
  }
  uncount(kCntQueuedBytes, c->dropQueue());
  finishClose(c);
}

void Engine::finishClose(Connection* c) {
  if (c->fd == kNoSocket) return;
  if (!c->queueEmpty()) uncount(kCntQueuedBytes, c->dropQueue());
  // Our last bytes are in the kernel: send FIN after them, then release the descriptor
  // (closing the fd also takes it out of the epoll set).
  sockShutdownWrite(c->fd);
  poller_.release(c->fd);
  sockClose(c->fd);
  c->fd = kNoSocket;
  c->decoder.reset();
  free(c->q);
  c->q = nullptr;
  if (c->throttled) {
    throttled_.erase(std::remove(throttled_.begin(), throttled_.end(), c), throttled_.end());
    c->throttled = false;
  }
  Record r{};
  r.w[0] = kRecClose;
  r.w[1] = c->slot;
  r.w[2] = c->gen;
  r.w[3] = c->hasReason ? c->reason : kClosePeer;
  pushRecord(r);
  slots_[c->slot] = nullptr;
  freeSlots_.push_back(c->slot);
  liveConnections_--;
  uncount(kCntConnections, 1);
  graveyard_.push_back(c);
  if (shuttingDown_ && liveConnections_ == 0) finishShutdown();
}

void Engine::finishShutdown() {
  if (doneSent_) return;
  doneSent_ = true;
  Record r{};
  r.w[0] = kRecDone;
  r.w[3] = shutdownToken_;
  pushRecord(r);
  stopLoop_ = true;
}

void Engine::stopListening() {
  if (listenFd_ == kNoSocket) return;
  if (!listenPaused_) poller_.remove(listenFd_);
  poller_.release(listenFd_);
  sockClose(listenFd_);
  listenFd_ = kNoSocket;
  listenPaused_ = false;
}

Connection* Engine::lookup(uint32_t slot, uint32_t gen) {
  if (slot >= slots_.size()) return nullptr;
  Connection* c = slots_[slot];
  return c != nullptr && c->gen == gen && c->fd != kNoSocket ? c : nullptr;
}

void Engine::drainOps() {
  OutBatch* b;
  while (inbox_.tryPop(b)) {
    applyBatch(b);
    b->ops.clear();
    b->segs.clear();
    if (!spentBatches_.tryPush(b)) delete b;
  }
}

void Engine::applyBatch(OutBatch* b) {
  count(kCntSubmits);
  for (const Op& op : b->ops) {
    Connection* c = nullptr;
    switch (op.type) {
      case kOpSend: {
        c = lookup(op.slot, op.gen);
        bool ok = c != nullptr && !c->closing;
        if (ok && c->queued + op.bytes > opt_.maxSendQueueBytes) {
          // The peer does not take its responses: close it rather than queue without bound.
          count(kCntClosedSlow);
          abort(c, kCloseSlow);
          ok = false;
        }
        if (!ok) {
          for (uint32_t i = op.segBegin; i < op.segEnd; i++) b->segs[i].chunk->unref();
          break;
        }
        for (uint32_t i = op.segBegin; i < op.segEnd; i++) c->append(b->segs[i]);
        c->queued += op.bytes;
        count(kCntQueuedBytes, op.bytes);
        if (!c->dirty) {
          c->dirty = true;
          dirty_.push_back(c);
        }
        break;
      }
      case kOpClose:
        c = lookup(op.slot, op.gen);
        if (c != nullptr) beginClose(c, kCloseClosed);
        break;
      case kOpProtoClose: {
        c = lookup(op.slot, op.gen);
        if (c == nullptr || !c->protoFailed || c->closing) break;
        // The error frame the gateway would send, byte for byte (status 1, then close).
        std::string body = std::string("{\"code\":1,\"message\":\"") + c->perr.describe() + "\",\"error\":\"" + c->perr.code() + "\"}";
        SendChunk* chunk = SendChunk::create(kHeaderSize + body.size(), nullptr);
        writeHeader(chunk->data, kFlagResponse | kFlagError, c->perr.command, 1, c->perr.requestId, static_cast<uint32_t>(body.size()));
        memcpy(chunk->data + kHeaderSize, body.data(), body.size());
        chunk->refs = 1;
        c->append(Seg{chunk, chunk->data, chunk->size});
        c->queued += chunk->size;
        count(kCntQueuedBytes, chunk->size);
        beginClose(c, kCloseClosed);
        break;
      }
      case kOpAbortSlow:
        c = lookup(op.slot, op.gen);
        if (c != nullptr) {
          count(kCntClosedSlow);
          abort(c, kCloseSlow);
        }
        break;
      case kOpPause:
        readingPaused_ = true;
        for (Connection* x : slots_)
          if (x != nullptr) updateInterest(x);
        break;
      case kOpStopAccept: {
        stopListening();
        Record r{};
        r.w[0] = kRecDone;
        r.w[3] = op.slot;
        pushRecord(r);
        break;
      }
      case kOpShutdown:
        stopListening();
        shuttingDown_ = true;
        shutdownToken_ = op.slot;
        for (Connection* x : slots_)
          if (x != nullptr) beginClose(x, kCloseClosed);
        if (liveConnections_ == 0) finishShutdown();
        break;
      default:
        break;
    }
  }
}

void Engine::housekeeping(uint64_t now) {
  if (listenPaused_ && listenFd_ != kNoSocket && now >= listenResumeAt_) {
    if (poller_.add(listenFd_, &listenTag, kPollIn) == 0) listenPaused_ = false;
  }
  for (Connection* c : slots_) {
    if (c == nullptr || c->fd == kNoSocket) continue;
    if (c->closing) {
      // A peer that never takes its last bytes must not hold the close (or shutdown) up.
      if (now >= c->closeDeadline) abort(c, c->reason);
    } else if (opt_.idleTimeoutMs > 0 && now - c->lastRead >= opt_.idleTimeoutMs) {
      count(kCntClosedIdle);
      abort(c, kCloseIdle);
    }
  }
}

bool Engine::ringHasRoom(uint32_t n) const {
  uint32_t used = localHead_ - tail_.load(std::memory_order_seq_cst);
  return used + n <= mask_ + 1;
}

void Engine::pushRecord(const Record& r) {
  if (!overflow_.empty() || !ringHasRoom(1)) {
    overflow_.push_back(r);
    ioWantsRoom_.store(true, std::memory_order_seq_cst);
    return;
  }
  ring_[localHead_ & mask_] = r;
  localHead_++;
}

void Engine::publish() {
  size_t moved = 0;
  while (moved < overflow_.size() && ringHasRoom(1)) {
    ring_[localHead_ & mask_] = overflow_[moved++];
    localHead_++;
  }
  if (moved > 0) overflow_.erase(overflow_.begin(), overflow_.begin() + moved);
  if (localHead_ == published_) return;
  head_.store(localHead_, std::memory_order_seq_cst);
  published_ = localHead_;
  if (!jsWake_.exchange(true, std::memory_order_seq_cst)) {
    count(kCntWakeups);
    wake_(wakeArg_);
  }
}

}  // namespace diocp
