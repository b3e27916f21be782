/**
 * CURVE security for remote dispatch: key pairs, key checks, the ZAP authenticator that
 * admits only allow-listed workers, the zeromq.js socket options, and the warning for a
 * gateway that binds a reachable address without CURVE. See docs/remote.md.
 *
 * Keys are Z85 text (40 characters for 32 bytes), the form zeromq.js and `diocp keygen` use.
 */
import { Buffer } from 'node:buffer';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { Router, curveKeyPair } from 'zeromq';
import { diocpError } from '../../errors.js';
import type { Logger } from '../../logger.js';

/** Where libzmq looks for the ZAP handler (ZeroMQ RFC 27) of sockets in the same context. */
export const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
/** The ZAP domain diocp's CURVE ROUTER sockets announce (ZMQ_ZAP_DOMAIN) unless told otherwise. */
export const DEFAULT_ZAP_DOMAIN = 'diocp';

/** Gateway side: its own key pair and the public keys of the workers it admits. */
export interface CurveServerConfig {
  publicKey: string;
  secretKey: string;
  allow: string[];
}

/** Worker side: the gateway's public key and the worker's own key pair. */
export interface CurveClientConfig {
  serverKey: string;
  publicKey: string;
  secretKey: string;
}

export interface KeyPair {
  publicKey: string;
  secretKey: string;
}

/**
 * A fresh CURVE key pair (Z85), from libzmq's `zmq_curve_keypair`. Pairs in which a key
 * starts with "-" are drawn again: `diocp worker --secret-key -abc…` would read the key as an
 * option (Node's parseArgs), so such keys only work in the `--secret-key=-abc…` form. Skipping
 * them costs about 0.02 bits of the secret key's 256.
 */
export function generateKeyPair(): KeyPair {
  for (;;) {
    const { publicKey, secretKey } = curveKeyPair();
    if (publicKey[0] !== '-' && secretKey[0] !== '-') return { publicKey, secretKey };
  }
}

// --- Z85 (ZeroMQ RFC 32) ---

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < Z85.length; i++) Z85_INDEX[Z85.charCodeAt(i)] = i;

/** Decode Z85 text (length a multiple of 5); null when a character or a 5-character group is invalid. */
export function z85Decode(text: string): Buffer | null {
  if (text.length % 5 !== 0) return null;
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let g = 0; g < text.length / 5; g++) {
    let value = 0;
    for (let i = 0; i < 5; i++) {
      const c = text.charCodeAt(g * 5 + i);
      const d = c < 128 ? Z85_INDEX[c]! : -1;
      if (d < 0) return null;
      value = value * 85 + d;
    }
    if (value > 0xffffffff) return null; // "%%%%%" and friends: no 4 bytes encode to this
    out.writeUInt32BE(value, g * 4);
  }
  return out;
}

/** Encode bytes (length a multiple of 4) as Z85. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new RangeError(`z85Encode needs a multiple of 4 bytes, got ${bytes.length}`);
  let out = '';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < bytes.length; i += 4) {
    let value = view.getUint32(i);
    let group = '';
    for (let k = 0; k < 5; k++) {
      group = Z85[value % 85] + group;
      value = Math.floor(value / 85);
    }
    out += group;
  }
  return out;
}

// --- key checks ---

/**
 * A CURVE key as config gives it: a 40-character Z85 string that decodes to 32 bytes.
 * Surrounding white space (a key pasted from a terminal) is trimmed. Anything else throws
 * DIOCP_ERR_CONFIG_INVALID naming `name`; the value of a key that looks secret is not echoed.
 */
export function checkKey(name: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw diocpError('DIOCP_ERR_CONFIG_INVALID', name, `must be a CURVE key (40 Z85 characters, from \`diocp keygen\`), got ${describe(value)}`);
  }
  const key = value.trim();
  if (key.length !== 40) {
    throw diocpError('DIOCP_ERR_CONFIG_INVALID', name, `must be a CURVE key of 40 Z85 characters (from \`diocp keygen\`), got ${key.length} characters`);
  }
  if (z85Decode(key) === null) {
    const bad = [...key].find((ch) => ch.charCodeAt(0) >= 128 || Z85_INDEX[ch.charCodeAt(0)]! < 0);
    throw diocpError(
      'DIOCP_ERR_CONFIG_INVALID',
      name,
      bad !== undefined
        ? `is not a Z85 CURVE key: character ${JSON.stringify(bad)} is not in the Z85 alphabet`
        : 'is not a Z85 CURVE key: a 5-character group encodes a value over 32 bits',
    );
  }
  return key;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? 'a string' : typeof value;
}

