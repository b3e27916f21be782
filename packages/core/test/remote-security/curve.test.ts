// CURVE for remote dispatch, with real zeromq sockets: the ZAP authenticator admits
// allow-listed workers and refuses (and logs, once per key) everyone else; keys are checked;
// the exposed-bind warning fires exactly for addresses other machines can reach.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Dealer, Router } from 'zeromq';
import {
  MAX_LOGGED_KEYS,
  ZAP_ENDPOINT,
  checkClientCurve,
  checkKey,
  checkServerCurve,
  dealerCurveOptions,
  generateKeyPair,
  isLoopbackBind,
  publicKeyOf,
  routerCurveOptions,
  startAuthenticator,
  warnIfExposed,
  z85Decode,
  z85Encode,
  type Authenticator,
  type KeyPair,
} from '../../src/dispatch/remote/curve.js';
import { DiocpError } from '../../src/errors.js';

interface Line {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A real pino logger whose JSON lines are kept for the test to read. */
function captureLogger() {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

function thrown(f: () => unknown): DiocpError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(DiocpError);
    return err as DiocpError;
  }
  throw new Error('expected a DiocpError, nothing was thrown');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** Bind, retrying EADDRINUSE for a second: libzmq frees a closed socket's inproc endpoint shortly after close(). */
async function bindSoon(socket: Router, endpoint: string): Promise<void> {
  for (let tries = 0; ; tries++) {
    try {
      await socket.bind(endpoint);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || tries >= 100) throw err;
      await sleep(10);
    }
  }
}

/** Nothing arrives on `router` within `ms`. */
async function expectNothing(router: Router, ms: number): Promise<void> {
  router.receiveTimeout = ms;
  await expect(router.receive()).rejects.toMatchObject({ code: 'EAGAIN' });
  router.receiveTimeout = -1;
}

