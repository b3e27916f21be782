// decoder.h — the pure frame decoder of PROTOCOL.md v1. No N-API, no libuv, no sockets:
// only <cstdint>/<cstdlib>/<cstring>, so it can be fuzzed and run under ASan on its own.
//
// API
//   FrameDecoder d(maxFrameSize, forbiddenFlags);   // forbiddenFlags: kServerForbidden on a server
//   size_t keep = d.feed(chunk, len, sink);          // feed the bytes of a stream, in order
//
//   `sink` is any object with these members (templates, no virtual calls):
//     void frame(const FrameHeader& h, size_t payloadOffset);
//         A frame lying whole inside `chunk`: its payload is chunk[payloadOffset, +h.length).
//         Zero copy: the caller decides what to do with those bytes (the engine hands them to
//         JavaScript as they are).
//     void ownedFrame(const FrameHeader& h, uint8_t* body);
//         A frame that began in an earlier chunk: the decoder reassembled its payload in a
//         buffer it malloc'd (h.length bytes; nullptr when h.length == 0). Ownership passes to
//         the sink, which must free() it (or hand it on).
//     void error(const DecodeError& e);
//         Protocol error. Called at most once per decoder; afterwards the stream is dead and
//         feed() ignores everything. Frames of the same chunk that preceded the bad one were
//         delivered first.
//
//   feed() returns how many leading bytes of `chunk` hold frames passed to frame(): the
//   caller must keep those bytes; everything after may be reused (a trailing partial frame
//   has been copied into the decoder). Memory held between calls: at most the 16-byte header
//   plus the part of one payload received so far (the buffer grows with the bytes that arrive,
//   up to the announced length, itself at most maxFrameSize; allocated only once its header
//   has arrived and been checked); nothing while the stream sits between frames.
//
//   The checks match packages/core/src/codec/decoder.ts: bad magic and bad version are
//   rejected as soon as their byte arrives; reserved flags, a forbidden direction and a length
//   over maxFrameSize are rejected from the complete header alone (the payload is never
//   awaited). describe() renders the same messages as @diocp/core's error registry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace diocp {

constexpr uint8_t kMagic0 = 0xD1;
constexpr uint8_t kMagic1 = 0x0C;
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderSize = 16;
constexpr uint8_t kFlagResponse = 0x01;
constexpr uint8_t kFlagError = 0x02;
constexpr uint8_t kFlagPush = 0x04;
constexpr uint8_t kFlagOneway = 0x08;
constexpr uint8_t kReservedFlags = 0xF0;
/** Flags a client must not send (RESPONSE, ERROR, PUSH). */
constexpr uint8_t kServerForbidden = kFlagResponse | kFlagError | kFlagPush;

struct FrameHeader {
  uint8_t flags;
  uint16_t command;
  uint16_t status;
  uint32_t requestId;
  uint32_t length;
};

enum class DecodeErrorKind : uint8_t {
  BadMagic = 1,
  BadVersion = 2,
  ReservedFlag = 3,
  BadDirection = 4,
  FrameTooLarge = 5,
};

struct DecodeError {
  DecodeErrorKind kind;
  /** The offending value: magic (u16), version, flags, or the announced length. */
  uint32_t value;
  /** maxFrameSize for FrameTooLarge, else 0. */
  uint32_t limit;
  /** Command and request id of the frame when magic and version were right, else 0. */
  uint16_t command;
  uint32_t requestId;

  /** Stable code, the same as @diocp/core's DIOCP_ERR_PROTOCOL_*. */
  const char* code() const {
    switch (kind) {
      case DecodeErrorKind::BadMagic: return "DIOCP_ERR_PROTOCOL_BAD_MAGIC";
      case DecodeErrorKind::BadVersion: return "DIOCP_ERR_PROTOCOL_BAD_VERSION";
      case DecodeErrorKind::ReservedFlag: return "DIOCP_ERR_PROTOCOL_RESERVED_FLAG";
      case DecodeErrorKind::BadDirection: return "DIOCP_ERR_PROTOCOL_BAD_DIRECTION";
      case DecodeErrorKind::FrameTooLarge: return "DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE";
    }
    return "DIOCP_ERR_PROTOCOL_BAD_MAGIC";
  }

