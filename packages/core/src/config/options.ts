import { diocpError } from '../errors.js';
import { DEFAULT_MAX_FRAME_SIZE, HEADER_SIZE } from '../protocol/constants.js';
import type { HandlerClass } from '../router/scanner.js';

export type TransportChoice = 'auto' | 'native' | 'net';
export type DispatchChoice = 'inline' | 'local-pool';

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
  dispatch?: DispatchChoice | { mode: DispatchChoice; threads?: number };
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
}

export type ResolvedConfig = Required<Omit<DiocpConfig, 'handlers' | 'dispatch'>> & {
  handlers: (string | HandlerClass)[];
  dispatch: DispatchChoice;
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
    const modes = ['inline', 'local-pool'];
    if (typeof v === 'string') return modes.includes(v) ? null : `must be one of ${modes.join(', ')}, got ${show(v)}`;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return `must be a mode name or { mode, threads }, got ${show(v)}`;
    for (const k of Object.keys(v)) if (k !== 'mode' && k !== 'threads') return `has an unknown key "${k}" (known: mode, threads)`;
    const o = v as { mode?: unknown; threads?: unknown };
    if (typeof o.mode !== 'string' || !modes.includes(o.mode)) return `.mode must be one of ${modes.join(', ')}, got ${show(o.mode)}`;
    return o.threads === undefined ? null : int(0, 1024)(o.threads) && `.threads ${int(0, 1024)(o.threads)}`;
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
      // { mode, threads } is shorthand for dispatch + threads.
      const o = value as { mode: DispatchChoice; threads?: number };
      out.dispatch = o.mode;
      if (o.threads !== undefined) out.threads = o.threads;
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
