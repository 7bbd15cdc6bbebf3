import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { MtomError } from '@xcai/shared/src/mtom/errors';
import { readSoapMessage } from '@xcai/shared/src/mtom/read';
import type { IncomingSoapMessage, MimePart } from '@xcai/shared/src/mtom/types';
import { XopResolver } from '@xcai/shared/src/mtom/xop';
import {
  buildMultipart,
  chunks,
  collect,
  errorOf,
  fixedSplit,
  limits,
  noHang,
  randomSplit,
  rng,
} from '../fixtures/mtom/helpers';
import { sample } from '../support/fixtures';

const B = 'b0undary';
const ROOT_CT = 'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"';
const mtomCt = (extra = ''): string =>
  `multipart/related; type="application/xop+xml"; boundary=${B}; start-info="application/soap+xml"${extra}`;

async function attachments(msg: IncomingSoapMessage): Promise<{ part: MimePart; data: Buffer }[]> {
  const out: { part: MimePart; data: Buffer }[] = [];
  for (;;) {
    const part = await noHang(msg.attachments.next());
    if (!part) return out;
    out.push({ part, data: await collect(part.body) });
  }
}

/** Splits a captured HTTP request into its Content-Type and body. */
function splitHttp(raw: Buffer): { contentType: string; body: Buffer } {
  let end = raw.indexOf('\r\n\r\n');
  let skip = 4;
  const lf = raw.indexOf('\n\n');
  if (end < 0 || (lf >= 0 && lf < end)) {
    end = lf;
    skip = 2;
  }
  const head = raw.subarray(0, end).toString('latin1');
  const line = head.split(/\r?\n/).find((l) => /^content-type:/i.test(l));
  if (!line) throw new Error('no Content-Type in the sample');
  return { contentType: line.slice(line.indexOf(':') + 1).trim(), body: raw.subarray(end + skip) };
}

describe('readSoapMessage: real samples', () => {
  it('reads the NIST ITI-41 HTTP capture (bare LF, padding after boundaries, start, action)', async () => {
    const { contentType, body } = splitHttp(readFileSync(sample('mtom/nist-iti41-request-mtom-http.txt')));
    const rand = rng(5);
    for (const split of [[body], fixedSplit(body, 1), fixedSplit(body, 4096), randomSplit(body, rand, 300)]) {
      const msg = await noHang(readSoapMessage(chunks(split), contentType, limits()));
      expect(msg.isMtom).toBe(true);
      const env = msg.envelope.toString('utf8');
      expect(env.startsWith("<?xml version='1.0' encoding='UTF-8'?><soapenv:Envelope")).toBe(true);
      expect(env.trimEnd().endsWith('</soapenv:Envelope>')).toBe(true);
      const parts = await attachments(msg);
      expect(parts).toHaveLength(1);
      expect(parts[0].part.headers.contentId).toBe('1.urn:uuid:3D4B161591CD1DEC0C1286850962319@apache.org');
      expect(parts[0].part.headers.contentType).toBe('text/plain');
      const text = parts[0].data.toString('utf8');
      expect(text.startsWith('Four score and seven years ago')).toBe(true);
      expect(text.endsWith('shall not perish from the earth.')).toBe(true);

      const resolver = new XopResolver();
      for (const m of env.matchAll(/href="([^"]+)"/g)) resolver.expect(m[1]);
      expect(resolver.accept(parts[0].part)).toBe(
        'cid:1.urn:uuid:3D4B161591CD1DEC0C1286850962319@apache.org',
      );
      expect(resolver.remaining()).toEqual([]);
    }
  });

  it('reads a WCF-style ITI-39 response (CRLF, WCF ids, 8bit root)', async () => {
    const raw = readFileSync(sample('mtom/xcai-wcf-iti39-response-mtom.txt'));
    const firstLine = raw
      .toString('latin1')
      .split(/\r?\n/)
      .find((l) => l.startsWith('--')) as string;
    const boundary = firstLine.slice(2).trim();
    const ct = `multipart/related; type="application/xop+xml"; boundary="${boundary}"; start="<http://tempuri.org/0>"; start-info="application/soap+xml"`;
    for (const split of [[raw], fixedSplit(raw, 1), fixedSplit(raw, 61)]) {
      const msg = await noHang(readSoapMessage(chunks(split), ct, limits()));
      expect(msg.envelope.toString()).toMatch(/^<s:Envelope[\s\S]*<\/s:Envelope>$/);
      const parts = await attachments(msg);
      expect(parts.map((p) => p.part.headers.contentId)).toEqual([
        'http://tempuri.org/1/638509440267508087',
        'http://tempuri.org/2/638509440267508087',
      ]);
      const doc =
        '<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3"><realmCode code="US" /></ClinicalDocument>';
      expect(parts.map((p) => p.data.toString())).toEqual([doc, doc]);
      const resolver = new XopResolver();
      for (const m of msg.envelope.toString().matchAll(/href="([^"]+)"/g)) resolver.expect(m[1]);
      expect(parts.map((p) => resolver.accept(p.part))).toEqual([
        'cid:http://tempuri.org/1/638509440267508087',
        'cid:http://tempuri.org/2/638509440267508087',
      ]);
      expect(resolver.remaining()).toEqual([]);
    }
  });

  it('reads the NIST sample body and reports its Include that names no part', async () => {
    const raw = readFileSync(sample('mtom/nist-sample-mtom-message.txt'));
    const boundary = raw.toString('latin1', 2, raw.indexOf('\n'));
    const ct = `multipart/related; boundary=${boundary}; type="application/xop+xml"; start="<1.694859fac46e21a68c012f8f4fe208a370fc32b6e07ae79f>"`;
    const msg = await noHang(readSoapMessage(chunks(fixedSplit(raw, 100)), ct, limits()));
    const parts = await attachments(msg);
    expect(parts).toHaveLength(1);
    expect(parts[0].data.toString()).toBe('This is my document.\n\nIt is great!\n\n');
    // The sample's href (…@apache.org) does not match the part's Content-ID: missing + dangling.
    const resolver = new XopResolver();
    for (const m of msg.envelope.toString().matchAll(/href="([^"]+)"/g)) resolver.expect(m[1]);
    expect(resolver.accept(parts[0].part)).toBeNull();
    expect(resolver.remaining()).toEqual([
      'cid:1.694859fac46e21a68c012f8f4fe208a370fc32b6e07ae79f@apache.org',
    ]);
    expect(resolver.dangling()).toEqual(['2.694859fac46e21a68c012f8f4fe208a370fc32b6e07ae79f']);
  });
});