  /** The message, word for word as packages/core/src/errors.ts renders it (side: "server"). */
  std::string describe() const {
    char buf[160];
    switch (kind) {
      case DecodeErrorKind::BadMagic:
        snprintf(buf, sizeof buf, "bad magic 0x%04x, expected 0xd10c", value & 0xFFFF);
        break;
      case DecodeErrorKind::BadVersion:
        snprintf(buf, sizeof buf, "unsupported protocol version %u, this server speaks version 1", value);
        break;
      case DecodeErrorKind::ReservedFlag:
        snprintf(buf, sizeof buf, "reserved flag bit set in flags 0x%02x (bits 0x10-0x80 must be 0)", value);
        break;
      case DecodeErrorKind::BadDirection:
        snprintf(buf, sizeof buf, "flags 0x%02x are not allowed in a frame sent to the server", value);
        break;
      case DecodeErrorKind::FrameTooLarge:
        snprintf(buf, sizeof buf, "frame length %u exceeds maxFrameSize %u", value, limit);
        break;
    }
    return buf;
  }
};

inline uint16_t readU16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t readU32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) | (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
inline void writeU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void writeU32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

/** Write a 16-byte header. */
inline void writeHeader(uint8_t* p, uint8_t flags, uint16_t command, uint16_t status, uint32_t requestId, uint32_t length) {
  p[0] = kMagic0;
  p[1] = kMagic1;
  p[2] = kVersion;
  p[3] = flags;
  writeU16(p + 4, command);
  writeU16(p + 6, status);
  writeU32(p + 8, requestId);
  writeU32(p + 12, length);
}

class FrameDecoder {
 public:
  FrameDecoder(uint32_t maxFrameSize, uint8_t forbiddenFlags) : max_(maxFrameSize), forbidden_(forbiddenFlags) {}
  ~FrameDecoder() { free(body_); }
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  /** True once a protocol error was reported. */
  bool failed() const { return failed_; }
  /** Bytes held for an incomplete frame. */
  size_t buffered() const { return headerFill_ + bodyFill_; }
  /** True while a frame is incomplete (a partial header or payload is held). */
  bool partial() const { return headerFill_ > 0 || inBody_; }

  /** Drop what is held (the connection is gone). */
  void reset() {
    free(body_);
    body_ = nullptr;
    bodyCap_ = 0;
    inBody_ = false;
    headerFill_ = 0;
    bodyFill_ = 0;
  }

  template <class Sink>
  size_t feed(const uint8_t* chunk, size_t len, Sink& sink) {
    if (failed_) return 0;
    size_t pos = 0;
    size_t keep = 0;
    // Finish the frame begun in an earlier chunk.
    if (partial()) {
      pos = continuePartial(chunk, len, sink);
      if (failed_ || partial()) return 0;
    }
    // Whole frames inside this chunk: parsed in place, no copy.
    while (len - pos >= kHeaderSize) {
      FrameHeader h;
      if (!parseHeader(chunk + pos, h, sink)) return keep;
      size_t start = pos + kHeaderSize;
      if (len - start >= h.length) {
        sink.frame(h, start);
        pos = start + h.length;
        keep = pos;
      } else {
        // The payload continues in later chunks: collect it in a buffer of its exact size.
        latch_ = h;
        inBody_ = true;
        body_ = nullptr;
        bodyCap_ = 0;
        bodyFill_ = 0;
        reserveBody(len - start);
        bodyFill_ = len - start;
        if (bodyFill_ > 0) memcpy(body_, chunk + start, bodyFill_);
        return keep;
      }
    }
    if (pos < len) {
      memcpy(header_, chunk + pos, len - pos);
      headerFill_ = len - pos;
      checkPrefix(sink);
    }
    return keep;
  }

 private:
  template <class Sink>
  size_t continuePartial(const uint8_t* chunk, size_t len, Sink& sink) {
    size_t pos = 0;
    if (!inBody_) {
      size_t take = kHeaderSize - headerFill_;
      if (take > len) take = len;
      memcpy(header_ + headerFill_, chunk, take);
      headerFill_ += take;
      pos = take;
      if (headerFill_ < kHeaderSize) {
        checkPrefix(sink);
        return pos;
      }
      headerFill_ = 0;
      FrameHeader h;
      if (!parseHeader(header_, h, sink)) return pos;
      latch_ = h;
      inBody_ = true;
      bodyFill_ = 0;
      body_ = nullptr;
      bodyCap_ = 0;
    }
    size_t want = latch_.length - bodyFill_;
    size_t take = want < len - pos ? want : len - pos;
    reserveBody(bodyFill_ + take);
    if (take > 0) memcpy(body_ + bodyFill_, chunk + pos, take);
    bodyFill_ += take;
    pos += take;
    if (bodyFill_ < latch_.length) return pos;
    uint8_t* body = body_;
    if (bodyCap_ > latch_.length && latch_.length > 0) {
      // Give back what the growth steps over-reserved.
      auto* fit = static_cast<uint8_t*>(realloc(body, latch_.length));
      if (fit != nullptr) body = fit;
    }
    body_ = nullptr;
    bodyCap_ = 0;
    inBody_ = false;
    bodyFill_ = 0;
    sink.ownedFrame(latch_, body);
    return pos;
  }

  /**
   * Make room for `need` payload bytes. The buffer grows with the bytes that actually arrive
   * (doubling, at least 64 KiB, never past the announced length): a peer that announces a
   * 16 MiB frame and sends 16 bytes costs 64 KiB, not 16 MiB.
   */
  void reserveBody(size_t need) {
    if (need <= bodyCap_ || latch_.length == 0) return;
    size_t cap = bodyCap_ == 0 ? kBodyStep : bodyCap_ * 2;
    if (cap < need) cap = need;
    if (cap > latch_.length) cap = latch_.length;
    auto* grown = static_cast<uint8_t*>(realloc(body_, cap));
    if (grown == nullptr) abort();  // out of memory: nothing sensible is left to do
    body_ = grown;
    bodyCap_ = cap;
  }

  template <class Sink>
  bool parseHeader(const uint8_t* p, FrameHeader& h, Sink& sink) {
    if (p[0] != kMagic0 || p[1] != kMagic1) return fail(sink, DecodeErrorKind::BadMagic, readU16(p), 0, 0, 0);
    if (p[2] != kVersion) return fail(sink, DecodeErrorKind::BadVersion, p[2], 0, 0, 0);
    h.flags = p[3];
    h.command = readU16(p + 4);
    h.status = readU16(p + 6);
    h.requestId = readU32(p + 8);
    h.length = readU32(p + 12);
    // Magic and version were right, so the ids can be echoed back.
    if (h.flags & kReservedFlags) return fail(sink, DecodeErrorKind::ReservedFlag, h.flags, 0, h.command, h.requestId);
    if (h.flags & forbidden_) return fail(sink, DecodeErrorKind::BadDirection, h.flags, 0, h.command, h.requestId);
    if (h.length > max_) return fail(sink, DecodeErrorKind::FrameTooLarge, h.length, max_, h.command, h.requestId);
    return true;
  }

  /** Reject a bad magic or version as soon as its bytes are here, not after 16 bytes arrive. */
  template <class Sink>
  void checkPrefix(Sink& sink) {
    if (header_[0] != kMagic0 || (headerFill_ > 1 && header_[1] != kMagic1)) {
      fail(sink, DecodeErrorKind::BadMagic, headerFill_ > 1 ? readU16(header_) : static_cast<uint32_t>(header_[0]) << 8, 0, 0, 0);
    } else if (headerFill_ > 2 && header_[2] != kVersion) {
      fail(sink, DecodeErrorKind::BadVersion, header_[2], 0, 0, 0);
    }
  }

  template <class Sink>
  bool fail(Sink& sink, DecodeErrorKind kind, uint32_t value, uint32_t limit, uint16_t command, uint32_t requestId) {
    failed_ = true;
    reset();
    sink.error(DecodeError{kind, value, limit, command, requestId});
    return false;
  }

  uint32_t max_;
  uint8_t forbidden_;
  bool failed_ = false;
  bool inBody_ = false;
  uint8_t header_[kHeaderSize];
  size_t headerFill_ = 0;
  FrameHeader latch_{};
  uint8_t* body_ = nullptr;
  size_t bodyFill_ = 0;
  size_t bodyCap_ = 0;
  static constexpr size_t kBodyStep = 64 * 1024;
};

}  // namespace diocp
