/**
 * The compiled-JavaScript URL of a module. Worker threads on Node 20 cannot load TypeScript,
 * so code that hands its own module to a thread (a job definition) points the thread at
 * dist/…/x.js even when the main thread runs src/…/x.ts under a TypeScript test runner.
 */
export function compiledUrl(moduleUrl: string): string {
  const m = /^(.*)\/src\/(.*)\.ts$/.exec(moduleUrl);
  return m ? `${m[1]}/dist/${m[2]}.js` : moduleUrl;
}
