import { describe, expect, it } from 'vitest';
import {
  encodeFrame,
  writeHeader,
  FrameDecoder,
  Flags,
  HEADER_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  type Frame,
} from '../../src/index.js';

/** Push `chunks` in order into `dec`, collecting every frame. */
function decodeAll(dec: FrameDecoder, chunks: Buffer[]): Frame[] {
  const out: Frame[] = [];
  for (const c of chunks) dec.push(c, out);
  return out;
}

/** Plain, comparable view of a frame (payload copied to a byte array). */
function plain(f: Frame) {
  return { flags: f.flags, command: f.command, status: f.status, requestId: f.requestId, payload: [...f.payload] };
}

describe('encodeFrame / writeHeader: header layout of PROTOCOL.md', () => {
  it('writes magic, version, flags, command, status, request id and length big-endian at the documented offsets', () => {
    const buf = encodeFrame(0x03, 0x1234, 0x0102, 0xa1b2c3d4, Buffer.from('hi'));
    expect([...buf]).toEqual([
      0xd1, 0x0c, // magic
      0x01, // version
      0x03, // flags
      0x12, 0x34, // command BE
      0x01, 0x02, // status BE
      0xa1, 0xb2, 0xc3, 0xd4, // request id BE
      0x00, 0x00, 0x00, 0x02, // length BE
      0x68, 0x69, // payload "hi"
    ]);
  });

  it('a frame without payload is exactly the 16-byte header with length 0', () => {
    const buf = encodeFrame(Flags.ONEWAY, 0xfeff, 0, 0);
    expect(buf.length).toBe(HEADER_SIZE);
    expect([...buf]).toEqual([0xd1, 0x0c, 1, 0x08, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('encodes a 4-byte length and request id beyond 2^31 and a status of 0xffff', () => {
    const buf = encodeFrame(0x03, 0xffff, 0xffff, 0xffffffff, Buffer.alloc(0x0102));
    expect(buf.readUInt16BE(6)).toBe(0xffff);
    expect(buf.readUInt32BE(8)).toBe(0xffffffff);
    expect([...buf.subarray(12, 16)]).toEqual([0x00, 0x00, 0x01, 0x02]);
    expect(buf.length).toBe(16 + 0x0102);
  });

  it('writeHeader writes the same 16 bytes at an offset without touching the bytes around it', () => {
    const buf = Buffer.alloc(20, 0xee);
    writeHeader(buf, 2, 0x01, 0x0007, 0x0000, 42, 5);
    expect(buf[0]).toBe(0xee);
    expect(buf[1]).toBe(0xee);
    expect([...buf.subarray(2, 18)]).toEqual([...encodeFrame(0x01, 7, 0, 42, Buffer.alloc(5)).subarray(0, 16)]);
    expect(buf[18]).toBe(0xee);
    expect(buf[19]).toBe(0xee);
  });

  it('accepts a Uint8Array payload', () => {
    const buf = encodeFrame(0, 1, 0, 1, new Uint8Array([9, 8, 7]));
    expect([...buf.subarray(16)]).toEqual([9, 8, 7]);
    expect(buf.readUInt32BE(12)).toBe(3);
  });
});

describe('FrameDecoder: round trip of every frame kind', () => {
  const kinds: { name: string; side: 'server' | 'client'; flags: number; command: number; status: number; requestId: number; payload: Buffer }[] = [
    { name: 'request', side: 'server', flags: Flags.NONE, command: 0x0001, status: 0, requestId: 1, payload: Buffer.from('hello') },
    { name: 'oneway', side: 'server', flags: Flags.ONEWAY, command: 0x0abc, status: 0, requestId: 0, payload: Buffer.from([0, 1, 2]) },
    { name: 'ping', side: 'server', flags: Flags.NONE, command: 0xffff, status: 0, requestId: 77, payload: Buffer.alloc(0) },
    { name: 'response', side: 'client', flags: Flags.RESPONSE, command: 0x0001, status: 0, requestId: 0xffffffff, payload: Buffer.from('world') },
    {
      name: 'error response',
      side: 'client',
      flags: Flags.RESPONSE | Flags.ERROR,
      command: 0x0002,
      status: 2,
      requestId: 9,
      payload: Buffer.from(JSON.stringify({ code: 2, message: 'no handler' })),
    },
    { name: 'application error', side: 'client', flags: 0x03, command: 0x0010, status: 0xffff, requestId: 3, payload: Buffer.from('{}') },
    { name: 'push', side: 'client', flags: Flags.PUSH, command: 0x0100, status: 0, requestId: 0, payload: Buffer.from('news') },
    { name: 'protocol error frame', side: 'client', flags: 0x03, command: 0, status: 1, requestId: 0, payload: Buffer.from('{"code":1}') },
  ];

  for (const k of kinds) {
    it(`${k.name} frame decodes to what was encoded (${k.side} side and "any")`, () => {
      const bytes = encodeFrame(k.flags, k.command, k.status, k.requestId, k.payload);
      for (const side of [k.side, 'any'] as const) {
        const frames = decodeAll(new FrameDecoder({ side }), [bytes]);
        expect(frames.map(plain)).toEqual([
          { flags: k.flags, command: k.command, status: k.status, requestId: k.requestId, payload: [...k.payload] },
        ]);
      }
    });
  }

  it('the default decoder is the server side with maxFrameSize 16 MiB', () => {
    const dec = new FrameDecoder();
    expect(dec.maxFrameSize).toBe(DEFAULT_MAX_FRAME_SIZE);
    expect(DEFAULT_MAX_FRAME_SIZE).toBe(16 * 1024 * 1024);
    expect(() => dec.push(encodeFrame(Flags.RESPONSE, 1, 0, 1), [])).toThrow(expect.objectContaining({ code: 'DIOCP_ERR_PROTOCOL_BAD_DIRECTION' }));
  });
});

describe('FrameDecoder: reassembly', () => {
  const frames = [
    encodeFrame(0, 1, 0, 1, Buffer.from('first frame')),
    encodeFrame(Flags.ONEWAY, 2, 0, 0),
    encodeFrame(0, 3, 0, 3, Buffer.from('x'.repeat(300))),
    encodeFrame(0, 4, 0, 4),
    encodeFrame(0, 0xffff, 0, 5, Buffer.from([0xd1, 0x0c, 0x01, 0x00])),
  ];
  const all = Buffer.concat(frames);
  const expected = frames.map((b) => ({
    flags: b[3],
    command: b.readUInt16BE(4),
    status: 0,
    requestId: b.readUInt32BE(8),
    payload: [...b.subarray(16)],
  }));

  it('several frames in one chunk ("sticky packets")', () => {
    const dec = new FrameDecoder();
    expect(decodeAll(dec, [all]).map(plain)).toEqual(expected);
    expect(dec.buffered).toBe(0);
  });

  it('one byte at a time', () => {
    const dec = new FrameDecoder();
    const chunks = [...all].map((b) => Buffer.from([b]));
    const out: Frame[] = [];
    let delivered = 0;
    for (let i = 0; i < chunks.length; i++) {
      dec.push(chunks[i]!, out);
      // A frame is delivered exactly when its last byte arrives.
      let end = 0;
      let complete = 0;
      for (const f of frames) {
        end += f.length;
        if (end <= i + 1) complete++;
      }
      expect(out.length).toBe(complete);
      delivered = out.length;
    }
    expect(delivered).toBe(frames.length);
    expect(out.map(plain)).toEqual(expected);
    expect(dec.buffered).toBe(0);
  });

  it('every possible single cut point (split inside header and inside payload) decodes the same', () => {
    for (let cut = 0; cut <= all.length; cut++) {
      const dec = new FrameDecoder();
      const out = decodeAll(dec, [all.subarray(0, cut), all.subarray(cut)]);
      expect(out.map(plain), `cut at ${cut}`).toEqual(expected);
      expect(dec.buffered).toBe(0);
    }
  });

  it('a frame split inside the header: nothing is delivered until the rest arrives, buffered counts held bytes', () => {
    const f = encodeFrame(0, 7, 0, 70, Buffer.from('payload'));
    const dec = new FrameDecoder();
    const out: Frame[] = [];
    dec.push(f.subarray(0, 5), out);
    expect(out).toEqual([]);
    expect(dec.buffered).toBe(5);
    dec.push(f.subarray(5, 16), out);
    expect(out).toEqual([]);
    dec.push(f.subarray(16, 19), out);
    expect(out).toEqual([]);
    // 3 payload bytes held (plus, depending on how one counts, the 16 header bytes)
    expect([3, 19]).toContain(dec.buffered);
    dec.push(f.subarray(19), out);
    expect(out.map(plain)).toEqual([{ flags: 0, command: 7, status: 0, requestId: 70, payload: [...Buffer.from('payload')] }]);
    expect(dec.buffered).toBe(0);
  });

  it('a frame split inside the payload, with the next frame sticking to the tail', () => {
    const a = encodeFrame(0, 1, 0, 1, Buffer.from('abcdefgh'));
    const b = encodeFrame(0, 2, 0, 2, Buffer.from('ij'));
    const dec = new FrameDecoder();
    const out: Frame[] = [];
    dec.push(a.subarray(0, 20), out);
    expect(out).toEqual([]);
    expect([4, 20]).toContain(dec.buffered);
    dec.push(Buffer.concat([a.subarray(20), b, a.subarray(0, 3)]), out);
    expect(out.map((f) => f.payload.toString())).toEqual(['abcdefgh', 'ij']);
    expect(dec.buffered).toBe(3);
    dec.push(a.subarray(3), out);
    expect(out.map((f) => f.payload.toString())).toEqual(['abcdefgh', 'ij', 'abcdefgh']);
  });

  it('zero-length payloads: alone, in a row, split, and between other frames', () => {
    const z = encodeFrame(0, 9, 0, 1);
    const dec = new FrameDecoder();
    const out: Frame[] = [];
    dec.push(Buffer.concat([z, z, z]), out);
    expect(out.length).toBe(3);
    for (const f of out) expect(f.payload.length).toBe(0);
    dec.push(z.subarray(0, 10), out);
    expect(out.length).toBe(3);
    dec.push(z.subarray(10), out);
    expect(out.length).toBe(4);
    expect(out[3]!.payload.length).toBe(0);
    expect(out[3]!.command).toBe(9);
    dec.push(Buffer.alloc(0), out);
    expect(out.length).toBe(4);
    expect(dec.buffered).toBe(0);
  });

  it('payloads of earlier frames are not overwritten by later chunks', () => {
    const dec = new FrameDecoder();
    const out: Frame[] = [];
    const a = encodeFrame(0, 1, 0, 1, Buffer.from('AAAAAAAA'));
    const b = encodeFrame(0, 1, 0, 2, Buffer.from('BBBBBBBB'));
    // split both so that their payloads go through the decoder's own buffers
    dec.push(a.subarray(0, 10), out);
    dec.push(a.subarray(10, 20), out);
    dec.push(Buffer.concat([a.subarray(20), b.subarray(0, 10)]), out);
    dec.push(b.subarray(10, 20), out);
    dec.push(b.subarray(20), out);
    expect(out.map((f) => f.payload.toString())).toEqual(['AAAAAAAA', 'BBBBBBBB']);
  });
});

describe('FrameDecoder: frame-size limit', () => {
  it('rejects a header announcing length > maxFrameSize from the header alone (no payload pushed)', () => {
    const dec = new FrameDecoder({ maxFrameSize: 64 });
    const header = encodeFrame(0, 5, 0, 55, Buffer.alloc(65)).subarray(0, 16);
    let err: any;
    try {
      dec.push(Buffer.from(header), []);
    } catch (e) {
      err = e;
    }
    expect(err).toBeDefined();
    expect(err.name).toBe('ProtocolError');
    expect(err.code).toBe('DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE');
    expect(err.status).toBe(1);
    expect(err.message).toContain('65');
    expect(err.message).toContain('64');
    // magic and version were fine: the ids are echoed
    expect(err.command).toBe(5);
    expect(err.requestId).toBe(55);
    expect(dec.buffered).toBeLessThanOrEqual(16);
  });

  it('rejects on the 16th byte when the header arrives one byte at a time', () => {
    const dec = new FrameDecoder({ maxFrameSize: 10 });
    const header = encodeFrame(0, 1, 0, 1, Buffer.alloc(11)).subarray(0, 16);
    for (let i = 0; i < 15; i++) dec.push(Buffer.from([header[i]!]), []);
    expect(dec.buffered).toBe(15);
    expect(() => dec.push(Buffer.from([header[15]!]), [])).toThrow(
      expect.objectContaining({ code: 'DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE', status: 1 }),
    );
    expect(dec.buffered).toBeLessThanOrEqual(16);
  });

  it('rejects a 4 GiB announcement with the default limit at once, and does not buffer the bytes after the header', () => {
    const dec = new FrameDecoder();
    const chunk = Buffer.alloc(16 + 1000, 0x41);
    writeHeader(chunk, 0, 0, 1, 0, 1, 0xffffffff);
    expect(() => dec.push(chunk, [])).toThrow(expect.objectContaining({ code: 'DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE', status: 1 }));
    expect(dec.buffered).toBeLessThanOrEqual(16);
  });

  it('rejects a too-large frame that follows a split frame (partial path)', () => {
    const dec = new FrameDecoder({ maxFrameSize: 8 });
    const ok = encodeFrame(0, 1, 0, 1, Buffer.from('12345678'));
    const big = Buffer.from(encodeFrame(0, 2, 0, 2, Buffer.alloc(9)).subarray(0, 16));
    const out: Frame[] = [];
    dec.push(ok.subarray(0, 3), out);
    expect(() => dec.push(Buffer.concat([ok.subarray(3), big]), out)).toThrow(
      expect.objectContaining({ code: 'DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE' }),
    );
    expect(out.map((f) => f.payload.toString())).toEqual(['12345678']);
    expect(dec.buffered).toBeLessThanOrEqual(16);
  });

  it('accepts length == maxFrameSize, whole or split', () => {
    const payload = Buffer.alloc(64, 7);
    const frame = encodeFrame(0, 1, 0, 1, payload);
    const whole = decodeAll(new FrameDecoder({ maxFrameSize: 64 }), [frame]);
    expect(whole.length).toBe(1);
    expect(whole[0]!.payload.equals(payload)).toBe(true);
    const split = decodeAll(new FrameDecoder({ maxFrameSize: 64 }), [frame.subarray(0, 16), frame.subarray(16, 50), frame.subarray(50)]);
    expect(split.length).toBe(1);
    expect(split[0]!.payload.equals(payload)).toBe(true);
  });

  it('maxFrameSize 0 accepts only empty payloads', () => {
    const dec = new FrameDecoder({ maxFrameSize: 0 });
    expect(decodeAll(dec, [encodeFrame(0, 1, 0, 1)]).length).toBe(1);
    expect(() => dec.push(encodeFrame(0, 1, 0, 1, Buffer.from('x')), [])).toThrow(
      expect.objectContaining({ code: 'DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE' }),
    );
  });
});
