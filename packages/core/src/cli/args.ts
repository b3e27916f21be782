import { parseArgs, type ParseArgsConfig } from 'node:util';
import { diocpError } from '../errors.js';

/** parseArgs with strict checking, its errors turned into DIOCP_ERR_CLI_USAGE. */
export function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>, allowPositionals: boolean) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw diocpError('DIOCP_ERR_CLI_USAGE', (err as Error).message);
  }
}

/** A flag that must be an integer in range; names the flag when it is not. */
export function intFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = /^0x[0-9a-f]+$/i.test(value) ? parseInt(value, 16) : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw diocpError('DIOCP_ERR_CLI_USAGE', `--${name} must be a whole number in ${min}..${max}, got "${value}"`);
  }
  return n;
}
