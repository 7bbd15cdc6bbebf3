#!/usr/bin/env node
'use strict';
// Launcher of `xcai-audit` (verify the audit spool's hash chain, per-patient access report).
// Source: shared/src/audit/cli.ts; build with `npm run build`. Also: `npm run audit -- <command>`.
const { main } = require('../dist/audit/cli.js');

process.exitCode = main(process.argv.slice(2));
