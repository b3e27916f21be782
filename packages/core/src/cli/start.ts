import path from 'node:path';
import { handlerFiles, loadConfigFile, loadHandlers } from '../config/load.js';
import { resolveConfig, type DiocpConfig } from '../config/options.js';
import { createLogger } from '../logger.js';
import { createServer } from '../server.js';
import { diocpError } from '../errors.js';
import { intFlag, parse } from './args.js';

export const startUsage = `Usage: diocp start [options]

Start a diocp server with the handlers named in diocp.config.{mjs,js,json}.

Options:
  --config <file>        config file (default: diocp.config.mjs|js|json in this folder)
  --host <host>          address to listen on (default 127.0.0.1)
  --port <port>          TCP port (default 7001)
  --transport <t>        auto | native | net (default auto)
  --dispatch <mode>      inline | local-pool | remote (default inline)
  --bind <address>       remote: ZeroMQ address workers connect to (default tcp://127.0.0.1:7002)
  --threads <n>          handler threads for local-pool (default: one per core)
  --log-level <level>    fatal | error | warn | info | debug | trace | silent
  --debug                stack traces in HANDLER_ERROR replies
  -h, --help             show this help`;

export async function start(argv: string[]): Promise<number | null> {
  const { values } = parse(
    argv,
    {
      config: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      transport: { type: 'string' },
      dispatch: { type: 'string' },
      bind: { type: 'string' },
      threads: { type: 'string' },
      'log-level': { type: 'string' },
      debug: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    false,
  );
  if (values.help) {
    process.stdout.write(startUsage + '\n');
    return 0;
  }
  const cwd = process.cwd();
  const { config: fileConfig, file } = await loadConfigFile(cwd, values.config as string | undefined);
  // Validate the file on its own first, so its errors name the file.
  resolveConfig(fileConfig, file ?? 'defaults');
  // Flags override the file; each flag is validated under its config key.
  const flags: DiocpConfig = {};
  if (values.host !== undefined) flags.host = values.host as string;
  if (values.port !== undefined) flags.port = intFlag('port', values.port as string, 0, 65535);
  if (values.transport !== undefined) flags.transport = values.transport as DiocpConfig['transport'];
  const fileDispatch = (fileConfig as DiocpConfig).dispatch;
  if (values.dispatch !== undefined) {
    // --dispatch keeps the file's object form (its remote keys, its threads) when the mode matches.
    flags.dispatch = typeof fileDispatch === 'object' && fileDispatch?.mode === values.dispatch ? fileDispatch : (values.dispatch as DiocpConfig['dispatch']);
  }
  if (values.bind !== undefined) {
    const d = flags.dispatch ?? fileDispatch;
    if ((typeof d === 'object' ? d?.mode : d) !== 'remote') throw diocpError('DIOCP_ERR_CLI_USAGE', '--bind needs --dispatch remote (or dispatch: remote in the config)');
    flags.dispatch = { ...(typeof d === 'object' ? d : { mode: 'remote' as const }), bind: values.bind as string };
  }
  if (values.threads !== undefined) flags.threads = intFlag('threads', values.threads as string, 0, 1024);
  if (values['log-level'] !== undefined) flags.logLevel = values['log-level'] as string;
  if (values.debug) flags.debug = true;
  const config = resolveConfig({ ...(fileConfig as DiocpConfig), ...flags }, 'command-line flags');
  // The log level: --log-level, else the file's logLevel, else LOG_LEVEL, else info.
  const logger = createLogger(flags.logLevel ?? (fileConfig as DiocpConfig).logLevel);
  const baseDir = file ? path.dirname(file) : cwd;
  const handlers = await loadHandlers(config.handlers, baseDir);
  const { handlers: _h, setup, ...rest } = config;
  const server = createServer({
    ...rest,
    // Paths in the config are relative to the config file.
    setup: setup === null ? null : path.resolve(baseDir, setup),
    handlers,
    handlerModules: handlerFiles(config.handlers, baseDir),
    logger,
  });
  const addr = await server.listen();
  // Handlers first, then the announcement: a signal sent as soon as the line is seen is handled.
  const stopped = new Promise<void>((resolve) => server.closeOnSignals(() => resolve()));
  logger.info(
    { host: addr.host, port: addr.port, transport: addr.transport, dispatch: addr.dispatch, threads: addr.threads, remote: addr.remote, commands: handlers.length, config: file },
    `diocp listening on ${addr.host}:${addr.port} (transport ${addr.transport}, dispatch ${addr.dispatch}${addr.threads ? `, ${addr.threads} threads` : ''}${addr.remote ? `, workers connect to ${addr.remote}` : ''})`,
  );
  await stopped;
  logger.info('diocp stopped');
  return 0;
}
