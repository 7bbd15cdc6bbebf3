#!/usr/bin/env node
/**
 * The product's Audit Record Repository as a process (the demo federation runs it; small sites
 * may too): RFC 5425 syslog over mutually authenticated TLS, one JSON record per line in
 * $XCAI_ARR_DIR/audit-YYYYMMDD.jsonl, de-duplicated by record id (see repository.ts).
 *
 *   XCAI_ARR_DIR        where records are stored (required)
 *   XCAI_ARR_HOST       bind address (default 127.0.0.1)
 *   XCAI_ARR_PORT       port (default 6514; 0 = a free one)
 *   XCAI_ARR_TLS_CERT / XCAI_ARR_TLS_KEY   the repository's certificate and key (PEM files)
 *   XCAI_ARR_TLS_CA     trust anchors for client certificates (PEM files, comma-separated)
 *
 * When listening it prints one JSON line: {"msg":"audit repository started","host","port","dir"}.
 * SIGINT/SIGTERM: stops accepting, writes what was received, exits.
 */
import { readFileSync } from 'node:fs';
import { startAuditRepository } from './repository';

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is required`);
  return v;
}

async function main(): Promise<void> {
  const port = Number(process.env.XCAI_ARR_PORT ?? '6514');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('XCAI_ARR_PORT must be a port');
  const log = (level: string, msg: string, fields?: Record<string, unknown>) =>
    process.stdout.write(
      `${JSON.stringify({ time: new Date().toISOString(), level, service: 'audit-repository', msg, ...fields })}\n`,
    );
  const arr = await startAuditRepository({
    host: process.env.XCAI_ARR_HOST || '127.0.0.1',
    port,
    dir: need('XCAI_ARR_DIR'),
    tls: {
      cert: readFileSync(need('XCAI_ARR_TLS_CERT')),
      key: readFileSync(need('XCAI_ARR_TLS_KEY')),
      ca: need('XCAI_ARR_TLS_CA')
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean)
        .map((f) => readFileSync(f)),
    },
    logger: {
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
    },
  });
  log('info', 'audit repository started', { host: arr.host, port: arr.port, dir: arr.dir });
  const stop = () => {
    arr.close().then(
      () => {
        log('info', 'audit repository stopped', { ...arr.stats() });
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((e: Error) => {
  process.stderr.write(`audit repository failed to start: ${e.message}\n`);
  process.exit(2);
});
