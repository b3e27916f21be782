// decoder_fuzz.cc — libFuzzer harness for the native frame decoder (src/native/decoder.h).
//
// Built and run by fuzz/run.mjs (`npm run fuzz:native -- 60`):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined decoder_fuzz.cc
//
// Input layout (so that a crash reproduces exactly):
//   byte 0      configuration: bits 0-2 pick maxFrameSize from kLimits, bit 3 = client side
//               (no forbidden flags; default: server side, kServerForbidden), bits 4-5 pick
//               how the stream is cut into chunks (see chunkLength)
//   bytes 1-4   seed of the chunk lengths
//   bytes 5..   the byte stream, fed to ONE FrameDecoder in chunks
//
// It checks more than "no crash". A reference decoder (`reference` below: whole stream, no
// chunks, written straight from PROTOCOL.md) says which frames and which error the stream
// holds; the chunked decoder must report exactly that:
//   - every frame, in order; each one re-encoded (writeHeader + payload) equals the stream's
//     bytes at that point, so the sum of the frames' sizes is the consumed prefix;
//   - frame(): the whole frame lies inside the current chunk (payloadOffset, length) and
//     the returned `keep` covers it; ownedFrame(): a malloc'd body, or nullptr for length 0;
//   - no frame longer than maxFrameSize, ever;
//   - error(): at most once, with the kind, value, limit, command and request id the reference
//     expects, and nothing is called after it (further feeds return 0);
//   - without an error, what the decoder holds (buffered()) is exactly the unconsumed tail,
//     never more than 16 + maxFrameSize bytes, and partial() says whether there is one.
// Each chunk is fed from a malloc'd copy of its exact size that is freed right after feed()
// returns (bytes past `keep` are poisoned first), so ASan reports any read past the chunk or
// any use of a chunk the decoder was told it may not keep.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../src/native/decoder.h"

