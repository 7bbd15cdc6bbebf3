#!/usr/bin/env node
// Checks rendered Kubernetes manifests (multi-document YAML) against the Kubernetes OpenAPI schemas
// of the npm package kubernetes-models (a devDependency). Prints PASS / FAIL / SKIP per object and a
// summary; exits 1 when an object fails or has a kind without a schema.
//   node tools/k8s-validate.js RENDERED.yaml
'use strict';
const fs = require('node:fs');
const YAML = require('yaml');

function modelOf(apiVersion, kind) {
  // core group: kubernetes-models/v1; others: kubernetes-models/<group>/<version>
  try {
    return require(`kubernetes-models/${apiVersion}`)[kind];
  } catch {
    return undefined;
  }
}

const file = process.argv[2];
if (!file) {
  console.error('usage: k8s-validate.js RENDERED.yaml');
  process.exit(2);
}
const objects = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))
  .map((d) => d.toJS())
  .filter((o) => o !== null && o !== undefined);
let failed = 0;
let skipped = 0;
for (const o of objects) {
  const label = `${o.kind}/${o.metadata?.name}`;
  const Model = o.apiVersion && o.kind ? modelOf(o.apiVersion, o.kind) : undefined;
  if (!Model) {
    skipped++;
    console.log(`SKIP ${o.apiVersion}/${label}: no schema`);
    continue;
  }
  try {
    new Model(o).validate();
    console.log(`PASS ${label}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${label}: ${String(e.message).split('\n')[0]}`);
  }
}
console.log(`${objects.length - failed - skipped} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed || skipped ? 1 : 0);
