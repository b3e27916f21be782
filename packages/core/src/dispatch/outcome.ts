import type { DiocpError } from '../errors.js';
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

/**
 * A diocp error by shape, not by class: handler modules may load another copy of @diocp/core
 * (a worker thread, a logic process, a test importing src and dist), whose classes differ.
 */
function asDiocpError(err: unknown): { code: string; status?: number; message: string; data?: unknown } | null {
  if (!(err instanceof Error)) return null;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('DIOCP_ERR_') ? (err as unknown as { code: string; status?: number; message: string }) : null;
}

/** Map anything a handler threw (or the framework raised) to a wire error. One place only. */
export function errorOutcome(err: unknown, debug: boolean): Outcome {
  let body: ErrorBody;
  const d = asDiocpError(err);
  if (d !== null && typeof d.status === 'number' && d.status !== 0) {
    body = { code: d.status, message: d.message, error: d.code };
    if (d.code === 'DIOCP_ERR_APPLICATION') {
      delete body.error;
      if (d.data !== undefined) body.data = d.data;
    }
  } else {
    const message = err instanceof Error ? err.message : String(err);
    // A framework error without a wire status of its own (a bad push, say) keeps its code.
    body = { code: Status.HANDLER_ERROR, message, error: d !== null ? d.code : 'DIOCP_ERR_HANDLER_FAILED' };
  }
  if (debug && err instanceof Error && err.stack) body.stack = err.stack;
  return { status: body.code, error: body };
}

export function frameworkError(err: DiocpError): Outcome {
  return { status: err.status ?? Status.HANDLER_ERROR, error: { code: err.status ?? Status.HANDLER_ERROR, message: err.message, error: err.code } };
}
