/**
 * A small Audit Record Repository (ITI-20 receiver) for the demo and tests: RFC 5425 syslog over
 * mutually authenticated TLS. Each record is stored as one JSON line in DIR/audit-YYYYMMDD.jsonl
 * (UTC day of receipt), de-duplicated by the sender's record id.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { AuditLogger } from './sink';
import { stderrAuditLogger } from './sink';
import { DEFAULT_SD_ID, FrameError, OctetCountingDecoder, parseSyslogMessage } from './syslog';
import { DEFAULT_AUDIT_CIPHERS } from './transport';

export interface AuditRepositoryOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) = a free port. */
  port?: number;
  tls: {
    cert: string | Buffer;
    key: string | Buffer;
    /** Only clients with a certificate chaining to these anchors are accepted. */
    ca: string | Buffer | (string | Buffer)[];
    ciphers?: string;
    minVersion?: tls.SecureVersion;
  };
  dir: string;
  /** Largest accepted frame; a longer one closes the connection. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Concurrent connections. Default 64. */
  maxConnections?: number;
  /** Idle connections are closed after this. Default 300 000 ms. */
  idleTimeoutMs?: number;
  sdId?: string;
  logger?: AuditLogger;
  /** Called for each newly stored record (after the write). */
  onRecord?: (r: StoredAuditRecord) => void;
}

export interface StoredAuditRecord {
  id: string;
  received: string;
  /** Subject of the client certificate. */
  peer: string;
  remote: string;
  seq?: number;
  prev?: string;
  hash?: string;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  xml: string;
}

export interface AuditRepositoryStats {
  connections: number;
  rejectedConnections: number;
  received: number;
  stored: number;
  duplicates: number;
  malformed: number;
}

export interface AuditRepository {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  stats(): AuditRepositoryStats;
  close(): Promise<void>;
}

const DAY_FILE_RE = /^audit-(\d{8})\.jsonl$/;

function dayFile(dir: string, d: Date): string {
  const ymd = d.toISOString().slice(0, 10).replace(/-/g, '');
  return path.join(dir, `audit-${ymd}.jsonl`);
}

function subjectString(cert: tls.PeerCertificate | undefined): string {
  if (!cert || !cert.subject) return '';
  return Object.entries(cert.subject)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(',');
}

/** Lists the record files of an ARR directory, oldest first. */
export function listRepositoryFiles(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => DAY_FILE_RE.test(n))
      .sort()
      .map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}

export async function startAuditRepository(opts: AuditRepositoryOptions): Promise<AuditRepository> {
  const logger = opts.logger ?? stderrAuditLogger;
  const maxFrame = opts.maxFrameBytes ?? 1024 * 1024;
  const sdId = opts.sdId ?? DEFAULT_SD_ID;
  fs.mkdirSync(opts.dir, { recursive: true, mode: 0o700 });

  // De-duplication state: every id already stored.
  const seen = new Set<string>();
  for (const file of listRepositoryFiles(opts.dir)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        seen.add((JSON.parse(line) as StoredAuditRecord).id);
      } catch {
        // a torn last line from a crash; ignored
      }
    }
  }

  const stats: AuditRepositoryStats = {
    connections: 0,
    rejectedConnections: 0,
    received: 0,
    stored: 0,
    duplicates: 0,
    malformed: 0,
  };

  // Serialised, batched appends.
  let queue: { file: string; line: string; rec: StoredAuditRecord }[] = [];
  let writing: Promise<void> = Promise.resolve();
  let scheduled = false;
  const flush = async (): Promise<void> => {
    scheduled = false;
    const batch = queue;
    queue = [];
    const byFile = new Map<string, string[]>();
    for (const b of batch) byFile.set(b.file, [...(byFile.get(b.file) ?? []), b.line]);
    for (const [file, lines] of byFile) {
      const fh = await fs.promises.open(file, 'a', 0o600);
      try {
        await fh.write(lines.join(''));
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    stats.stored += batch.length;
    for (const b of batch) opts.onRecord?.(b.rec);
  };
  const enqueue = (rec: StoredAuditRecord): void => {
    queue.push({ file: dayFile(opts.dir, new Date(rec.received)), line: `${JSON.stringify(rec)}\n`, rec });
    if (!scheduled) {
      scheduled = true;
      writing = writing
        .then(flush)
        .catch((err: unknown) => logger.error('ARR: cannot write audit records', { error: String(err) }));
    }
  };

  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({
    cert: opts.tls.cert,
    key: opts.tls.key,
    ca: opts.tls.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: opts.tls.minVersion ?? 'TLSv1.2',
    ciphers: opts.tls.ciphers ?? DEFAULT_AUDIT_CIPHERS,
    handshakeTimeout: 10_000,
  });
  server.maxConnections = opts.maxConnections ?? 64;

  server.on('tlsClientError', (err, socket) => {
    stats.rejectedConnections++;
    logger.warn('ARR: TLS client rejected', { error: err.message, remote: socket.remoteAddress });
    socket.destroy();
  });

  server.on('secureConnection', (socket: tls.TLSSocket) => {
    if (!socket.authorized) {
      stats.rejectedConnections++;
      socket.destroy();
      return;
    }
    stats.connections++;
    sockets.add(socket);
    const peer = subjectString(socket.getPeerCertificate());
    const remote = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`;
    const decoder = new OctetCountingDecoder(maxFrame);
    socket.setTimeout(opts.idleTimeoutMs ?? 300_000, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    // Our side closes once every record read is on disk: for a sender, our close after its
    // end-of-stream is the proof that we have what it sent (RFC 5425 has no acknowledgement).
    socket.on('end', () => void writing.then(() => socket.end()));
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        stats.malformed++;
        logger.warn('ARR: malformed frame, closing the connection', {
          error: err instanceof FrameError ? err.message : String(err),
          peer,
          remote,
        });
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        stats.received++;
        let parsed;
        try {
          parsed = parseSyslogMessage(frame);
        } catch (err) {
          stats.malformed++;
          logger.warn('ARR: malformed syslog message, closing the connection', {
            error: String(err),
            peer,
            remote,
          });
          socket.destroy();
          return;
        }
        const sd = parsed.sd[sdId] ?? {};
        const id = sd.id || `sha256:${createHash('sha256').update(frame).digest('hex')}`;
        if (seen.has(id)) {
          stats.duplicates++;
          continue;
        }
        seen.add(id);
        enqueue({
          id,
          received: new Date().toISOString(),
          peer,
          remote,
          seq: sd.seq ? Number(sd.seq) : undefined,
          prev: sd.prev,
          hash: sd.hash,
          timestamp: parsed.timestamp,
          hostname: parsed.hostname,
          appName: parsed.appName,
          procId: parsed.procId,
          msgId: parsed.msgId,
          xml: parsed.msg,
        });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;

  return {
    host: addr.address,
    port: addr.port,
    dir: opts.dir,
    stats: () => ({ ...stats }),
    close: () => {
      closed ??= (async () => {
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await done;
        await writing;
        if (queue.length) await flush();
      })();
      return closed;
    },
  };
}
