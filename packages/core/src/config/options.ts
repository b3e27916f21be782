import { diocpError } from '../errors.js';
import { DEFAULT_MAX_FRAME_SIZE, HEADER_SIZE } from '../protocol/constants.js';
import type { HandlerClass } from '../router/scanner.js';
import { checkClientCurve, checkServerCurve, type CurveClientConfig, type CurveServerConfig } from '../dispatch/remote/curve.js';

export type TransportChoice = 'auto' | 'native' | 'net';
export type DispatchChoice = 'inline' | 'local-pool' | 'remote';

/** `dispatch: { mode: 'remote', ... }`: the gateway side of remote dispatch (docs/remote.md). */
export interface RemoteDispatchConfig {
  /** ZeroMQ address the gateway's ROUTER binds; workers connect to it. */
  bind?: string;
  /** Heartbeat interval both ways (ms); also sent to workers in WELCOME. */
  heartbeatMs?: number;
  /** Heartbeats a peer may miss before it is declared dead. */
  liveness?: number;
  /** Re-posts of one request after worker deaths, then UNAVAILABLE. */
  maxRetries?: number;
  /** How long a request waits for a worker with credit (ms), then UNAVAILABLE. */
  noWorkerWaitMs?: number;
  /** Requests waiting for a worker; past it new ones are answered UNAVAILABLE at once. */
  maxQueued?: number;
  /** CURVE: the gateway's key pair and the public keys of the workers it admits (Z85). */
  curve?: CurveServerConfig | null;
}

export type ResolvedRemoteDispatch = Required<RemoteDispatchConfig>;

export const remoteDefaults: ResolvedRemoteDispatch = {
  bind: 'tcp://127.0.0.1:7002',
  heartbeatMs: 1000,
  liveness: 3,
  maxRetries: 2,
  noWorkerWaitMs: 5000,
  maxQueued: 100_000,
  curve: null,
};

/** `worker: { ... }`: what `diocp worker` reads from the same config file (flags override it). */
export interface WorkerConfig {
  /** Gateway ROUTER address to connect to. */
  connect?: string;
  /** Most requests the worker holds at once (its credit). */
  concurrency?: number;
  /** 0: run handlers on the worker's main thread; N: on its own pool of N threads. */
  threads?: number;
  /** Name the gateway logs and shows in stats (default host:pid). */
  name?: string;
  /** CURVE: the gateway's public key and the worker's key pair (Z85). */
  curve?: CurveClientConfig | null;
}

/**
 * Everything `diocp.config.{js,mjs,json}` and `createServer()` accept. Every key is optional;
 * `defaults` below holds the value used when one is missing. docs/config.md is checked
 * against this list by a test.
 */
export interface DiocpConfig {
  /** Address to listen on. */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port?: number;
  /** `auto` uses the native transport when it is installed, else `net`. */
  transport?: TransportChoice;
  /**
   * Where handlers run: `inline` on the gateway's thread, `local-pool` on a pool of worker
   * threads. The object form `{ mode, threads }` sets `threads` too.
   */
  dispatch?: DispatchChoice | ({ mode: DispatchChoice; threads?: number } & RemoteDispatchConfig);
  /** Handler threads in local-pool mode; 0 = one per core. */
  threads?: number;
  /**
   * A module (relative to the config file) whose default export `(container) => void`
   * registers DI tokens; run once per DI container (in every handler thread in local-pool).
   */
  setup?: string | null;
  /**
   * Handler classes, or paths of modules (files or folders of .js/.mjs files, relative to
   * the config file) whose exported @Command classes are loaded.
   */
  handlers?: (string | HandlerClass)[];
  /** Largest payload a frame may carry, in bytes (also the largest response). */
  maxFrameSize?: number;
  /** Connections past this number are closed right after accept. */
  maxConnections?: number;
  /** Close a connection that sent nothing for this long (ms); 0 disables. PING keeps it open. */
  idleTimeoutMs?: number;
  /** Requests in flight per connection before OVERLOADED. */
  maxInFlightPerConnection?: number;
  /** Requests in flight on the whole server before OVERLOADED. */
  maxInFlight?: number;
  /** Bytes that may wait to be sent to one connection; past it the connection is closed as slow. */
  maxSendQueueBytes?: number;
  /** Timeout (ms) for commands that declare none; 0 = no timeout. */
  defaultTimeoutMs?: number;
  /** How long graceful shutdown waits for running requests (ms) before answering them UNAVAILABLE. */
  shutdownTimeoutMs?: number;
  /** Stack traces in HANDLER_ERROR frames; never in production. */
  debug?: boolean;
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  logLevel?: string;
  /**
   * Remote-dispatch settings (used when `dispatch` is `remote`). `dispatch: { mode: 'remote',
   * bind, ... }` is shorthand for `dispatch: 'remote'` plus these keys.
   */
  remote?: RemoteDispatchConfig;
  /** Settings of `diocp worker` (a logic process in remote mode); the server ignores them. */
  worker?: WorkerConfig;
}

