import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { findPayloadCodec, type PayloadCodec } from '../codec/payload-codecs.js';
import type { CommandHandler } from '../decorators/command.js';
import { getCommandMetadata, type CommandOptions } from '../decorators/metadata.js';
import { diocpError } from '../errors.js';
import { MAX_USER_COMMAND, MIN_USER_COMMAND } from '../protocol/constants.js';
import type { Route } from './route.js';

export type HandlerClass = abstract new (...args: any[]) => unknown;

export interface ScanOptions {
  /** Container the handlers are resolved from; a child of tsyringe's root container by default. */
  container?: DependencyContainer;
  /** Timeout for commands that set none; 0 = none. */
  defaultTimeoutMs?: number;
  /**
   * Construct one instance per class (default true). False for a gateway whose handlers run
   * elsewhere (a worker thread, a logic process): it needs only the table.
   */
  instantiate?: boolean;
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set<keyof CommandOptions>(['codec', 'timeoutMs', 'ordered', 'retry']);

/**
 * Build the command table from decorated classes: validate every declaration, then resolve
 * one instance of each class through the DI container. Runs once at start; every problem is
 * a start-up error that names the class.
 */
export function scanCommands(classes: readonly HandlerClass[], options: ScanOptions = {}): Route[] {
  const container = options.container ?? rootContainer.createChildContainer();
  const byId = new Map<number, string>();
  const routes: Route[] = [];
  // The same class listed twice (by path and by reference, say) is one handler, not a duplicate.
  classes = [...new Set(classes)];
  for (const cls of classes) {
    const name = cls.name || '<anonymous class>';
    const meta = getCommandMetadata(cls);
    if (meta === undefined) throw diocpError('DIOCP_ERR_COMMAND_NOT_DECORATED', name);
    const id = meta.id;
    if (!Number.isInteger(id) || id < MIN_USER_COMMAND || id > MAX_USER_COMMAND) {
      throw diocpError('DIOCP_ERR_COMMAND_ID_RANGE', id, name);
    }
    const first = byId.get(id);
    if (first !== undefined) throw diocpError('DIOCP_ERR_COMMAND_DUPLICATE_ID', id, first, name);
    byId.set(id, name);
    if (typeof (cls.prototype as { handle?: unknown })?.handle !== 'function') {
      throw diocpError('DIOCP_ERR_COMMAND_NO_HANDLE', name);
    }
    const opts = meta.options;
    for (const key of Object.keys(opts)) {
      if (!KNOWN_OPTIONS.has(key)) {
        throw diocpError('DIOCP_ERR_COMMAND_BAD_OPTION', name, key, 'is not an option (known: codec, timeoutMs, ordered, retry)');
      }
    }
    const codec = resolveCodec(opts.codec, name);
    const timeoutMs = opts.timeoutMs ?? options.defaultTimeoutMs ?? 0;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 2 ** 31 - 1) {
      throw diocpError('DIOCP_ERR_COMMAND_BAD_OPTION', name, 'timeoutMs', `must be a whole number of ms >= 0, got ${String(opts.timeoutMs)}`);
    }
    for (const flag of ['ordered', 'retry'] as const) {
      if (opts[flag] !== undefined && typeof opts[flag] !== 'boolean') {
        throw diocpError('DIOCP_ERR_COMMAND_BAD_OPTION', name, flag, `must be true or false, got ${String(opts[flag])}`);
      }
    }
    routes.push({ command: id, name, codec, timeoutMs, ordered: opts.ordered === true, retry: opts.retry !== false, handler: undefined });
  }
  if (options.instantiate === false) return routes;
  // Resolve only once every declaration is known to be valid.
  return routes.map((route, i) => {
    let handler: CommandHandler;
    try {
      handler = container.resolve(classes[i] as unknown as new () => CommandHandler);
    } catch (err) {
      throw diocpError('DIOCP_ERR_COMMAND_RESOLVE', route.name, (err as Error).message);
    }
    return { ...route, handler };
  });
}

function resolveCodec(codec: CommandOptions['codec'], cls: string): PayloadCodec {
  const found = findPayloadCodec(codec);
  if (typeof found === 'string') throw diocpError('DIOCP_ERR_COMMAND_BAD_OPTION', cls, 'codec', found);
  return found;
}

/** Every exported class of the given modules that carries @Command. */
export function collectCommandClasses(modules: readonly Record<string, unknown>[]): HandlerClass[] {
  const out: HandlerClass[] = [];
  for (const mod of modules) {
    for (const value of Object.values(mod)) {
      if (typeof value === 'function' && getCommandMetadata(value) !== undefined && !out.includes(value as HandlerClass)) {
        out.push(value as HandlerClass);
      }
    }
  }
  return out;
}
