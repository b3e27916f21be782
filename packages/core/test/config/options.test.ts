import { describe, expect, it } from 'vitest';
import { resolveConfig, configDefaults, configKeys, defineConfig, DiocpError } from '../../src/index.js';

function thrown(fn: () => unknown): DiocpError {
  try {
    fn();
  } catch (err) {
    return err as DiocpError;
  }
  throw new Error('expected a throw');
}

const MiB = 1024 * 1024;

describe('resolveConfig: defaults', () => {
  it('an empty config gets every documented default', () => {
    expect(resolveConfig({})).toEqual({
      host: '127.0.0.1',
      port: 7001,
      transport: 'auto',
      dispatch: 'inline',
      threads: 0,
      setup: null,
      handlers: [],
      maxFrameSize: 16 * MiB,
      maxConnections: 10_000,
      idleTimeoutMs: 120_000,
      maxInFlightPerConnection: 256,
      maxInFlight: 100_000,
      maxSendQueueBytes: 32 * MiB,
      defaultTimeoutMs: 30_000,
      shutdownTimeoutMs: 10_000,
      debug: false,
      logLevel: 'info',
      remote: {
        bind: 'tcp://127.0.0.1:7002',
        heartbeatMs: 1000,
        liveness: 3,
        maxRetries: 2,
        noWorkerWaitMs: 5000,
        maxQueued: 100_000,
        curve: null,
      },
      worker: {},
    });
  });

  it('configDefaults and configKeys list the same keys, and every key has a default', () => {
    expect([...configKeys].sort()).toEqual(Object.keys(configDefaults).sort());
    expect(Object.keys(resolveConfig({})).sort()).toEqual([...configKeys].sort());
  });

  it('given values override defaults; missing ones are filled in; undefined counts as missing', () => {
    class H {}
    const cfg = resolveConfig({ port: 0, host: '0.0.0.0', transport: 'net', handlers: ['./dist', H], debug: true, logLevel: 'silent', idleTimeoutMs: undefined });
    expect(cfg.port).toBe(0);
    expect(cfg.host).toBe('0.0.0.0');
    expect(cfg.transport).toBe('net');
    expect(cfg.handlers).toEqual(['./dist', H]);
    expect(cfg.debug).toBe(true);
    expect(cfg.logLevel).toBe('silent');
    expect(cfg.idleTimeoutMs).toBe(120_000);
    expect(cfg.maxConnections).toBe(10_000);
  });

  it('does not modify the object it was given', () => {
    const input = { port: 9000 };
    resolveConfig(input);
    expect(input).toEqual({ port: 9000 });
  });

  it('defineConfig returns its argument (typed identity)', () => {
    const c = { port: 1234 };
    expect(defineConfig(c)).toBe(c);
  });

  it('every boundary value that is valid is accepted', () => {
    const ok: Record<string, unknown>[] = [
      { port: 0 },
      { port: 65535 },
      { transport: 'auto' },
      { transport: 'native' },
      { transport: 'net' },
      { dispatch: 'inline' },
      { handlers: [] },
      { maxFrameSize: 0 },
      { maxFrameSize: 0xffff_ffff, maxSendQueueBytes: 0xffff_ffff + 16 },
      { maxConnections: 1 },
      { maxConnections: 1_000_000 },
      { idleTimeoutMs: 0 },
      { idleTimeoutMs: 2 ** 31 - 1 },
      { maxInFlightPerConnection: 1 },
      { maxInFlight: 1 },
      { maxInFlight: 100_000_000 },
      { maxSendQueueBytes: 16 * MiB + 16 },
      { maxFrameSize: 100, maxSendQueueBytes: 116 },
      { defaultTimeoutMs: 0 },
      { shutdownTimeoutMs: 0 },
      { debug: false },
      ...['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((logLevel) => ({ logLevel })),
    ];
    for (const c of ok) {
      const cfg = resolveConfig(c) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(c)) expect(cfg[k], JSON.stringify(c)).toEqual(v);
    }
  });
});

