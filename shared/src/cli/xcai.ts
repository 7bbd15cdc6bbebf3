#!/usr/bin/env node
/**
 * xcai — operator command line of the cross-community gateway.
 *
 *   xcai validate [--json] <directory.yaml>...
 *   xcai probe --directory FILE --community <homeCommunityId> [--patient CX]
 *              [--tls-cert FILE --tls-key FILE] [--tls-ca FILE[,FILE]] [--timeout MS] [--json]
 *   xcai probe --directory FILE --all [--concurrency N] [same options]
 *   xcai report --patient <CX> [--from ISO] [--to ISO] [--json] <spoolDir|arrDir>...
 *   xcai report --security [--from ISO] [--to ISO] [--json] <dir>...
 *   xcai verify <spoolDir>
 *
 * probe's client certificate defaults to XCAI_TLS_CERT / XCAI_TLS_KEY (the gateway's own); the trust
 * anchors to --tls-ca, else XCAI_TLS_CA, else the community's identity.trustAnchors, else the system
 * store. Verification is always on.
 *
 * Exit status: 0 ok, 1 invalid directory / failed probe / failed report, 2 usage error.
 */
import { main as auditMain } from '../audit/cli';
import { option, optionList, parseArgs, UsageError } from './args';
import {
  formatProbe,
  formatProbeLine,
  formatProbeSummary,
  PROBE_ALL_CONCURRENCY,
  probeAll,
  probeCommunity,
  summarizeProbes,
  type ProbeOptions,
} from './probe';
import { formatValidation, validateDirectoryFile } from './validate';

export const USAGE = `usage:
  xcai validate [--json] <directory.yaml>...
  xcai probe --directory FILE --community <homeCommunityId> [--patient CX]
             [--tls-cert FILE --tls-key FILE] [--tls-ca FILE[,FILE]] [--timeout MS] [--json]
  xcai probe --directory FILE --all [--concurrency N (default 16)] [same options]
  xcai report --patient <CX> [--from ISO] [--to ISO] [--json] <spoolDir|arrDir>...
  xcai report --security [--from ISO] [--to ISO] [--json] <dir>...
  xcai verify <spoolDir>
`;

export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
}

const defaultIo: CliIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
};

export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'validate':
        return validate(rest, io);
      case 'probe':
        return await probe(rest, io);
      case 'report':
        // The ATNA module's per-patient access report (and the security-event report).
        return auditMain(['report', ...rest], io.out);
      case 'verify':
        // The audit spool's hash chain (tamper evidence).
        return auditMain(['verify', ...rest], io.out);
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return 0;
      default:
        throw new UsageError(cmd ? `unknown command ${cmd}` : 'no command given');
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${e.message}\n${USAGE}`);
      return 2;
    }
    io.err(`error: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
}

function validate(argv: string[], io: CliIo): number {
  const a = parseArgs(argv, [], ['json']);
  if (a.positional.length === 0) throw new UsageError('validate needs at least one directory file');
  const results = a.positional.map(validateDirectoryFile);
  if (a.flags.has('json')) io.out(JSON.stringify(results, null, 2) + '\n');
  else for (const r of results) io.out(formatValidation(r));
  return results.every((r) => r.ok) ? 0 : 1;
}

async function probe(argv: string[], io: CliIo): Promise<number> {
  const a = parseArgs(
    argv,
    ['directory', 'community', 'patient', 'tls-cert', 'tls-key', 'tls-ca', 'timeout', 'concurrency'],
    ['json', 'all'],
  );
  if (a.positional.length) throw new UsageError(`unexpected argument ${a.positional[0]}`);
  const directoryFile = option(a, 'directory') ?? io.env.XCAI_DIRECTORY;
  const community = option(a, 'community');
  const all = a.flags.has('all');
  if (!directoryFile || (!community && !all))
    throw new UsageError('probe needs --directory (or XCAI_DIRECTORY) and --community or --all');
  if (community && all) throw new UsageError('give --community or --all, not both');
  const timeoutMs = positiveInt(a, 'timeout', 'ms');
  const concurrency = positiveInt(a, 'concurrency', 'probes');
  if (concurrency !== undefined && !all) throw new UsageError('--concurrency goes with --all');
  const cert = option(a, 'tls-cert') ?? io.env.XCAI_TLS_CERT;
  const key = option(a, 'tls-key') ?? io.env.XCAI_TLS_KEY;
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError('give both --tls-cert and --tls-key, or neither');
  const ca = optionList(a, 'tls-ca');
  const o: Omit<ProbeOptions, 'community'> = {
    directoryFile,
    patient: option(a, 'patient'),
    tls: {
      cert,
      key,
      ca: ca.length
        ? ca
        : (io.env.XCAI_TLS_CA ?? '')
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
    },
    timeoutMs,
  };
  const json = a.flags.has('json');
  if (all) {
    const n = concurrency ?? PROBE_ALL_CONCURRENCY;
    const results = await probeAll({
      ...o,
      concurrency: n,
      onResult: json ? undefined : (r) => io.out(formatProbeLine(r)),
    });
    const summary = summarizeProbes(results);
    io.out(json ? JSON.stringify({ results, summary }, null, 2) + '\n' : formatProbeSummary(summary, n));
    return summary.failed === 0 ? 0 : 1;
  }
  const r = await probeCommunity({ ...o, community: community as string });
  io.out(json ? JSON.stringify(r, null, 2) + '\n' : formatProbe(r));
  return r.ok ? 0 : 1;
}

function positiveInt(a: ReturnType<typeof parseArgs>, name: string, unit: string): number | undefined {
  const v = option(a, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(Number.isInteger(n) && n > 0)) throw new UsageError(`--${name} must be a positive number of ${unit}`);
  return n;
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
