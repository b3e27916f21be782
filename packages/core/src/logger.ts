import { pino, type Logger } from 'pino';

/** The framework's logger: pino, JSON lines on stdout, level from the config or LOG_LEVEL. */
export function createLogger(level?: string): Logger {
  return pino({ name: 'diocp', level: level ?? process.env.LOG_LEVEL ?? 'info' });
}
export type { Logger };
