#!/usr/bin/env node
// Runs a TypeScript benchmark without a build step: `node test/bench/run.js <name> [args...]` loads
// test/bench/<name>.bench.ts, transpiling .ts files on the fly (see test/support/ts-register.js).
'use strict';
const path = require('node:path');
require('../support/ts-register');

const name = process.argv[2];
if (!name) {
  console.error('usage: node test/bench/run.js <name> [args...]   (runs test/bench/<name>.bench.ts)');
  process.exit(2);
}
process.argv.splice(2, 1);
require(path.resolve(__dirname, `${name.replace(/\.bench\.ts$/, '')}.bench.ts`));
