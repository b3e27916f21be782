import 'reflect-metadata';
import { injectable } from 'tsyringe';
import { defineCommandMetadata, type CommandOptions } from './metadata.js';
import type { Context } from '../gateway/context.js';

/** What a command class looks like: one `handle` method, sync or async. */
export interface CommandHandler<Req = any, Res = any> {
  handle(request: Req, ctx: Context): Res | Promise<Res>;
}

/**
 * Declare a class as the handler of command `id` (0x0001–0xFEFF). The class is constructed
 * through tsyringe, so its constructor parameters are injected by type or by `@inject(token)`.
 * Validation (id range, duplicates, a missing `handle`) happens when the server starts and
 * names the class.
 *
 * ```ts
 * @Command(0x01)
 * export class Echo { handle(payload: Buffer) { return payload; } }
 * ```
 */
export function Command(id: number, options: CommandOptions = {}): ClassDecorator {
  return (target) => {
    defineCommandMetadata(target, { id, options: { ...options } });
    // Recording constructor parameter types for tsyringe is injectable()'s job.
    injectable()(target as unknown as new (...args: any[]) => unknown);
  };
}