describe('keys', () => {
  it('generateKeyPair gives two 40-character Z85 keys that belong together, new ones each time', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    for (const k of [a.publicKey, a.secretKey]) {
      expect(k).toHaveLength(40);
      expect(checkKey('k', k)).toBe(k);
      expect(z85Decode(k)).toHaveLength(32);
    }
    expect(publicKeyOf(a.secretKey)).toBe(a.publicKey);
    expect(publicKeyOf(b.secretKey)).toBe(b.publicKey);
    expect(a.publicKey).not.toBe(b.publicKey);
    expect(a.secretKey).not.toBe(b.secretKey);
  });

  it('generateKeyPair never gives a key starting with "-" (a CLI would read it as an option)', () => {
    // Without the redraw, about 1 key in 85 starts with "-": 4,000 keys would have ~47.
    for (let i = 0; i < 2000; i++) {
      const { publicKey, secretKey } = generateKeyPair();
      expect(publicKey[0]).not.toBe('-');
      expect(secretKey[0]).not.toBe('-');
    }
  });

  it('Z85 matches the RFC 32 test vector and round-trips', () => {
    const bytes = Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    expect(z85Encode(bytes)).toBe('HelloWorld');
    expect(z85Decode('HelloWorld')).toEqual(bytes);
    const random = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 97 + 13) & 0xff));
    expect(z85Decode(z85Encode(random))).toEqual(random);
    expect(z85Decode('Hello')).toHaveLength(4);
    expect(z85Decode('Hell')).toBeNull();
    expect(z85Decode('Hell~')).toBeNull();
    expect(() => z85Encode(Buffer.alloc(3))).toThrow(RangeError);
  });

  it('checkKey trims a pasted key', () => {
    const { publicKey } = generateKeyPair();
    expect(checkKey('k', `  ${publicKey}\n`)).toBe(publicKey);
  });

  const good = generateKeyPair().publicKey;
  const bad: [string, unknown, RegExp][] = [
    ['a number', 42, /got number/],
    ['undefined', undefined, /got undefined/],
    ['null', null, /got null/],
    ['39 characters', good.slice(1), /got 39 characters/],
    ['41 characters', good + 'a', /got 41 characters/],
    ['the empty string', '', /got 0 characters/],
    ['a character outside Z85', good.slice(0, 39) + '~', /"~" is not in the Z85 alphabet/],
    ['a quote', '"' + good.slice(1), /"\\"" is not in the Z85 alphabet/],
    ['a non-ASCII character', 'é' + good.slice(1), /"é" is not in the Z85 alphabet/],
    ['a group over 32 bits', '#####' + good.slice(5), /over 32 bits/],
  ];
  it.each(bad)('checkKey refuses %s with DIOCP_ERR_CONFIG_INVALID naming the key', (_what, value, why) => {
    const err = thrown(() => checkKey('dispatch.curve.secretKey', value));
    expect(err.code).toBe('DIOCP_ERR_CONFIG_INVALID');
    expect(err.message).toContain('dispatch.curve.secretKey');
    expect(err.message).toMatch(why);
    // A rejected value may be a real secret with a typo: the message never repeats it.
    if (typeof value === 'string' && value.length > 5) expect(err.message).not.toContain(value);
  });

  it('checkServerCurve accepts a pair and an allow list, dropping duplicates', () => {
    const server = generateKeyPair();
    const w = generateKeyPair();
    const curve = checkServerCurve('dispatch.curve', { ...server, allow: [w.publicKey, ` ${w.publicKey}`] });
    expect(curve).toEqual({ ...server, allow: [w.publicKey] });
  });

  it('checkServerCurve refuses a mismatched pair, an empty or bad allow list, unknown keys', () => {
    const server = generateKeyPair();
    const other = generateKeyPair();
    const w = generateKeyPair().publicKey;
    const cases: [unknown, string, string][] = [
      [{ publicKey: other.publicKey, secretKey: server.secretKey, allow: [w] }, 'DIOCP_ERR_CONFIG_INVALID', 'does not belong to its secretKey'],
      [{ publicKey: server.secretKey, secretKey: server.publicKey, allow: [w] }, 'DIOCP_ERR_CONFIG_INVALID', 'does not belong to its secretKey'],
      [{ ...server, allow: [] }, 'DIOCP_ERR_CONFIG_INVALID', 'dispatch.curve.allow'],
      [{ ...server, allow: w }, 'DIOCP_ERR_CONFIG_INVALID', 'must be an array'],
      [{ ...server }, 'DIOCP_ERR_CONFIG_INVALID', 'dispatch.curve.allow'],
      [{ ...server, allow: [w, 'nope'] }, 'DIOCP_ERR_CONFIG_INVALID', 'dispatch.curve.allow[1]'],
      [{ ...server, secretKey: undefined, allow: [w] }, 'DIOCP_ERR_CONFIG_INVALID', 'dispatch.curve.secretKey'],
      [{ ...server, allow: [w], allowList: [w] }, 'DIOCP_ERR_CONFIG_UNKNOWN_KEY', 'dispatch.curve.allowList'],
      ['keys', 'DIOCP_ERR_CONFIG_INVALID', 'must be an object'],
      [[server.publicKey], 'DIOCP_ERR_CONFIG_INVALID', 'got an array'],
    ];
    for (const [value, code, text] of cases) {
      const err = thrown(() => checkServerCurve('dispatch.curve', value));
      expect(err.code).toBe(code);
      expect(err.message).toContain(text);
    }
  });

  it('checkClientCurve accepts a worker config and refuses a mismatched pair or a missing server key', () => {
    const server = generateKeyPair();
    const w = generateKeyPair();
    expect(checkClientCurve('worker.curve', { serverKey: server.publicKey, ...w })).toEqual({ serverKey: server.publicKey, ...w });
    let err = thrown(() => checkClientCurve('worker.curve', { serverKey: server.publicKey, publicKey: server.publicKey, secretKey: w.secretKey }));
    expect(err.message).toContain('does not belong');
    err = thrown(() => checkClientCurve('worker.curve', { ...w }));
    expect(err.message).toContain('worker.curve.serverKey');
  });
});

