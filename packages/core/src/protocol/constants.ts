/**
 * Wire constants of the diocp client protocol, version 1 (docs/protocol.md).
 * This file is the only place these numbers are written down in code.
 */

export const MAGIC_0 = 0xd1;
export const MAGIC_1 = 0x0c;
export const MAGIC = 0xd10c;
export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 16;

/** Default `maxFrameSize`: 16 MiB of payload. */
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;

export const Flags = {
  NONE: 0x00,
  RESPONSE: 0x01,
  ERROR: 0x02,
  PUSH: 0x04,
  ONEWAY: 0x08,
} as const;

/** Bits 0x10–0x80: reserved, must be zero. */
export const RESERVED_FLAGS = 0xf0;
/** Flags only the server may set. */
export const SERVER_FLAGS = Flags.RESPONSE | Flags.ERROR | Flags.PUSH;

export const MIN_USER_COMMAND = 0x0001;
export const MAX_USER_COMMAND = 0xfeff;
export const PING_COMMAND = 0xffff;

/** Wire status codes (PROTOCOL.md "Status codes"). 100+ belong to applications. */
export const Status = {
  OK: 0,
  PROTOCOL_ERROR: 1,
  UNKNOWN_COMMAND: 2,
  HANDLER_ERROR: 3,
  TIMEOUT: 4,
  UNAVAILABLE: 5,
  OVERLOADED: 6,
  BAD_REQUEST: 7,
  UNAUTHORIZED: 8,
} as const;

export type StatusName = keyof typeof Status;

export const MIN_APPLICATION_STATUS = 100;
export const MAX_STATUS = 0xffff;

const statusNames = new Map<number, StatusName>(
  (Object.entries(Status) as [StatusName, number][]).map(([name, code]) => [code, name]),
);

/** Name of a wire status: `OK`…`UNAUTHORIZED`, `APPLICATION` for 100+, `RESERVED` otherwise. */
export function statusName(status: number): StatusName | 'APPLICATION' | 'RESERVED' {
  const known = statusNames.get(status);
  if (known !== undefined) return known;
  return status >= MIN_APPLICATION_STATUS ? 'APPLICATION' : 'RESERVED';
}