export type ResolvedConfig = Required<Omit<DiocpConfig, 'handlers' | 'dispatch' | 'remote' | 'worker'>> & {
  handlers: (string | HandlerClass)[];
  dispatch: DispatchChoice;
  /** Remote-dispatch settings, defaults filled in. */
  remote: ResolvedRemoteDispatch;
  worker: WorkerConfig;
};

export const defaults: ResolvedConfig = {
  host: '127.0.0.1',
  port: 7001,
  transport: 'auto',
  dispatch: 'inline',
  threads: 0,
  setup: null,
  handlers: [],
  maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
  maxConnections: 10_000,
  idleTimeoutMs: 120_000,
  maxInFlightPerConnection: 256,
  maxInFlight: 100_000,
  maxSendQueueBytes: 2 * DEFAULT_MAX_FRAME_SIZE,
  defaultTimeoutMs: 30_000,
  shutdownTimeoutMs: 10_000,
  debug: false,
  logLevel: 'info',
  remote: remoteDefaults,
  worker: {},
};

/** Typed identity: `export default defineConfig({ ... })` in diocp.config.mjs. */
export function defineConfig(config: DiocpConfig): DiocpConfig {
  return config;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Check = (value: unknown) => string | null;
const int = (min: number, max: number): Check => (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? null : `must be a whole number in ${min}..${max}, got ${show(v)}`;
const oneOf = (choices: readonly string[]): Check => (v) =>
  typeof v === 'string' && choices.includes(v) ? null : `must be one of ${choices.join(', ')}, got ${show(v)}`;

const checks: Record<keyof DiocpConfig, Check> = {
  host: (v) => (typeof v === 'string' && v.length > 0 ? null : `must be a non-empty string, got ${show(v)}`),
  port: int(0, 65535),
  transport: oneOf(['auto', 'native', 'net']),
  dispatch: (v) => {
    const modes = ['inline', 'local-pool', 'remote'];
    if (typeof v === 'string') return modes.includes(v) ? null : `must be one of ${modes.join(', ')}, got ${show(v)}`;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return `must be a mode name or { mode, threads }, got ${show(v)}`;
    const o = v as Record<string, unknown>;
    if (typeof o.mode !== 'string' || !modes.includes(o.mode)) return `.mode must be one of ${modes.join(', ')}, got ${show(o.mode)}`;
    const known = o.mode === 'remote' ? ['mode', ...Object.keys(remoteChecks)] : ['mode', 'threads'];
    for (const k of Object.keys(v)) if (!known.includes(k)) return `has an unknown key "${k}" (known with mode ${o.mode}: ${known.join(', ')})`;
    if (o.mode !== 'remote') return o.threads === undefined ? null : int(0, 1024)(o.threads) && `.threads ${int(0, 1024)(o.threads)}`;
    for (const [k, check] of Object.entries(remoteChecks)) {
      if (o[k] === undefined) continue;
      const problem = check(o[k]);
      if (problem !== null) return `.${k} ${problem}`;
    }
    return null;
  },
  threads: int(0, 1024),
  setup: (v) => (v === null || (typeof v === 'string' && v.length > 0) ? null : `must be a module path or null, got ${show(v)}`),
  handlers: (v) =>
    Array.isArray(v) && v.every((h) => typeof h === 'string' || typeof h === 'function')
      ? null
      : `must be an array of module paths or handler classes, got ${show(v)}`,
  maxFrameSize: int(0, 0xffff_ffff),
  maxConnections: int(1, 1_000_000),
  idleTimeoutMs: int(0, 2 ** 31 - 1),
  maxInFlightPerConnection: int(1, 1_000_000),
  maxInFlight: int(1, 100_000_000),
  maxSendQueueBytes: int(HEADER_SIZE, Number.MAX_SAFE_INTEGER),
  defaultTimeoutMs: int(0, 2 ** 31 - 1),
  shutdownTimeoutMs: int(0, 2 ** 31 - 1),
  debug: (v) => (typeof v === 'boolean' ? null : `must be true or false, got ${show(v)}`),
  logLevel: oneOf(LOG_LEVELS),
  remote: (v) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return `must be an object, got ${show(v)}`;
    for (const [k, x] of Object.entries(v)) {
      const check = Object.hasOwn(remoteChecks, k) ? remoteChecks[k as keyof typeof remoteChecks] : undefined;
      if (check === undefined) return `has an unknown key "${k}" (known: ${Object.keys(remoteChecks).join(', ')})`;
      if (x === undefined) continue;
      const problem = check(x);
      if (problem !== null) return `.${k} ${problem}`;
    }
    return null;
  },
  worker: (v) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return `must be an object, got ${show(v)}`;
    for (const [k, x] of Object.entries(v)) {
      const check = Object.hasOwn(workerChecks, k) ? workerChecks[k as keyof typeof workerChecks] : undefined;
      if (check === undefined) return `has an unknown key "${k}" (known: ${Object.keys(workerChecks).join(', ')})`;
      if (x === undefined) continue;
      const problem = check(x);
      if (problem !== null) return `.${k} ${problem}`;
    }
    return null;
  },
};

