/**
 * Syslog encoding for ITI-20: RFC 5424 messages, RFC 5425 octet-counting frames (TLS) and a
 * frame decoder for the receiving side. Header per ITI TF-2 3.20 / SPEC-NOTES §11.3:
 *   <85>1 TIMESTAMP HOSTNAME APP-NAME PROCID IHE+RFC-3881 SD BOM XML
 * PRI 85 = facility 10 (security/authorization) * 8 + severity 5 (notice).
 */

export const SYSLOG_PRI = 85;
export const IHE_MSGID = 'IHE+RFC-3881';
export const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** SD-ID carrying the record id and hash chain. 32473 is the RFC 5612 example enterprise number. */
export const DEFAULT_SD_ID = 'xcai@32473';

export interface SyslogHeader {
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId?: string;
}

/** Replaces characters RFC 5424 forbids in header fields (non PRINTUSASCII) and bounds the length. */
export function headerField(value: string | undefined, max: number): string {
  if (!value) return '-';
  const v = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return v === '' ? '-' : v;
}

function sdName(name: string): string {
  const n = name.replace(/[^\x21-\x7e]|[= \]"]/g, '_').slice(0, 32);
  if (!n) throw new Error('empty SD name');
  return n;
}

/** One SD-ELEMENT `[id k="v" ...]` with PARAM-VALUE escaping of `"`, `\` and `]`. */
export function sdElement(id: string, params: Record<string, string>): string {
  let out = `[${sdName(id)}`;
  for (const [k, v] of Object.entries(params))
    out += ` ${sdName(k)}="${v.replace(/["\\\]]/g, (c) => `\\${c}`)}"`;
  return `${out}]`;
}

/** The RFC 5424 message: header, structured data, BOM and the UTF-8 XML. */
export function formatSyslogMessage(h: SyslogHeader, structuredData: string, xml: string): Buffer {
  const head =
    `<${SYSLOG_PRI}>1 ${headerField(h.timestamp, 64)} ${headerField(h.hostname, 255)} ` +
    `${headerField(h.appName, 48)} ${headerField(h.procId, 128)} ${headerField(h.msgId ?? IHE_MSGID, 32)} ` +
    `${structuredData || '-'} `;
  return Buffer.concat([Buffer.from(head, 'ascii'), UTF8_BOM, Buffer.from(xml, 'utf8')]);
}

/** RFC 5425 frame: `MSG-LEN SP SYSLOG-MSG`. */
export function frameOctetCounted(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${message.length} `, 'ascii'), message]);
}

export class FrameError extends Error {}

/**
 * Incremental RFC 5425 decoder. `push` returns the complete messages; it throws FrameError on a
 * malformed length prefix or a frame longer than maxFrameBytes (the caller closes the connection).
 */
export class OctetCountingDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private want = -1;

  constructor(private readonly maxFrameBytes: number) {}

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    const maxDigits = String(this.maxFrameBytes).length;
    for (;;) {
      if (this.want < 0) {
        const sp = this.buf.indexOf(0x20);
        const scan = sp < 0 ? this.buf.length : sp;
        if (scan > maxDigits) throw new FrameError('length prefix too long');
        for (let i = 0; i < scan; i++) {
          const c = this.buf[i] as number;
          if (c < 0x30 || c > 0x39 || (i === 0 && c === 0x30))
            throw new FrameError('malformed length prefix');
        }
        if (sp < 0) break;
        if (sp === 0) throw new FrameError('empty length prefix');
        const len = Number(this.buf.subarray(0, sp).toString('ascii'));
        if (len > this.maxFrameBytes)
          throw new FrameError(`frame of ${len} bytes exceeds ${this.maxFrameBytes}`);
        this.want = len;
        this.buf = this.buf.subarray(sp + 1);
      }
      if (this.buf.length < this.want) break;
      out.push(Buffer.from(this.buf.subarray(0, this.want)));
      this.buf = this.buf.subarray(this.want);
      this.want = -1;
    }
    return out;
  }

  /** Bytes held for an incomplete frame. */
  pending(): number {
    return this.buf.length;
  }
}

export interface ParsedSyslog {
  pri: number;
  version: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  /** SD-ID → params. */
  sd: Record<string, Record<string, string>>;
  /** MSG with the BOM removed, decoded as UTF-8. */
  msg: string;
}

/** Parses an RFC 5424 message; throws on a malformed header or structured data. */
export function parseSyslogMessage(message: Buffer | string): ParsedSyslog {
  const s = typeof message === 'string' ? message : message.toString('utf8');
  const m = /^<(\d{1,3})>(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(s);
  if (!m) throw new Error('not an RFC 5424 message');
  let i = m[0].length;
  const sd: Record<string, Record<string, string>> = {};
  if (s[i] === '-') {
    i++;
  } else {
    while (s[i] === '[') {
      i++;
      const idEnd = s.slice(i).search(/[ \]]/);
      if (idEnd < 0) throw new Error('unterminated SD element');
      const id = s.slice(i, i + idEnd);
      i += idEnd;
      const params: Record<string, string> = {};
      while (s[i] === ' ') {
        i++;
        const eq = s.indexOf('="', i);
        if (eq < 0) throw new Error('malformed SD param');
        const name = s.slice(i, eq);
        i = eq + 2;
        let value = '';
        for (;;) {
          const c = s[i];
          if (c === undefined) throw new Error('unterminated SD param');
          if (c === '\\' && (s[i + 1] === '"' || s[i + 1] === '\\' || s[i + 1] === ']')) {
            value += s[i + 1];
            i += 2;
          } else if (c === '"') {
            i++;
            break;
          } else {
            value += c;
            i++;
          }
        }
        params[name] = value;
      }
      if (s[i] !== ']') throw new Error('unterminated SD element');
      i++;
      sd[id] = params;
    }
  }
  let msg = '';
  if (s[i] === ' ') msg = s.slice(i + 1);
  else if (i < s.length) throw new Error('no space before MSG');
  if (msg.charCodeAt(0) === 0xfeff) msg = msg.slice(1);
  return {
    pri: Number(m[1]),
    version: Number(m[2]),
    timestamp: m[3] as string,
    hostname: m[4] as string,
    appName: m[5] as string,
    procId: m[6] as string,
    msgId: m[7] as string,
    sd,
    msg,
  };
}
