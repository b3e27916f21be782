import os from 'node:os';
import path from 'node:path';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { runSetup } from './config/load.js';
import { PoolDispatcher } from './dispatch/dispatcher-pool.js';
import { resolveConfig, type DiocpConfig, type ResolvedConfig } from './config/options.js';
import type { Dispatcher } from './dispatch/dispatcher.js';
import { InlineDispatcher } from './dispatch/dispatcher-inline.js';
import { RemoteDispatcher, type RemoteDispatchStats } from './dispatch/remote/dispatcher-remote.js';
import { diocpError } from './errors.js';
import type { Context, GatewayApi } from './gateway/context.js';
import { Gateway } from './gateway/gateway.js';
import type { GatewayStats } from './gateway/stats.js';
import { createLogger, type Logger } from './logger.js';
import { Router } from './router/router.js';
import { scanCommands, type HandlerClass } from './router/scanner.js';
import { selectTransport } from './transport/select-transport.js';
import type { Transport } from './transport/transport.js';

export interface ServerOptions extends Omit<DiocpConfig, 'handlers'> {
  /** The @Command classes to serve. */
  handlers: HandlerClass[];
  /**
   * The compiled modules the handler classes come from (absolute paths): handler threads load
   * these in local-pool mode. `diocp start` fills it from the `handlers` config.
   */
  handlerModules?: string[];
  /** DI container to resolve handlers from (default: a child of tsyringe's root container). */
  container?: DependencyContainer;
  /** Logger (default: pino at `logLevel`). */
  logger?: Logger;
  /** Use this transport instead of the one `transport` names (tests, custom transports). */
  transportInstance?: Transport;
  /** Use this dispatcher instead of the one `dispatch` names (conformance tests, custom modes). */
  dispatcherInstance?: Dispatcher;
}

/**
 * A diocp server: transport → gateway → router → dispatcher → handlers.
 *
 * ```ts
 * const server = await createServer({ handlers: [Echo], port: 7001 }).listen();
 * ```
 */
export class DiocpServer {
  readonly config: ResolvedConfig;
  readonly logger: Logger;
  private gatewayInstance: Gateway | null = null;
  private transportName = '';
  private address: { host: string; port: number } | null = null;
  private signalHandler: (() => void) | null = null;
  private dispatcher: Dispatcher | null = null;

  constructor(private readonly options: ServerOptions) {
    const { handlers, handlerModules: _m, container: _c, logger: _l, transportInstance: _t, dispatcherInstance: _d, ...rest } = options;
    this.config = resolveConfig({ ...rest, handlers }, 'server options');
    // An explicit logLevel wins; otherwise LOG_LEVEL, otherwise info.
    this.logger = options.logger ?? createLogger(options.logLevel);
  }

  /** Build the command table (start-up errors name the class), pick the transport, listen. */
  async listen(): Promise<{ host: string; port: number; transport: string; dispatch: string; threads?: number; remote?: string }> {
    if (this.gatewayInstance) throw diocpError('DIOCP_ERR_SERVER_STATE', 'listen() was already called on this server');
    const cfg = this.config;
    const setup = cfg.setup === null ? null : path.resolve(cfg.setup);
    const dispatcher: Dispatcher = this.options.dispatcherInstance ?? this.createDispatcher(setup);
    let container = this.options.container;
    // Handlers are constructed only where they run: here for inline, in each thread otherwise.
    const instantiate = dispatcher.mode === 'inline';
    if (instantiate && setup !== null) {
      container ??= rootContainer.createChildContainer();
      await runSetup(setup, container);
    }
    const routes = scanCommands(this.options.handlers, { container, defaultTimeoutMs: cfg.defaultTimeoutMs, instantiate });
    const router = new Router(routes);
    const transportOptions = {
      host: cfg.host,
      port: cfg.port,
      maxFrameSize: cfg.maxFrameSize,
      maxConnections: cfg.maxConnections,
      idleTimeoutMs: cfg.idleTimeoutMs,
      maxSendQueueBytes: cfg.maxSendQueueBytes,
    };
    let transport = this.options.transportInstance;
    if (transport === undefined) {
      const selected = await selectTransport(cfg.transport, transportOptions);
      transport = selected.transport;
      if (selected.fallbackReason) this.logger.info(`native transport not used (${selected.fallbackReason}); using node:net`);
    }
    const gateway = new Gateway(
      {
        maxInFlightPerConnection: cfg.maxInFlightPerConnection,
        maxInFlight: cfg.maxInFlight,
        maxFrameSize: cfg.maxFrameSize,
        debug: cfg.debug,
        logger: this.logger,
      },
      router,
      dispatcher,
      transport,
    );
    await dispatcher.start(gateway);
    let addr: { host: string; port: number };
    try {
      addr = await transport.listen(gateway);
    } catch (err) {
      // Port taken, say: do not leave handler threads behind.
      await dispatcher.stop();
      throw err;
    }
    this.gatewayInstance = gateway;
    this.dispatcher = dispatcher;
    this.transportName = transport.name;
    this.address = addr;
    const threads = dispatcher.mode === 'local-pool' ? this.config.threads || os.availableParallelism() : undefined;
    const remote = dispatcher instanceof RemoteDispatcher ? dispatcher.boundEndpoint : undefined;
    return { ...addr, transport: transport.name, dispatch: dispatcher.mode, threads, remote };
  }

