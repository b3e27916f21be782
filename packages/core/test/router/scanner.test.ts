import { describe, expect, it } from 'vitest';
import { Command, DiocpError, createServer, scanCommands, inject } from '../../src/index.js';
import { silent } from '../fixtures/server.js';

function startupError(fn: () => unknown): DiocpError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DiocpError);
    return err as DiocpError;
  }
  throw new Error('expected a start-up error');
}

describe('command scanning (start-up errors name the class)', () => {
  it('rejects a duplicate command id, naming both classes', () => {
    @Command(0x42) class First { handle() {} }
    @Command(0x42) class Second { handle() {} }
    const err = startupError(() => scanCommands([First, Second]));
    expect(err.code).toBe('DIOCP_ERR_COMMAND_DUPLICATE_ID');
    expect(err.message).toBe('command 0x0042 is declared twice: by First and by Second');
  });

  it.each([0, 0xff00, 0xffff, 0x10000, -1, 1.5])('rejects command id %s outside 0x0001-0xfeff', (id) => {
    @Command(id) class OutOfRange { handle() {} }
    const err = startupError(() => scanCommands([OutOfRange]));
    expect(err.code).toBe('DIOCP_ERR_COMMAND_ID_RANGE');
    expect(err.message).toMatch(/^OutOfRange: command id/);
  });

  it('rejects a class without handle()', () => {
    @Command(0x43) class NoHandle { run() {} }
    const err = startupError(() => scanCommands([NoHandle]));
    expect(err.code).toBe('DIOCP_ERR_COMMAND_NO_HANDLE');
    expect(err.message).toContain('NoHandle');
  });

  it('rejects unknown options and bad option values', () => {
    @Command(0x44, { codec: 'yaml' as never }) class BadCodec { handle() {} }
    @Command(0x45, { timeoutMs: -5 }) class BadTimeout { handle() {} }
    @Command(0x46, { retries: 3 } as never) class UnknownOption { handle() {} }
    expect(startupError(() => scanCommands([BadCodec])).message).toMatch(/^BadCodec: @Command option "codec" "yaml" is unknown/);
    expect(startupError(() => scanCommands([BadTimeout])).message).toMatch(/^BadTimeout: @Command option "timeoutMs"/);
    expect(startupError(() => scanCommands([UnknownOption])).message).toMatch(/^UnknownOption: @Command option "retries" is not an option/);
  });

  it('rejects a class without @Command, and a dependency the container cannot provide', () => {
    class Plain { handle() {} }
    expect(startupError(() => scanCommands([Plain])).code).toBe('DIOCP_ERR_COMMAND_NOT_DECORATED');
    @Command(0x47) class NeedsToken { constructor(@inject('missing-token') readonly v: string) {} handle() {} }
    const err = startupError(() => scanCommands([NeedsToken]));
    expect(err.code).toBe('DIOCP_ERR_COMMAND_RESOLVE');
    expect(err.message).toMatch(/^NeedsToken could not be constructed/);
  });

  it('makes the server refuse to start, without listening', async () => {
    @Command(0x48) class A { handle() {} }
    @Command(0x48) class B { handle() {} }
    const server = createServer({ handlers: [A, B], port: 0, logger: silent, transport: 'net' });
    await expect(server.listen()).rejects.toMatchObject({ code: 'DIOCP_ERR_COMMAND_DUPLICATE_ID' });
  });

  it('applies the server default timeout to commands that set none', () => {
    @Command(0x49) class Plain { handle() {} }
    @Command(0x4a, { timeoutMs: 5 }) class Own { handle() {} }
    const [plain, own] = scanCommands([Plain, Own], { defaultTimeoutMs: 1234 });
    expect(plain!.timeoutMs).toBe(1234);
    expect(own!.timeoutMs).toBe(5);
  });
});
