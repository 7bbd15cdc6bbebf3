import {
  formatSyslogMessage,
  frameOctetCounted,
  FrameError,
  OctetCountingDecoder,
  parseSyslogMessage,
  sdElement,
} from '@xcai/shared/src/audit/syslog';

describe('RFC 5424 / 5425 encoding', () => {
  const xml = '<AuditMessage><EventIdentification/>Ünïcödé</AuditMessage>';
  const sd = sdElement('xcai@32473', { id: 'abc', seq: '7', prev: 'p"x]y\\z' });

  test('header: PRI 85, version 1, MSGID IHE+RFC-3881, SD, BOM before the XML', () => {
    const msg = formatSyslogMessage(
      { timestamp: '2025-01-15T09:30:00.123Z', hostname: 'gw-a', appName: 'xcai gateway', procId: '42' },
      sd,
      xml,
    );
    const text = msg.toString('utf8');
    expect(
      text.startsWith(
        '<85>1 2025-01-15T09:30:00.123Z gw-a xcai_gateway 42 IHE+RFC-3881 [xcai@32473 id="abc" seq="7" prev="p\\"x\\]y\\\\z"] ',
      ),
    ).toBe(true);
    const bom = msg.indexOf(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(bom).toBeGreaterThan(0);
    expect(msg.subarray(bom + 3).toString('utf8')).toBe(xml);
    const p = parseSyslogMessage(msg);
    expect(p).toMatchObject({
      pri: 85,
      version: 1,
      hostname: 'gw-a',
      appName: 'xcai_gateway',
      procId: '42',
      msgId: 'IHE+RFC-3881',
      msg: xml,
    });
    expect(p.sd['xcai@32473']).toEqual({ id: 'abc', seq: '7', prev: 'p"x]y\\z' });
  });

  test('nil values and header sanitising', () => {
    const msg = formatSyslogMessage(
      { timestamp: 't', hostname: '', appName: 'a'.repeat(80), procId: 'x y' },
      '',
      '<a/>',
    );
    const p = parseSyslogMessage(msg);
    expect(p.hostname).toBe('-');
    expect(p.appName).toHaveLength(48);
    expect(p.procId).toBe('x_y');
    expect(p.sd).toEqual({});
  });

  test('octet-counting frames decode across arbitrary chunk boundaries', () => {
    const msgs = [1, 2, 3].map((i) =>
      formatSyslogMessage(
        { timestamp: 't', hostname: 'h', appName: 'a', procId: String(i) },
        sd,
        `<m n="${i}">${'é'.repeat(i * 100)}</m>`,
      ),
    );
    const wire = Buffer.concat(msgs.map(frameOctetCounted));
    const prefix = `${msgs[0]!.length} `;
    expect(frameOctetCounted(msgs[0]!).toString('latin1', 0, prefix.length)).toBe(prefix);
    for (const step of [1, 7, 64, wire.length]) {
      const d = new OctetCountingDecoder(1 << 20);
      const out: Buffer[] = [];
      for (let i = 0; i < wire.length; i += step) out.push(...d.push(wire.subarray(i, i + step)));
      expect(out.map((b) => b.toString('hex'))).toEqual(msgs.map((b) => b.toString('hex')));
      expect(d.pending()).toBe(0);
    }
  });

  test.each([
    ['non-digit prefix', 'abc <85>1'],
    ['leading zero', '012 <85>1'],
    ['empty length', ' <85>1'],
    ['too many digits', '12345678901 '],
  ])('malformed frame: %s', (_name, wire) => {
    const d = new OctetCountingDecoder(1 << 20);
    expect(() => d.push(Buffer.from(wire))).toThrow(FrameError);
  });

  test('frames above the bound are refused before buffering them', () => {
    const d = new OctetCountingDecoder(1024);
    expect(() => d.push(Buffer.from('1025 '))).toThrow(/exceeds/);
    expect(new OctetCountingDecoder(1024).push(Buffer.from('1024 '))).toEqual([]);
  });

  test('parse rejects non-RFC 5424 input', () => {
    expect(() => parseSyslogMessage('hello world')).toThrow();
    expect(() => parseSyslogMessage('<85>1 t h a p m [unterminated x="1" ')).toThrow();
  });
});
