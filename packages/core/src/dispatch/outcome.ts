import { DiocpError, ApplicationError } from '../errors.js';
import { Status } from '../protocol/constants.js';

/** JSON body of an ERROR frame (PROTOCOL.md): `{ code, message, ... }`. */
export interface ErrorBody {
  /** Wire status, same as the frame's status field. */
  code: number;
  message: string;
  /** The DIOCP_ERR_* code, when the framework raised it. */
  error?: string;
  /** Application data of an ApplicationError. */
  data?: unknown;
  /** Only in debug mode. */
  stack?: string;
}

/** What running one request produced: response bytes, or an error to answer with. */
export type Outcome = { status: 0; payload: Buffer } | { status: number; error: ErrorBody };

export function ok(payload: Buffer): Outcome {
  return { status: 0, payload };
}

/** Map anything a handler threw (or the framework raised) to a wire error. One place only. */
export function errorOutcome(err: unknown, debug: boolean): Outcome {
  let body: ErrorBody;
  if (err instanceof DiocpError && err.status !== undefined && err.status !== 0) {
    body = { code: err.status, message: err.message, error: err.code };
    if (err instanceof ApplicationError) {
      delete body.error;
      if (err.data !== undefined) body.data = err.data;
    }
  } else {
    const message = err instanceof Error ? err.message : String(err);
    // A framework error without a wire status of its own (a bad push, say) keeps its code.
    body = { code: Status.HANDLER_ERROR, message, error: err instanceof DiocpError ? err.code : 'DIOCP_ERR_HANDLER_FAILED' };
  }
  if (debug && err instanceof Error && err.stack) body.stack = err.stack;
  return { status: body.code, error: body };
}

export function frameworkError(err: DiocpError): Outcome {
  return { status: err.status ?? Status.HANDLER_ERROR, error: { code: err.status ?? Status.HANDLER_ERROR, message: err.message, error: err.code } };
}
