#!/usr/bin/env node
// Runs a TypeScript benchmark without a build step: `node test/bench/run.js <name> [args...]` loads
// test/bench/<name>.bench.ts, transpiling .ts files on the fly (CommonJS, no type checking).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const source = fs.readFileSync(filename, 'utf8');
  const out = ts.transpileModule(source, {
    fileName: filename,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      inlineSourceMap: true,
    },
  });
  module._compile(out.outputText, filename);
};

const name = process.argv[2];
if (!name) {
  console.error('usage: node test/bench/run.js <name> [args...]   (runs test/bench/<name>.bench.ts)');
  process.exit(2);
}
process.argv.splice(2, 1);
require(path.resolve(__dirname, `${name.replace(/\.bench\.ts$/, '')}.bench.ts`));
