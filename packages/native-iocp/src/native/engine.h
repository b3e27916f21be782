// engine.h — the native transport engine: one IO thread that owns the listening socket and
// every connection, decodes frames (decoder.h), and talks to its owner thread (JavaScript's)
// through two lock-free single-producer/single-consumer queues. No N-API here: binding.cc
// wraps this for node; a plain C++ driver (tests, fuzzing, ASan/valgrind) can use it directly.
//
// API (owner thread = the thread that constructs the Engine)
//   Engine e(options, wake, wakeArg);  // wake(wakeArg) is called on the IO thread when events
//                                      // become available (once per empty -> non-empty turn)
//   int rc = e.start(&syscall);        // bind + listen + start the IO thread; 0 or -errno
//                                      // (`syscall` names the call that failed)
//   e.port();                          // the bound port
//   e.submit(ops, len);                // one call per tick: a stream of Op records (below),
//                                      // copied before return into 64 KiB send blocks
//   consume events (after a wake; the wake flag stays set while the owner drains, so the IO
//   thread sends no more wake-ups meanwhile):
//     uint32_t h = e.head();           // records [e.tail(), h) are ready, see Record
//     if (h == e.tail()) { e.clearWake(); h = e.head(); }  // empty: clear, then look again
//     ... read e.records()[i & e.mask()] ...; e.takeBlock(...) for BLOCK/FRAME_OWNED records
//     e.release(h);                    // hand the slots back
//   e.counters();                      // uint64_t[kCounterCount], written by the IO thread only
//   e.join();                          // after the DONE record of a kOpShutdown: joins the thread
//   ~Engine                            // joins the thread if still running (abrupt), frees all
//
// Op records (owner -> IO), little-endian u32 words, each op 16 bytes + payload padded to 4:
//   [type, slot, gen, len] then len bytes
//   kOpSend        len bytes = one whole wire frame (header + payload), sent in order
//   kOpClose       flush what is queued for the connection, then close it ('closed')
//   kOpProtoClose  after a PROTOCOL_ERROR record: queue the native error frame, flush, close
//   kOpPause       stop reading from every connection (graceful shutdown)
//   kOpStopAccept  close the listener; DONE(token = slot) follows
//   kOpAbortSlow   close the connection as 'slow' at once (the owner saw its queue overflow)
//   kOpShutdown    stop accepting, flush and close every connection (at most kCloseGraceMs
//                  each), then DONE(token = slot) and the IO thread ends
//
// Event records (IO -> owner), 8 u32 words:
//   w0 = type | flags << 8 | command << 16, w1 = slot, w2 = gen, then per type:
//   kRecBlock      a new arena block: frames after it (kRecFrame) point into it.
//                  w5/w7 = Block* (low/high), w6 = size
//   kRecFrame      w3 = status, w4 = requestId, w5 = offset in the current arena block, w6 = length
//   kRecFrameOwned w3 = status, w4 = requestId, w6 = length; w5/w7 = Block* holding exactly the
//                  payload (none when length is 0)
//   kRecOpen       w3 = port | family << 16 (4 or 6), w4..w7 = address bytes (network order)
//   kRecProtoError w3 = DecodeErrorKind, w4 = requestId, w5 = value, w6 = limit, flags/command in w0
//   kRecClose      w3 = CloseReason
//   kRecDone       w3 = token
// Memory handed out (blocks) is never reused: each Block is reference counted; the owner takes
// a reference per BLOCK/FRAME_OWNED record (takeBlock) and drops it with Block::unref when the
// JavaScript ArrayBuffer over it is collected.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "decoder.h"
#include "poller.h"
#include "socket-ops.h"
#include "spsc-ring.h"