describe('resolveConfig: invalid values name the key', () => {
  const invalid: Record<string, unknown[]> = {
    host: ['', 42, null, true, ['127.0.0.1'], {}],
    port: [-1, 65536, 1.5, '7001', NaN, Infinity, null, true, 99999],
    transport: ['quantum', 'NET', '', 1, null],
    dispatch: ['remote-pool', 'worker', '', 0, null, { mode: 'remote', threads: 2 }, { mode: 'remote', bind: 'http://x' }, { mode: 'inline', bind: 'tcp://127.0.0.1:1' }],
    remote: [null, 'tcp://127.0.0.1:7002', { bind: 'tcp://127.0.0.1' }, { bind: 'tcp://:7002' }, { heartbeatMs: 5 }, { liveness: 0 }, { maxRetries: -1 }, { noWorkerWaitMs: 1.5 }, { maxQueued: '1' }, { curve: { publicKey: 'x' } }, { port: 1 }],
    worker: [null, 'tcp://x:1', { connect: 'localhost:7002' }, { concurrency: 0 }, { threads: 2000 }, { name: '' }, { curve: { serverKey: 'short' } }, { bogus: 1 }],
    handlers: ['./dist', [1], [null], [{}], {}, null, 5],
    maxFrameSize: [-1, 0x1_0000_0000, 1.25, '1024', null, NaN],
    maxConnections: [0, -5, 1_000_001, 2.5, '10', null],
    idleTimeoutMs: [-1, 2 ** 31, 0.5, '120000', null],
    maxInFlightPerConnection: [0, 1_000_001, 1.1, '256', null],
    maxInFlight: [0, 100_000_001, -1, '1', null],
    maxSendQueueBytes: [15, 0, -1, 1.5, '33554432', null, Number.MAX_SAFE_INTEGER + 2],
    defaultTimeoutMs: [-1, 2 ** 31, 1.5, '30000', null],
    shutdownTimeoutMs: [-1, 2 ** 31, 1.5, '10000', null],
    debug: ['true', 1, 0, null, 'yes'],
    logLevel: ['verbose', 'INFO', '', 30, null],
    threads: [-1, 1.5, '2', 1025, null],
    setup: ['', 5, true, {}],
  };

  it('covers every config key', () => {
    expect(Object.keys(invalid).sort()).toEqual([...configKeys].sort());
  });

  for (const [key, values] of Object.entries(invalid)) {
    for (const value of values) {
      it(`${key}: ${typeof value === 'number' ? String(value) : JSON.stringify(value)} → DIOCP_ERR_CONFIG_INVALID naming "${key}"`, () => {
        const err = thrown(() => resolveConfig({ [key]: value }));
        expect(err).toBeInstanceOf(DiocpError);
        expect(err.code).toBe('DIOCP_ERR_CONFIG_INVALID');
        expect(err.message).toContain(`"${key}"`);
      });
    }
  }

  it('the message also names the source and shows the bad value', () => {
    const err = thrown(() => resolveConfig({ port: 99999 }, '/srv/app/diocp.config.mjs'));
    expect(err.message).toContain('"port"');
    expect(err.message).toContain('/srv/app/diocp.config.mjs');
    expect(err.message).toContain('99999');
    expect(err.message).toContain('0..65535');
  });

  it('lists the allowed choices for an enum key', () => {
    const err = thrown(() => resolveConfig({ transport: 'quantum' }));
    expect(err.message).toContain('quantum');
    for (const c of ['auto', 'native', 'net']) expect(err.message).toContain(c);
  });

  for (const input of [null, undefined, 42, 'port=1', [], [1, 2], true]) {
    it(`a config that is not an object (${JSON.stringify(input) ?? 'undefined'}) → DIOCP_ERR_CONFIG_LOAD naming the source`, () => {
      const err = thrown(() => resolveConfig(input, 'my.config'));
      expect(err).toBeInstanceOf(DiocpError);
      expect(err.code).toBe('DIOCP_ERR_CONFIG_LOAD');
      expect(err.message).toContain('my.config');
      expect(err.message).toContain('the config must be an object');
    });
  }
});

