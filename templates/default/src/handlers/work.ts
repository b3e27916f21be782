import { ApplicationError, Command } from '@diocp/core';

/**
 * 0x05 (JSON): `{"ms": 1}` → `{"spun": <iterations>}` after about `ms` of CPU work (0–100).
 * Stands for real CPU-bound logic: with local-pool dispatch it runs on a handler thread and
 * the gateway keeps answering other connections (PING) meanwhile.
 */
@Command(0x05, { codec: 'json' })
export class Work {
  handle(req: { ms?: unknown }): { spun: number } {
    const ms = req?.ms;
    if (typeof ms !== 'number' || !(ms >= 0 && ms <= 100)) throw new ApplicationError(102, 'expected {"ms": <number 0-100>}');
    const end = performance.now() + ms;
    let spun = 0;
    while (performance.now() < end) spun++;
    return { spun };
  }
}
