import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { payloadCodecs, rawCodec, jsonCodec, msgpackCodec } from '../../src/index.js';

describe('payloadCodecs registry', () => {
  it('has raw, json and msgpack, each named after its key', () => {
    expect(Object.keys(payloadCodecs).sort()).toEqual(['json', 'msgpack', 'raw']);
    expect(payloadCodecs.raw).toBe(rawCodec);
    expect(payloadCodecs.json).toBe(jsonCodec);
    expect(payloadCodecs.msgpack).toBe(msgpackCodec);
    for (const [key, codec] of Object.entries(payloadCodecs)) expect(codec.name).toBe(key);
  });
});

describe('raw codec', () => {
  it('decode hands the payload bytes to the handler unchanged', () => {
    const p = Buffer.from([0, 1, 2, 255]);
    const got = rawCodec.decode(p) as Buffer;
    expect(Buffer.isBuffer(got)).toBe(true);
    expect([...got]).toEqual([0, 1, 2, 255]);
  });

  it('encodes a Buffer as its bytes', () => {
    const out = rawCodec.encode(Buffer.from('abc'));
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(out.toString()).toBe('abc');
  });

  it('encodes a Uint8Array (also a view into a bigger ArrayBuffer) as exactly its bytes', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9, 9]);
    const view = backing.subarray(2, 5);
    const out = rawCodec.encode(view);
    expect(Buffer.isBuffer(out)).toBe(true);
    expect([...out]).toEqual([1, 2, 3]);
  });

  it('encodes a string as UTF-8', () => {
    const out = rawCodec.encode('héllo ✓');
    expect(out.equals(Buffer.from('héllo ✓', 'utf8'))).toBe(true);
    expect(rawCodec.encode('').length).toBe(0);
  });

  it('encodes undefined (a handler that returns nothing) and null as an empty payload', () => {
    expect(rawCodec.encode(undefined).length).toBe(0);
    expect(rawCodec.encode(null).length).toBe(0);
  });

  it('round-trips arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (bytes) => {
        const wire = rawCodec.encode(bytes);
        expect([...(rawCodec.decode(wire) as Buffer)]).toEqual([...bytes]);
      }),
      { numRuns: 100 },
    );
  });

  const rejected: [string, unknown, RegExp][] = [
    ['a plain object', { a: 1 }, /object/],
    ['an object without prototype', Object.create(null), /object/],
    ['a class instance', new (class Thing {})(), /Thing/],
    ['an array', [1, 2, 3], /array/],
    ['a number', 42, /number/],
    ['a boolean', true, /boolean/],
    ['a bigint', 10n, /bigint/],
  ];
  for (const [what, value, mentions] of rejected) {
    it(`rejects ${what} with a TypeError that says what is allowed and what it got`, () => {
      let err: unknown;
      try {
        rawCodec.encode(value);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TypeError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/Buffer/);
      expect(msg).toMatch(/Uint8Array/);
      expect(msg).toMatch(/string/);
      expect(msg).toMatch(mentions);
    });
  }
});

describe('json codec', () => {
  const values: unknown[] = [
    { a: 1, b: [true, null, 'x'], c: { d: -2.5 } },
    [1, 2, 3],
    'a string with "quotes" and ünïcødé',
    0,
    -17,
    1e300,
    true,
    false,
    null,
    {},
    [],
    '',
  ];
  for (const v of values) {
    it(`round-trips ${JSON.stringify(v)}`, () => {
      const wire = jsonCodec.encode(v);
      expect(Buffer.isBuffer(wire)).toBe(true);
      expect(wire.toString('utf8')).toBe(JSON.stringify(v));
      expect(jsonCodec.decode(wire)).toEqual(v);
    });
  }

  it('round-trips any JSON value (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(jsonCodec.decode(jsonCodec.encode(v))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 200 },
    );
  });

  it('empty payload decodes to undefined and undefined encodes to an empty payload', () => {
    expect(jsonCodec.decode(Buffer.alloc(0))).toBeUndefined();
    const wire = jsonCodec.encode(undefined);
    expect(Buffer.isBuffer(wire)).toBe(true);
    expect(wire.length).toBe(0);
  });

  it('null is not confused with "nothing": it encodes to the 4 bytes "null"', () => {
    expect(jsonCodec.encode(null).toString()).toBe('null');
    expect(jsonCodec.decode(Buffer.from('null'))).toBeNull();
  });

  for (const text of ['{', '{"a":}', 'undefined', "{'a':1}", '[1,2', 'hello', '\u0000']) {
    it(`decoding invalid JSON ${JSON.stringify(text)} throws`, () => {
      expect(() => jsonCodec.decode(Buffer.from(text))).toThrow();
    });
  }

  it('decodes UTF-8 payload text', () => {
    expect(jsonCodec.decode(Buffer.from('{"k":"✓ ü"}', 'utf8'))).toEqual({ k: '✓ ü' });
  });
});

