import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/gateway/context.js';
import { jsonCodec, rawCodec } from '../../src/codec/payload-codecs.js';
import { runHandler, runHandlerFast } from '../../src/dispatch/run-handler.js';
import type { Route } from '../../src/router/route.js';

function route(codec: typeof rawCodec, handle: (req: unknown) => unknown): Route {
  return { command: 0x42, name: 'test', codec, timeoutMs: 1000, ordered: false, retry: true, handler: { handle } } as unknown as Route;
}
const ctx = {} as Context;

describe('runHandlerFast / runHandler', () => {
  it('answers a synchronous success with the encoded Buffer itself (raw: the same Buffer), runHandler wraps it', () => {
    const out = Buffer.from('pong');
    const r = route(rawCodec, () => out);
    expect(runHandlerFast(r, Buffer.from('x'), ctx, false)).toBe(out);
    expect(runHandler(r, Buffer.from('x'), ctx, false)).toEqual({ status: 0, payload: out });
  });

  it('gives an error outcome, not a Buffer, when the result does not encode, the payload does not decode, or the handler throws', () => {
    const bad = runHandlerFast(route(rawCodec, () => 12), Buffer.alloc(0), ctx, false);
    expect(bad).not.toBeInstanceOf(Uint8Array);
    expect((bad as { error: { error: string } }).error.error).toBe('DIOCP_ERR_CODEC_ENCODE');
    const undecodable = runHandlerFast(route(jsonCodec, () => 1), Buffer.from('{nope'), ctx, false);
    expect((undecodable as { error: { error: string } }).error.error).toBe('DIOCP_ERR_CODEC_DECODE');
    const thrown = runHandlerFast(route(rawCodec, () => { throw new Error('boom'); }), Buffer.alloc(0), ctx, false);
    expect(thrown).toMatchObject({ status: 3, error: { message: 'boom', error: 'DIOCP_ERR_HANDLER_FAILED' } });
    expect(runHandler(route(rawCodec, () => 12), Buffer.alloc(0), ctx, false)).toMatchObject({ error: { error: 'DIOCP_ERR_CODEC_ENCODE' } });
  });

  it('returns a promise of an outcome for an asynchronous handler, success or failure', async () => {
    const out = Buffer.from('later');
    const p = runHandlerFast(route(rawCodec, async () => out), Buffer.alloc(0), ctx, false);
    expect(p).toBeInstanceOf(Promise);
    expect(await p).toEqual({ status: 0, payload: out });
    const f = runHandlerFast(route(rawCodec, async () => 12), Buffer.alloc(0), ctx, false);
    expect(await f).toMatchObject({ error: { error: 'DIOCP_ERR_CODEC_ENCODE' } });
  });
});