describe('ZAP authenticator with real sockets', () => {
  const sockets: { close(): void }[] = [];
  const auths: Authenticator[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    for (const a of auths.splice(0)) await a.close();
  });

  async function curveRouter(server: KeyPair, allow: string[], domain?: string): Promise<{ router: Router; endpoint: string }> {
    const router = new Router({ linger: 0, ...routerCurveOptions({ ...server, allow }, domain) });
    sockets.push(router);
    await router.bind('tcp://127.0.0.1:*');
    return { router, endpoint: router.lastEndpoint! };
  }

  function curveDealer(serverKey: string, own: KeyPair, endpoint: string) {
    const dealer = new Dealer({ linger: 0, ...dealerCurveOptions({ serverKey, ...own }) });
    sockets.push(dealer);
    const authFailures: number[] = [];
    dealer.events.on('handshake:error:auth', (e) => authFailures.push(e.error.status));
    dealer.connect(endpoint);
    return { dealer, authFailures };
  }

  async function roundTrip(router: Router, dealer: Dealer, text: string): Promise<void> {
    await dealer.send(text);
    const [id, body] = await router.receive();
    expect(body!.toString()).toBe(text);
    await router.send([id!, 'echo:' + text]);
    const [reply] = await dealer.receive();
    expect(reply!.toString()).toBe('echo:' + text);
  }

  it('an allowed DEALER completes a round trip through the CURVE ROUTER', async () => {
    const { logger, lines } = captureLogger();
    const server = generateKeyPair();
    const worker = generateKeyPair();
    const auth = await startAuthenticator({ allow: [worker.publicKey], logger });
    auths.push(auth);
    const { router, endpoint } = await curveRouter(server, [worker.publicKey]);
    const { dealer, authFailures } = curveDealer(server.publicKey, worker, endpoint);
    await roundTrip(router, dealer, 'hello');
    await roundTrip(router, dealer, 'again');
    expect(auth.accepted).toBe(1);
    expect(auth.refused).toBe(0);
    expect(authFailures).toEqual([]);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
  });

  it('a DEALER whose key is not on the list is refused: nothing gets through, logged once per key, counted', async () => {
    const { logger, lines } = captureLogger();
    const server = generateKeyPair();
    const worker = generateKeyPair();
    const stranger = generateKeyPair();
    const auth = await startAuthenticator({ allow: [worker.publicKey], logger });
    auths.push(auth);
    const { router, endpoint } = await curveRouter(server, [worker.publicKey]);

    // The stranger knows the gateway's public key (it is not a secret), but not an allowed key pair.
    const s1 = curveDealer(server.publicKey, stranger, endpoint);
    await s1.dealer.send('steal this');
    await until(() => s1.authFailures.length === 1);
    expect(s1.authFailures).toEqual([400]);
    expect(auth.refused).toBe(1);

    // The same key again (a second process, or a reconnect): counted, not logged again.
    const s2 = curveDealer(server.publicKey, stranger, endpoint);
    await s2.dealer.send('steal this too');
    await until(() => s2.authFailures.length === 1);
    expect(auth.refused).toBe(2);
    await expectNothing(router, 300);

    const refusals = lines.filter((l) => l.level === 40);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]!.publicKey).toBe(stranger.publicKey);
    expect(refusals[0]!.address).toBe('127.0.0.1');
    expect(refusals[0]!.msg).toContain('not on the allow list');

    // A different stranger gets its own line.
    const other = generateKeyPair();
    const s3 = curveDealer(server.publicKey, other, endpoint);
    await s3.dealer.send('x');
    await until(() => s3.authFailures.length === 1);
    expect(lines.filter((l) => l.level === 40).map((l) => l.publicKey)).toEqual([stranger.publicKey, other.publicKey]);
    expect(auth.refused).toBe(3);

    // The allowed worker is still served, and only its message arrives.
    const { dealer } = curveDealer(server.publicKey, worker, endpoint);
    await roundTrip(router, dealer, 'legit');
    await expectNothing(router, 100);
    expect(auth.accepted).toBe(1);
  });

  it('a DEALER without CURVE, or with the wrong server key, gets nothing through', async () => {
    const { logger } = captureLogger();
    const server = generateKeyPair();
    const worker = generateKeyPair();
    const auth = await startAuthenticator({ allow: [worker.publicKey], logger });
    auths.push(auth);
    const { router, endpoint } = await curveRouter(server, [worker.publicKey]);

    const plain = new Dealer({ linger: 0 });
    sockets.push(plain);
    const protocolErrors: string[] = [];
    plain.events.on('handshake:error:protocol', (e) => protocolErrors.push(e.error.code));
    plain.connect(endpoint);
    await plain.send('plain text');

    // An allowed key pair talking to an impostor's key: the handshake cannot complete.
    const wrongServer = curveDealer(generateKeyPair().publicKey, worker, endpoint);
    await wrongServer.dealer.send('wrong server');

    await until(() => protocolErrors.length > 0);
    expect(protocolErrors[0]).toBe('ERR_ZMTP_MECHANISM_MISMATCH');
    await expectNothing(router, 300);
    expect(auth.accepted).toBe(0);
  });

  it('two allow lists in two ZAP domains stay apart; a second list for one domain is refused', async () => {
    const { logger, lines } = captureLogger();
    const serverA = generateKeyPair();
    const serverB = generateKeyPair();
    const wA = generateKeyPair();
    const wB = generateKeyPair();
    const authA = await startAuthenticator({ allow: [wA.publicKey], logger, domain: 'gw-a' });
    auths.push(authA);
    const authB = await startAuthenticator({ allow: [wB.publicKey], logger, domain: 'gw-b' });
    auths.push(authB);
    await expect(startAuthenticator({ allow: [wA.publicKey], logger, domain: 'gw-a' })).rejects.toMatchObject({
      code: 'DIOCP_ERR_DISPATCH_CURVE_AUTH',
      message: expect.stringContaining('"gw-a"'),
    });

    const a = await curveRouter(serverA, [wA.publicKey], 'gw-a');
    const b = await curveRouter(serverB, [wB.publicKey], 'gw-b');
    // wA is admitted by A, refused by B.
    await roundTrip(a.router, curveDealer(serverA.publicKey, wA, a.endpoint).dealer, 'a');
    const cross = curveDealer(serverB.publicKey, wA, b.endpoint);
    await cross.dealer.send('cross');
    await until(() => cross.authFailures.length === 1);
    await expectNothing(b.router, 200);
    expect([authA.accepted, authA.refused, authB.accepted, authB.refused]).toEqual([1, 0, 0, 1]);
    expect(lines.filter((l) => l.level === 40).map((l) => l.publicKey)).toEqual([wA.publicKey]);

    // A ROUTER whose domain has no list admits nobody.
    const serverC = generateKeyPair();
    const c = await curveRouter(serverC, [wA.publicKey], 'gw-none');
    const orphan = curveDealer(serverC.publicKey, wA, c.endpoint);
    await orphan.dealer.send('x');
    await until(() => orphan.authFailures.length === 1);
  });

  it('close() frees the ZAP endpoint with the last list; a new authenticator starts again', async () => {
    const { logger } = captureLogger();
    const w = generateKeyPair();
    const a1 = await startAuthenticator({ allow: [w.publicKey], logger, domain: 'one' });
    const a2 = await startAuthenticator({ allow: [w.publicKey], logger, domain: 'two' });
    await a1.close();
    await a1.close(); // twice is fine
    // Still bound for "two": another socket cannot take the endpoint.
    const probe = new Router({ linger: 0 });
    await expect(probe.bind(ZAP_ENDPOINT)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await a2.close();
    await bindSoon(probe, ZAP_ENDPOINT);
    probe.close();
    await sleep(10);

    const a3 = await startAuthenticator({ allow: [w.publicKey], logger });
    auths.push(a3);
    const server = generateKeyPair();
    const { router, endpoint } = await curveRouter(server, [w.publicKey]);
    await roundTrip(router, curveDealer(server.publicKey, w, endpoint).dealer, 'back');
    expect(a3.accepted).toBe(1);
  });

  it('a gateway restarting in the same process: stop and start again at once, keys still checked', async () => {
    const { logger } = captureLogger();
    const server = generateKeyPair();
    const w = generateKeyPair();
    for (let round = 0; round < 3; round++) {
      const auth = await startAuthenticator({ allow: [w.publicKey], logger });
      const { router, endpoint } = await curveRouter(server, [w.publicKey]);
      await roundTrip(router, curveDealer(server.publicKey, w, endpoint).dealer, `round ${round}`);
      const stranger = curveDealer(server.publicKey, generateKeyPair(), endpoint);
      await stranger.dealer.send('x');
      await until(() => stranger.authFailures.length === 1);
      expect([auth.accepted, auth.refused]).toEqual([1, 1]);
      for (const s of sockets.splice(0)) s.close();
      await auth.close();
    }
  });

  it('another ZAP handler in the process: startAuthenticator fails with DIOCP_ERR_DISPATCH_CURVE_AUTH', async () => {
    const { logger } = captureLogger();
    const squatter = new Router({ linger: 0 });
    // The previous test's ZAP socket is released by libzmq's reaper shortly after close().
    await bindSoon(squatter, ZAP_ENDPOINT);
    try {
      await expect(startAuthenticator({ allow: [generateKeyPair().publicKey], logger })).rejects.toMatchObject({
        code: 'DIOCP_ERR_DISPATCH_CURVE_AUTH',
        message: expect.stringContaining(ZAP_ENDPOINT),
      });
    } finally {
      squatter.close();
    }
    await sleep(10);
    // The failed start left nothing registered: the default domain can be used now.
    const auth = await startAuthenticator({ allow: [generateKeyPair().publicKey], logger });
    auths.push(auth);
  });

  it('startAuthenticator refuses a bad key in the allow list', async () => {
    const { logger } = captureLogger();
    await expect(startAuthenticator({ allow: ['short'], logger })).rejects.toMatchObject({
      code: 'DIOCP_ERR_CONFIG_INVALID',
      message: expect.stringContaining('allow[0]'),
    });
    // Nothing stayed registered.
    const auth = await startAuthenticator({ allow: [generateKeyPair().publicKey], logger });
    auths.push(auth);
  });
});

