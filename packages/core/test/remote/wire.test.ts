// The worker protocol's encoding, checked against the byte examples of docs/worker-protocol.md.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decode, encodeBatch, encodeOutcomes, encodeReady, encodeResult, errorBodyAt, Msg, WireError } from '../../src/dispatch/remote/wire.js';
import { peerLookup } from '../../src/dispatch/pool-protocol.js';

const doc = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../docs/worker-protocol.md'), 'utf8');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex').match(/../g)!.join(' ');
/** The hex bytes of a "frame N: .." line of the doc's example block that starts with `marker`. */
function docFrame(marker: string, frame: number): string {
  const block = doc.slice(doc.indexOf(marker));
  const line = block.split('\n').find((l) => l.startsWith(`frame ${frame}: `))!;
  return line.slice(`frame ${frame}: `.length).replace(/\s+/g, ' ').trim();
}

describe('worker protocol encoding', () => {
  it('encodes the BATCH and RESULT of docs/worker-protocol.md byte for byte', () => {
    const batch = encodeBatch([{ rid: 0x2a, req: { connectionId: 4194305, command: 1, payload: Buffer.from('hi') } }], [[4194305, '127.0.0.1', 51234, []]]);
    expect(hex(batch[0]!)).toBe(docFrame('Connection id 4194305', 0));
    expect(hex(batch[1]!)).toBe(docFrame('Connection id 4194305', 1));
    expect(hex(batch[2]!)).toBe(docFrame('Connection id 4194305', 2));
    expect(unpack(batch[3]!)).toEqual([[4194305, '127.0.0.1', 51234, []]]);
    const result = encodeResult([0x2a], { st: new Uint16Array([0]), payload: Buffer.from('hi'), offsets: new Uint32Array([0, 2]), errors: null, effects: null });
    expect(hex(result[0]!)).toBe(docFrame('its RESULT', 0));
    expect(hex(result[1]!)).toBe(docFrame('its RESULT', 1));
    expect(hex(result[2]!)).toBe(docFrame('its RESULT', 2));
    expect(result[3]!.length).toBe(0);
  });

  it('decodes what it encodes: requests, answers, errors and effects', () => {
    const items = [
      { rid: 1, req: { connectionId: 2 ** 40 + 3, command: 0xffff, payload: Buffer.from('abc') } },
      { rid: 0xffff_ffff, req: { connectionId: 7, command: 0x10, payload: Buffer.alloc(0) } },
    ];
    const b = decode(encodeBatch(items, [[7, '::1', 1, [['user', { id: 1 }]]], [2 ** 40 + 3, '10.0.0.1', 2, []]]));
    expect(b.type).toBe(Msg.Batch);
    if (b.type !== Msg.Batch) return;
    expect([...b.body.rid]).toEqual([1, 0xffff_ffff]);
    expect([...b.body.conn]).toEqual([2 ** 40 + 3, 7]);
    expect([...b.body.cmd]).toEqual([0xffff, 0x10]);
    expect(Buffer.from(b.body.payload).toString()).toBe('abc');
    expect([...b.body.offsets]).toEqual([0, 3, 3]);
    const peer = peerLookup(b.body.peers);
    expect(peer(7)).toEqual(['::1', 1, [['user', { id: 1 }]]]);
    expect(peer(2 ** 40 + 3)).toEqual(['10.0.0.1', 2, []]);
    expect(peer(8)).toBeUndefined();

    const r = decode(
      encodeResult([5, 6], {
        st: new Uint16Array([0, 123]),
        payload: Buffer.from('ok'),
        offsets: new Uint32Array([0, 2, 2]),
        errors: { 1: { code: 123, message: 'nope', data: { why: 1 } } },
        effects: [{ k: 'push', to: 7, c: 0x19, b: Buffer.from('p') }, { k: 'set', to: 7, key: 'a', v: [1] }],
      }),
    );
    expect(r.type).toBe(Msg.Result);
    if (r.type !== Msg.Result) return;
    expect([...r.body.rid]).toEqual([5, 6]);
    expect([...r.body.status]).toEqual([0, 123]);
    expect(r.body.payload.subarray(r.body.offsets[0], r.body.offsets[1]).toString()).toBe('ok');
    expect(errorBodyAt(r.body, 1)).toEqual({ code: 123, message: 'nope', data: { why: 1 } });
    expect(r.body.effects).toEqual([{ k: 'push', to: 7, c: 0x19, b: Buffer.from('p') }, { k: 'set', to: 7, key: 'a', v: [1] }]);

    expect(decode(encodeReady({ capacity: 3, pid: 9, name: 'n', threads: 0 }))).toEqual({ type: Msg.Ready, body: { capacity: 3, pid: 9, name: 'n', threads: 0 } });
  });

  it('encodes outcomes in hand, and an error whose data cannot be encoded keeps its status and message', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const r = decode(
      encodeOutcomes(
        [9, 10, 11],
        [
          { status: 0, payload: Buffer.from('fine') },
          { status: 150, error: { code: 150, message: 'no', data: circular } },
          { status: 0, payload: Buffer.alloc(0) },
        ],
        [{ k: 'clear', to: 3 }],
      ),
    );
    if (r.type !== Msg.Result) throw new Error('not a RESULT');
    expect([...r.body.rid]).toEqual([9, 10, 11]);
    expect([...r.body.status]).toEqual([0, 150, 0]);
    expect(r.body.payload.subarray(r.body.offsets[0], r.body.offsets[1]).toString()).toBe('fine');
    expect(errorBodyAt(r.body, 1)).toEqual({ code: 150, message: 'no' });
    expect(r.body.offsets[3]! - r.body.offsets[2]!).toBe(0);
    expect(r.body.effects).toEqual([{ k: 'clear', to: 3 }]);
  });

  const h = (type: number, version = 1) => Buffer.from([0x44, 0x57, version, type]);
  const malformed: [string, Buffer[], RegExp][] = [
    ['no frames', [], /header missing/],
    ['a short header', [Buffer.from([0x44, 0x57, 1])], /not a diocp worker-protocol message/],
    ['a wrong magic', [Buffer.from([0x44, 0x58, 1, 3])], /not a diocp/],
    ['another version', [h(3, 2)], /version 2/],
    ['an unknown type', [h(0x09)], /unknown message type 0x09/],
    ['a HEARTBEAT with a body', [h(3), Buffer.from('x')], /2 frames, expected 1/],
    ['a READY without capacity', [h(1), pack({ pid: 1 })], /capacity must be a whole number/],
    ['a READY that is not a map', [h(1), pack([1, 2])], /must be a MessagePack map/],
    ['a READY that is not MessagePack', [h(1), Buffer.from([0x82, 0xa1])], /not MessagePack/],
    ['a BATCH index of 19 bytes', [h(4), Buffer.alloc(19), Buffer.alloc(0), Buffer.alloc(0)], /not a positive multiple of 20/],
    ['a BATCH whose lengths do not add up', [h(4), Buffer.alloc(20), Buffer.alloc(1), Buffer.alloc(0)], /add up to 0.*has 1 bytes/],
    ['a BATCH whose peers are a map', [h(4), Buffer.alloc(20), Buffer.alloc(0), pack({ 1: ['a', 1, []] })], /peers frame must be a MessagePack array/],
    ['a BATCH peer with a port over 65535', [h(4), Buffer.alloc(20), Buffer.alloc(0), pack([[1, 'a', 70000, []]])], /port \(0-65535\)/],
    ['a BATCH with a malformed peer', [h(4), Buffer.alloc(20), Buffer.alloc(0), pack([[1, 'a', 'port', []]])], /peer must be \[connectionId, address, port/],
    ['an empty RESULT', [h(5), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)], /not a positive multiple of 12/],
    ['a RESULT with bad effects', [h(5), Buffer.alloc(12), Buffer.alloc(0), pack([{ k: 'push', to: 'x' }])], /malformed effect "push"/],
    ['a RESULT with effects that are not a list', [h(5), Buffer.alloc(12), Buffer.alloc(0), pack({ k: 'clear' })], /must be a MessagePack array/],
  ];
  it.each(malformed)('refuses %s with a WireError that says why', (_name, frames, why) => {
    let err: unknown;
    try {
      decode(frames);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WireError);
    expect((err as Error).message).toMatch(why);
  });

  it('gives an error answer with an unreadable body its status and a coded message', () => {
    const r = decode([h(5), Buffer.from([1, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0]), Buffer.from([0xc1]), Buffer.alloc(0)]);
    if (r.type !== Msg.Result) throw new Error('not a RESULT');
    expect(errorBodyAt(r.body, 0)).toMatchObject({ code: 3, error: 'DIOCP_ERR_REMOTE_BAD_MESSAGE' });
  });
});
