import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, ProtocolError, DiocpError, Flags, type Frame } from '../../src/index.js';

/** Run `fn`, return what it threw (fails the test when it does not throw). */
function thrown(fn: () => void): ProtocolError {
  try {
    fn();
  } catch (err) {
    return err as ProtocolError;
  }
  throw new Error('expected a throw');
}

function expectProtocolError(err: unknown, code: string): asserts err is ProtocolError {
  expect(err).toBeInstanceOf(ProtocolError);
  expect(err).toBeInstanceOf(DiocpError);
  expect(err).toBeInstanceOf(Error);
  expect((err as ProtocolError).code).toBe(code);
  expect((err as ProtocolError).status).toBe(1);
  expect((err as ProtocolError).message.length).toBeGreaterThan(0);
}

const good = encodeFrame(0, 0x0042, 0, 0x01020304, Buffer.from('ok'));

describe('FrameDecoder: bad magic', () => {
  it('is rejected after a single wrong first byte', () => {
    const dec = new FrameDecoder();
    const err = thrown(() => dec.push(Buffer.from([0x00]), []));
    expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_MAGIC');
    expect(err.command).toBe(0);
    expect(err.requestId).toBe(0);
  });

  it('is rejected after two bytes when only the second is wrong', () => {
    const err = thrown(() => new FrameDecoder().push(Buffer.from([0xd1, 0x0d]), []));
    expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_MAGIC');
    expect(err.message.toLowerCase()).toContain('0xd10d');
  });

  it('is rejected when the second byte arrives in a later chunk', () => {
    const dec = new FrameDecoder();
    dec.push(Buffer.from([0xd1]), []);
    const err = thrown(() => dec.push(Buffer.from([0x0c + 1]), []));
    expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_MAGIC');
  });

  it('is rejected in a whole 16-byte header, with command and request id 0 (header not trusted)', () => {
    const bad = Buffer.from(encodeFrame(0, 0x0042, 0, 77, Buffer.from('x')));
    bad[0] = 0x0c;
    bad[1] = 0xd1; // byte-swapped magic
    const err = thrown(() => new FrameDecoder().push(bad, []));
    expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_MAGIC');
    expect(err.command).toBe(0);
    expect(err.requestId).toBe(0);
  });

  it('is rejected for a text protocol speaking to the server ("GET / HTTP/1.1")', () => {
    const err = thrown(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n\r\n'), []));
    expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_MAGIC');
  });
});

describe('FrameDecoder: bad version', () => {
  for (const version of [0, 2, 0xff]) {
    it(`version ${version} is rejected as soon as the third byte arrives`, () => {
      const err = thrown(() => new FrameDecoder().push(Buffer.from([0xd1, 0x0c, version]), []));
      expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_VERSION');
      expect(err.message).toContain(String(version));
      expect(err.command).toBe(0);
      expect(err.requestId).toBe(0);
    });
  }

  it('in a whole frame, command and request id are 0', () => {
    const bad = Buffer.from(good);
    bad[2] = 2;
    const err = thrown(() => new FrameDecoder().push(bad, []));
    expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_VERSION');
    expect(err.command).toBe(0);
    expect(err.requestId).toBe(0);
  });
});

describe('FrameDecoder: flags', () => {
  for (const bit of [0x10, 0x20, 0x40, 0x80]) {
    for (const side of ['server', 'client', 'any'] as const) {
      it(`reserved bit 0x${bit.toString(16)} is a protocol error on the ${side} side, ids echoed`, () => {
        const base = side === 'client' ? Flags.RESPONSE : Flags.NONE;
        const err = thrown(() => new FrameDecoder({ side }).push(encodeFrame(base | bit, 0x0042, 0, 0x01020304), []));
        expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_RESERVED_FLAG');
        expect(err.command).toBe(0x0042);
        expect(err.requestId).toBe(0x01020304);
      });
    }
  }

  for (const flags of [Flags.RESPONSE, Flags.ERROR, Flags.PUSH, Flags.RESPONSE | Flags.ERROR, Flags.PUSH | Flags.ONEWAY]) {
    it(`server side rejects client frames with flags 0x${flags.toString(16).padStart(2, '0')}`, () => {
      const err = thrown(() => new FrameDecoder({ side: 'server' }).push(encodeFrame(flags, 7, 0, 99), []));
      expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_DIRECTION');
      expect(err.command).toBe(7);
      expect(err.requestId).toBe(99);
    });
  }

  for (const flags of [Flags.ONEWAY, Flags.ONEWAY | Flags.RESPONSE]) {
    it(`client side rejects server frames with flags 0x${flags.toString(16).padStart(2, '0')}`, () => {
      const err = thrown(() => new FrameDecoder({ side: 'client' }).push(encodeFrame(flags, 8, 0, 5), []));
      expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_DIRECTION');
      expect(err.command).toBe(8);
      expect(err.requestId).toBe(5);
    });
  }

  it('server side accepts 0x00 and 0x08; client side accepts 0x00..0x07; "any" accepts 0x00..0x0f', () => {
    const ok = (side: 'server' | 'client' | 'any', flags: number) => {
      const out: Frame[] = [];
      try {
        new FrameDecoder({ side }).push(encodeFrame(flags, 1, 0, 1), out);
      } catch (err) {
        expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_DIRECTION');
        return false;
      }
      return out.length === 1 && out[0]!.flags === flags;
    };
    for (let f = 0; f < 0x10; f++) {
      expect(ok('any', f), `any 0x${f.toString(16)}`).toBe(true);
      expect(ok('server', f), `server 0x${f.toString(16)}`).toBe((f & 0x07) === 0);
      expect(ok('client', f), `client 0x${f.toString(16)}`).toBe((f & 0x08) === 0);
    }
  });
});

describe('FrameDecoder: behaviour around an error', () => {
  it('frames before the bad one in the same chunk are still delivered', () => {
    const bad = Buffer.from(good);
    bad[3] = 0x20;
    const out: Frame[] = [];
    const err = thrown(() => new FrameDecoder().push(Buffer.concat([good, good, bad, good]), out));
    expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_RESERVED_FLAG');
    expect(out.length).toBe(2);
    for (const f of out) {
      expect(f.command).toBe(0x42);
      expect(f.payload.toString()).toBe('ok');
    }
  });

  it('a frame completed from an earlier chunk is delivered before a bad magic in the same chunk', () => {
    const dec = new FrameDecoder();
    const out: Frame[] = [];
    dec.push(good.subarray(0, 7), out);
    const err = thrown(() => dec.push(Buffer.concat([good.subarray(7), Buffer.from([0x00])]), out));
    expectProtocolError(err, 'DIOCP_ERR_PROTOCOL_BAD_MAGIC');
    expect(out.length).toBe(1);
    expect(out[0]!.requestId).toBe(0x01020304);
  });

  it('after an error, every later push throws again and delivers nothing', () => {
    const dec = new FrameDecoder();
    const first = thrown(() => dec.push(Buffer.from([0xd1, 0x0c, 9]), []));
    expectProtocolError(first, 'DIOCP_ERR_PROTOCOL_BAD_VERSION');
    for (let i = 0; i < 3; i++) {
      const out: Frame[] = [];
      const again = thrown(() => dec.push(good, out));
      expectProtocolError(again, 'DIOCP_ERR_PROTOCOL_BAD_VERSION');
      expect(out).toEqual([]);
    }
    const out: Frame[] = [];
    expectProtocolError(thrown(() => dec.push(Buffer.alloc(0), out)), 'DIOCP_ERR_PROTOCOL_BAD_VERSION');
  });

  it('after a frame-too-large error, the payload that follows is not buffered or delivered', () => {
    const dec = new FrameDecoder({ maxFrameSize: 4 });
    const big = encodeFrame(0, 1, 0, 1, Buffer.alloc(100));
    expectProtocolError(thrown(() => dec.push(big.subarray(0, 16), [])), 'DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE');
    const out: Frame[] = [];
    expectProtocolError(thrown(() => dec.push(big.subarray(16), out)), 'DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE');
    expect(out).toEqual([]);
    expect(dec.buffered).toBeLessThanOrEqual(16);
  });

  it('decoders are independent: an error in one does not affect another', () => {
    const a = new FrameDecoder();
    const b = new FrameDecoder();
    thrown(() => a.push(Buffer.from([0x00]), []));
    const out: Frame[] = [];
    b.push(good, out);
    expect(out.length).toBe(1);
  });
});
