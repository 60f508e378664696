#!/usr/bin/env node
// The `nuse` executable. It lives outside dist/ so that npm can link it at install time,
// before the TypeScript build has produced dist/cli/main.js.

let cli;
try {
  cli = require('../dist/cli/main.js');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main.js')) {
    process.stderr.write('nuse: not built yet: run "npm run build" at the repository root\n');
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv).then((status) => process.exit(status));