describe('resolveConfig: maxSendQueueBytes vs maxFrameSize', () => {
  it('rejects maxSendQueueBytes < maxFrameSize + 16, naming maxSendQueueBytes and the minimum', () => {
    const err = thrown(() => resolveConfig({ maxFrameSize: 1000, maxSendQueueBytes: 1015 }));
    expect(err.code).toBe('DIOCP_ERR_CONFIG_INVALID');
    expect(err.message).toContain('"maxSendQueueBytes"');
    expect(err.message).toContain('1016');
  });

  it('accepts maxSendQueueBytes == maxFrameSize + 16', () => {
    expect(resolveConfig({ maxFrameSize: 1000, maxSendQueueBytes: 1016 }).maxSendQueueBytes).toBe(1016);
  });

  it('checks a raised maxFrameSize against the default maxSendQueueBytes too', () => {
    const err = thrown(() => resolveConfig({ maxFrameSize: 32 * MiB }));
    expect(err.code).toBe('DIOCP_ERR_CONFIG_INVALID');
    expect(err.message).toContain('maxSendQueueBytes');
  });

  it('checks a lowered maxSendQueueBytes against the default maxFrameSize', () => {
    const err = thrown(() => resolveConfig({ maxSendQueueBytes: 16 * MiB }));
    expect(err.code).toBe('DIOCP_ERR_CONFIG_INVALID');
    expect(err.message).toContain('maxSendQueueBytes');
  });
});

describe('resolveConfig: unknown keys', () => {
  const typos: [string, string][] = [
    ['prot', 'port'],
    ['Port', 'port'],
    ['hots', 'host'],
    ['maxFrameSzie', 'maxFrameSize'],
    ['idleTimeout', 'idleTimeoutMs'],
    ['loglevel', 'logLevel'],
    ['handler', 'handlers'],
    ['transprot', 'transport'],
  ];
  for (const [typo, meant] of typos) {
    it(`"${typo}" → DIOCP_ERR_CONFIG_UNKNOWN_KEY with a "did you mean ${meant}" hint`, () => {
      const err = thrown(() => resolveConfig({ [typo]: 1 }, 'diocp.config.mjs'));
      expect(err).toBeInstanceOf(DiocpError);
      expect(err.code).toBe('DIOCP_ERR_CONFIG_UNKNOWN_KEY');
      expect(err.message).toContain(`"${typo}"`);
      expect(err.message).toMatch(new RegExp(`did you mean "${meant}"`));
      expect(err.message).toContain('diocp.config.mjs');
    });
  }

  it('a key that resembles nothing gets no hint', () => {
    const err = thrown(() => resolveConfig({ completelyUnrelatedSetting: 1 }));
    expect(err.code).toBe('DIOCP_ERR_CONFIG_UNKNOWN_KEY');
    expect(err.message).toContain('"completelyUnrelatedSetting"');
    expect(err.message).not.toMatch(/did you mean/);
  });

  it('an unknown key is reported even when its value is undefined', () => {
    expect(thrown(() => resolveConfig({ prot: undefined })).code).toBe('DIOCP_ERR_CONFIG_UNKNOWN_KEY');
  });

  // Names that exist on Object.prototype are not config keys either.
  for (const key of ['toString', 'constructor', 'hasOwnProperty', 'valueOf']) {
    it(`"${key}" (an Object.prototype name) → DIOCP_ERR_CONFIG_UNKNOWN_KEY`, () => {
      const err = thrown(() => resolveConfig({ [key]: 1 }));
      expect(err).toBeInstanceOf(DiocpError);
      expect(err.code).toBe('DIOCP_ERR_CONFIG_UNKNOWN_KEY');
      expect(err.message).toContain(`"${key}"`);
    });
  }

  it('"__proto__" as an own key (e.g. from a JSON config file) → DIOCP_ERR_CONFIG_UNKNOWN_KEY', () => {
    const err = thrown(() => resolveConfig(JSON.parse('{"__proto__": {"port": 1}}')));
    expect(err).toBeInstanceOf(DiocpError);
    expect(err.code).toBe('DIOCP_ERR_CONFIG_UNKNOWN_KEY');
  });
});

