/**
 * Configuration reload without downtime: certificates (cert-manager rotates them every few weeks)
 * and the community directory (operators edit it) are read again on SIGHUP or when one of their
 * files changes, and replace the running configuration only when ALL of it is good; a bad file
 * keeps the old configuration, says why in the log and in /readyz (check `configuration`,
 * degraded — the gateway still serves with what it had), and is audited (configuration record,
 * outcome 4). Connections and transfers in progress are not touched: a new TLS context applies to
 * new connections, new outbound agents to new requests, a new directory to new transactions.
 *
 * Files are watched by polling their stat (size, mtime, inode) every `pollMs`: that sees the
 * symlink swap by which Kubernetes updates a mounted Secret or ConfigMap, which file-system events
 * on the file itself do not.
 */
import { statSync } from 'node:fs';
import type { ReadinessCheck } from '../observability/readiness';
import type { Logger } from '../util/log';

export interface ReloadStatus {
  /** Last successful load (start or reload). */
  loadedAt: string;
  trigger: string;
  /** Set while the last attempt failed: why, and when. */
  error?: string;
  failedAt?: string;
  failedTrigger?: string;
  /** Extra detail of the loaded configuration (certificate expiry…). */
  detail?: Record<string, unknown>;
}

export interface ReloaderOptions {
  /** Loads and applies everything, or throws changing nothing. Resolves with detail for /readyz. */
  apply(trigger: string): Promise<Record<string, unknown>> | Record<string, unknown>;
  /** The files to watch (asked again after each successful reload). */
  files(): string[];
  /** Poll interval; 0 = no watching (SIGHUP / `reload()` only). */
  pollMs: number;
  log: Logger;
  /** Called after each attempt (audit). */
  onResult?(ok: boolean, trigger: string, error?: string): void;
  initialDetail?: Record<string, unknown>;
}

function signature(file: string): string {
  try {
    const st = statSync(file);
    return `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch (e) {
    return `missing:${(e as NodeJS.ErrnoException).code ?? ''}`;
  }
}

export class Reloader {
  private status: ReloadStatus;
  private seen = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<boolean>;
  private again?: string;

  constructor(private readonly o: ReloaderOptions) {
    this.status = { loadedAt: new Date().toISOString(), trigger: 'start', detail: o.initialDetail };
    this.baseline();
  }

  /** Starts watching the files. */
  start(): void {
    if (this.o.pollMs <= 0 || this.timer) return;
    this.timer = setInterval(() => this.poll(), this.o.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private baseline(): void {
    this.seen = new Map(this.o.files().map((f) => [f, signature(f)]));
  }

  private poll(): void {
    const changed = [...this.seen].filter(([f, sig]) => signature(f) !== sig).map(([f]) => f);
    if (changed.length === 0) return;
    // Remember what we saw now: the same state does not trigger again (a bad file stays refused
    // until it changes once more).
    for (const f of changed) this.seen.set(f, signature(f));
    void this.reload(`file change: ${changed.join(', ')}`);
  }

  /** Reloads now (one at a time: a request during a reload runs once it is done). True on success. */
  reload(trigger: string): Promise<boolean> {
    if (this.running) {
      this.again = trigger;
      return this.running;
    }
    this.running = this.attempt(trigger).finally(() => {
      this.running = undefined;
      const next = this.again;
      this.again = undefined;
      if (next) void this.reload(next);
    });
    return this.running;
  }

  private async attempt(trigger: string): Promise<boolean> {
    try {
      const detail = await this.o.apply(trigger);
      this.status = { loadedAt: new Date().toISOString(), trigger, detail };
      this.baseline();
      this.o.log.info('configuration reloaded', { trigger, ...detail });
      this.o.onResult?.(true, trigger);
      return true;
    } catch (e) {
      const error = (e as Error).message;
      this.status = { ...this.status, error, failedAt: new Date().toISOString(), failedTrigger: trigger };
      this.o.log.error('configuration reload refused; the previous configuration stays', {
        trigger,
        reason: error,
      });
      this.o.onResult?.(false, trigger, error);
      return false;
    }
  }

  /** The /readyz check: degraded (still ready) while the last reload failed. */
  readiness(): ReadinessCheck {
    const { error, ...rest } = this.status;
    return error
      ? { status: 'degraded', detail: { ...rest, error, running: 'the previous configuration' } }
      : { status: 'ok', detail: { ...rest } };
  }
}
