import { generateKeyPair } from '../dispatch/remote/curve.js';
import { diocpError } from '../errors.js';
import { parse } from './args.js';

export const keygenUsage = `Usage: diocp keygen [options]

Print a new CURVE key pair for remote dispatch: one for the gateway, one per worker.
The output can be pasted into a shell or an .env file, or appended to one:
  diocp keygen >> worker.env

Options:
  --json                 print {"publicKey": "...", "secretKey": "..."} instead
  -h, --help             show this help

The public key goes to the other side (a worker's into the gateway's dispatch.curve.allow,
the gateway's into each worker's server key); the secret key stays on its machine.
See docs/remote.md.`;

export function keygen(argv: string[]): number {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    process.stdout.write(keygenUsage + '\n');
    return 0;
  }
  if (positionals.length > 0) throw diocpError('DIOCP_ERR_CLI_USAGE', `keygen takes no arguments, got "${positionals[0]}"`);
  const { publicKey, secretKey } = generateKeyPair();
  if (values.json) {
    process.stdout.write(JSON.stringify({ publicKey, secretKey }, null, 2) + '\n');
    return 0;
  }
  // Z85 uses $ & ! ( ) < > and the like but never a quote or a backslash: single quotes make
  // each line safe to paste into sh/bash/zsh and are stripped by .env loaders.
  process.stdout.write(
    '# diocp CURVE key pair (diocp keygen). The secret key is a password: keep it off git and logs.\n' +
      `DIOCP_CURVE_PUBLIC_KEY='${publicKey}'\n` +
      `DIOCP_CURVE_SECRET_KEY='${secretKey}'\n`,
  );
  return 0;
}
