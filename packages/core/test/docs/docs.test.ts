// The reference pages must follow the code: every error code (of @diocp/core and of
// @diocp/jobs), wire status and config key is documented, and the docs name no code that no
// longer exists.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { jobErrorDefs } from '@diocp/jobs';
import { nativeErrorDefs } from '@diocp/native-iocp';
import { configDefaults, configKeys, errorDefs, Status } from '../../src/index.js';

// packages/core/test/docs → repo root
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const docsDir = path.join(repoRoot, 'docs');
const read = (name: string) => readFileSync(path.join(docsDir, name), 'utf8');

/** Table rows of a Markdown page, as trimmed cells (`\|` inside a cell is not a separator). */
function rows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.trimStart().startsWith('|'))
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, '')
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
}

const codes = Object.keys(errorDefs);
/** @diocp/jobs codes: thrown in the application's process only, never sent on the wire. */
const jobCodes = Object.keys(jobErrorDefs);
/** @diocp/native-iocp codes: raised in the server's process, never sent on the wire. */
const nativeCodes = Object.keys(nativeErrorDefs);
const statuses = Object.entries(Status) as [string, number][];

describe('docs/', () => {
  it('is found from this test file', () => {
    expect(existsSync(path.join(repoRoot, 'package.json'))).toBe(true);
    expect(existsSync(path.join(docsDir, 'errors.md'))).toBe(true);
    expect(existsSync(path.join(docsDir, 'config.md'))).toBe(true);
  });
});

describe('docs/errors.md', () => {
  const errors = read('errors.md');
  const table = rows(errors);

  it.each(codes)('documents %s in a table row of its own', (code) => {
    expect(errors.includes('`' + code + '`'), `\`${code}\` is not in docs/errors.md`).toBe(true);
    expect(table.some((cells) => cells[0] === '`' + code + '`'), `no row starting with \`${code}\``).toBe(true);
  });

  it.each(codes)('gives the wire status %s maps to', (code) => {
    const row = table.find((cells) => cells[0] === '`' + code + '`');
    expect(row, `no row starting with \`${code}\``).toBeDefined();
    const status = (errorDefs as Record<string, { status?: number }>)[code]!.status;
    const name = statuses.find(([, n]) => n === status)?.[0];
    if (status === undefined) {
      // No fixed status: never on the wire ("—"), or the application's / server's own status.
      expect(row![1]).not.toMatch(/^\d/);
    } else {
      expect(row![1]).toBe(`${status} \`${name}\``);
    }
  });

  it.each(statuses)('documents status %s = %i in the status table', (name, code) => {
    const row = table.find((cells) => cells[0] === String(code));
    expect(row, `no row for status ${code}`).toBeDefined();
    expect(row![1]).toBe('`' + name + '`');
  });

  it('documents the reserved (9–99) and application (100+) ranges', () => {
    expect(table.some((cells) => cells[0] === '9–99' && cells[1] === 'reserved')).toBe(true);
    expect(table.some((cells) => cells[0] === '100–65535' && cells[1] === 'application')).toBe(true);
  });

  it.each(jobCodes)('documents the @diocp/jobs code %s in a table row of its own', (code) => {
    expect(errors.includes('`' + code + '`'), `\`${code}\` is not in docs/errors.md`).toBe(true);
    expect(table.some((cells) => cells[0] === '`' + code + '`'), `no row starting with \`${code}\``).toBe(true);
  });

  it.each(nativeCodes)('documents the @diocp/native-iocp code %s in a table row of its own', (code) => {
    expect(table.some((cells) => cells[0] === '`' + code + '`' && (cells[2] ?? '').length > 10), `no described row for \`${code}\``).toBe(true);
  });

  it('has a row with a description for every @diocp/jobs code, and none for a code jobErrorDefs lacks', () => {
    const documented = table.map((cells) => cells[0] ?? '').filter((c) => /^`DIOCP_ERR_JOBS_[A-Z0-9_]+`$/.test(c)).map((c) => c.slice(1, -1));
    expect(documented.filter((c) => !jobCodes.includes(c))).toEqual([]);
    for (const code of jobCodes) {
      const row = table.find((cells) => cells[0] === '`' + code + '`');
      expect(row && row.length >= 3 && row[2]!.length > 10, `the row of \`${code}\` says nothing`).toBe(true);
    }
  });

  it('names no DIOCP_ERR_* code that errorDefs / jobErrorDefs do not have (here, on other docs pages, in READMEs)', () => {
    const known = [...codes, ...jobCodes, ...nativeCodes];
    const pages = [
      ...readdirSync(docsDir).filter((f) => f.endsWith('.md')).map((f) => path.join(docsDir, f)),
      ...['README.md', 'packages/core/README.md', 'packages/jobs/README.md', 'packages/native-iocp/README.md', 'templates/default/README.md'].map((f) => path.join(repoRoot, f)),
    ].filter((file) => existsSync(file));
    const stale: string[] = [];
    for (const page of pages) {
      for (const m of readFileSync(page, 'utf8').matchAll(/DIOCP_ERR_[A-Z0-9_]*[A-Z0-9]/g)) {
        if (!known.includes(m[0])) stale.push(`${path.relative(repoRoot, page)}: ${m[0]}`);
      }
    }
    expect(stale).toEqual([]);
  });
});

describe('docs/config.md', () => {
  const config = read('config.md');
  const table = rows(config);
  const keyRows = table.filter((cells) => /^`[a-zA-Z]+`$/.test(cells[0] ?? ''));

  it.each(configKeys)('documents %s in a row of the keys table', (key) => {
    expect(config.includes('`' + key + '`'), `\`${key}\` is not in docs/config.md`).toBe(true);
    expect(keyRows.some((cells) => cells[0] === '`' + key + '`'), `no row starting with \`${key}\``).toBe(true);
  });

  it.each(configKeys)('gives the real default of %s', (key) => {
    const row = keyRows.find((cells) => cells[0] === '`' + key + '`');
    expect(row, `no row starting with \`${key}\``).toBeDefined();
    const value = (configDefaults as Record<string, unknown>)[key];
    const expected = typeof value === 'string' ? value : JSON.stringify(value);
    // Quotes are dropped on both sides (an object default is written as JSON in the cell).
    expect(row![2]!.replace(/[`"']/g, '')).toBe(expected.replace(/"/g, ''));
  });

  it('documents no key that does not exist', () => {
    const documented = keyRows.map((cells) => cells[0]!.slice(1, -1));
    expect(documented.filter((k) => !(configKeys as string[]).includes(k))).toEqual([]);
  });
});