  private createDispatcher(setup: string | null): Dispatcher {
    const cfg = this.config;
    if (cfg.dispatch === 'inline') return new InlineDispatcher();
    // Remote: handlers run in worker processes that load them from their own config.
    if (cfg.dispatch === 'remote') return new RemoteDispatcher(cfg.remote);
    const modules = this.options.handlerModules ?? [];
    if (modules.length === 0) {
      throw diocpError('DIOCP_ERR_CONFIG_INVALID', 'handlers', 'must name compiled handler modules for local-pool dispatch (threads load them; classes cannot cross threads)');
    }
    return new PoolDispatcher({
      threads: cfg.threads || os.availableParallelism(),
      handlerModules: modules.map((m) => path.resolve(m)),
      setup,
      debug: cfg.debug,
      defaultTimeoutMs: cfg.defaultTimeoutMs,
      maxFrameSize: cfg.maxFrameSize,
      logLevel: this.logger.level,
    });
  }

  /** Where the server listens (after `listen`). */
  get port(): number {
    return this.address?.port ?? 0;
  }

  get transport(): string {
    return this.transportName;
  }

  /** push / broadcast from outside a handler. */
  get gateway(): GatewayApi {
    if (!this.gatewayInstance) throw diocpError('DIOCP_ERR_SERVER_STATE', 'the server is not listening yet: await server.listen() first');
    return this.gatewayInstance;
  }

  context(connectionId: number): Context | undefined {
    return this.gatewayInstance?.context(connectionId);
  }

  /** The gateway's counters; in remote mode also `dispatch`: per-worker stats, retries, queue. */
  stats(): GatewayStats & { dispatch?: RemoteDispatchStats } {
    if (!this.gatewayInstance) throw diocpError('DIOCP_ERR_SERVER_STATE', 'the server is not listening yet: await server.listen() first');
    const stats: GatewayStats & { dispatch?: RemoteDispatchStats } = this.gatewayInstance.stats();
    const d = this.dispatcher as { stats?: () => RemoteDispatchStats } | null;
    if (typeof d?.stats === 'function') stats.dispatch = d.stats();
    return stats;
  }

  /** Graceful shutdown (see Gateway.close). Safe to call more than once. */
  async close(): Promise<void> {
    if (this.signalHandler) {
      process.off('SIGINT', this.signalHandler);
      process.off('SIGTERM', this.signalHandler);
      this.signalHandler = null;
    }
    await this.shutdown();
  }

  private async shutdown(): Promise<void> {
    await this.gatewayInstance?.close(this.config.shutdownTimeoutMs);
  }

  /** Close gracefully on SIGINT/SIGTERM, then call `onClosed` (the CLI exits there). */
  closeOnSignals(onClosed: (signal: string) => void): void {
    let signalled = false;
    const handler = (signal?: NodeJS.Signals) => {
      if (signalled) {
        // A second Ctrl-C means "now": skip waiting for running requests.
        this.logger.warn({ signal }, 'second signal: exiting without waiting');
        onClosed(signal ?? 'SIGTERM');
        return;
      }
      signalled = true;
      this.logger.info({ signal }, 'shutting down: no new connections, answering requests already read');
      // Not close(): the handlers stay registered so that a second signal is ours too.
      this.shutdown().then(
        () => {
          if (this.signalHandler) {
            process.off('SIGINT', this.signalHandler);
            process.off('SIGTERM', this.signalHandler);
            this.signalHandler = null;
          }
          onClosed(signal ?? 'SIGTERM');
        },
        (err: unknown) => {
          this.logger.error({ err }, 'shutdown failed');
          onClosed(signal ?? 'SIGTERM');
        },
      );
    };
    this.signalHandler = handler as () => void;
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  }
}

export function createServer(options: ServerOptions): DiocpServer {
  return new DiocpServer(options);
}