describe('msgpack codec', () => {
  const values: unknown[] = [
    { a: 1, b: [true, null, 'x'], c: { d: -2.5 } },
    [1, 2, 3],
    'a string ✓',
    0,
    -17,
    2 ** 40,
    1.5,
    true,
    false,
    null,
    {},
    [],
    '',
    { nested: { deep: { list: [{ x: 1 }, { y: 'z' }] } } },
  ];
  for (const v of values) {
    it(`round-trips ${JSON.stringify(v)}`, () => {
      const wire = msgpackCodec.encode(v);
      expect(Buffer.isBuffer(wire)).toBe(true);
      expect(wire.length).toBeGreaterThan(0);
      expect(msgpackCodec.decode(wire)).toEqual(v);
    });
  }

  it('round-trips binary data as bytes', () => {
    const got = msgpackCodec.decode(msgpackCodec.encode({ bin: Buffer.from([1, 2, 3]) })) as { bin: Uint8Array };
    expect([...got.bin]).toEqual([1, 2, 3]);
  });

  it('decodes maps as plain objects (any client can read the messages)', () => {
    const got = msgpackCodec.decode(msgpackCodec.encode({ a: { b: 1 } }));
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(got).toEqual({ a: { b: 1 } });
  });

  it('messages are self-describing: two separately encoded objects of the same shape decode alone', () => {
    const a = msgpackCodec.encode({ id: 1, name: 'a' });
    const b = msgpackCodec.encode({ id: 2, name: 'b' });
    expect(msgpackCodec.decode(b)).toEqual({ id: 2, name: 'b' });
    expect(msgpackCodec.decode(a)).toEqual({ id: 1, name: 'a' });
  });

  it('round-trips JSON-like values (property)', () => {
    const key = fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__');
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
        fc.string({ maxLength: 20 }),
        fc.array(tie('v'), { maxLength: 5 }),
        fc.dictionary(key, tie('v'), { maxKeys: 5 }),
      ),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        expect(msgpackCodec.decode(msgpackCodec.encode(v))).toEqual(v);
      }),
      { numRuns: 200 },
    );
  });

  it('empty payload decodes to undefined and undefined encodes to an empty payload', () => {
    expect(msgpackCodec.decode(Buffer.alloc(0))).toBeUndefined();
    expect(msgpackCodec.encode(undefined).length).toBe(0);
  });

  it('null is encoded as msgpack nil, not as an empty payload', () => {
    const wire = msgpackCodec.encode(null);
    expect([...wire]).toEqual([0xc0]);
    expect(msgpackCodec.decode(wire)).toBeNull();
  });

  it('truncated msgpack throws', () => {
    const whole = msgpackCodec.encode({ hello: 'world', list: [1, 2, 3] });
    expect(() => msgpackCodec.decode(whole.subarray(0, whole.length - 3))).toThrow();
    expect(() => msgpackCodec.decode(Buffer.from([0x92, 0x01]))).toThrow(); // array of 2, one element
  });

  it('trailing bytes after a message throw instead of being ignored', () => {
    expect(() => msgpackCodec.decode(Buffer.from([0x01, 0x02]))).toThrow();
  });
});