/** A ZeroMQ endpoint as diocp uses it: tcp://host:port (port may be * when binding), ipc:// or inproc://. */
const endpoint: Check = (v) =>
  typeof v === 'string' && /^(tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(\d{1,5}|\*)|ipc:\/\/\S+|inproc:\/\/\S+)$/.test(v)
    ? null
    : `must be a ZeroMQ address like tcp://127.0.0.1:7002, got ${show(v)}`;

/** A CURVE check from curve.ts turned into a Check (its own error names the nested key). */
const curveCheck = (name: string, fn: (n: string, v: unknown) => unknown): Check => (v) => {
  if (v === null) return null;
  try {
    fn(name, v);
    return null;
  } catch (err) {
    return `is not valid: ${(err as Error).message}`;
  }
};

const remoteChecks: Record<keyof RemoteDispatchConfig, Check> = {
  bind: endpoint,
  heartbeatMs: int(10, 3_600_000),
  liveness: int(1, 1000),
  maxRetries: int(0, 1000),
  noWorkerWaitMs: int(0, 2 ** 31 - 1),
  maxQueued: int(0, 100_000_000),
  curve: curveCheck('dispatch.curve', checkServerCurve),
};

const workerChecks: Record<keyof WorkerConfig, Check> = {
  connect: endpoint,
  concurrency: int(1, 1_000_000),
  threads: int(0, 1024),
  name: (v) => (typeof v === 'string' && v.length > 0 && v.length <= 200 ? null : `must be a non-empty string of at most 200 characters, got ${show(v)}`),
  curve: curveCheck('worker.curve', checkClientCurve),
};

export const configKeys = Object.keys(checks) as (keyof DiocpConfig)[];

/**
 * Check a config object and fill in defaults. Throws DIOCP_ERR_CONFIG_UNKNOWN_KEY or
 * DIOCP_ERR_CONFIG_INVALID naming the key (and `source`, e.g. the file or flag it came from).
 */
export function resolveConfig(input: unknown, source = 'config'): ResolvedConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw diocpError('DIOCP_ERR_CONFIG_LOAD', source, `the config must be an object, got ${show(input)}`);
  }
  const out: Record<string, unknown> = { ...defaults, handlers: [...defaults.handlers] };
  for (const [key, value] of Object.entries(input)) {
    // Own keys only: "toString" or "__proto__" must not find Object.prototype's members.
    const check = Object.hasOwn(checks, key) ? (checks as Record<string, Check>)[key] : undefined;
    if (check === undefined) {
      const near = closest(key, configKeys);
      throw diocpError('DIOCP_ERR_CONFIG_UNKNOWN_KEY', key, `${near ? ` (did you mean "${near}"?)` : ''} in ${source}`);
    }
    if (value === undefined) continue;
    const problem = check(value);
    if (problem !== null) throw diocpError('DIOCP_ERR_CONFIG_INVALID', key, `${problem} (in ${source})`);
    if (key === 'dispatch' && typeof value === 'object') {
      // { mode, threads } is shorthand for dispatch + threads; the remote keys go to `remote`.
      const { mode, threads, ...remote } = value as { mode: DispatchChoice; threads?: number } & RemoteDispatchConfig;
      out.dispatch = mode;
      if (threads !== undefined) out.threads = threads;
      if (mode === 'remote') mergeRemote(out, remote);
      continue;
    }
    if (key === 'remote') {
      mergeRemote(out, value as RemoteDispatchConfig);
      continue;
    }
    if (key === 'worker') {
      const w = { ...(value as WorkerConfig) };
      if (w.curve) w.curve = checkClientCurve('worker.curve', w.curve);
      out.worker = w;
      continue;
    }
    out[key] = Array.isArray(value) ? [...value] : value;
  }
  const cfg = out as ResolvedConfig;
  if (cfg.maxSendQueueBytes < cfg.maxFrameSize + HEADER_SIZE) {
    throw diocpError(
      'DIOCP_ERR_CONFIG_INVALID',
      'maxSendQueueBytes',
      `must be at least maxFrameSize + 16 (${cfg.maxFrameSize + HEADER_SIZE}) so a largest response fits, got ${cfg.maxSendQueueBytes} (in ${source})`,
    );
  }
  return cfg;
}

/** Fill `out.remote` from defaults and `given` (keys given twice: the later one wins). */
function mergeRemote(out: Record<string, unknown>, given: RemoteDispatchConfig): void {
  const r: Record<string, unknown> = { ...(out.remote as ResolvedRemoteDispatch) };
  for (const [k, x] of Object.entries(given)) if (x !== undefined) r[k] = x;
  if (r.curve) r.curve = checkServerCurve('remote.curve', r.curve);
  out.remote = r;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'function') return `function ${v.name}`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** The known key closest to `key` by edit distance, if it is close enough to be a typo. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
