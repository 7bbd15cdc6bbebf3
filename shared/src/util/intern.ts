/**
 * A pool of the id strings of one decoded message. Text taken from parsed XML is a slice of the
 * whole message source: one id kept alive keeps the message alive. Pooled ids are fresh, flat
 * copies, and a value repeated on every document (home, repository, study, series, mimeType) is held
 * once.
 */
export class Interner {
  private readonly pool = new Map<string, string>();

  get(s: string): string;
  get(s: string | undefined): string | undefined;
  get(s: string | undefined): string | undefined {
    if (s === undefined) return undefined;
    let v = this.pool.get(s);
    if (v === undefined) {
      v = flatCopy(s);
      this.pool.set(v, v);
    }
    return v;
  }
}

/** A string with its own storage: text taken from a parsed message is a slice that keeps all of it. */
export function flatCopy(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}
