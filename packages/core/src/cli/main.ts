import { createRequire } from 'node:module';
import { DiocpError } from '../errors.js';
import { call, callUsage } from './call.js';
import { keygen, keygenUsage } from './keygen.js';
import { start, startUsage } from './start.js';
import { worker, workerUsage } from './worker.js';

const usage = `Usage: diocp <command> [options]

Commands:
  start     start a server (diocp start --help)
  worker    run a logic process for a remote-dispatch gateway (diocp worker --help)
  call      send one request and print the reply (diocp call --help)
  keygen    print a CURVE key pair for remote dispatch (diocp keygen --help)

Options:
  -h, --help       show this help
  -v, --version    print the version`;

/** Entry of the `diocp` command. Returns the exit code (null: keep running). */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'start':
        return (await start(rest)) ?? 0;
      case 'call':
        return await call(rest);
      case 'worker':
        return await worker(rest);
      case 'keygen':
        return keygen(rest);
      case '-v':
      case '--version': {
        const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
        process.stdout.write(pkg.version + '\n');
        return 0;
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        (cmd === undefined ? process.stderr : process.stdout).write(usage + '\n');
        return cmd === undefined ? 2 : 0;
      default:
        process.stderr.write(`diocp: unknown command "${cmd}"\n\n${usage}\n`);
        return 2;
    }
  } catch (err) {
    if (err instanceof DiocpError) {
      process.stderr.write(`diocp: ${err.message} [${err.code}]\n`);
      if (err.code === 'DIOCP_ERR_CLI_USAGE') process.stderr.write('\n' + (cmd === 'call' ? callUsage : cmd === 'start' ? startUsage : cmd === 'keygen' ? keygenUsage : cmd === 'worker' ? workerUsage : usage) + '\n');
      return err.code === 'DIOCP_ERR_CLI_USAGE' ? 2 : 1;
    }
    process.stderr.write(`diocp: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
