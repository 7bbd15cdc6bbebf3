/**
 * The ATNA audit sink: `record()` enqueues (never blocks, never throws); a single writer turns
 * events into AuditMessages and appends them, hash-chained, to the durable disk spool; a single
 * sender delivers spooled records in order, rate-limited, over RFC 5425 TLS, RELP or RFC 5426 UDP
 * and advances a persisted cursor only once a record is confirmed — acknowledged (RELP), or read by
 * the ARR as proven by its graceful close (RFC 5425) — see README.md "Delivery semantics".
 */
import { hostname } from 'node:os';
import type { AuditEvent, AuditSink, AuditSourceInfo } from './event';
import { buildAuditMessages, type BuildOptions } from './messages';
import { PatientLinks } from './patient-links';
import { Spool, SpoolReader, type SpoolRecord } from './spool';
import { DEFAULT_SD_ID, formatSyslogMessage, sdElement } from './syslog';
import { connectRelp } from './relp';
import {
  connectTls,
  connectUdp,
  MAX_UDP_PAYLOAD,
  type AuditConnection,
  type AuditTlsOptions,
} from './transport';

export interface AuditLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** JSON lines on stderr. */
export const stderrAuditLogger: AuditLogger = {
  info: (msg, fields) => log('info', msg, fields),
  warn: (msg, fields) => log('warn', msg, fields),
  error: (msg, fields) => log('error', msg, fields),
};

