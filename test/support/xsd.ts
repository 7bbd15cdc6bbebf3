import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCHEMA } from './fixtures';

/**
 * Validates XML against an XSD with xmllint; returns '' when valid, else xmllint's complaints.
 * Several documents are validated in one xmllint run.
 */
export function xsdErrors(docs: string[], schema = SCHEMA): string {
  const dir = mkdtempSync(join(tmpdir(), 'xsd-'));
  try {
    const files = docs.map((d, i) => {
      const f = join(dir, `doc${i}.xml`);
      writeFileSync(f, d);
      return f;
    });
    try {
      execFileSync('xmllint', ['--noout', '--nonet', '--schema', schema, ...files], {
        stdio: 'pipe',
        maxBuffer: 64 << 20,
      });
      return '';
    } catch (e) {
      return String((e as { stderr?: Buffer }).stderr ?? e)
        .split('\n')
        .filter((l) => l && !l.endsWith(' validates'))
        .join('\n');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Replaces each xop:Include with base64 text so the envelope can be schema-validated. */
export function deIncludeXop(xml: string): string {
  return xml
    .replace(/<(\w+:)?Include\b[^>]*\/>/g, 'AAAA')
    .replace(/<(\w+:)?Include\b[^>]*>\s*<\/(\w+:)?Include>/g, 'AAAA');
}
