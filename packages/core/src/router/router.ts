import type { Route } from './route.js';

/** The dispatch table, keyed by command id; built once, read on every request. */
export class Router {
  private readonly table: (Route | undefined)[] = new Array(0x10000).fill(undefined);
  readonly routes: readonly Route[];

  constructor(routes: readonly Route[]) {
    this.routes = routes;
    for (const r of routes) this.table[r.command] = r;
  }

  get(command: number): Route | undefined {
    return this.table[command];
  }
}
