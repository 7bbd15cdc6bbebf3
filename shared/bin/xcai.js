#!/usr/bin/env node
'use strict';
// Launcher of the operator CLI `xcai` (source: shared/src/cli/xcai.ts; build with `npm run build`).
const { main } = require('../dist/cli/xcai.js');

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
