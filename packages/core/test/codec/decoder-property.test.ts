import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder, ProtocolError, HEADER_SIZE, type Frame } from '../../src/index.js';

type Side = 'server' | 'client' | 'any';
const allowedFlags: Record<Side, number[]> = {
  server: [0x00, 0x08],
  client: [0x00, 0x01, 0x03, 0x04, 0x02, 0x05, 0x06, 0x07],
  any: Array.from({ length: 16 }, (_, i) => i),
};

interface Spec {
  flags: number;
  command: number;
  status: number;
  requestId: number;
  payload: Uint8Array;
}

const frameSpec = (side: Side) =>
  fc.record({
    flags: fc.constantFrom(...allowedFlags[side]),
    command: fc.integer({ min: 0, max: 0xffff }),
    status: fc.integer({ min: 0, max: 0xffff }),
    requestId: fc.integer({ min: 0, max: 0xffffffff }),
    // fast-check keeps arrays short by default: draw the length explicitly to cover 0..2000
    payload: fc
      .oneof(fc.constant(0), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 2000 }), fc.constant(2000))
      .chain((len) => fc.uint8Array({ minLength: len, maxLength: len })),
  });

const scenario = fc
  .constantFrom<Side>('server', 'client', 'any')
  .chain((side) => fc.tuple(fc.constant(side), fc.array(frameSpec(side), { minLength: 0, maxLength: 12 })))
  .chain(([side, specs]) => {
    const total = specs.reduce((n, s) => n + HEADER_SIZE + s.payload.length, 0);
    return fc.tuple(
      fc.constant(side),
      fc.constant(specs),
      fc.uniqueArray(fc.integer({ min: 0, max: total }), { maxLength: 40 }).map((cuts) => cuts.sort((a, b) => a - b)),
    );
  });

function encodeAll(specs: Spec[]): Buffer {
  return Buffer.concat(specs.map((s) => encodeFrame(s.flags, s.command, s.status, s.requestId, s.payload)));
}

function cutAt(buf: Buffer, cuts: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    chunks.push(buf.subarray(prev, c));
    prev = c;
  }
  return chunks;
}

function isAcceptableError(err: unknown): boolean {
  return (
    err instanceof ProtocolError &&
    /^DIOCP_ERR_PROTOCOL_[A-Z_]+$/.test(err.code) &&
    err.status === 1 &&
    Number.isInteger(err.command) &&
    Number.isInteger(err.requestId)
  );
}

