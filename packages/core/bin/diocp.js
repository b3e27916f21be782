#!/usr/bin/env node
// The `diocp` command. The CLI is compiled TypeScript in ../dist (built by `npm install` at the root).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then((code) => {
  // stdout/stderr are synchronous for files and pipes on Linux, so nothing printed is lost.
  process.exit(code);
});