namespace {

using diocp::DecodeError;
using diocp::DecodeErrorKind;
using diocp::FrameDecoder;
using diocp::FrameHeader;

constexpr uint32_t kLimits[8] = {0, 1, 15, 16, 64, 1000, 65536, 16u * 1024u * 1024u};

[[noreturn]] void die(const char* what, size_t a = 0, size_t b = 0) {
  fprintf(stderr, "decoder_fuzz: invariant broken: %s (%zu, %zu)\n", what, a, b);
  abort();
}
#define CHECK(cond, ...) \
  do {                   \
    if (!(cond)) die(#cond, ##__VA_ARGS__); \
  } while (0)

struct RefFrame {
  size_t at;  // offset of the header in the stream
  FrameHeader h;
};

struct RefResult {
  std::vector<RefFrame> frames;
  bool hasError = false;
  DecodeError error{};
  size_t consumed = 0;  // bytes of whole frames
};

// The stream decoded in one piece, by PROTOCOL.md: header checks in order magic, version,
// reserved flags, direction, length; a trailing partial header is checked for magic and
// version with the bytes that are there.
RefResult reference(const uint8_t* s, size_t n, uint32_t max, uint8_t forbidden) {
  RefResult r;
  size_t pos = 0;
  auto fail = [&](DecodeErrorKind k, uint32_t value, uint32_t limit, uint16_t cmd, uint32_t id) {
    r.hasError = true;
    r.error = DecodeError{k, value, limit, cmd, id};
  };
  while (n - pos >= diocp::kHeaderSize) {
    const uint8_t* p = s + pos;
    if (p[0] != 0xD1 || p[1] != 0x0C) return fail(DecodeErrorKind::BadMagic, (p[0] << 8) | p[1], 0, 0, 0), r;
    if (p[2] != 1) return fail(DecodeErrorKind::BadVersion, p[2], 0, 0, 0), r;
    FrameHeader h{p[3], static_cast<uint16_t>((p[4] << 8) | p[5]), static_cast<uint16_t>((p[6] << 8) | p[7]),
                  diocp::readU32(p + 8), diocp::readU32(p + 12)};
    if (h.flags & 0xF0) return fail(DecodeErrorKind::ReservedFlag, h.flags, 0, h.command, h.requestId), r;
    if (h.flags & forbidden) return fail(DecodeErrorKind::BadDirection, h.flags, 0, h.command, h.requestId), r;
    if (h.length > max) return fail(DecodeErrorKind::FrameTooLarge, h.length, max, h.command, h.requestId), r;
    if (n - pos - diocp::kHeaderSize < h.length) break;  // payload incomplete
    r.frames.push_back({pos, h});
    pos += diocp::kHeaderSize + h.length;
    r.consumed = pos;
  }
  size_t rest = n - pos;
  if (rest > 0 && rest < diocp::kHeaderSize) {
    const uint8_t* p = s + pos;
    if (p[0] != 0xD1 || (rest > 1 && p[1] != 0x0C)) {
      // The value is the magic as far as it had arrived when the check ran; compared loosely.
      fail(DecodeErrorKind::BadMagic, rest > 1 ? (p[0] << 8) | p[1] : p[0] << 8, 0, 0, 0);
    } else if (rest > 2 && p[2] != 1) {
      fail(DecodeErrorKind::BadVersion, p[2], 0, 0, 0);
    }
  }
  return r;
}

struct Sink {
  const uint8_t* stream;   // the whole stream
  const RefResult* ref;
  uint32_t max;
  size_t next = 0;         // index of the next expected frame
  size_t chunkAt = 0;      // stream offset of the current chunk
  const uint8_t* chunk = nullptr;
  size_t chunkLen = 0;
  size_t maxFrameEndInChunk = 0;  // for the `keep` check
  int errors = 0;

  const RefFrame& expect(const FrameHeader& h) {
    CHECK(errors == 0, next);  // nothing after an error
    CHECK(next < ref->frames.size(), next, ref->frames.size());
    const RefFrame& f = ref->frames[next++];
    CHECK(h.length <= max, h.length, max);
    // Re-encode the header: must be the stream's bytes at this frame.
    uint8_t enc[diocp::kHeaderSize];
    diocp::writeHeader(enc, h.flags, h.command, h.status, h.requestId, h.length);
    CHECK(memcmp(enc, stream + f.at, diocp::kHeaderSize) == 0, f.at);
    return f;
  }

  void frame(const FrameHeader& h, size_t payloadOffset) {
    const RefFrame& f = expect(h);
    // Whole frame inside this chunk, at the place it has in the stream.
    CHECK(payloadOffset >= diocp::kHeaderSize, payloadOffset);
    CHECK(payloadOffset <= chunkLen && h.length <= chunkLen - payloadOffset, payloadOffset, chunkLen);
    CHECK(chunkAt + payloadOffset == f.at + diocp::kHeaderSize, chunkAt + payloadOffset, f.at);
    CHECK(memcmp(chunk + payloadOffset, stream + f.at + diocp::kHeaderSize, h.length) == 0, f.at);
    maxFrameEndInChunk = payloadOffset + h.length;
  }

  void ownedFrame(const FrameHeader& h, uint8_t* body) {
    const RefFrame& f = expect(h);
    CHECK((body == nullptr) == (h.length == 0), h.length);
    // It began in an earlier chunk.
    CHECK(f.at < chunkAt, f.at, chunkAt);
    if (h.length) CHECK(memcmp(body, stream + f.at + diocp::kHeaderSize, h.length) == 0, f.at);
    free(body);
  }

  void error(const DecodeError& e) {
    CHECK(errors == 0, errors);
    errors++;
    CHECK(ref->hasError);
    CHECK(next == ref->frames.size(), next, ref->frames.size());  // every earlier frame first
    const DecodeError& x = ref->error;
    CHECK(e.kind == x.kind, static_cast<size_t>(e.kind), static_cast<size_t>(x.kind));
    if (e.kind == DecodeErrorKind::BadMagic) {
      // Known to depend on chunking: with one byte seen, the low byte reads 0.
      CHECK((e.value >> 8) == (x.value >> 8) && ((e.value & 0xFF) == (x.value & 0xFF) || (e.value & 0xFF) == 0), e.value, x.value);
    } else {
      CHECK(e.value == x.value, e.value, x.value);
    }
    CHECK(e.limit == x.limit, e.limit, x.limit);
    CHECK(e.command == x.command && e.requestId == x.requestId, e.command, x.command);
    CHECK(e.code() != nullptr && !e.describe().empty());
  }
};

// Chunk lengths: mode 0 = random 1..64, 1 = single bytes, 2 = random 1..4096, 3 = the stream
// cut once at a random point.
size_t chunkLength(int mode, uint32_t& seed, size_t left, size_t total) {
  seed = seed * 1664525u + 1013904223u;
  uint32_t r = seed >> 8;
  switch (mode) {
    case 0: return 1 + r % 64;
    case 1: return 1;
    case 2: return 1 + r % 4096;
    default: {
      size_t cut = total ? r % (total + 1) : 0;
      return left == total && cut > 0 && cut < total ? cut : left;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const uint8_t cfg = data[0];
  const uint32_t max = kLimits[cfg & 7];
  const uint8_t forbidden = (cfg & 8) ? 0 : diocp::kServerForbidden;
  const int mode = (cfg >> 4) & 3;
  uint32_t seed = diocp::readU32(data + 1);
  const uint8_t* stream = data + 5;
  const size_t n = size - 5;

  const RefResult ref = reference(stream, n, max, forbidden);
  Sink sink{stream, &ref, max};
  FrameDecoder dec(max, forbidden);
  size_t pos = 0;
  while (pos < n) {
    size_t len = chunkLength(mode, seed, n - pos, n);
    if (len > n - pos) len = n - pos;
    // An exact-size copy, freed after feed(): ASan catches reads past it or of it later.
    uint8_t* chunk = static_cast<uint8_t*>(malloc(len));
    memcpy(chunk, stream + pos, len);
    sink.chunk = chunk;
    sink.chunkLen = len;
    sink.chunkAt = pos;
    sink.maxFrameEndInChunk = 0;
    const bool wasFailed = dec.failed();
    size_t keep = dec.feed(chunk, len, sink);
    CHECK(keep <= len, keep, len);
    CHECK(keep >= sink.maxFrameEndInChunk, keep, sink.maxFrameEndInChunk);
    if (wasFailed) CHECK(keep == 0, keep);
    memset(chunk + keep, 0xA5, len - keep);  // the decoder must have copied what it needs
    free(chunk);
    pos += len;
    // Held memory stays bounded by one header plus one frame.
    CHECK(dec.buffered() <= diocp::kHeaderSize + static_cast<size_t>(max), dec.buffered());
  }
  // Everything the reference found was reported, and nothing else.
  CHECK(sink.next == ref.frames.size(), sink.next, ref.frames.size());
  CHECK(dec.failed() == ref.hasError);
  CHECK(sink.errors == (ref.hasError ? 1 : 0), sink.errors);
  if (!ref.hasError) {
    // What is held is exactly the unconsumed tail (header + payload so far, or part of a header).
    const size_t tail = n - ref.consumed;
    const size_t held = tail >= diocp::kHeaderSize ? tail - diocp::kHeaderSize : tail;
    CHECK(dec.buffered() == held, dec.buffered(), held);
    CHECK(dec.partial() == (tail > 0), tail);
  } else {
    CHECK(dec.buffered() == 0, dec.buffered());
    // A dead decoder ignores everything.
    uint8_t more[diocp::kHeaderSize] = {0xD1, 0x0C, 1, 0};
    CHECK(dec.feed(more, sizeof more, sink) == 0);
  }
  return 0;
}
