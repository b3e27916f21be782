import path from 'node:path';
import { container as rootContainer } from 'tsyringe';
import { handlerFiles, loadConfigFile, loadHandlers, runSetup } from '../config/load.js';
import { remoteDefaults, resolveConfig, type DiocpConfig } from '../config/options.js';
import { checkClientCurve } from '../dispatch/remote/curve.js';
import { RemoteWorker } from '../dispatch/remote/worker.js';
import { diocpError } from '../errors.js';
import { createLogger } from '../logger.js';
import { Router } from '../router/router.js';
import { scanCommands } from '../router/scanner.js';
import { intFlag, parse } from './args.js';

/** Credit a worker announces when neither --concurrency nor worker.concurrency says. */
export const DEFAULT_CONCURRENCY = 1024;

export const workerUsage = `Usage: diocp worker [options]

Run a logic process for a gateway started with --dispatch remote: connect to its ROUTER, load
the handlers and setup named in diocp.config.{mjs,js,json}, and serve the requests it sends.

Options:
  --connect <address>    gateway address (default: worker.connect in the config, else ${remoteDefaults.bind})
  --config <file>        config file (default: diocp.config.mjs|js|json in this folder)
  --concurrency <n>      most requests held at once, the credit (default ${DEFAULT_CONCURRENCY})
  --threads <n>          run handlers on a pool of n threads (default 0: on this process's thread)
  --name <name>          name in the gateway's log and stats (default host:pid)
  --server-key <z85>     CURVE: the gateway's public key
  --public-key <z85>     CURVE: this worker's public key
  --secret-key <z85>     CURVE: this worker's secret key (or env DIOCP_CURVE_SECRET_KEY)
  --log-level <level>    fatal | error | warn | info | debug | trace | silent
  --debug                stack traces in HANDLER_ERROR replies
  -h, --help             show this help

SIGTERM or Ctrl-C: take no more work, finish what is held, tell the gateway, exit 0.`;

export async function worker(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      connect: { type: 'string' },
      config: { type: 'string' },
      concurrency: { type: 'string' },
      threads: { type: 'string' },
      name: { type: 'string' },
      'server-key': { type: 'string' },
      'public-key': { type: 'string' },
      'secret-key': { type: 'string' },
      'log-level': { type: 'string' },
      debug: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    false,
  );
  if (values.help) {
    process.stdout.write(workerUsage + '\n');
    return 0;
  }
  const cwd = process.cwd();
  const loaded = await loadConfigFile(cwd, values.config as string | undefined);
  const file = loaded.file;
  let fileConfig = loaded.config as DiocpConfig;
  // The secret key may stay out of the file: DIOCP_CURVE_SECRET_KEY fills it in.
  const fileCurve = fileConfig?.worker?.curve as Record<string, unknown> | null | undefined;
  if (fileCurve && typeof fileCurve === 'object' && fileCurve.secretKey === undefined && process.env.DIOCP_CURVE_SECRET_KEY !== undefined) {
    fileConfig = { ...fileConfig, worker: { ...fileConfig.worker, curve: { ...fileCurve, secretKey: process.env.DIOCP_CURVE_SECRET_KEY } as never } };
  }
  resolveConfig(fileConfig, file ?? 'defaults');
  // Flags override the file's `worker` section; validated under the same keys.
  const w: NonNullable<DiocpConfig['worker']> = { ...(fileConfig.worker ?? {}) };
  if (values.connect !== undefined) w.connect = values.connect as string;
  if (values.concurrency !== undefined) w.concurrency = intFlag('concurrency', values.concurrency as string, 1, 1_000_000);
  if (values.threads !== undefined) w.threads = intFlag('threads', values.threads as string, 0, 1024);
  if (values.name !== undefined) w.name = values.name as string;
  const serverKey = values['server-key'] as string | undefined;
  const publicKey = values['public-key'] as string | undefined;
  const secretKey = (values['secret-key'] as string | undefined) ?? process.env.DIOCP_CURVE_SECRET_KEY;
  if (serverKey !== undefined || publicKey !== undefined || values['secret-key'] !== undefined) {
    if (serverKey === undefined || publicKey === undefined || secretKey === undefined) {
      throw diocpError('DIOCP_ERR_CLI_USAGE', 'CURVE needs --server-key, --public-key and --secret-key (or DIOCP_CURVE_SECRET_KEY) together');
    }
    w.curve = checkClientCurve('--server-key/--public-key/--secret-key', { serverKey, publicKey, secretKey });
  }
  const logLevel = (values['log-level'] as string | undefined) ?? fileConfig.logLevel;
  const flags: DiocpConfig = { worker: w };
  if (logLevel !== undefined) flags.logLevel = logLevel;
  if (values.debug) flags.debug = true;
  const config = resolveConfig({ ...fileConfig, ...flags }, 'command-line flags');
  const logger = createLogger(logLevel);
  const baseDir = file ? path.dirname(file) : cwd;
  const setup = config.setup === null ? null : path.resolve(baseDir, config.setup);
  const threads = config.worker.threads ?? 0;
  const init = {
    handlerModules: handlerFiles(config.handlers, baseDir),
    setup,
    debug: config.debug,
    defaultTimeoutMs: config.defaultTimeoutMs,
    maxFrameSize: config.maxFrameSize,
    logLevel: logger.level,
  };
  let router: Router | null = null;
  if (threads === 0) {
    // As `diocp start` builds it inline: a DI or import error stops the worker here.
    const classes = await loadHandlers(config.handlers, baseDir);
    const container = rootContainer.createChildContainer();
    if (setup !== null) await runSetup(setup, container);
    router = new Router(scanCommands(classes, { container, defaultTimeoutMs: config.defaultTimeoutMs }));
  } else if (init.handlerModules.length === 0) {
    throw diocpError('DIOCP_ERR_CONFIG_INVALID', 'handlers', 'must name compiled handler modules for a worker with --threads (threads load them)');
  }
  const connect = config.worker.connect ?? remoteDefaults.bind;
  const remote = new RemoteWorker({
    connect,
    concurrency: config.worker.concurrency ?? DEFAULT_CONCURRENCY,
    threads,
    router,
    init,
    name: config.worker.name,
    curve: config.worker.curve ?? null,
    logger,
  });
  await remote.start();
  logger.info({ connect, threads, concurrency: config.worker.concurrency ?? DEFAULT_CONCURRENCY, commands: router?.routes.length, config: file }, `diocp worker started, connecting to ${connect}`);
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting without finishing');
      process.exit(1);
    }
    signalled = true;
    void remote.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const code = await remote.closed;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return code;
}