describe('resolveConfig: results are independent', () => {
  it('mutating one resolved config does not change the defaults or later results', () => {
    const first = resolveConfig({});
    class Extra {}
    first.handlers.push(Extra);
    first.port = 1;
    expect(configDefaults.handlers).toEqual([]);
    expect(configDefaults.port).toBe(7001);
    const second = resolveConfig({});
    expect(second.handlers).toEqual([]);
    expect(second.port).toBe(7001);
  });
});

describe('resolveConfig: dispatch as { mode, threads }', () => {
  it('flattens into dispatch and threads', () => {
    const c = resolveConfig({ dispatch: { mode: 'local-pool', threads: 3 } });
    expect(c.dispatch).toBe('local-pool');
    expect(c.threads).toBe(3);
    expect(resolveConfig({ dispatch: { mode: 'inline' } }).threads).toBe(0);
  });

  it.each([
    [{ mode: 'remote-ish' }, /\.mode must be one of inline, local-pool/],
    [{ threads: 2 }, /\.mode must be one of/],
    [{ mode: 'local-pool', threads: -1 }, /\.threads must be a whole number in 0\.\.1024/],
    [{ mode: 'local-pool', workers: 2 }, /unknown key "workers"/],
    [[], /must be a mode name or \{ mode, threads \}/],
  ])('%j → DIOCP_ERR_CONFIG_INVALID naming dispatch', (value, message) => {
    const err = thrown(() => resolveConfig({ dispatch: value }));
    expect(err.code).toBe('DIOCP_ERR_CONFIG_INVALID');
    expect(err.message).toContain('"dispatch"');
    expect(err.message).toMatch(message);
  });
});

describe('resolveConfig: remote dispatch', () => {
  it('dispatch: { mode: "remote", ... } sets the mode and the remote keys, defaults filling the rest', () => {
    const cfg = resolveConfig({ dispatch: { mode: 'remote', bind: 'tcp://*:7100', heartbeatMs: 200, maxRetries: 0 } });
    expect(cfg.dispatch).toBe('remote');
    expect(cfg.remote).toEqual({ bind: 'tcp://*:7100', heartbeatMs: 200, liveness: 3, maxRetries: 0, noWorkerWaitMs: 5000, maxQueued: 100_000, curve: null });
  });

  it('the remote key works alone and the dispatch object overrides it', () => {
    const cfg = resolveConfig({ remote: { liveness: 5, bind: 'ipc:///tmp/diocp.sock' }, dispatch: { mode: 'remote', bind: 'tcp://127.0.0.1:*' } });
    expect(cfg.remote.liveness).toBe(5);
    expect(cfg.remote.bind).toBe('tcp://127.0.0.1:*');
    expect(resolveConfig({ dispatch: 'remote' }).remote.bind).toBe('tcp://127.0.0.1:7002');
  });

  it('names the nested key that is wrong', () => {
    expect(thrown(() => resolveConfig({ dispatch: { mode: 'remote', heartbeatMs: 1 } })).message).toMatch(/"dispatch".*\.heartbeatMs must be a whole number in 10\.\./);
    expect(thrown(() => resolveConfig({ dispatch: { mode: 'remote', threads: 2 } })).message).toMatch(/unknown key "threads"/);
    expect(thrown(() => resolveConfig({ worker: { concurency: 3 } })).message).toMatch(/"worker".*unknown key "concurency"/);
  });

  it('accepts a worker section', () => {
    const w = { connect: 'tcp://10.0.0.5:7002', concurrency: 64, threads: 2, name: 'logic-1' };
    expect(resolveConfig({ worker: w }).worker).toEqual(w);
  });
});
