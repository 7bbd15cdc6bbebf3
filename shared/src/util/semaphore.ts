/**
 * A counting semaphore. `acquireMany` takes several permits at once, so a fan-out that needs k
 * connections to one endpoint never holds some while waiting for the rest (no hold-and-wait
 * deadlock between fan-outs). Waits can be abandoned through an AbortSignal.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: { n: number; grant: () => void }[] = [];

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.active;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    return (await this.acquireMany(1, signal))[0];
  }

  /** `n` permits now if they are free and nobody waits, else undefined (no waiting). */
  tryAcquireMany(n: number): (() => void)[] | undefined {
    if (n > this.limit || this.waiting.length > 0 || this.active + n > this.limit) return undefined;
    this.active += n;
    return this.releasers(n);
  }

  /** Takes `n` permits atomically (first come, first served); one release function per permit. */
  async acquireMany(n: number, signal?: AbortSignal): Promise<(() => void)[]> {
    if (n > this.limit) throw new RangeError(`asked for ${n} permits, the limit is ${this.limit}`);
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    const now = this.tryAcquireMany(n);
    if (now) return now;
    await new Promise<void>((resolve, reject) => {
      const entry = {
        n,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal?.reason ?? new Error('aborted'));
        this.wake();
      };
      this.waiting.push(entry);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return this.releasers(n);
  }

  private releasers(n: number): (() => void)[] {
    return Array.from({ length: n }, () => {
      let done = false;
      return () => {
        if (done) return;
        done = true;
        this.active--;
        this.wake();
      };
    });
  }

  private wake(): void {
    while (this.waiting.length > 0 && this.active + this.waiting[0].n <= this.limit) {
      const next = this.waiting.shift() as { n: number; grant: () => void };
      this.active += next.n;
      next.grant();
    }
  }
}
