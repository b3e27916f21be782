import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { afterAll, beforeAll } from 'vitest';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const coreDir = path.resolve(here, '../..');
export const bin = path.join(coreDir, 'bin/diocp.js');
export const distEntry = path.join(coreDir, 'dist/index.js');

export function assertBuilt(): void {
  if (!existsSync(path.join(coreDir, 'dist/cli/main.js'))) {
    throw new Error('packages/core/dist is missing: run `npm run build` before the CLI tests');
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run `diocp <args>` to completion (killed after `timeoutMs`). */
export function runCli(args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: opts.cwd ?? coreDir, timeout: opts.timeoutMs ?? 10_000, env: { ...cleanEnv(), ...opts.env } },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout: String(stdout),
          stderr: String(stderr),
        });
      },
    );
  });
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LOG_LEVEL;
  delete env.NODE_OPTIONS;
  delete env.DIOCP_CURVE_SECRET_KEY;
  return env;
}

/** Write `files` (relative path → text) under `dir`. */
export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    const full = path.join(dir, name);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, text);
  }
}

/** A plain .mjs module with classes decorated at runtime through the compiled package. */
export function handlersModule(): string {
  return [
    `import { Command } from ${JSON.stringify(distEntry)};`,
    'export class Echo { handle(p) { return p; } }',
    'Command(0x01)(Echo);',
    'export class Sum { handle(req) { return { sum: req.a + req.b }; } }',
    "Command(0x02, { codec: 'json' })(Sum);",
    "export class Fail { handle() { throw new Error('handler blew up'); } }",
    'Command(0x03)(Fail);',
    '',
  ].join('\n');
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A `diocp <command>` child process with its stdout parsed as pino JSON lines. */
export class DiocpProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: (() => void)[] = [];

  constructor(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [bin, command, ...args], { cwd, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (text: string) => {
      this.stdout += text;
      partial += text;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          // not a log line
        }
      }
      this.wake();
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => {
      this.stderr += text;
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.wake();
        resolve({ code, signal });
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Wait for a log line matching `pred`; rejects when the process exits first or after `timeoutMs`. */
  async waitForLine(pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(pred);
      if (found) return found;
      if (!this.running) throw new Error(`process exited before the expected log line\n${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a log line\n${this.describe()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Send `signal` (SIGKILL by default) if the process still runs, and wait for it to end. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }

  /** Its output so far, for failure messages. */
  describe(): string {
    return `stdout:\n${this.stdout}\nstderr:\n${this.stderr}`;
  }
}

/** A `diocp start` child process. */
export class ServerProcess extends DiocpProcess {
  constructor(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
    super('start', args, cwd, env);
  }

  /** The "diocp listening" line. */
  listening(): Promise<LogLine> {
    return this.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('diocp listening'));
  }
}

/** A `diocp worker` child process. */
export class WorkerProcess extends DiocpProcess {
  constructor(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
    super('worker', args, cwd, env);
  }
}

/**
 * Per-file scratch folders: checks the CLI is built, makes a root folder under the OS temp
 * folder before the file's tests and removes it after. Returns `tempDir(files)`, which
 * creates a fresh case folder holding `files`.
 */
export function useTempDirs(prefix: string): (files?: Record<string, string>) => Promise<string> {
  let root = '';
  let n = 0;
  beforeAll(async () => {
    assertBuilt();
    root = await mkdtemp(path.join(os.tmpdir(), prefix));
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });
  return async (files = {}) => {
    const dir = path.join(root, `case-${++n}`);
    await mkdir(dir, { recursive: true });
    await writeFiles(dir, files);
    return dir;
  };
}