namespace diocp {

struct EngineOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  uint32_t maxFrameSize = 16 * 1024 * 1024;
  uint32_t maxConnections = 10000;
  uint32_t idleTimeoutMs = 0;
  uint64_t maxSendQueueBytes = 32 * 1024 * 1024;
  int backlog = 4096;
  /** Capacity of the event ring in records (a power of two, at least 8192: two reads' worth). */
  uint32_t ringRecords = 1u << 16;
};

enum OpType : uint32_t {
  kOpSend = 1,
  kOpClose = 2,
  kOpProtoClose = 3,
  kOpPause = 4,
  kOpStopAccept = 5,
  kOpShutdown = 6,
  /** The owner saw the connection queue more than maxSendQueueBytes in one tick: close it as slow. */
  kOpAbortSlow = 7,
};

enum RecType : uint32_t {
  kRecBlock = 1,
  kRecFrame = 2,
  kRecFrameOwned = 3,
  kRecOpen = 4,
  kRecProtoError = 5,
  kRecClose = 6,
  kRecDone = 7,
};

enum CloseReason : uint32_t {
  kClosePeer = 0,
  kCloseIdle = 1,
  kCloseSlow = 2,
  kCloseClosed = 3,
  kCloseError = 4,
};

enum CounterIndex : uint32_t {
  kCntConnections = 0,
  kCntAccepted,
  kCntRejected,
  kCntClosedIdle,
  kCntClosedSlow,
  kCntBytesIn,
  kCntBytesOut,
  kCntWrites,
  kCntReads,
  kCntFramesIn,
  kCntProtocolErrors,
  kCntQueuedBytes,
  kCntWakeups,
  kCntSubmits,
  kCntAcceptErrors,
  /** Reads put off because the owner had not drained the event ring. */
  kCntThrottled,
  kCounterCount,
};

/** Size of an arena block frames are read into; bigger payloads get a block of their own. */
constexpr size_t kArenaBlockSize = 256 * 1024;
/** One read takes at most this many bytes. */
constexpr size_t kReadSize = 64 * 1024;
/** Send blocks: a payload bigger than this is queued as several blocks. */
constexpr size_t kSendBlockSize = 64 * 1024;
/** A closing connection whose peer does not take its last bytes is cut after this. */
constexpr uint32_t kCloseGraceMs = 5000;

struct Record {
  uint32_t w[8];
};

/** Reference-counted memory handed to the owner thread; never reused while referenced. */
struct Block {
  std::atomic<int> refs;
  size_t size;
  uint8_t* data;
  static Block* create(size_t size);
  /** Adopt a malloc'd buffer. */
  static Block* adopt(uint8_t* data, size_t size);
  void ref() { refs.fetch_add(1, std::memory_order_relaxed); }
  void unref();
};

struct Connection;
struct SendChunk;
struct OutBatch;

class Engine {
 public:
  using WakeFn = void (*)(void* arg);
  Engine(const EngineOptions& options, WakeFn wake, void* wakeArg);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  int start(const char** syscall);
  uint16_t port() const { return boundPort_; }

  void submit(const uint8_t* ops, size_t len);
  /**
   * Refuse new connections now, from the owner thread (a kOpStopAccept or kOpShutdown must
   * follow: the IO thread then closes the socket). Makes stopAccepting() take effect before it
   * returns, as node:net's server.close() does.
   */
  void stopAcceptingNow();

  void clearWake() { jsWake_.store(false, std::memory_order_seq_cst); }
  uint32_t head() const { return head_.load(std::memory_order_acquire); }
  uint32_t tail() const { return tail_.load(std::memory_order_relaxed); }
  uint32_t mask() const { return mask_; }
  Record* records() const { return ring_; }
  /** Memory of the ring, for a view over it; owned by a Block so the view may outlive us. */
  Block* ringBlock() const { return ringMem_; }
  Block* counterBlock() const { return counterMem_; }
  void release(uint32_t newTail);
  /** The Block* of a BLOCK or FRAME_OWNED record; the caller now owns one reference. */
  static Block* takeBlock(const Record& r) {
    return reinterpret_cast<Block*>((static_cast<uintptr_t>(r.w[7]) << 32) | r.w[5]);
  }
  /** Records whose blocks nobody took (engine torn down before the owner read them). */
  void dropUnread();