describe('ZAP requests answered directly (RFC 27 frames on the handler socket)', () => {
  const auths: Authenticator[] = [];
  let zap: Dealer | null = null;
  afterEach(async () => {
    zap?.close();
    zap = null;
    for (const a of auths.splice(0)) await a.close();
  });

  let seq = 0;
  /** Send one ZAP request as libzmq would (REQ envelope: empty delimiter first); return the reply frames as text. */
  async function ask(frames: (string | Buffer)[]): Promise<string[]> {
    if (zap === null) {
      zap = new Dealer({ linger: 0 });
      zap.connect(ZAP_ENDPOINT);
    }
    await zap.send(['', ...frames]);
    const reply = await zap.receive();
    return reply.map((b) => b.toString());
  }
  const request = (domain: string, mechanism: string, ...credentials: (string | Buffer)[]) => {
    const id = `req-${++seq}`;
    return { id, frames: ['1.0', id, domain, '192.0.2.7', '', mechanism, ...credentials] };
  };

  it('answers 200 with the key as user id for an allowed key, 400 for others, with the request id echoed', async () => {
    const { logger, lines } = captureLogger();
    const w = generateKeyPair();
    const auth = await startAuthenticator({ allow: [w.publicKey], logger });
    auths.push(auth);
    let r = request('diocp', 'CURVE', z85Decode(w.publicKey)!);
    expect(await ask(r.frames)).toEqual(['', '1.0', r.id, '200', 'OK', w.publicKey, '']);
    const other = generateKeyPair();
    r = request('diocp', 'CURVE', z85Decode(other.publicKey)!);
    const refused = await ask(r.frames);
    expect(refused.slice(0, 4)).toEqual(['', '1.0', r.id, '400']);
    expect([auth.accepted, auth.refused]).toEqual([1, 1]);
    expect(lines.map((l) => l.address)).toEqual(['192.0.2.7']);
  });

  it('refuses other mechanisms and malformed credentials (logged once each), and unknown domains (not logged)', async () => {
    const { logger, lines } = captureLogger();
    const auth = await startAuthenticator({ allow: [generateKeyPair().publicKey], logger });
    auths.push(auth);
    expect((await ask(request('diocp', 'PLAIN', 'user', 'pass').frames))[3]).toBe('400');
    expect((await ask(request('diocp', 'PLAIN', 'user', 'pass').frames))[3]).toBe('400');
    expect((await ask(request('diocp', 'NULL').frames))[3]).toBe('400');
    expect((await ask(request('diocp', 'CURVE', Buffer.alloc(31)).frames))[3]).toBe('400');
    expect((await ask(request('diocp', 'CURVE').frames))[3]).toBe('400');
    expect(auth.refused).toBe(5);
    expect(lines.map((l) => l.msg)).toEqual([
      expect.stringContaining('a PLAIN client (not CURVE) was refused'),
      expect.stringContaining('a NULL client (not CURVE) was refused'),
      expect.stringContaining('a CURVE client with malformed credentials'),
    ]);
    const n = lines.length;
    expect((await ask(request('someone-else', 'CURVE', Buffer.alloc(32)).frames))[3]).toBe('400');
    expect(lines).toHaveLength(n);
    expect(auth.refused).toBe(5); // another domain's request is not this list's refusal
  });

  it('answers a malformed request 500 and keeps serving', async () => {
    const { logger } = captureLogger();
    const w = generateKeyPair();
    const auth = await startAuthenticator({ allow: [w.publicKey], logger });
    auths.push(auth);
    expect(await ask(['2.0', 'id-x', 'diocp', 'a', '', 'CURVE', z85Decode(w.publicKey)!])).toEqual(['', '1.0', 'id-x', '500', 'malformed ZAP request', '', '']);
    expect((await ask(['1.0', 'id-y', 'diocp']))[3]).toBe('500');
    const r = request('diocp', 'CURVE', z85Decode(w.publicKey)!);
    expect((await ask(r.frames))[3]).toBe('200');
    expect([auth.accepted, auth.refused]).toEqual([1, 0]);
  });

  it(`logs at most ${MAX_LOGGED_KEYS} distinct refused keys, then one line saying further refusals are only counted`, async () => {
    const { logger, lines } = captureLogger();
    const auth = await startAuthenticator({ allow: [generateKeyPair().publicKey], logger });
    auths.push(auth);
    const total = MAX_LOGGED_KEYS + 20;
    for (let i = 0; i < total; i++) {
      const key = Buffer.alloc(32);
      key.writeUInt32BE(i, 0);
      expect((await ask(request('diocp', 'CURVE', key).frames))[3]).toBe('400');
    }
    expect(auth.refused).toBe(total);
    expect(lines.filter((l) => l.publicKey !== undefined)).toHaveLength(MAX_LOGGED_KEYS);
    const overflow = lines.filter((l) => String(l.msg).includes('further refusals are counted, not logged'));
    expect(overflow).toHaveLength(1);
    expect(lines).toHaveLength(MAX_LOGGED_KEYS + 1);
  });
});