function log(level: string, msg: string, fields?: Record<string, unknown>): void {
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, component: 'audit', msg, ...fields })}\n`,
  );
}

export interface AuditSinkConfig {
  /**
   * 'tls' = RFC 5425 (ATNA default), 'relp' = RELP over the same mutually authenticated TLS (each
   * record acknowledged), 'udp' = RFC 5426 (no delivery guarantee), 'none' = local spool only.
   */
  transport: 'tls' | 'relp' | 'udp' | 'none';
  host?: string;
  /** Default 6514 (tls) / 2514 (relp) / 514 (udp). */
  port?: number;
  /** Required for transports 'tls' and 'relp'. */
  tls?: AuditTlsOptions;
  /** Spool directory (created 0700). One process per directory. */
  spoolDir: string;
  /** Bound on undelivered spooled bytes; at it the sink refuses records and reports unhealthy. Default 256 MiB. */
  maxSpoolBytes?: number;
  /** Delivery rate cap, records per second (token bucket, 50 ms burst). Default 200. */
  ratePerSecond?: number;
  source: AuditSourceInfo;
  /** Retention of delivered records in the spool (for the local report): bytes, default 1 GiB. */
  retainBytes?: number;
  /** Retention of delivered records in the spool: days, default 1830 (5 years, R17). */
  retainDays?: number;
  /** Spool segment size, default 8 MiB. */
  segmentBytes?: number;
  /** fdatasync every written batch, default true. */
  fsync?: boolean;
  /**
   * TLS (RFC 5425, no acknowledgement): records sent are confirmed by closing the connection
   * gracefully at most this long after the first unconfirmed one was sent — the ARR closing its
   * side after reading our end-of-stream proves it read them — then a new connection carries on.
   * Default 2000 ms.
   */
  confirmMs?: number;
  /**
   * TLS: how long the ARR may take to close its side after our end-of-stream (and to read what
   * the kernel holds for it); beyond, the connection is dropped and its unconfirmed records are
   * sent again. Default 10 000 ms.
   */
  confirmTimeoutMs?: number;
  /** Reconnect backoff: first delay and cap (exponential, with jitter). Defaults 250 ms / 30 s. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** In-memory queue bound between record() and the disk writer. Default 1000 events. */
  maxPendingEvents?: number;
  /** Fill ratio that raises the log alarm. Default 0.8. */
  alarmRatio?: number;
  /** close(): how long to keep delivering before giving up (records stay spooled). Default 5000 ms. */
  closeTimeoutMs?: number;
  /** SD-ID of the structured-data element carrying id/seq/prev/hash. Default 'xcai@32473'. */
  sdId?: string;
  build?: BuildOptions;
  /**
   * Name the patient in retrieve records from the links query answers taught (patient-links.ts):
   * the number of document/study ids remembered, 0 = off. Default 50 000.
   */
  patientLinks?: number;
  /** Called (coalesced, at most every 100 ms) when the metrics change. */
  onMetrics?: (m: AuditSinkMetrics) => void;
  logger?: AuditLogger;
}

export interface AuditSinkMetrics {
  /** False when records are being refused or cannot be written: the gateway must refuse new transactions. */
  healthy: boolean;
  full: boolean;
  connected: boolean;
  /** Records not yet confirmed delivered (spooled + queued in memory). */
  depth: number;
  /** Undelivered bytes in the spool. */
  bytes: number;
  maxBytes: number;
  fillRatio: number;
  /** Events queued in memory, not yet on disk. */
  pending: number;
  /** Counters since start. */
  written: number;
  delivered: number;
  refused: number;
  buildErrors: number;
  connects: number;
  connectFailures: number;
  lastError?: string;
  lastDeliveredAt?: string;
  writeError?: string;
}

export interface ManagedAuditSink extends AuditSink {
  healthy(): boolean;
  depth(): number;
  bytes(): number;
  metrics(): AuditSinkMetrics;
  /** Resolves when everything recorded so far is on disk. */
  flush(): Promise<void>;
  /** New TLS client material for the ARR (certificate rotation): used from the next connection on. */
  updateTls(tls: AuditTlsOptions): void;
  /** Resolves true when everything recorded so far is confirmed delivered, false on timeout. */
  drain(timeoutMs: number): Promise<boolean>;
  readonly spoolDir: string;
}

class RateLimiter {
  private tokens: number;
  private last = Date.now();
  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }
  available(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    return Math.floor(this.tokens);
  }
  consume(n: number): void {
    this.tokens -= n;
  }
  waitMs(): number {
    return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.rate));
  }
}

interface Inflight {
  seq: number;
  /** When it was written to the connection. */
  sentAt: number;
  /** Handed to the kernel (tls, udp) or acknowledged by the receiver (relp). */
  done?: boolean;
}

/** Unconfirmed records on one RFC 5425 connection that trigger a confirming close before confirmMs. */
const MAX_UNCONFIRMED = 5_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `p` settles or after `ms`, whichever is first (the timer is cleared). */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((r) => (t = setTimeout(r, Math.max(0, ms)))),
  ]);
  if (t) clearTimeout(t);
}

class Sender {
  private conn?: AuditConnection;
  private inflight: Inflight[] = [];
  private rewind = true;
  private failures = 0;
  private committedOnConn = false;
  private nextConnectAt = 0;
  private wakeFn?: () => void;
  private stopped = false;
  private draining = false;
  private readonly reader: SpoolReader;
  private readonly limiter: RateLimiter;
  private readonly ticker: NodeJS.Timeout;
  private loop?: Promise<void>;
  private lastFailureLog = 0;
  private connectedAt = 0;
  connects = 0;
  connectFailures = 0;
  lastError?: string;
  lastDeliveredAt?: string;
  delivered = 0;

  constructor(
    private readonly sink: SpooledAuditSink,
    private readonly spool: Spool,
    private readonly cfg: Required<
      Pick<
        AuditSinkConfig,
        | 'transport'
        | 'confirmMs'
        | 'confirmTimeoutMs'
        | 'backoffInitialMs'
        | 'backoffMaxMs'
        | 'ratePerSecond'
        | 'sdId'
      >
    > & {
      host: string;
      port: number;
      tls?: AuditTlsOptions;
    },
    private readonly header: { hostname: string; appName: string; procId: string },
    private readonly logger: AuditLogger,
  ) {
    this.reader = new SpoolReader(spool);
    this.limiter = new RateLimiter(cfg.ratePerSecond, Math.max(1, Math.ceil(cfg.ratePerSecond / 20)));
    // Acknowledged and UDP records are committed as they complete (coalesced by this ticker).
    this.ticker = setInterval(() => this.commitDone(), 50);
    this.ticker.unref();
  }

  get connected(): boolean {
    return this.conn !== undefined;
  }

  start(): void {
    this.loop = this.run().catch((err: unknown) => {
      this.logger.error('audit sender stopped unexpectedly', { error: String(err) });
    });
  }

  wake(): void {
    const w = this.wakeFn;
    this.wakeFn = undefined;
    w?.();
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeFn = undefined;
        resolve();
      }, ms);
      this.wakeFn = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private backoff(): number {
    const base = Math.min(
      this.cfg.backoffMaxMs,
      this.cfg.backoffInitialMs * 2 ** Math.min(this.failures - 1, 20),
    );
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  updateTls(tls: AuditTlsOptions): void {
    if (this.cfg.tls) this.cfg.tls = tls;
  }

  private async connect(): Promise<AuditConnection> {
    if (this.cfg.transport === 'udp') return connectUdp(this.cfg.host, this.cfg.port);
    const tls = this.cfg.tls as AuditTlsOptions;
    if (this.cfg.transport === 'relp') return connectRelp(this.cfg.host, this.cfg.port, tls);
    return connectTls(this.cfg.host, this.cfg.port, tls);
  }

  private noteFailure(err: unknown, what: string): void {
    this.failures++;
    this.lastError = err instanceof Error ? err.message : String(err ?? what);
    const now = Date.now();
    if (this.failures <= 1 || now - this.lastFailureLog > 60_000) {
      this.lastFailureLog = now;
      this.logger.warn(`audit: ${what}; records stay spooled`, {
        error: this.lastError,
        host: this.cfg.host,
        port: this.cfg.port,
        depth: this.spool.depth(),
      });
    }
    this.sink.changed();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.rewind) {
        this.rewind = false;
        await this.reader.seek(this.spool.delivered + 1);
      }
      if (!this.conn) {
        const delay = this.nextConnectAt - Date.now();
        if (delay > 0) {
          await this.wait(delay);
          continue;
        }
        try {
          const conn = await this.connect();
          if (this.stopped) {
            conn.destroy();
            break;
          }
          this.conn = conn;
          this.connectedAt = Date.now();
          this.connects++;
          this.committedOnConn = false;
          this.inflight = [];
          this.rewind = false;
          await this.reader.seek(this.spool.delivered + 1);
          conn.onClose((err) => this.onClose(conn, err));
          if (this.failures > 0)
            this.logger.info('audit: connected to the ARR', { host: this.cfg.host, peer: conn.peer });
          this.sink.changed();
        } catch (err) {
          this.connectFailures++;
          this.noteFailure(err, 'cannot connect to the Audit Record Repository');
          this.nextConnectAt = Date.now() + this.backoff();
        }
        continue;
      }
      const conn = this.conn;
      if (conn.confirmation === 'close' && this.inflight.length > 0) {
        const due = this.confirmationDueIn();
        if (due <= 0) {
          await this.confirmByClose(conn);
          continue;
        }
      }
      const tokens = this.limiter.available();
      if (tokens < 1) {
        await sleep(this.limiter.waitMs());
        continue;
      }
      const records = await this.reader.read(Math.min(tokens, 256));
      if (records.length === 0) {
        const idle = this.draining ? 20 : 1000;
        await this.wait(
          conn.confirmation === 'close' && this.inflight.length > 0
            ? Math.max(1, Math.min(idle, this.confirmationDueIn()))
            : idle,
        );
        continue;
      }
      if (this.conn !== conn || this.rewind) continue;
      this.limiter.consume(records.length);
      for (const rec of records) {
        if (this.conn !== conn) break;
        const msg = this.toSyslog(rec);
        const entry: Inflight = { seq: rec.seq, sentAt: Date.now() };
        this.inflight.push(entry);
        if (conn.kind === 'udp' && msg.length > MAX_UDP_PAYLOAD) {
          this.logger.error('audit: record too large for UDP, not sent (kept in the spool)', {
            seq: rec.seq,
            bytes: msg.length,
          });
          entry.done = true;
          continue;
        }
        if (!conn.write(msg, () => (entry.done = true))) await conn.drained();
      }
      if (conn.confirmation !== 'close') this.commitDone();
    }
  }

  /**
   * RFC 5425: ms until the records sent on this connection should be confirmed by a graceful
   * close (≤ 0: now). Stalled writes (the kernel does not take them) count as due too.
   */
  private confirmationDueIn(): number {
    const head = this.inflight[0] as Inflight;
    if (this.inflight.length >= MAX_UNCONFIRMED) return 0;
    return head.sentAt + this.cfg.confirmMs - Date.now();
  }

  /**
   * Half-closes the connection and waits for the ARR to close its side, which it does only after
   * reading everything we sent: then every record sent on it is delivered. A frozen or vanished
   * ARR does not close in time: the connection is dropped and its records are sent again.
   */
  private async confirmByClose(conn: AuditConnection): Promise<void> {
    const sent = this.inflight;
    this.conn = undefined; // detached: its close event must not rewind
    this.inflight = [];
    const clean = await conn.end(this.cfg.confirmTimeoutMs);
    conn.destroy();
    if (this.stopped && !clean) return;
    if (clean) {
      this.inflight = sent;
      this.commit(sent.length);
      this.nextConnectAt = 0;
    } else {
      this.rewind = true;
      this.noteFailure(
        new Error(
          `the ARR did not confirm ${sent.length} record(s) by closing within ${this.cfg.confirmTimeoutMs} ms`,
        ),
        'records not confirmed by the Audit Record Repository (not reading?); they will be sent again',
      );
      this.nextConnectAt = Date.now() + this.backoff();
    }
    this.sink.changed();
  }

  toSyslog(rec: SpoolRecord): Buffer {
    const sd = sdElement(this.cfg.sdId, { id: rec.id, seq: String(rec.seq), prev: rec.prev, hash: rec.hash });
    return formatSyslogMessage({ timestamp: rec.time, ...this.header }, sd, rec.xml);
  }

  private onClose(conn: AuditConnection, err?: Error): void {
    if (this.conn !== conn) return;
    if (conn.confirmation !== 'close') this.commitDone();
    const hadInflight = this.inflight.length > 0;
    const lifetime = Date.now() - this.connectedAt;
    this.conn = undefined;
    this.inflight = [];
    this.rewind = true;
    if (!this.committedOnConn && (hadInflight || lifetime < 1000)) {
      this.noteFailure(
        err ?? new Error('connection closed by the ARR'),
        'connection to the ARR lost before any record was confirmed',
      );
      this.nextConnectAt = Date.now() + this.backoff();
    } else {
      this.failures = 0;
      this.lastError = err?.message ?? 'connection closed';
      this.logger.warn('audit: connection to the ARR lost; unconfirmed records will be resent', {
        error: this.lastError,
      });
      this.nextConnectAt = Date.now() + this.cfg.backoffInitialMs;
    }
    this.sink.changed();
    this.wake();
  }

  /** Acknowledged (relp) or sent (udp) records, in order: delivered. */
  private commitDone(): void {
    if (!this.conn || this.conn.confirmation === 'close') return;
    let n = 0;
    while (n < this.inflight.length && (this.inflight[n] as Inflight).done) n++;
    this.commit(n);
  }

  /** The first `n` records in flight are delivered. */
  private commit(n: number): void {
    if (n <= 0) return;
    const upTo = (this.inflight[n - 1] as Inflight).seq;
    this.inflight.splice(0, n);
    this.spool.markDelivered(upTo);
    this.delivered += n;
    this.committedOnConn = true;
    this.failures = 0;
    this.lastDeliveredAt = new Date().toISOString();
    this.sink.delivered();
  }

  /** Everything written so far handed to the kernel (or acknowledged)? */
  private allSent(): boolean {
    return this.reader.position() > this.spool.lastSeq && this.inflight.every((e) => e.done);
  }

  /** Delivers what is spooled (until the deadline), then closes the connection gracefully. */
  async stop(deadline: number): Promise<void> {
    this.draining = true;
    this.wake();
    while (Date.now() < deadline && !(this.conn && this.allSent())) {
      if (this.spool.delivered >= this.spool.lastSeq) break;
      await sleep(20);
    }
    this.stopped = true;
    this.wake();
    const conn = this.conn;
    if (conn) {
      const sentAll = this.allSent();
      const unconfirmed = this.inflight;
      // Detach first so the close event does not rewind.
      this.conn = undefined;
      this.inflight = [];
      if (sentAll) {
        const clean = await conn.end(Math.max(100, deadline - Date.now()));
        // The ARR closed its side after reading our end-of-stream: it has read every record.
        if (clean) {
          this.inflight = unconfirmed;
          this.commit(unconfirmed.length);
        }
      }
      conn.destroy();
    }
    clearInterval(this.ticker);
    await this.loop;
    await this.reader.close();
  }

  /** Waits until every record up to `seq` is confirmed. */
  async waitDelivered(seq: number, deadline: number): Promise<boolean> {
    while (this.spool.delivered < seq) {
      if (Date.now() >= deadline) return false;
      await sleep(20);
    }
    return true;
  }
}

/** Default ARR ports: RFC 5425 syslog-tls, rsyslog's customary RELP port, RFC 5426 syslog. */
export const DEFAULT_PORTS = { tls: 6514, relp: 2514, udp: 514 } as const;

class SpooledAuditSink implements ManagedAuditSink {
  readonly spoolDir: string;
  private readonly spool: Spool;
  private readonly sender?: Sender;
  private readonly logger: AuditLogger;
  private readonly maxBytes: number;
  private readonly maxPending: number;
  private readonly alarmRatio: number;
  private pending: AuditEvent[] = [];
  private writing?: Promise<void>;
  private scheduled = false;
  private full = false;
  private alarmed = false;
  private closed = false;
  private closing?: Promise<void>;
  private writeError?: string;
  private written = 0;
  private refused = 0;
  private buildErrors = 0;
  private lastRefusalLog = 0;
  private refusedSinceLog = 0;
  private metricsTimer?: NodeJS.Timeout;
  private persistTimer?: NodeJS.Timeout;
  private persisting = false;
  private lastPurge = 0;
  private readonly links?: PatientLinks;

  constructor(private readonly config: AuditSinkConfig) {
    const maxLinks = config.patientLinks ?? 50_000;
    if (maxLinks > 0) this.links = new PatientLinks(maxLinks);
    this.logger = config.logger ?? stderrAuditLogger;
    this.spoolDir = config.spoolDir;
    this.maxBytes = config.maxSpoolBytes ?? 256 * 1024 * 1024;
    this.maxPending = config.maxPendingEvents ?? 1000;
    this.alarmRatio = config.alarmRatio ?? 0.8;
    this.spool = Spool.open(config.spoolDir, {
      segmentBytes: config.segmentBytes,
      fsync: config.fsync,
      retainBytes: config.retainBytes,
      retainMs: (config.retainDays ?? 1830) * 24 * 3600 * 1000,
      onWarning: (m) => this.logger.warn(m),
    });
    if (config.transport !== 'none') {
      if (!config.host) throw new Error('audit: transport needs a host');
      if ((config.transport === 'tls' || config.transport === 'relp') && !config.tls)
        throw new Error(`audit: transport ${config.transport} needs tls.cert/key/ca`);
      const rate = config.ratePerSecond ?? 200;
      if (!(rate > 0)) throw new Error('audit: ratePerSecond must be > 0');
      this.sender = new Sender(
        this,
        this.spool,
        {
          transport: config.transport,
          host: config.host,
          port: config.port ?? DEFAULT_PORTS[config.transport],
          tls: config.tls,
          confirmMs: config.confirmMs ?? 2000,
          confirmTimeoutMs: config.confirmTimeoutMs ?? 10_000,
          backoffInitialMs: config.backoffInitialMs ?? 250,
          backoffMaxMs: config.backoffMaxMs ?? 30_000,
          ratePerSecond: rate,
          sdId: config.sdId ?? DEFAULT_SD_ID,
        },
        {
          hostname: config.source.hostName ?? hostname(),
          appName: config.source.applicationName ?? 'xcai-gateway',
          procId: String(process.pid),
        },
        this.logger,
      );
    } else {
      this.spool.markDelivered(this.spool.lastSeq);
    }
    this.updateFullness();
    this.sender?.start();
    if (this.spool.depth() > 0) {
      this.logger.info('audit: resuming delivery of spooled records', { depth: this.spool.depth() });
    }
  }

  record(event: AuditEvent): void {
    try {
      if (this.closed || this.full || this.pending.length >= this.maxPending) {
        this.refuse(event);
        return;
      }
      this.pending.push(event);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.startWriter());
      }
    } catch {
      // never throw on the request path
    }
  }

  private refuse(event: AuditEvent): void {
    this.refused++;
    this.refusedSinceLog++;
    const now = Date.now();
    if (now - this.lastRefusalLog > 1000) {
      this.lastRefusalLog = now;
      this.logger.error('audit: record REFUSED (sink closed, spool full or writer failing)', {
        refused: this.refusedSinceLog,
        kind: event?.kind,
        transaction: event?.kind === 'transaction' ? event.transaction : undefined,
        full: this.full,
        closed: this.closed,
        writeError: this.writeError,
      });
      this.refusedSinceLog = 0;
    }
    this.changed();
  }

  private startWriter(): void {
    this.scheduled = false;
    if (this.writing) return;
    this.writing = this.writeLoop()
      .catch((err: unknown) => this.logger.error('audit: writer failed', { error: String(err) }))
      .finally(() => {
        this.writing = undefined;
        if (this.pending.length > 0 && !this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.startWriter());
        }
      });
  }

  private async writeLoop(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.slice(0, 256);
      const xmls: string[] = [];
      for (const ev of batch) {
        try {
          if (this.links && ev.kind === 'transaction') this.links.apply(ev);
          xmls.push(...buildAuditMessages(ev, this.config.source, this.config.build));
        } catch (err) {
          this.buildErrors++;
          this.logger.error('audit: cannot build the audit record', {
            error: String(err),
            kind: (ev as Partial<AuditEvent> | null)?.kind,
          });
        }
      }
      try {
        const recs = await this.spool.append(xmls);
        this.pending.splice(0, batch.length);
        this.written += recs.length;
        if (this.writeError) this.logger.info('audit: spool writable again');
        this.writeError = undefined;
        if (!this.sender) {
          this.spool.markDelivered(this.spool.lastSeq);
          this.schedulePersist();
        }
        this.sender?.wake();
      } catch (err) {
        if (!this.writeError)
          this.logger.error('audit: cannot write the spool', { error: String(err), dir: this.spoolDir });
        this.writeError = String(err);
        this.changed();
        if (this.closed) return;
        await sleep(1000);
      }
      this.updateFullness();
      this.changed();
    }
  }

  private updateFullness(): void {
    const ratio = this.spool.undeliveredBytes / this.maxBytes;
    if (!this.full && ratio >= 1) {
      this.full = true;
      this.logger.error('audit: spool FULL - refusing records, sink unhealthy (fail closed)', {
        bytes: this.spool.undeliveredBytes,
        maxBytes: this.maxBytes,
      });
    } else if (this.full && ratio < 0.9) {
      this.full = false;
      this.logger.info('audit: spool below 90% again - accepting records', {
        bytes: this.spool.undeliveredBytes,
      });
    }
    if (!this.alarmed && ratio >= this.alarmRatio) {
      this.alarmed = true;
      this.logger.warn(`audit: spool ${Math.round(ratio * 100)}% full`, {
        bytes: this.spool.undeliveredBytes,
        maxBytes: this.maxBytes,
        lastError: this.sender?.lastError,
      });
    } else if (this.alarmed && ratio < this.alarmRatio * 0.9) {
      this.alarmed = false;
      this.logger.info('audit: spool fill alarm cleared', { bytes: this.spool.undeliveredBytes });
    }
  }

  /** Called by the sender after records were confirmed. */
  delivered(): void {
    this.updateFullness();
    this.schedulePersist();
    this.changed();
  }

  private schedulePersist(): void {
    if (this.persistTimer) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      void this.persist();
    }, 50);
    this.persistTimer.unref();
  }

  private async persist(): Promise<void> {
    if (this.persisting) {
      this.schedulePersist();
      return;
    }
    this.persisting = true;
    try {
      await this.spool.persistCursor();
      if (Date.now() - this.lastPurge > 60_000) {
        this.lastPurge = Date.now();
        await this.spool.purge();
      }
    } catch (err) {
      this.logger.error('audit: cannot persist the delivery cursor', { error: String(err) });
    } finally {
      this.persisting = false;
    }
  }

  changed(): void {
    if (!this.config.onMetrics || this.metricsTimer) return;
    this.metricsTimer = setTimeout(() => {
      this.metricsTimer = undefined;
      try {
        this.config.onMetrics?.(this.metrics());
      } catch {
        // a metrics callback must not break auditing
      }
    }, 100);
    this.metricsTimer.unref();
  }

  updateTls(tls: AuditTlsOptions): void {
    this.sender?.updateTls(tls);
  }

  healthy(): boolean {
    return (
      !this.closed && !this.full && this.writeError === undefined && this.pending.length < this.maxPending
    );
  }

  depth(): number {
    return this.spool.depth() + this.pending.length;
  }

  bytes(): number {
    return this.spool.undeliveredBytes;
  }

  metrics(): AuditSinkMetrics {
    return {
      healthy: this.healthy(),
      full: this.full,
      connected: this.sender?.connected ?? false,
      depth: this.depth(),
      bytes: this.bytes(),
      maxBytes: this.maxBytes,
      fillRatio: this.spool.undeliveredBytes / this.maxBytes,
      pending: this.pending.length,
      written: this.written,
      delivered: this.sender?.delivered ?? this.written,
      refused: this.refused,
      buildErrors: this.buildErrors,
      connects: this.sender?.connects ?? 0,
      connectFailures: this.sender?.connectFailures ?? 0,
      lastError: this.sender?.lastError,
      lastDeliveredAt: this.sender?.lastDeliveredAt,
      writeError: this.writeError,
    };
  }

  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.writing || this.scheduled) {
      if (this.writing) await this.writing;
      else await sleep(1);
      if (this.writeError && this.closed) return;
    }
  }

  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    await within(this.flush(), timeoutMs);
    if (!this.sender) return this.pending.length === 0;
    return this.sender.waitDelivered(this.spool.lastSeq, deadline);
  }

  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const deadline = Date.now() + (this.config.closeTimeoutMs ?? 5000);
    await within(this.flush(), deadline - Date.now());
    this.closed = true;
    if (this.pending.length > 0) {
      this.logger.error('audit: closing with records not written to the spool', {
        lost: this.pending.length,
      });
    }
    await this.sender?.stop(deadline);
    if (this.persistTimer) clearTimeout(this.persistTimer);
    if (this.metricsTimer) clearTimeout(this.metricsTimer);
    this.persistTimer = undefined;
    this.metricsTimer = undefined;
    try {
      await this.spool.purge();
    } catch {
      // retention is retried at the next start
    }
    await this.spool.close();
    if (this.spool.depth() > 0) {
      this.logger.warn('audit: closed with undelivered records; they are sent at the next start', {
        depth: this.spool.depth(),
      });
    }
    try {
      this.config.onMetrics?.(this.metrics());
    } catch {
      // ignore
    }
  }
}

/**
 * Creates the audit sink. Synchronous (opens and recovers the spool, takes its lock); throws on a
 * bad configuration or an unusable spool directory, so call it at start-up.
 */
export function createAuditSink(config: AuditSinkConfig): ManagedAuditSink {
  return new SpooledAuditSink(config);
}
