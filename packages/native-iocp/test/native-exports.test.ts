/**
 * The addon's exports against src/native.ts, the declarations-only contract of the C++ side:
 * every declared export, constant and NativeServer member exists in the addon, and the addon
 * exports nothing undeclared.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../src/loader.js';

const source = ts.createSourceFile('native.ts', fs.readFileSync(path.join(import.meta.dirname, '../src/native.ts'), 'utf8'), ts.ScriptTarget.ES2022, true);

function interfaceMembers(name: string): string[] {
  for (const st of source.statements) {
    if (ts.isInterfaceDeclaration(st) && st.name.text === name) return st.members.map((m) => (m.name as ts.Identifier).text);
  }
  throw new Error(`interface ${name} not found in native.ts`);
}

function classMembers(name: string): { instance: string[]; hasConstructor: boolean } {
  for (const st of source.statements) {
    if (ts.isClassDeclaration(st) && st.name?.text === name) {
      return {
        instance: st.members.filter((m) => !ts.isConstructorDeclaration(m)).map((m) => (m.name as ts.Identifier).text),
        hasConstructor: st.members.some(ts.isConstructorDeclaration),
      };
    }
  }
  throw new Error(`class ${name} not found in native.ts`);
}

describe('native.ts matches the addon', () => {
  const addon = loadAddon() as unknown as Record<string, unknown>;

  it('exports exactly what NativeAddon declares', () => {
    expect(Object.keys(addon).sort()).toEqual(interfaceMembers('NativeAddon').sort());
    expect(typeof addon.NativeServer).toBe('function');
    expect(typeof addon.describeError).toBe('function');
  });

  it('constants: exactly the NativeConstants names, each a number', () => {
    const constants = addon.constants as Record<string, unknown>;
    expect(Object.keys(constants).sort()).toEqual(interfaceMembers('NativeConstants').sort());
    for (const [name, value] of Object.entries(constants)) expect(typeof value, name).toBe('number');
  });

  it('NativeServer: a constructor with exactly the declared instance members', () => {
    const declared = classMembers('NativeServer');
    expect(declared.hasConstructor).toBe(true);
    const proto = (addon.NativeServer as { prototype: object }).prototype;
    const actual = Object.getOwnPropertyNames(proto).filter((n) => n !== 'constructor');
    expect(actual.sort()).toEqual(declared.instance.sort());
  });

  it('a NativeServer built with bad arguments throws a coded native error', () => {
    const NativeServer = addon.NativeServer as new (...args: unknown[]) => unknown;
    const thrown = (() => {
      try {
        new NativeServer('not options', 42);
      } catch (err) {
        return err as { code?: string; errno?: number; syscall?: string };
      }
      return null;
    })();
    expect(thrown?.code).toBe('DIOCP_ERR_NATIVE_ARGUMENT');
    expect(thrown?.errno).toBe(0);
    expect(thrown?.syscall).toBe('');
  });

  it('describeError renders the codes and messages of @diocp/core', async () => {
    const { protocolError } = await import('../../core/src/errors.js');
    const describe = addon.describeError as (kind: number, value: number, limit: number) => { code: string; message: string };
    const cases = [
      [1, 0xab0c, 0, protocolError('DIOCP_ERR_PROTOCOL_BAD_MAGIC', 0xab0c)],
      [2, 7, 0, protocolError('DIOCP_ERR_PROTOCOL_BAD_VERSION', 7)],
      [3, 0x11, 0, protocolError('DIOCP_ERR_PROTOCOL_RESERVED_FLAG', 0x11)],
      [4, 0x04, 0, protocolError('DIOCP_ERR_PROTOCOL_BAD_DIRECTION', 0x04, 'server')],
      [5, 2000, 1024, protocolError('DIOCP_ERR_PROTOCOL_FRAME_TOO_LARGE', 2000, 1024)],
    ] as const;
    for (const [kind, value, limit, want] of cases) expect(describe(kind, value, limit)).toEqual({ code: want.code, message: want.message });
  });
});
