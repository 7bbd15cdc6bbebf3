/**
 * Seed generator CLI.
 *
 *   node services/reference-community/dist/seed/cli.js --out DIR --spec spec.json
 *   node services/reference-community/dist/seed/cli.js --out DIR --demo          (DIR/A, DIR/B, DIR/C)
 *   node services/reference-community/dist/seed/cli.js --out DIR --large --instances 4000 --size 512KiB
 *        [--community-oid 1.3.6.1.4.1.21367.13.70.190] [--series-size 1000]
 *
 * Prints a JSON summary (counts, bytes, milliseconds) on stdout.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateCommunitySeed } from './generate';
import { defaultDemoSpecs, largeSeedSpec } from './specs';
import type { SeedManifest, SeedSpec } from './types';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  kib: 1024,
  k: 1024,
  mb: 1000 * 1000,
  mib: 1024 * 1024,
  m: 1024 * 1024,
};

/** `524288`, `512KiB`, `0.5MiB`, `300kB` → bytes (an integer). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`not a size: ${text} (e.g. 524288, 512KiB, 1MiB)`);
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new Error(`not a positive size: ${text}`);
  return bytes;
}

function positiveInt(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer: ${text}`);
  return n;
}

function summary(m: SeedManifest, outDir: string) {
  return { outDir, homeCommunityId: m.homeCommunityId, ...m.spec };
}

export const USAGE = `usage: cli.js --out DIR (--spec spec.json | --demo | --large --instances N --size SIZE [--community-oid OID] [--series-size N])`;

/** Runs the CLI; returns the summaries printed. */
export async function main(
  argv: string[],
  log: (line: string) => void = (l) => console.log(l),
): Promise<unknown> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      out: { type: 'string' },
      spec: { type: 'string' },
      demo: { type: 'boolean' },
      large: { type: 'boolean' },
      instances: { type: 'string' },
      size: { type: 'string' },
      'community-oid': { type: 'string' },
      'series-size': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    log(USAGE);
    return undefined;
  }
  const modes = [values.spec !== undefined, !!values.demo, !!values.large].filter(Boolean).length;
  if (!values.out || modes !== 1) throw new Error(USAGE);
  const out = values.out;
  const started = process.hrtime.bigint();
  const elapsedMs = () => Number((process.hrtime.bigint() - started) / 1_000_000n);

  let jobs: [SeedSpec, string][];
  if (values.spec !== undefined) {
    jobs = [[JSON.parse(await readFile(values.spec, 'utf8')) as SeedSpec, out]];
  } else if (values.demo) {
    jobs = defaultDemoSpecs().map((s) => [s, join(out, s.community)]);
  } else {
    const instances = positiveInt(values.instances, '--instances');
    if (instances === undefined || values.size === undefined) throw new Error(USAGE);
    const spec = largeSeedSpec({
      instances,
      instanceSize: parseSize(values.size),
      communityOid: values['community-oid'],
      maxSeriesSize: positiveInt(values['series-size'], '--series-size'),
    });
    jobs = [[spec, out]];
  }
  const results = [];
  for (const [spec, dir] of jobs) results.push(summary(await generateCommunitySeed(spec, dir), dir));
  const report = { elapsedMs: elapsedMs(), communities: results };
  log(JSON.stringify(report, null, 2));
  return report;
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
