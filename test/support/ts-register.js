'use strict';
// Loads .ts files without a build step (CommonJS, no type checking): `require` this file (or
// `node -r ./test/support/ts-register.js file.ts`) for benchmarks and their helper processes.
const fs = require('node:fs');
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