describe('FrameDecoder properties', () => {
  it('any sequence of valid frames, cut anywhere into chunks, decodes to exactly the same frames', () => {
    fc.assert(
      fc.property(scenario, ([side, specs, cuts]) => {
        const dec = new FrameDecoder({ side, maxFrameSize: 2000 });
        const out: Frame[] = [];
        for (const chunk of cutAt(encodeAll(specs), cuts)) {
          dec.push(chunk, out);
          expect(dec.buffered).toBeLessThanOrEqual(HEADER_SIZE + 2000);
        }
        // compared after every push: earlier payloads must not have been overwritten
        expect(out.length).toBe(specs.length);
        out.forEach((f, i) => {
          const s = specs[i]!;
          expect(f.flags).toBe(s.flags);
          expect(f.command).toBe(s.command);
          expect(f.status).toBe(s.status);
          expect(f.requestId).toBe(s.requestId);
          expect(Buffer.isBuffer(f.payload)).toBe(true);
          expect(Buffer.compare(f.payload, Buffer.from(s.payload))).toBe(0);
        });
        expect(dec.buffered).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes never make the decoder throw anything but a status-1 ProtocolError', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Side>('server', 'client', 'any'),
        fc.integer({ min: 0, max: 4096 }),
        // plain noise, or noise behind a valid magic+version so flags and lengths get checked too
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 300 }),
          fc.uint8Array({ minLength: 13, maxLength: 300 }).map((b) => Uint8Array.from([0xd1, 0x0c, 0x01, ...b])),
          fc
            .array(fc.uint8Array({ minLength: 13, maxLength: 40 }), { minLength: 1, maxLength: 8 })
            .map((parts) => Uint8Array.from(parts.flatMap((b) => [0xd1, 0x0c, 0x01, b[0]! & 0x0f, ...b.subarray(1, 9), 0, 0, 0, b.length - 13, ...b.subarray(13)]))),
        ),
        fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 20 }),
        (side, maxFrameSize, bytes, sizes) => {
          const dec = new FrameDecoder({ side, maxFrameSize });
          const buf = Buffer.from(bytes);
          let pos = 0;
          let failed = false;
          for (const size of [...sizes, buf.length]) {
            if (pos >= buf.length) break;
            const chunk = buf.subarray(pos, pos + size);
            pos += chunk.length;
            try {
              dec.push(chunk, []);
            } catch (err) {
              expect(isAcceptableError(err), String(err)).toBe(true);
              failed = true;
              break;
            }
            expect(dec.buffered).toBeLessThanOrEqual(HEADER_SIZE + maxFrameSize);
          }
          if (failed) {
            // the stream is dead from now on
            expect(() => dec.push(Buffer.from([0xd1]), [])).toThrow(ProtocolError);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('random bytes appended after valid frames: the valid frames are delivered, then at most a ProtocolError', () => {
    fc.assert(
      fc.property(
        scenario,
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        ([side, specs, cuts], garbage) => {
          const dec = new FrameDecoder({ side, maxFrameSize: 2000 });
          const valid = encodeAll(specs);
          const stream = Buffer.concat([valid, garbage]);
          const out: Frame[] = [];
          try {
            for (const chunk of cutAt(stream, [...cuts, valid.length].sort((a, b) => a - b))) dec.push(chunk, out);
          } catch (err) {
            expect(isAcceptableError(err), String(err)).toBe(true);
          }
          expect(out.length).toBeGreaterThanOrEqual(specs.length);
          specs.forEach((s, i) => {
            const f = out[i]!;
            expect([f.flags, f.command, f.status, f.requestId]).toEqual([s.flags, s.command, s.status, s.requestId]);
            expect(Buffer.compare(f.payload, Buffer.from(s.payload))).toBe(0);
          });
          expect(dec.buffered).toBeLessThanOrEqual(HEADER_SIZE + 2000);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a single corrupted header byte (magic, version or a reserved flag bit) is always reported with a DIOCP_ERR_PROTOCOL_* code', () => {
    fc.assert(
      fc.property(
        frameSpec('server'),
        fc.constantFrom(0, 1, 2, 3),
        fc.integer({ min: 1, max: 255 }),
        (spec, at, xor) => {
          const buf = Buffer.from(encodeFrame(spec.flags, spec.command, spec.status, spec.requestId, spec.payload));
          if (at === 3) buf[3] = buf[3]! | ((xor & 0xf0) || 0x10);
          else buf[at] = buf[at]! ^ xor;
          const dec = new FrameDecoder({ side: 'server', maxFrameSize: 2000 });
          const out: Frame[] = [];
          let err: unknown;
          try {
            dec.push(buf, out);
          } catch (e) {
            err = e;
          }
          expect(out).toEqual([]);
          expect(err).toBeInstanceOf(ProtocolError);
          const code = (err as ProtocolError).code;
          expect(code).toBe(
            at < 2 ? 'DIOCP_ERR_PROTOCOL_BAD_MAGIC' : at === 2 ? 'DIOCP_ERR_PROTOCOL_BAD_VERSION' : 'DIOCP_ERR_PROTOCOL_RESERVED_FLAG',
          );
          const trusted = at === 3;
          expect((err as ProtocolError).command).toBe(trusted ? spec.command : 0);
          expect((err as ProtocolError).requestId).toBe(trusted ? spec.requestId : 0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
