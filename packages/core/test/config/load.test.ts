import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfigFile, loadHandlers, resolveConfig, Command, DiocpError, scanCommands } from '../../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Compiled package entry (run `npm run build` first); plain .mjs fixtures import the decorator from it. */
const distEntry = path.resolve(here, '../../dist/index.js');

let root: string;
let n = 0;
/** A fresh folder for each case: imported modules are cached by URL, so never reuse a path. */
async function tempDir(files: Record<string, string> = {}): Promise<string> {
  const dir = path.join(root, `case-${++n}`);
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    const full = path.join(dir, name);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, text);
  }
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<DiocpError> {
  try {
    await p;
  } catch (err) {
    return err as DiocpError;
  }
  throw new Error('expected a rejection');
}

/** Source of an .mjs module exporting a class decorated as command `id` at runtime. */
function handlerModule(className: string, id: number, body = 'handle(p) { return p; }'): string {
  return [
    `import { Command } from ${JSON.stringify(distEntry)};`,
    `export class ${className} { ${body} }`,
    `Command(${id})(${className});`,
    '',
  ].join('\n');
}

beforeAll(async () => {
  if (!existsSync(distEntry)) throw new Error(`${distEntry} is missing: run \`npm run build\` first`);
  root = await mkdtemp(path.join(os.tmpdir(), 'diocp-config-test-'));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('loadConfigFile: finding the file', () => {
  it('no config file → {} and file null', async () => {
    const dir = await tempDir();
    expect(await loadConfigFile(dir)).toEqual({ config: {}, file: null });
  });

  it('finds diocp.config.mjs and takes its default export', async () => {
    const dir = await tempDir({ 'diocp.config.mjs': 'export default { port: 7100, handlers: ["./h"] };\n' });
    const got = await loadConfigFile(dir);
    expect(got.file).toBe(path.join(dir, 'diocp.config.mjs'));
    expect(got.config).toEqual({ port: 7100, handlers: ['./h'] });
  });

  it('finds diocp.config.js (ES module package)', async () => {
    const dir = await tempDir({
      'package.json': '{"type":"module"}',
      'diocp.config.js': 'export default { port: 7200 };\n',
    });
    const got = await loadConfigFile(dir);
    expect(got.file).toBe(path.join(dir, 'diocp.config.js'));
    expect(got.config).toEqual({ port: 7200 });
  });

  it('finds diocp.config.json', async () => {
    const dir = await tempDir({ 'diocp.config.json': '{ "port": 7300, "transport": "net" }' });
    const got = await loadConfigFile(dir);
    expect(got.file).toBe(path.join(dir, 'diocp.config.json'));
    expect(got.config).toEqual({ port: 7300, transport: 'net' });
  });

  it('prefers .mjs over .js over .json', async () => {
    const all = await tempDir({
      'package.json': '{"type":"module"}',
      'diocp.config.mjs': 'export default { port: 1 };\n',
      'diocp.config.js': 'export default { port: 2 };\n',
      'diocp.config.json': '{ "port": 3 }',
    });
    expect((await loadConfigFile(all)).config).toEqual({ port: 1 });
    const two = await tempDir({
      'package.json': '{"type":"module"}',
      'diocp.config.js': 'export default { port: 2 };\n',
      'diocp.config.json': '{ "port": 3 }',
    });
    expect((await loadConfigFile(two)).config).toEqual({ port: 2 });
  });

  it('an explicit file (relative to cwd) is used instead of the search, whatever its name', async () => {
    const dir = await tempDir({
      'diocp.config.json': '{ "port": 3 }',
      'conf/other.mjs': 'export default { port: 4242 };\n',
    });
    const got = await loadConfigFile(dir, 'conf/other.mjs');
    expect(got.file).toBe(path.join(dir, 'conf/other.mjs'));
    expect(got.config).toEqual({ port: 4242 });
  });

  it('an explicit absolute path works from any cwd', async () => {
    const dir = await tempDir({ 'my.json': '{ "host": "0.0.0.0" }' });
    const other = await tempDir();
    expect((await loadConfigFile(other, path.join(dir, 'my.json'))).config).toEqual({ host: '0.0.0.0' });
  });

  it('the loaded config goes through resolveConfig', async () => {
    const dir = await tempDir({ 'diocp.config.mjs': 'export default { port: 0, logLevel: "silent" };\n' });
    const { config } = await loadConfigFile(dir);
    expect(resolveConfig(config)).toMatchObject({ port: 0, logLevel: 'silent', host: '127.0.0.1' });
  });
});

describe('loadConfigFile: errors are DIOCP_ERR_CONFIG_LOAD naming the file', () => {
  it('explicit file that does not exist', async () => {
    const dir = await tempDir();
    const err = await rejection(loadConfigFile(dir, 'nope.mjs'));
    expect(err).toBeInstanceOf(DiocpError);
    expect(err.code).toBe('DIOCP_ERR_CONFIG_LOAD');
    expect(err.message).toContain(path.join(dir, 'nope.mjs'));
  });

  it('.mjs with a syntax error', async () => {
    const dir = await tempDir({ 'diocp.config.mjs': 'export default { port: 7001,, };\n' });
    const err = await rejection(loadConfigFile(dir));
    expect(err).toBeInstanceOf(DiocpError);
    expect(err.code).toBe('DIOCP_ERR_CONFIG_LOAD');
    expect(err.message).toContain(path.join(dir, 'diocp.config.mjs'));
  });

  it('.mjs without a default export, with a hint how to write one', async () => {
    const dir = await tempDir({ 'diocp.config.mjs': 'export const config = { port: 7001 };\n' });
    const err = await rejection(loadConfigFile(dir));
    expect(err.code).toBe('DIOCP_ERR_CONFIG_LOAD');
    expect(err.message).toContain(path.join(dir, 'diocp.config.mjs'));
    expect(err.message).toMatch(/default export/);
  });

  it('.mjs that throws while loading', async () => {
    const dir = await tempDir({ 'diocp.config.mjs': 'throw new Error("boom in config");\nexport default {};\n' });
    const err = await rejection(loadConfigFile(dir));
    expect(err.code).toBe('DIOCP_ERR_CONFIG_LOAD');
    expect(err.message).toContain(path.join(dir, 'diocp.config.mjs'));
    expect(err.message).toContain('boom in config');
  });

  it('.json that is not valid JSON', async () => {
    const dir = await tempDir({ 'diocp.config.json': '{ port: 7001 }' });
    const err = await rejection(loadConfigFile(dir));
    expect(err.code).toBe('DIOCP_ERR_CONFIG_LOAD');
    expect(err.message).toContain(path.join(dir, 'diocp.config.json'));
  });
});

describe('loadHandlers', () => {
  it('loads every exported @Command class of a folder, recursively, and they scan into routes', async () => {
    const dir = await tempDir({
      'handlers/echo.mjs': handlerModule('Echo', 0x01),
      'handlers/nested/upper.mjs': handlerModule('Upper', 0x02, 'handle(p) { return String(p).toUpperCase(); }'),
      'handlers/util.mjs': 'export class NotACommand { handle() {} }\nexport const x = 1;\n',
      'handlers/readme.txt': 'not a module',
    });
    const classes = await loadHandlers(['./handlers'], dir);
    expect(classes.map((c) => c.name).sort()).toEqual(['Echo', 'Upper']);
    const routes = scanCommands(classes);
    expect(routes.map((r) => r.command).sort()).toEqual([1, 2]);
  });

  it('loads a single module file, relative to baseDir', async () => {
    const dir = await tempDir({ 'one.mjs': handlerModule('One', 0x10) });
    const classes = await loadHandlers(['one.mjs'], dir);
    expect(classes.map((c) => c.name)).toEqual(['One']);
  });

  it('accepts classes directly and mixes them with paths', async () => {
    class Direct {
      handle() {
        return 'direct';
      }
    }
    Command(0x20)(Direct);
    const dir = await tempDir({ 'h/a.mjs': handlerModule('A', 0x21) });
    const classes = await loadHandlers([Direct, './h'], dir);
    expect(classes.map((c) => c.name).sort()).toEqual(['A', 'Direct']);
    expect(classes).toContain(Direct);
  });

  it('a class given directly and also exported by a listed module is taken once', async () => {
    const dir = await tempDir({ 'h/shared.mjs': handlerModule('Shared', 0x22) });
    const mod = (await import(pathToFileURL(path.join(dir, 'h/shared.mjs')).href)) as { Shared: new () => unknown };
    const classes = await loadHandlers([mod.Shared, './h'], dir);
    expect(classes).toEqual([mod.Shared]);
    expect(scanCommands(classes).map((r) => r.command)).toEqual([0x22]);
  });

  it('skips *.test.* and *.spec.* files in a folder', async () => {
    const dir = await tempDir({
      'h/real.mjs': handlerModule('Real', 0x30),
      'h/real.test.mjs': 'throw new Error("test file must not be imported");\n',
      'h/real.spec.js': 'throw new Error("spec file must not be imported");\n',
    });
    const classes = await loadHandlers(['./h'], dir);
    expect(classes.map((c) => c.name)).toEqual(['Real']);
  });

  it('a path that does not exist → DIOCP_ERR_CONFIG_INVALID naming "handlers" and the path', async () => {
    const dir = await tempDir();
    const err = await rejection(loadHandlers(['./dist/handlers'], dir));
    expect(err).toBeInstanceOf(DiocpError);
    expect(err.code).toBe('DIOCP_ERR_CONFIG_INVALID');
    expect(err.message).toContain('"handlers"');
    expect(err.message).toContain(path.join(dir, 'dist/handlers'));
  });

  it('a folder without any @Command class → DIOCP_ERR_COMMAND_NONE naming the entry', async () => {
    const dir = await tempDir({ 'empty/plain.mjs': 'export class Plain { handle(p) { return p; } }\n' });
    const err = await rejection(loadHandlers(['./empty'], dir));
    expect(err).toBeInstanceOf(DiocpError);
    expect(err.code).toBe('DIOCP_ERR_COMMAND_NONE');
    expect(err.message).toContain('./empty');
  });

  it('an empty folder → DIOCP_ERR_COMMAND_NONE', async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, 'nothing'));
    expect((await rejection(loadHandlers(['./nothing'], dir))).code).toBe('DIOCP_ERR_COMMAND_NONE');
  });

  it('no entries at all → DIOCP_ERR_COMMAND_NONE telling to set "handlers"', async () => {
    const dir = await tempDir();
    const err = await rejection(loadHandlers([], dir));
    expect(err.code).toBe('DIOCP_ERR_COMMAND_NONE');
    expect(err.message).toContain('handlers');
  });

  it('a handler module that fails to import → DIOCP_ERR_CONFIG_LOAD naming the module', async () => {
    const dir = await tempDir({
      'h/good.mjs': handlerModule('Good', 0x40),
      'h/broken.mjs': 'export class Broken { handle( { }\n',
    });
    const err = await rejection(loadHandlers(['./h'], dir));
    expect(err).toBeInstanceOf(DiocpError);
    expect(err.code).toBe('DIOCP_ERR_CONFIG_LOAD');
    expect(err.message).toContain(path.join(dir, 'h/broken.mjs'));
  });
});