describe('readSoapMessage: media types and the root part', () => {
  const root = { headers: [ROOT_CT, 'Content-ID: <root@x>'], body: '<Envelope/>' };
  const att = (id: string, body = 'data') => ({
    headers: [`Content-ID: <${id}>`, 'Content-Type: application/dicom'],
    body,
  });

  it('reads plain SOAP 1.2 whole, within maxRootBytes', async () => {
    const xml = Buffer.from('<Envelope>' + 'x'.repeat(1000) + '</Envelope>');
    const msg = await readSoapMessage(
      chunks(fixedSplit(xml, 100)),
      'application/soap+xml; charset=UTF-8; action="urn:a"',
      limits(),
    );
    expect(msg.isMtom).toBe(false);
    expect(msg.envelope.equals(xml)).toBe(true);
    expect(await msg.attachments.next()).toBeNull();
    await msg.attachments.discard();
    const e = await errorOf(
      readSoapMessage(chunks(fixedSplit(xml, 100)), 'application/soap+xml', limits({ maxRootBytes: 500 })),
    );
    expect(e.code).toBe('too-large');
  });

  it('stops reading an endless plain body at maxRootBytes', async () => {
    const src = new PassThrough();
    const writing = setInterval(() => src.write(Buffer.alloc(4096)), 1);
    try {
      const e = await errorOf(
        noHang(readSoapMessage(src, 'application/soap+xml', limits({ maxRootBytes: 10_000 }))),
      );
      expect(e.code).toBe('too-large');
    } finally {
      clearInterval(writing);
    }
  });

  it.each([
    [undefined, 'unsupported-media-type'],
    ['', 'unsupported-media-type'],
    ['text/xml; charset=utf-8', 'unsupported-media-type'],
    ['application/json', 'unsupported-media-type'],
    ['not a media type', 'unsupported-media-type'],
    ['multipart/related; type="text/xml"; boundary=x', 'unsupported-media-type'],
    ['multipart/related; type="application/xop+xml"', 'bad-content-type'],
  ])('rejects Content-Type %p with %s', async (ct, code) => {
    const e = await errorOf(readSoapMessage(chunks([Buffer.from('<x/>')]), ct, limits()));
    expect(e).toBeInstanceOf(MtomError);
    expect(e.code).toBe(code);
    if (ct?.startsWith('text/xml')) expect(e.message).toContain('SOAP 1.1');
  });

  it('takes the root named by start (matching with or without <>, escaping) or else the first part', async () => {
    const m = buildMultipart(B, [root, att('a@x')]);
    for (const start of ['; start="<root@x>"', '; start=root@x', '; start="<root%40x>"', '']) {
      const msg = await readSoapMessage(chunks([m]), mtomCt(start), limits());
      expect(msg.envelope.toString()).toBe('<Envelope/>');
      expect((await attachments(msg)).map((p) => p.data.toString())).toEqual(['data']);
    }
  });

  it('accepts a root of application/soap+xml and a multipart without type', async () => {
    const m = buildMultipart(B, [{ headers: ['Content-Type: application/soap+xml'], body: '<E/>' }]);
    const msg = await readSoapMessage(chunks([m]), `multipart/related; boundary=${B}`, limits());
    expect(msg.envelope.toString()).toBe('<E/>');
    expect(await msg.attachments.next()).toBeNull();
  });

  it('rejects start naming a later part, a missing root, a wrong root type or encoding', async () => {
    const later = buildMultipart(B, [att('a@x'), root]);
    expect(
      (await errorOf(readSoapMessage(chunks([later]), mtomCt('; start="<root@x>"'), limits()))).code,
    ).toBe('root-not-first');
    const empty = Buffer.from(`--${B}--\r\n`);
    expect((await errorOf(readSoapMessage(chunks([empty]), mtomCt(), limits()))).code).toBe('missing-root');
    const wrongType = buildMultipart(B, [{ headers: ['Content-Type: text/xml'], body: '<E/>' }]);
    expect((await errorOf(readSoapMessage(chunks([wrongType]), mtomCt(), limits()))).code).toBe('bad-root');
    const noType = buildMultipart(B, [{ headers: ['Content-ID: <r>'], body: '<E/>' }]);
    expect((await errorOf(readSoapMessage(chunks([noType]), mtomCt(), limits()))).code).toBe('bad-root');
    const b64 = buildMultipart(B, [
      { headers: [ROOT_CT, 'Content-Transfer-Encoding: base64'], body: 'PEUvPg==' },
    ]);
    expect((await errorOf(readSoapMessage(chunks([b64]), mtomCt(), limits()))).code).toBe(
      'unsupported-encoding',
    );
    const big = buildMultipart(B, [{ headers: [ROOT_CT], body: 'x'.repeat(2000) }]);
    expect(
      (await errorOf(readSoapMessage(chunks([big]), mtomCt(), limits({ maxRootBytes: 1000 })))).code,
    ).toBe('too-large');
    const cut = buildMultipart(B, [root], { close: false });
    expect((await errorOf(readSoapMessage(chunks([cut]), mtomCt(), limits()))).code).toBe('truncated');
  });

  it('rejects an attachment in a transfer encoding other than binary', async () => {
    const m = buildMultipart(B, [
      root,
      { headers: ['Content-ID: <a>', 'Content-Transfer-Encoding: quoted-printable'], body: 'x' },
    ]);
    const msg = await readSoapMessage(chunks([m]), mtomCt(), limits());
    expect((await errorOf(msg.attachments.next())).code).toBe('unsupported-encoding');
  });

  it('reports a truncated attachment and discards the rest on request', async () => {
    const cut = buildMultipart(B, [root, att('a@x', 'x'.repeat(5000))], { close: false });
    const msg = await readSoapMessage(chunks(fixedSplit(cut, 512)), mtomCt(), limits());
    const part = await msg.attachments.next();
    expect((await errorOf(noHang(collect(part!.body)))).code).toBe('truncated');

    const whole = buildMultipart(B, [root, att('a'), att('b'), att('c')]);
    const msg2 = await readSoapMessage(chunks(fixedSplit(whole, 3)), mtomCt(), limits());
    await msg2.attachments.next();
    await noHang(msg2.attachments.discard());
    expect(await msg2.attachments.next()).toBeNull();
  });
});