// DER prefix of a PKCS#8 X25519 private key; the 32 raw secret bytes follow.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** The Z85 public key that belongs to a Z85 secret key (CURVE keys are X25519 keys). */
export function publicKeyOf(secretKey: string): string {
  const secret = z85Decode(secretKey);
  if (secret === null || secret.length !== 32) throw new RangeError('publicKeyOf needs a 40-character Z85 secret key');
  const priv = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(priv).export({ format: 'jwk' }) as { x: string };
  return z85Encode(Buffer.from(jwk.x, 'base64url'));
}

/** Check that `publicKey` is the public half of `secretKey`: a mismatch would only show as failed handshakes. */
function checkPair(name: string, publicKey: string, secretKey: string): void {
  if (publicKeyOf(secretKey) !== publicKey) {
    throw diocpError(
      'DIOCP_ERR_CONFIG_INVALID',
      name,
      'has a publicKey that does not belong to its secretKey (use both lines of one `diocp keygen` output)',
    );
  }
}

function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw diocpError('DIOCP_ERR_CONFIG_INVALID', name, `must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function checkNoOtherKeys(name: string, obj: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) throw diocpError('DIOCP_ERR_CONFIG_UNKNOWN_KEY', `${name}.${k}`, ` (expected ${known.join(', ')})`);
  }
}

/**
 * The gateway's `curve` config, checked: both keys valid and belonging together, `allow` a
 * non-empty list of valid worker public keys (duplicates dropped). An empty list is refused
 * rather than read as "admit nobody": that gateway could never serve, which is a mistake.
 */
export function checkServerCurve(name: string, value: unknown): CurveServerConfig {
  const obj = checkObject(name, value);
  checkNoOtherKeys(name, obj, ['publicKey', 'secretKey', 'allow']);
  const publicKey = checkKey(`${name}.publicKey`, obj.publicKey);
  const secretKey = checkKey(`${name}.secretKey`, obj.secretKey);
  checkPair(name, publicKey, secretKey);
  if (!Array.isArray(obj.allow)) {
    throw diocpError('DIOCP_ERR_CONFIG_INVALID', `${name}.allow`, `must be an array of worker public keys, got ${describe(obj.allow)}`);
  }
  if (obj.allow.length === 0) {
    throw diocpError('DIOCP_ERR_CONFIG_INVALID', `${name}.allow`, 'must list at least one worker public key (no worker could connect)');
  }
  const allow = [...new Set(obj.allow.map((k, i) => checkKey(`${name}.allow[${i}]`, k)))];
  return { publicKey, secretKey, allow };
}

/** A worker's `curve` config, checked: three valid keys, its own pair belonging together. */
export function checkClientCurve(name: string, value: unknown): CurveClientConfig {
  const obj = checkObject(name, value);
  checkNoOtherKeys(name, obj, ['serverKey', 'publicKey', 'secretKey']);
  const serverKey = checkKey(`${name}.serverKey`, obj.serverKey);
  const publicKey = checkKey(`${name}.publicKey`, obj.publicKey);
  const secretKey = checkKey(`${name}.secretKey`, obj.secretKey);
  checkPair(name, publicKey, secretKey);
  return { serverKey, publicKey, secretKey };
}

// --- socket options ---

/** Options for the gateway's ROUTER: CURVE server, authenticated through the ZAP domain. */
export function routerCurveOptions(curve: CurveServerConfig, zapDomain = DEFAULT_ZAP_DOMAIN) {
  return { curveServer: true, curveSecretKey: curve.secretKey, curvePublicKey: curve.publicKey, zapDomain } as const;
}

/** Options for a worker's DEALER: CURVE client of the gateway whose public key is `serverKey`. */
export function dealerCurveOptions(curve: CurveClientConfig) {
  return { curveServerKey: curve.serverKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey } as const;
}

// --- the ZAP authenticator ---

export interface Authenticator {
  /** Stop admitting for this allow list; the ZAP socket closes with the last one. */
  close(): Promise<void>;
  /** CURVE handshakes refused so far (every attempt; the log line is once per key). */
  readonly refused: number;
  /** CURVE handshakes admitted so far. */
  readonly accepted: number;
}

export interface AuthenticatorOptions {
  /** Z85 public keys of the workers to admit. */
  allow: readonly string[];
  logger: Logger;
  /** The ZAP domain of the ROUTER this list is for (see {@link routerCurveOptions}). */
  domain?: string;
}

interface Registration {
  allow: Set<string>;
  logger: Logger;
  refused: number;
  accepted: number;
  /** Keys whose refusal was logged already: a refused worker retries every ~100 ms. */
  logged: Set<string>;
}

/** Distinct refused keys remembered per authenticator; past this, refusals are counted only. */
export const MAX_LOGGED_KEYS = 1024;

/**
 * libzmq asks one ZAP handler per context, at a fixed inproc address; zeromq.js sockets all
 * live in its default context. So one process-wide ROUTER answers, and each gateway registers
 * its allow list under its ZAP domain. Requests for an unregistered domain are refused: a
 * CURVE socket that nobody vouches for admits nobody.
 */
const registrations = new Map<string, Registration>();
let zap: { socket: Router; ready: Promise<void>; loop: Promise<void> } | undefined;

/**
 * Start answering ZAP requests for `domain`: CURVE clients whose public key is in `allow`
 * are admitted (200), others refused (400) and logged at warn, once per key. Start it before
 * binding the CURVE ROUTER: with no ZAP handler, libzmq admits every client that knows the
 * server's public key.
 */
export async function startAuthenticator(opts: AuthenticatorOptions): Promise<Authenticator> {
  const domain = opts.domain ?? DEFAULT_ZAP_DOMAIN;
  if (registrations.has(domain)) {
    throw diocpError('DIOCP_ERR_DISPATCH_CURVE_AUTH', `an allow list for ZAP domain "${domain}" is already registered in this process (one per gateway; give each its own domain)`);
  }
  const allow = new Set(opts.allow.map((k, i) => checkKey(`allow[${i}]`, k)));
  const reg: Registration = { allow, logger: opts.logger, refused: 0, accepted: 0, logged: new Set() };
  registrations.set(domain, reg);
  try {
    await ensureZapSocket();
  } catch (err) {
    registrations.delete(domain);
    throw err;
  }
  let closed = false;
  return {
    get refused() {
      return reg.refused;
    },
    get accepted() {
      return reg.accepted;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (registrations.get(domain) === reg) registrations.delete(domain);
      if (registrations.size === 0 && zap) {
        const z = zap;
        zap = undefined;
        z.socket.close();
        await z.loop;
      }
    },
  };
}

/**
 * A closed socket's inproc endpoint is released by libzmq's reaper thread a little later, so
 * right after our own ZAP socket closed (a gateway restarting in the same process) the bind
 * can still see it taken: retry EADDRINUSE for this long before blaming another handler.
 */
const BIND_RETRY_MS = 1000;

async function bindZap(socket: Router): Promise<void> {
  const deadline = Date.now() + BIND_RETRY_MS;
  for (;;) {
    try {
      await socket.bind(ZAP_ENDPOINT);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

async function ensureZapSocket(): Promise<void> {
  if (!zap) {
    const socket = new Router({ linger: 0 });
    const ready = bindZap(socket).catch((err: Error) => {
      if (zap?.socket === socket) zap = undefined;
      socket.close();
      throw diocpError('DIOCP_ERR_DISPATCH_CURVE_AUTH', `cannot bind ${ZAP_ENDPOINT}: ${err.message} (is another ZAP handler running in this process?)`);
    });
    const z = { socket, ready, loop: ready.then(() => serve(socket), () => undefined) };
    zap = z;
  }
  await zap.ready;
}

async function serve(socket: Router): Promise<void> {
  try {
    for await (const msg of socket) {
      // Routing id, empty delimiter, then the RFC 27 request. Replies go out one at a time:
      // zeromq.js allows one pending send per socket, and ZAP traffic is one request per handshake.
      if (msg.length < 2) continue;
      await socket.send([msg[0]!, msg[1]!, ...answer(msg.slice(2))]);
    }
  } catch (err) {
    // Closing the socket ends the loop; anything else is reported to every registered logger.
    if (!socket.closed) {
      for (const reg of registrations.values()) reg.logger.error({ err: (err as Error).message }, 'CURVE authenticator stopped');
    }
  }
}

/** The RFC 27 reply frames (version … metadata) for one request's frames. */
function answer(frames: Buffer[]): (Buffer | string)[] {
  const [version, requestId, domainB, addressB, , mechanismB, ...credentials] = frames;
  const reply = (code: string, text: string, userId = '') => ['1.0', requestId ?? '', code, text, userId, ''];
  if (version?.toString() !== '1.0' || frames.length < 6) return reply('500', 'malformed ZAP request');
  const domain = domainB!.toString();
  const address = addressB!.toString();
  const mechanism = mechanismB!.toString();
  const reg = registrations.get(domain);
  if (!reg) return reply('400', `no diocp allow list for ZAP domain "${domain}"`);
  if (mechanism !== 'CURVE') {
    refuse(reg, `${mechanism} mechanism`, address, `a ${mechanism} client (not CURVE) was refused`);
    return reply('400', 'CURVE required');
  }
  if (credentials.length !== 1 || credentials[0]!.length !== 32) {
    refuse(reg, 'malformed CURVE credentials', address, 'a CURVE client with malformed credentials (not one 32-byte key) was refused');
    return reply('400', 'malformed CURVE credentials');
  }
  const key = z85Encode(credentials[0]!);
  if (reg.allow.has(key)) {
    reg.accepted++;
    return reply('200', 'OK', key);
  }
  refuse(reg, key, address, 'a worker whose CURVE public key is not on the allow list was refused');
  return reply('400', 'public key not allowed');
}

function refuse(reg: Registration, key: string, address: string, msg: string): void {
  reg.refused++;
  if (reg.logged.has(key)) return;
  if (reg.logged.size >= MAX_LOGGED_KEYS) {
    if (reg.logged.size === MAX_LOGGED_KEYS) {
      reg.logged.add('\0overflow');
      reg.logger.warn({ keys: MAX_LOGGED_KEYS }, 'CURVE: too many distinct refused keys; further refusals are counted, not logged');
    }
    return;
  }
  reg.logged.add(key);
  reg.logger.warn({ publicKey: key, address }, `${msg}: add its key to dispatch.curve.allow to admit it (logged once per key)`);
}

// --- exposure warning ---

/**
 * True when `bind` only accepts peers on this machine: ipc://, inproc://, or a tcp host of
 * 127.0.0.0/8, ::1 or localhost. Wildcards (`*`, 0.0.0.0, ::), LAN addresses, host names and
 * interface names are reachable from elsewhere.
 */
export function isLoopbackBind(bind: string): boolean {
  const m = /^([a-z]+):\/\/(.*)$/i.exec(bind.trim());
  if (!m) return false;
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'ipc' || scheme === 'inproc') return true;
  let host = m[2]!;
  // tcp://source;host:port binds nothing on the source side; the endpoint is after ';'.
  if (host.includes(';')) host = host.slice(host.lastIndexOf(';') + 1);
  const bracket = /^\[([^\]]*)\](?::[^:]*)?$/.exec(host);
  if (bracket) host = bracket[1]!;
  else if (host.includes(':')) host = host.slice(0, host.lastIndexOf(':'));
  host = host.toLowerCase();
  if (host === 'localhost' || host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
  const v4 = host.startsWith('::ffff:') ? host.slice(7) : host;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * Warn, loudly, when the gateway binds an address other machines can reach and no CURVE is
 * configured: anyone who can connect could then register as a worker and read every request.
 * Returns whether it warned.
 */
export function warnIfExposed(bind: string, curve: unknown, logger: Logger): boolean {
  if (curve || isLoopbackBind(bind)) return false;
  logger.warn(
    { bind },
    `!!! SECURITY: remote dispatch binds ${bind}, reachable from other machines, WITHOUT CURVE. ` +
      'Any process that can connect can register as a worker and read and answer every request. ' +
      'Set dispatch.curve (see docs/remote.md: diocp keygen, allow list) or bind 127.0.0.1.',
  );
  return true;
}
