import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { MtomError } from '@xcai/shared/src/mtom/errors';
import { parseMediaType } from '@xcai/shared/src/mtom/media-type';
import { parseMultipart } from '@xcai/shared/src/mtom/multipart';
import { readSoapMessage } from '@xcai/shared/src/mtom/read';
import { MtomWriter } from '@xcai/shared/src/mtom/writer';
import { collect, errorOf, limits, noHang, randomBytesSeeded, rng, sha1 } from '../fixtures/mtom/helpers';

/** Re-cuts the byte stream at random places. */
function rechunk(seed: number, max: number): Transform {
  const rand = rng(seed);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      let i = 0;
      while (i < chunk.length) {
        const n = 1 + Math.floor(rand() * max);
        this.push(chunk.subarray(i, i + n));
        i += n;
      }
      cb();
    },
  });
}

/** A body delivered in random-sized chunks. */
function bodyStream(data: Buffer, rand: () => number): Readable {
  const list: Buffer[] = [];
  for (let i = 0; i < data.length;) {
    const n = 1 + Math.floor(rand() * 40000);
    list.push(data.subarray(i, i + n));
    i += n;
  }
  return Readable.from(list);
}

describe('MtomWriter', () => {
  it('round-trips many random binary parts through the parser (SHA-1 equal)', async () => {
    const rand = rng(99);
    const allBodies = Array.from({ length: 40 }, (_, i) =>
      randomBytesSeeded(i % 7 === 0 ? 0 : Math.floor(rand() * 300_000), rand),
    );
    for (const [seed, max, count] of [
      [1, 1 << 16, 40],
      [2, 700, 40],
      [3, 13, 8],
    ]) {
      const bodies = allBodies.slice(0, count);
      const wire = new PassThrough();
      const w = new MtomWriter(wire, { action: 'urn:ihe:rad:2011:RetrieveImagingDocumentSetResponse' });
      const ids = bodies.map(() => w.newContentId());
      const writing = (async () => {
        await w.writeRoot('<s:Envelope>ü</s:Envelope>');
        for (let i = 0; i < bodies.length; i++) {
          expect(await w.writePart(ids[i], 'application/dicom', bodyStream(bodies[i], rand))).toBe(
            bodies[i].length,
          );
        }
        await w.end();
        wire.end();
      })();
      const msg = await noHang(readSoapMessage(wire.pipe(rechunk(seed, max)), w.contentType, limits()));
      expect(msg.isMtom).toBe(true);
      expect(msg.envelope.toString('utf8')).toBe('<s:Envelope>ü</s:Envelope>');
      const got: { id?: string; type?: string; sha: string }[] = [];
      for (;;) {
        const part = await noHang(msg.attachments.next());
        if (!part) break;
        got.push({
          id: part.headers.contentId,
          type: part.headers.contentType,
          sha: sha1(await collect(part.body)),
        });
      }
      await writing;
      expect(got).toEqual(bodies.map((b, i) => ({ id: ids[i], type: 'application/dicom', sha: sha1(b) })));
    }
  });

  it('gives a Content-Type naming the boundary, root, start-info and action', () => {
    const w = new MtomWriter(new PassThrough(), { action: 'urn:a', rootContentId: 'root@x' });
    const mt = parseMediaType(w.contentType);
    expect(mt?.type).toBe('multipart/related');
    expect(mt?.params).toMatchObject({
      type: 'application/xop+xml',
      boundary: w.boundary,
      start: '<root@x>',
      'start-info': 'application/soap+xml',
      action: 'urn:a',
    });
    expect(w.boundary.length).toBeGreaterThanOrEqual(32);
    expect(new MtomWriter(new PassThrough()).boundary).not.toBe(w.boundary);
    expect(new MtomWriter(new PassThrough()).contentType).not.toContain('action=');
  });

  it('writes the documented root and part headers', async () => {
    const out: Buffer[] = [];
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    });
    const w = new MtomWriter(sink, { boundary: 'BND', rootContentId: 'r@x' });
    await w.writeRoot('<e/>');
    await w.writePartFromBuffer('<d@x>', 'application/dicom', Buffer.from('DATA'));
    await w.end();
    expect(Buffer.concat(out).toString()).toBe(
      '--BND\r\nContent-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n' +
        'Content-Transfer-Encoding: binary\r\nContent-ID: <r@x>\r\n\r\n<e/>' +
        '\r\n--BND\r\nContent-Type: application/dicom\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <d@x>\r\n\r\nDATA' +
        '\r\n--BND--\r\n',
    );
  });

  it('makes unique Content-IDs of safe characters', () => {
    const w = new MtomWriter(new PassThrough());
    const ids = new Set(Array.from({ length: 1000 }, () => w.newContentId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f-]+@xcai$/);
  });

  it('honours backpressure of the output', async () => {
    let written = 0;
    let release: () => void = () => undefined;
    const slow = new Writable({
      highWaterMark: 1024,
      write(c: Buffer, _e, cb) {
        written += c.length;
        release = cb;
      },
    });
    let produced = 0;
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < 1000; i++) {
          produced += 65536;
          yield Buffer.alloc(65536);
        }
      })(),
    );
    const w = new MtomWriter(slow);
    const root = w.writeRoot('<e/>');
    release();
    await root;
    const part = w.writePart(w.newContentId(), 'application/octet-stream', body);
    await new Promise((r) => setTimeout(r, 50));
    expect(produced).toBeLessThan(1 << 20);
    slow.destroy();
    expect((await errorOf(part)).code).toBe('write-failed');
    expect(written).toBeLessThan(1 << 20);
  });

  it('rejects when a part body fails and leaves the package unterminated (reader: truncated)', async () => {
    const wire = new PassThrough();
    const w = new MtomWriter(wire);
    await w.writeRoot('<e/>');
    await w.writePartFromBuffer(w.newContentId(), 'text/plain', Buffer.from('ok'));
    const failing = new Readable({
      read() {
        this.push(Buffer.from('partial'));
        this.destroy(new Error('upstream reset'));
      },
    });
    const e = await errorOf(w.writePart(w.newContentId(), 'application/dicom', failing));
    expect(e).toBeInstanceOf(MtomError);
    expect(e.code).toBe('source-error');
    expect((await errorOf(w.end())).code).toBe('bad-state');
    wire.end();
    const it = parseMultipart(wire, w.contentType, limits());
    await collect((await it.next()).value.body);
    await collect((await it.next()).value.body);
    const last = (await it.next()).value;
    expect((await errorOf(noHang(collect(last.body)))).code).toBe('truncated');
  });

  it('rejects a body that closes without ending', async () => {
    const w = new MtomWriter(new PassThrough());
    await w.writeRoot('<e/>');
    const body = new Readable({ read() {} });
    const p = w.writePart(w.newContentId(), 'text/plain', body);
    body.push('abc');
    setImmediate(() => body.destroy());
    expect((await errorOf(noHang(p))).code).toBe('truncated');
  });

  it('refuses misuse and header injection', async () => {
    const w = new MtomWriter(new PassThrough());
    expect((await errorOf(w.writePartFromBuffer('a@x', 'text/plain', Buffer.alloc(1)))).code).toBe(
      'bad-state',
    );
    await w.writeRoot('<e/>');
    expect((await errorOf(w.writeRoot('<e/>'))).code).toBe('bad-state');
    expect((await errorOf(w.writePartFromBuffer('a@x\r\nX: y', 'text/plain', Buffer.alloc(1)))).code).toBe(
      'bad-header',
    );
    expect((await errorOf(w.writePartFromBuffer('a@x', 'text/plain\r\nX: y', Buffer.alloc(1)))).code).toBe(
      'bad-header',
    );
    // Two parts at once.
    const slowBody = new Readable({ read() {} });
    const first = w.writePart('a@x', 'text/plain', slowBody);
    expect((await errorOf(w.writePartFromBuffer('b@x', 'text/plain', Buffer.alloc(1)))).code).toBe(
      'bad-state',
    );
    slowBody.push(null);
    await first;
    await w.end();
    expect(() => new MtomWriter(new PassThrough(), { boundary: 'bad boundary\r\n' })).toThrow(MtomError);
    expect(() => new MtomWriter(new PassThrough(), { action: 'a"\r\nb' })).toThrow(MtomError);
  });

  it('rejects writing to a closed output', async () => {
    const out = new PassThrough();
    out.destroy();
    const w = new MtomWriter(out);
    expect((await errorOf(w.writeRoot('<e/>'))).code).toBe('write-failed');
  });
});