  const uint64_t* counters() const { return counters_; }
  /** Join the IO thread once it ended (after kOpShutdown's DONE). */
  void join();
  bool running() const { return running_.load(std::memory_order_acquire); }

 private:
  friend struct Connection;
  void run();
  void onAccept();
  void onReadable(Connection* c, uint32_t bits);
  void finishShutdown();
  void onWritable(Connection* c);
  void drainOps();
  void applyBatch(OutBatch* b);
  void flush(Connection* c);
  void beginClose(Connection* c, CloseReason reason);
  void finishClose(Connection* c);
  void abort(Connection* c, CloseReason reason);
  void housekeeping(uint64_t now);
  void updateInterest(Connection* c);
  void pushRecord(const Record& r);
  void publish();
  bool ringHasRoom(uint32_t n) const;
  Connection* lookup(uint32_t slot, uint32_t gen);
  void count(CounterIndex i, uint64_t n = 1) {
    counters_[i] = counters_[i] + n;  // single writer: the IO thread
  }
  void uncount(CounterIndex i, uint64_t n) { counters_[i] = counters_[i] - n; }
  void newArena();
  void stopListening();
  uint64_t nowMs() const;

  EngineOptions opt_;
  WakeFn wake_;
  void* wakeArg_;
  Poller poller_;
  SocketHandle listenFd_ = kNoSocket;
  /** The listener as the owner thread sees it, for stopAcceptingNow() (once). */
  std::atomic<SocketHandle> listenShared_{kNoSocket};
  bool listenPaused_ = false;
  uint64_t listenResumeAt_ = 0;
  uint16_t boundPort_ = 0;
  std::thread thread_;
  std::atomic<bool> running_{false};

  // Connections: slot table with generations; a slot is reused, (slot, gen) never is.
  std::vector<Connection*> slots_;
  std::vector<uint32_t> gens_;
  std::vector<uint32_t> freeSlots_;  // used as a FIFO via freeHead_
  size_t freeHead_ = 0;
  uint32_t liveConnections_ = 0;
  std::vector<Connection*> dirty_;
  bool readingPaused_ = false;
  bool shuttingDown_ = false;
  uint32_t shutdownToken_ = 0;
  bool doneSent_ = false;
  bool stopLoop_ = false;
  std::atomic<bool> abort_{false};
  std::vector<Connection*> graveyard_;  // closed this turn, freed at its end

  // Event ring (IO thread produces, owner consumes).
  Block* ringMem_;
  Record* ring_;
  uint32_t mask_;
  uint32_t localHead_ = 0;  // IO thread's unpublished head
  uint32_t published_ = 0;
  alignas(64) std::atomic<uint32_t> head_{0};
  alignas(64) std::atomic<uint32_t> tail_{0};
  alignas(64) std::atomic<bool> jsWake_{false};
  std::atomic<bool> ioWantsRoom_{false};
  std::vector<Record> overflow_;
  std::vector<Connection*> throttled_;

  // Arena for reads.
  Block* arena_ = nullptr;
  size_t arenaUsed_ = 0;

  // Owner -> IO.
  SpscRing<OutBatch*> inbox_;
  // IO -> owner: spent batches and emptied full-size send blocks, reused by submit().
  SpscRing<OutBatch*> spentBatches_;
  SpscRing<SendChunk*> chunkPool_;
  std::atomic<bool> ioWake_{false};

  Block* counterMem_;
  uint64_t* counters_;
  /** The IO thread's clock for this loop turn (ms), read once per turn after the wait. */
  uint64_t turnNow_ = 0;
  uint64_t nextHousekeeping_ = 0;
  uint32_t housekeepingEvery_ = 500;
};

}  // namespace diocp
