#!/usr/bin/env node
/**
 * xcai-audit: verify the spool's hash chain and print review reports.
 *
 *   verify <spoolDir>
 *   report --patient <CX id> [--from ISO] [--to ISO] [--json] <spoolDir|arrDir>...
 *   report --security [--from ISO] [--to ISO] [--json] <spoolDir|arrDir>...
 *
 * Exit status: 0 ok, 1 chain broken, 2 usage error.
 */
import {
  buildAccessReport,
  correlatedPatientIds,
  formatReportText,
  loadAuditRecords,
  parseAuditRecord,
} from './report';

/** The patient's ids in other communities the report followed (XCPD correlations in ITI-55 records). */
function linkedNote(dirs: string[], patient: string): string {
  const views = loadAuditRecords(dirs).flatMap((r) => parseAuditRecord(r.id, r.xml) ?? []);
  const others = correlatedPatientIds(views, patient).slice(1);
  return others.length ? ` (and, correlated by XCPD, ${others.join(', ')})` : '';
}
import { verifySpool } from './spool';

const USAGE = `usage:
  xcai-audit verify <spoolDir>
  xcai-audit report --patient <CX id> [--from ISO] [--to ISO] [--json] <dir>...
  xcai-audit report --security [--from ISO] [--to ISO] [--json] <dir>...
`;

export function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): number {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === 'verify') {
      let json = false;
      const dirs = rest.filter((a) => (a === '--json' ? ((json = true), false) : true));
      if (dirs.length !== 1) {
        out(USAGE);
        return 2;
      }
      const r = verifySpool(dirs[0] as string);
      if (json) out(`${JSON.stringify(r)}\n`);
      else if (r.ok)
        out(
          `OK: ${r.records} record(s) verified, chain head ${r.lastHash ?? '-'} at record ${r.lastSeq ?? 0}\n`,
        );
      else
        out(
          `TAMPERED OR DAMAGED: record ${r.firstBadRecord ?? '?'}: ${r.reason ?? ''}${r.file ? ` (${r.file})` : ''}; ${r.records} record(s) verified before it\n`,
        );
      return r.ok ? 0 : 1;
    }
    if (cmd === 'report') {
      let patient: string | undefined;
      let security = false;
      let json = false;
      let from: Date | undefined;
      let to: Date | undefined;
      const dirs: string[] = [];
      for (let i = 0; i < rest.length; i++) {
        const a = rest[i] as string;
        const value = (): string => {
          const v = rest[++i];
          if (v === undefined) throw new UsageError(`${a} needs a value`);
          return v;
        };
        const date = (): Date => {
          const v = value();
          const d = new Date(v);
          if (Number.isNaN(d.getTime())) throw new UsageError(`bad date ${v}`);
          return d;
        };
        if (a === '--patient') patient = value();
        else if (a === '--security') security = true;
        else if (a === '--json') json = true;
        else if (a === '--from') from = date();
        else if (a === '--to') to = date();
        else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
        else dirs.push(a);
      }
      if ((patient === undefined) === !security || dirs.length === 0)
        throw new UsageError('give --patient or --security and at least one directory');
      const rows = buildAccessReport(dirs, { patient, security, from, to });
      if (json) out(`${JSON.stringify(rows, null, 2)}\n`);
      else
        out(
          formatReportText(
            rows,
            patient !== undefined
              ? `Access history of patient ${patient}${linkedNote(dirs, patient)}`
              : 'Security and application events',
          ),
        );
      return 0;
    }
    out(USAGE);
    return 2;
  } catch (err) {
    if (err instanceof UsageError) {
      out(`${err.message}\n${USAGE}`);
      return 2;
    }
    out(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
}

class UsageError extends Error {}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
