import { Buffer } from 'node:buffer';
import { connect } from '../client/client.js';
import { RemoteError } from '../errors.js';
import { payloadCodecs, type PayloadCodecName } from '../codec/payload-codecs.js';
import { diocpError } from '../errors.js';
import { intFlag, parse } from './args.js';

export const callUsage = `Usage: diocp call [options] <command> [payload]

Send one request and print the reply.

Arguments:
  <command>              command id, decimal or hex (1, 0x01, 0xffff for PING)
  [payload]              request payload; text for raw, JSON text for --codec json|msgpack

Options:
  --host <host>          server address (default 127.0.0.1)
  --port <port>          server port (required)
  --codec <c>            raw | json | msgpack (default raw)
  --hex                  raw payload given as hex; reply printed as hex
  --timeout <ms>         reply timeout (default 5000)
  -h, --help             show this help`;

export async function call(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      host: { type: 'string' },
      port: { type: 'string' },
      codec: { type: 'string' },
      hex: { type: 'boolean' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(callUsage + '\n');
    return 0;
  }
  const port = intFlag('port', values.port as string | undefined, 1, 65535);
  if (port === undefined) throw diocpError('DIOCP_ERR_CLI_USAGE', '--port is required');
  if (positionals.length < 1 || positionals.length > 2) {
    throw diocpError('DIOCP_ERR_CLI_USAGE', `expected <command> [payload], got ${positionals.length} arguments`);
  }
  const command = intFlag('command', positionals[0], 1, 0xffff)!;
  const codecName = (values.codec as string | undefined) ?? 'raw';
  if (!(codecName in payloadCodecs)) throw diocpError('DIOCP_ERR_CLI_USAGE', `--codec must be raw, json or msgpack, got "${codecName}"`);
  const text = positionals[1] ?? '';
  let payload: unknown;
  if (codecName === 'raw') {
    if (values.hex && !/^([0-9a-f]{2})*$/i.test(text)) throw diocpError('DIOCP_ERR_CLI_USAGE', 'payload is not an even number of hex digits');
    payload = values.hex ? Buffer.from(text, 'hex') : Buffer.from(text, 'utf8');
  } else {
    try {
      payload = text === '' ? undefined : JSON.parse(text);
    } catch (err) {
      throw diocpError('DIOCP_ERR_CLI_USAGE', `payload is not valid JSON: ${(err as Error).message}`);
    }
  }
  const timeoutMs = intFlag('timeout', values.timeout as string | undefined, 1, 2 ** 31 - 1) ?? 5000;
  const client = await connect({ host: (values.host as string | undefined) ?? '127.0.0.1', port, timeoutMs });
  try {
    const reply = await client.request<unknown>(command, payload, { codec: codecName as PayloadCodecName });
    if (Buffer.isBuffer(reply)) process.stdout.write((values.hex ? reply.toString('hex') : reply.toString('utf8')) + '\n');
    else process.stdout.write(JSON.stringify(reply, null, 2) + '\n');
    return 0;
  } catch (err) {
    if (err instanceof RemoteError) {
      process.stderr.write(`error: ${err.statusName} (${err.status}): ${err.remoteMessage}\n`);
      return 1;
    }
    throw err;
  } finally {
    await client.close();
  }
}