describe('warnIfExposed', () => {
  const exposed = [
    'tcp://0.0.0.0:7002',
    'tcp://*:7002',
    'tcp://192.168.1.20:7002',
    'tcp://10.0.0.5:7002',
    'tcp://[::]:7002',
    'tcp://[fe80::1]:7002',
    'tcp://eth0:7002',
    'tcp://gateway.example.com:7002',
    'tcp://128.0.0.1:7002',
    'tcp://127.0.0.1;10.0.0.5:7002',
  ];
  const local = [
    'tcp://127.0.0.1:7002',
    'tcp://127.3.4.5:7002',
    'tcp://localhost:7002',
    'TCP://LOCALHOST:7002',
    'tcp://[::1]:7002',
    'tcp://[::ffff:127.0.0.1]:7002',
    'ipc:///tmp/diocp.sock',
    'inproc://diocp',
  ];

  it.each(exposed)('warns loudly for %s without CURVE, and not with CURVE', (bind) => {
    const { logger, lines } = captureLogger();
    expect(isLoopbackBind(bind)).toBe(false);
    expect(warnIfExposed(bind, undefined, logger)).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe(40);
    expect(lines[0]!.bind).toBe(bind);
    expect(lines[0]!.msg).toContain('WITHOUT CURVE');
    expect(lines[0]!.msg).toContain(bind);
    const curve = { ...generateKeyPair(), allow: [generateKeyPair().publicKey] };
    expect(warnIfExposed(bind, curve, logger)).toBe(false);
    expect(lines).toHaveLength(1);
  });

  it.each(local)('stays quiet for %s', (bind) => {
    const { logger, lines } = captureLogger();
    expect(isLoopbackBind(bind)).toBe(true);
    expect(warnIfExposed(bind, undefined, logger)).toBe(false);
    expect(lines).toHaveLength(0);
  });
});
