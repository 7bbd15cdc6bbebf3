/** An absolute point in time by which a transaction must have answered. */
export class Deadline {
  constructor(readonly at: number) {}

  static in(ms: number): Deadline {
    return new Deadline(Date.now() + ms);
  }

  remaining(): number {
    return Math.max(0, this.at - Date.now());
  }

  /** The smaller of the remaining time and `ms`. */
  cap(ms: number): number {
    return Math.min(ms, this.remaining());
  }

  /** A signal that aborts at the deadline or when `parent` aborts. */
  signal(parent?: AbortSignal): AbortSignal {
    const t = AbortSignal.timeout(Math.max(1, this.remaining()));
    return parent ? AbortSignal.any([parent, t]) : t;
  }
}

export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}
