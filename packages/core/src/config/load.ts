import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { diocpError } from '../errors.js';
import type { DependencyContainer } from 'tsyringe';
import { collectCommandClasses, type HandlerClass } from '../router/scanner.js';

export const CONFIG_FILES = ['diocp.config.mjs', 'diocp.config.js', 'diocp.config.json'] as const;

/**
 * Load a config file: `file` if given, else the first of CONFIG_FILES in `cwd`. Resolves to
 * `{}` with `file: null` when there is none. A .js/.mjs file's default export is the config.
 */
export async function loadConfigFile(cwd: string, file?: string): Promise<{ config: unknown; file: string | null }> {
  let found: string | undefined;
  if (file !== undefined) {
    found = path.resolve(cwd, file);
    if (!existsSync(found)) throw diocpError('DIOCP_ERR_CONFIG_LOAD', found, 'no such file');
  } else {
    found = CONFIG_FILES.map((f) => path.join(cwd, f)).find((f) => existsSync(f));
    if (found === undefined) return { config: {}, file: null };
  }
  try {
    if (found.endsWith('.json')) return { config: JSON.parse(await readFile(found, 'utf8')), file: found };
    const mod = (await import(pathToFileURL(found).href)) as { default?: unknown };
    if (mod.default === undefined) throw new Error('it has no default export (write `export default defineConfig({...})`)');
    return { config: mod.default, file: found };
  } catch (err) {
    if ((err as { code?: string }).code === 'DIOCP_ERR_CONFIG_LOAD') throw err;
    throw diocpError('DIOCP_ERR_CONFIG_LOAD', found, (err as Error).message);
  }
}

const MODULE_EXT = /\.(c|m)?js$/;

/**
 * Turn the `handlers` config entries into classes: module paths (files, or folders searched
 * recursively for .js/.mjs/.cjs files) are imported relative to `baseDir` and every exported
 * @Command class is taken; classes are taken as they are.
 */
export async function loadHandlers(entries: readonly (string | HandlerClass)[], baseDir: string): Promise<HandlerClass[]> {
  const classes: HandlerClass[] = entries.filter((e): e is HandlerClass => typeof e === 'function');
  const files = handlerFiles(entries, baseDir);
  const modules: Record<string, unknown>[] = [];
  for (const file of files) {
    try {
      modules.push((await import(pathToFileURL(file).href)) as Record<string, unknown>);
    } catch (err) {
      throw diocpError('DIOCP_ERR_CONFIG_LOAD', file, (err as Error).message);
    }
  }
  for (const cls of collectCommandClasses(modules)) if (!classes.includes(cls)) classes.push(cls);
  if (classes.length === 0) {
    throw diocpError('DIOCP_ERR_COMMAND_NONE', entries.length ? entries.map(String).join(', ') : 'the config (set "handlers")');
  }
  return classes;
}

/**
 * The module files that the path entries of `handlers` name (folders searched recursively),
 * absolute. Worker threads load these in local-pool mode.
 */
export function handlerFiles(entries: readonly (string | HandlerClass)[], baseDir: string): string[] {
  const files: string[] = [];
  for (const entry of entries) {
    if (typeof entry !== 'string') continue;
    const full = path.resolve(baseDir, entry);
    if (!existsSync(full)) throw diocpError('DIOCP_ERR_CONFIG_INVALID', 'handlers', `names ${full}, which does not exist (did you run the build?)`);
    if (statSync(full).isDirectory()) files.push(...listModules(full));
    else files.push(full);
  }
  return files;
}

/** Run a setup module's default export `(container) => void` on `container`. */
export async function runSetup(file: string, container: DependencyContainer): Promise<void> {
  let mod: { default?: unknown; setup?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown; setup?: unknown };
  } catch (err) {
    throw diocpError('DIOCP_ERR_CONFIG_LOAD', file, (err as Error).message);
  }
  const fn = mod.default ?? mod.setup;
  if (typeof fn !== 'function') throw diocpError('DIOCP_ERR_CONFIG_LOAD', file, 'a setup module must export a function (container) => void as default');
  await (fn as (c: DependencyContainer) => unknown)(container);
}

function listModules(dir: string): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...listModules(full));
    else if (MODULE_EXT.test(ent.name) && !/\.(test|spec)\./.test(ent.name)) out.push(full);
  }
  return out;
}
