#!/usr/bin/env node
// Hand-written node:net echo server for the diocp wire protocol: the baseline
// the framework is benchmarked against. It does what a competent developer
// would write by hand for "echo every request" and nothing more: per
// connection frame reassembly (split and sticky frames), one response per
// request (flags RESPONSE, same command and request id, status 0, the request's
// payload), all responses of one 'data' event written with one socket.write.
//
//   node bench/baseline-echo.mjs --port P [--host 127.0.0.1]
//
// Prints "listening <port>" once listening; exits on SIGTERM/SIGINT.
import net from 'node:net';

const HEADER = 16;
const MAGIC0 = 0xd1;
const MAGIC1 = 0x0c;
const FLAG_RESPONSE = 0x01;
const FLAG_ONEWAY = 0x08;
const MAX_PAYLOAD = 16 * 1024 * 1024;

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') opts.port = Number(argv[++i]);
    else if (a === '--host') opts.host = argv[++i];
    else {
      process.stderr.write(`baseline-echo: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    process.stderr.write('baseline-echo: --port must be an integer 0..65535\n');
    process.exit(2);
  }
  return opts;
}

function onConnection(socket) {
  socket.setNoDelay(true);
  let pending = null; // bytes of an incomplete frame left over from the last chunk

  socket.on('data', (chunk) => {
    // Only copy when a partial frame is left over; the common case parses the chunk as is.
    const buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    const end = buf.length;

    // Pass 1: validate headers and size the output for all complete frames.
    let off = 0;
    let outSize = 0;
    while (end - off >= HEADER) {
      if (buf[off] !== MAGIC0 || buf[off + 1] !== MAGIC1 || buf[off + 2] !== 1) {
        socket.destroy();
        return;
      }
      const len = buf.readUInt32BE(off + 12);
      if (len > MAX_PAYLOAD) {
        socket.destroy();
        return;
      }
      if (end - off < HEADER + len) break;
      if ((buf[off + 3] & FLAG_ONEWAY) === 0) outSize += HEADER + len;
      off += HEADER + len;
    }
    const consumed = off;
    if (consumed < end) pending = buf.subarray(consumed);
    if (outSize === 0) return;

    // Pass 2: build every response into one buffer, then one write.
    const out = Buffer.allocUnsafe(outSize);
    let o = 0;
    for (off = 0; off < consumed; ) {
      const len = buf.readUInt32BE(off + 12);
      const frameEnd = off + HEADER + len;
      if ((buf[off + 3] & FLAG_ONEWAY) === 0) {
        out[o] = MAGIC0;
        out[o + 1] = MAGIC1;
        out[o + 2] = 1;
        out[o + 3] = FLAG_RESPONSE;
        out[o + 4] = buf[off + 4]; // command
        out[o + 5] = buf[off + 5];
        out[o + 6] = 0; // status OK
        out[o + 7] = 0;
        buf.copy(out, o + 8, off + 8, off + 16); // request id + length
        if (len > 0) buf.copy(out, o + HEADER, off + HEADER, frameEnd);
        o += HEADER + len;
      }
      off = frameEnd;
    }
    socket.write(out);
  });
  socket.on('error', () => {}); // peer resets are normal at the end of a load run
}

const opts = parseArgs(process.argv.slice(2));
const server = net.createServer({ noDelay: true }, onConnection);
server.on('error', (err) => {
  process.stderr.write(`baseline-echo: ${err.message}\n`);
  process.exit(1);
});
server.listen(opts.port, opts.host, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
