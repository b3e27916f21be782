// The public face of @diocp/core. reflect-metadata must load before tsyringe.
import 'reflect-metadata';

export { Command, type CommandHandler } from './decorators/command.js';
export type { CommandOptions } from './decorators/metadata.js';
export { inject, injectable, singleton, container, type DependencyContainer } from 'tsyringe';

export { createServer, DiocpServer, type ServerOptions } from './server.js';
export { defineConfig, resolveConfig, defaults as configDefaults, configKeys, type DiocpConfig, type ResolvedConfig } from './config/options.js';
export { remoteDefaults, type RemoteDispatchConfig, type ResolvedRemoteDispatch, type WorkerConfig } from './config/options.js';
export { loadConfigFile, loadHandlers, handlerFiles, runSetup } from './config/load.js';

export type { Context, GatewayApi } from './gateway/context.js';
export type { GatewayStats } from './gateway/stats.js';
export { bigintReplacer } from './gateway/stats.js';
export { Gateway, type GatewayOptions } from './gateway/gateway.js';

export { Client, connect, type ClientOptions, type RequestOptions, type ReconnectOptions } from './client/client.js';

export {
  DiocpError,
  ProtocolError,
  ApplicationError,
  RemoteError,
  diocpError,
  errorDefs,
  type ErrorCode,
} from './errors.js';

export * from './protocol/constants.js';
export { FrameDecoder, type FrameDecoderOptions } from './codec/decoder.js';
export { encodeFrame, writeHeader, type Frame } from './codec/frame.js';
export { payloadCodecs, rawCodec, jsonCodec, msgpackCodec, type PayloadCodec, type PayloadCodecName } from './codec/payload-codecs.js';

export type { Transport, TransportEvents, TransportOptions, TransportStats, CloseReason, RemoteAddress } from './transport/transport.js';
export { NetTransport } from './transport/transport-net.js';
export { selectTransport } from './transport/select-transport.js';

export type { Dispatcher, DispatcherHost, DispatchRequest, DispatchMode } from './dispatch/dispatcher.js';
export type { Outcome, ErrorBody } from './dispatch/outcome.js';
export { InlineDispatcher } from './dispatch/dispatcher-inline.js';
export { RemoteDispatcher, type RemoteDispatchStats, type RemoteWorkerStats } from './dispatch/remote/dispatcher-remote.js';
export { RemoteWorker, type RemoteWorkerOptions } from './dispatch/remote/worker.js';
export { runHandler } from './dispatch/run-handler.js';
export { Router } from './router/router.js';
export type { Route } from './router/route.js';
export { scanCommands, collectCommandClasses, type HandlerClass, type ScanOptions } from './router/scanner.js';
export { createLogger, type Logger } from './logger.js';
