import { PassThrough, Readable } from 'node:stream';
import { MtomError } from '@xcai/shared/src/mtom/errors';
import { boundaryFromContentType, parseMultipart } from '@xcai/shared/src/mtom/multipart';
import {
  buildMultipart,
  chunks,
  collect,
  errorOf,
  fixedSplit,
  limits,
  noHang,
  randomBytesSeeded,
  randomSplit,
  readAll,
  rng,
  type BuildPart,
} from '../fixtures/mtom/helpers';

const B = 'MIMEBoundary_0123456789abcdef';
const CT = `multipart/related; type="application/xop+xml"; boundary="${B}"; start="<root@x>"`;

/** Bodies full of things that look like a delimiter but are not one. */
function trickyBodies(): Buffer[] {
  const lookalikes: string[] = [];
  for (let k = 0; k < B.length; k++) lookalikes.push(`\r\n--${B.slice(0, k)}`, `\n--${B.slice(0, k)}X`);
  return [
    Buffer.from('<Envelope>root</Envelope>'),
    Buffer.from(lookalikes.join('|') + `--${B}` + `x--${B}` + '\r\r\n-\r\n\r\n'),
    Buffer.alloc(0),
    Buffer.from(`\r\n--${B.slice(0, -1)}`), // ends with an almost-delimiter
    Buffer.from('\r'), // a lone CR right before the delimiter
    Buffer.from('\n\n\r\n\r\r'),
  ];
}

function trickyParts(): BuildPart[] {
  return trickyBodies().map((body, i) => ({
    headers: [`Content-ID: <p${i}@x>`, 'Content-Type: application/octet-stream'],
    body,
  }));
}

function parse2(src: Readable) {
  return readAll(parseMultipart(src, CT, limits()));
}

async function parse(list: Buffer[], ct = CT, lim = limits()) {
  return noHang(readAll(parseMultipart(chunks(list), ct, lim)), 10_000, 'parse');
}

function expectParts(got: { headers: { contentId?: string }; body: Buffer }[], bodies: Buffer[]): void {
  expect(got.map((p) => p.headers.contentId)).toEqual(bodies.map((_, i) => `p${i}@x`));
  got.forEach((p, i) => expect(p.body.equals(bodies[i])).toBe(true));
}

describe('parseMultipart: framing', () => {
  const bodies = trickyBodies();
  const msg = buildMultipart(B, trickyParts(), {
    preamble: 'preamble text\r\n--not-it',
    epilogue: 'bye\r\n',
  });

  it('parses a message with delimiter look-alikes, empty parts, preamble and epilogue', async () => {
    expectParts(await parse([msg]), bodies);
  });

  it('gives the same parts for every chunk size 1..N', async () => {
    for (let size = 1; size <= msg.length; size++) {
      expectParts(await parse(fixedSplit(msg, size)), bodies);
    }
  });

  it('gives the same parts for random splits', async () => {
    const rand = rng(42);
    for (let i = 0; i < 300; i++) expectParts(await parse(randomSplit(msg, rand, 1 + (i % 90))), bodies);
  });

  it.each([
    ['LF only', { eol: '\n' }],
    ['transport padding', { padding: ' \t  ' }],
    ['LF and padding', { eol: '\n', padding: '\t' }],
  ] as [string, { eol?: string; padding?: string }][])('accepts %s', async (_name, opts) => {
    // With bare-LF delimiters a body ending in CR is ambiguous (CRLF is preferred): avoid those here.
    const parts = trickyParts().filter((p) => opts.eol !== '\n' || !p.body.toString().endsWith('\r'));
    const want = parts.map((p) => p.body as Buffer);
    parts.forEach((p, i) => (p.headers[0] = `Content-ID: <p${i}@x>`));
    const m = buildMultipart(B, parts, opts);
    expectParts(await parse([m]), want);
    const rand = rng(7);
    for (let i = 0; i < 100; i++) expectParts(await parse(randomSplit(m, rand, 40)), want);
  });

  it('accepts mixed CRLF / LF in headers and delimiters, folded headers, any header case', async () => {
    const m = Buffer.from(
      `--${B}\n` +
        'content-id:   <a@x>\r\nCONTENT-TYPE: text/plain;\r\n  charset=utf-8\n\r\nbody A' +
        `\n--${B}  \r\nContent-Id: b@x\n\nbody B\r\n--${B}--`,
    );
    const parts = await parse([m]);
    expect(parts.map((p) => p.body.toString())).toEqual(['body A', 'body B']);
    expect(parts[0].headers.contentId).toBe('a@x');
    expect(parts[0].headers.contentType).toBe('text/plain; charset=utf-8');
    expect(parts[0].headers.all['content-type']).toBe('text/plain; charset=utf-8');
    expect(parts[1].headers.contentId).toBe('b@x');
  });

  it('accepts a message starting directly with the boundary, and no trailing line end', async () => {
    const m = Buffer.from(`--${B}\r\nContent-ID: <a>\r\n\r\nx\r\n--${B}--`);
    const parts = await parse([m]);
    expect(parts).toHaveLength(1);
    expect(parts[0].body.toString()).toBe('x');
  });

  it('accepts a part without headers and an empty body written without the CRLF', async () => {
    const m = Buffer.from(`--${B}\r\n\r\nno headers\r\n--${B}\r\nContent-ID: <e>\r\n\r\n--${B}--\r\n`);
    for (let size = 1; size <= m.length; size++) {
      const parts = await parse(fixedSplit(m, size));
      expect(parts.map((p) => [p.headers.contentId, p.body.toString()])).toEqual([
        [undefined, 'no headers'],
        ['e', ''],
      ]);
    }
  });

  it('takes the boundary quoted or not', async () => {
    const m = Buffer.from(`--${B}\r\nContent-ID: <a>\r\n\r\nx\r\n--${B}--`);
    expect(await parse([m], `multipart/related; boundary=${B}; type="application/xop+xml"`)).toHaveLength(1);
    expect(boundaryFromContentType(`Multipart/Related;boundary="a b;c"`)).toBe('a b;c');
    expect(boundaryFromContentType(`multipart/related; boundary=abc ; start="<x>"`)).toBe('abc');
  });

  it('rejects a Content-Type without a usable boundary', () => {
    for (const ct of [
      'multipart/related',
      'multipart/related; boundary=""',
      'text/plain; boundary=x',
      'garbage',
    ]) {
      expect(() => parseMultipart(chunks([]), ct, limits())).toThrow(MtomError);
    }
    try {
      parseMultipart(chunks([]), 'multipart/related; type="x"', limits());
    } catch (e) {
      expect((e as MtomError).code).toBe('bad-content-type');
    }
  });
});

describe('parseMultipart: truncation and malformed input', () => {
  const msg = buildMultipart(B, trickyParts(), { epilogue: '' });
  const complete = msg.indexOf(`--${B}--`) + B.length + 4;

  it('reports truncated input at every cut, on the iterator or the body, and never hangs', async () => {
    for (let cut = 0; cut < complete; cut++) {
      for (const size of [1, 7, 1000]) {
        const e = await errorOf(parse(fixedSplit(msg.subarray(0, cut), size)));
        expect(e).toBeInstanceOf(MtomError);
        expect([cut, e.code]).toEqual([cut, 'truncated']);
      }
    }
    // Cutting after the close delimiter loses nothing.
    for (let cut = complete; cut <= msg.length; cut++) {
      expect(await parse([msg.subarray(0, cut)])).toHaveLength(trickyBodies().length);
    }
  });

  it('fails the body being read with the same error as the iterator', async () => {
    const cut = msg.subarray(0, msg.indexOf('|') + 5);
    const it = parseMultipart(chunks([cut]), CT, limits());
    await collect((await it.next()).value.body);
    const part = (await it.next()).value;
    const bodyErr = await errorOf(collect(part.body));
    expect(bodyErr.code).toBe('truncated');
    const iterErr = await errorOf(it.next());
    expect(iterErr).toBe(bodyErr);
  });

  it('reports a source that closes early or fails', async () => {
    const src = new PassThrough();
    const it = parseMultipart(src, CT, limits());
    src.write(`--${B}\r\nContent-ID: <a>\r\n\r\nsome`);
    const part = (await it.next()).value;
    const body = collect(part.body);
    setImmediate(() => src.destroy());
    expect((await errorOf(noHang(body))).code).toBe('truncated');

    const src2 = new PassThrough();
    const it2 = parseMultipart(src2, CT, limits());
    src2.write(`--${B}\r\nContent-ID: <a>\r\n`);
    setImmediate(() => src2.destroy(new Error('ECONNRESET')));
    const e = await errorOf(noHang(it2.next()));
    expect(e.code).toBe('source-error');
    expect(e.message).toContain('ECONNRESET');
  });

  it('rejects a source that produces something other than bytes', async () => {
    const src = Readable.from([Buffer.from(`--${B}\r\n`), { not: 'bytes' }]);
    expect((await errorOf(noHang(parse2(src)))).code).toBe('source-error');
    const typed = Readable.from([new Uint8Array(Buffer.from(`--${B}\r\n\r\nx\r\n--${B}--`))]);
    expect(
      (await noHang(readAll(parseMultipart(typed, CT, limits())))).map((p) => p.body.toString()),
    ).toEqual(['x']);
  });

  it('does not crash when a consumer pipes a failing body without an error handler', async () => {
    const cut = Buffer.from(`--${B}\r\nContent-ID: <a>\r\n\r\n${'x'.repeat(100)}`);
    const it = parseMultipart(chunks([cut]), CT, limits());
    const part = (await it.next()).value;
    const sink = new PassThrough();
    sink.resume();
    part.body.pipe(sink);
    expect((await errorOf(noHang(it.next()))).code).toBe('truncated');
    expect(part.body.destroyed).toBe(true);
  });

  it('times out waiting for input when idleTimeoutMs is set', async () => {
    const src = new PassThrough();
    src.write(`--${B}\r\n`);
    const e = await errorOf(noHang(parseMultipart(src, CT, limits({ idleTimeoutMs: 50 })).next()));
    expect(e.code).toBe('timeout');
  });

  it.each([
    ['boundary followed by other bytes', `--${B}X\r\n\r\nbody\r\n--${B}--`, 'bad-delimiter'],
    ['a longer boundary inside a body', `--${B}\r\n\r\nbody\r\n--${B}0\r\n--${B}--`, 'bad-delimiter'],
    ['header line without colon', `--${B}\r\nContent-ID <a>\r\n\r\nbody\r\n--${B}--`, 'bad-header'],
    ['header line with an empty name', `--${B}\r\n: x\r\n\r\nbody\r\n--${B}--`, 'bad-header'],
    ['nothing but a preamble', 'just some text\r\nand more', 'truncated'],
    ['empty input', '', 'truncated'],
  ])('rejects %s', async (_name, text, code) => {
    const e = await errorOf(parse([Buffer.from(text)]));
    expect(e).toBeInstanceOf(MtomError);
    expect(e.code).toBe(code);
  });

  it('enforces the header block limit', async () => {
    const big = `X-Pad: ${'a'.repeat(5000)}`;
    const m = buildMultipart(B, [{ headers: ['Content-ID: <a>', big], body: 'x' }]);
    for (const size of [1, 100, 100000]) {
      expect((await errorOf(parse(fixedSplit(m, size)))).code).toBe('header-too-large');
    }
    // An endless header line is stopped at the limit, not read to the end.
    let produced = 0;
    const endless = Readable.from(
      (function* () {
        yield Buffer.from(`--${B}\r\nX: `);
        for (;;) {
          produced += 1024;
          yield Buffer.alloc(1024, 0x61);
        }
      })(),
    );
    const e = await errorOf(noHang(parseMultipart(endless, CT, limits()).next()));
    expect(e.code).toBe('header-too-large');
    expect(produced).toBeLessThan(1 << 20);
    endless.destroy();
    const padding = Buffer.from(`--${B}${' '.repeat(5000)}`);
    expect((await errorOf(parse([padding]))).code).toBe('header-too-large');
  });

  it('enforces the part count and total size limits', async () => {
    const parts = Array.from({ length: 5 }, (_, i) => ({
      headers: [`Content-ID: <p${i}>`],
      body: 'x'.repeat(100),
    }));
    const m = buildMultipart(B, parts);
    expect(await parse([m], CT, limits({ maxParts: 5 }))).toHaveLength(5);
    expect((await errorOf(parse([m], CT, limits({ maxParts: 4 })))).code).toBe('too-many-parts');
    expect(await parse([m], CT, limits({ maxTotalBytes: m.length }))).toHaveLength(5);
    expect((await errorOf(parse(fixedSplit(m, 10), CT, limits({ maxTotalBytes: m.length - 1 })))).code).toBe(
      'too-large',
    );
    // The epilogue and preamble count too.
    const withEpilogue = buildMultipart(B, parts, { epilogue: 'e'.repeat(1000) });
    expect((await errorOf(parse([withEpilogue], CT, limits({ maxTotalBytes: m.length + 100 })))).code).toBe(
      'too-large',
    );
  });
});

describe('parseMultipart: streaming and skipping', () => {
  function bigMessage(partBytes: number, parts: number): { src: Readable; produced: () => number } {
    let produced = 0;
    const block = Buffer.alloc(64 * 1024, 0x42);
    function* gen(): Generator<Buffer> {
      for (let p = 0; p < parts; p++) {
        yield Buffer.from(`${p ? '\r\n' : ''}--${B}\r\nContent-ID: <p${p}>\r\n\r\n`);
        for (let n = 0; n < partBytes; n += block.length) {
          produced += block.length;
          yield block;
        }
      }
      yield Buffer.from(`\r\n--${B}--\r\n`);
    }
    return { src: Readable.from(gen()), produced: () => produced };
  }

  it('applies backpressure: an unread body stops the source', async () => {
    const { src, produced } = bigMessage(64 << 20, 1);
    const it = parseMultipart(src, CT, limits());
    const part = (await it.next()).value;
    const first = await new Promise<Buffer>((resolve) =>
      part.body.once('data', (c: Buffer) => {
        part.body.pause();
        resolve(c);
      }),
    );
    expect(first.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(produced()).toBeLessThan(4 << 20);
    await it.return();
    src.destroy();
  });

  it('skips a destroyed body, an untouched body and a resumed body', async () => {
    const { src } = bigMessage(1 << 20, 4);
    const it = parseMultipart(src, CT, limits());
    const ids: string[] = [];
    let lastLength = 0;
    for (let i = 0; ; i++) {
      const r = await noHang(it.next());
      if (r.done) break;
      ids.push(r.value.headers.contentId ?? '');
      if (i === 0) {
        await new Promise((resolve) => r.value.body.once('data', resolve));
        r.value.body.destroy();
      } else if (i === 2) {
        r.value.body.resume();
      } else if (i === 3) {
        lastLength = (await collect(r.value.body)).length;
      }
    }
    expect(ids).toEqual(['p0', 'p1', 'p2', 'p3']);
    expect(lastLength).toBe(1 << 20);
  });

  it('waits for a body piped concurrently with next()', async () => {
    const { src } = bigMessage(1 << 20, 3);
    const sizes: number[] = [];
    for await (const part of parseMultipart(src, CT, limits())) {
      const sink = new PassThrough();
      let n = 0;
      sink.on('data', (c: Buffer) => (n += c.length));
      sink.on('end', () => sizes.push(n));
      part.body.pipe(sink);
    }
    await new Promise((r) => setImmediate(r));
    expect(sizes).toEqual([1 << 20, 1 << 20, 1 << 20]);
  });

  it('discard() drops the rest, and return() leaves the open body readable', async () => {
    const { src } = bigMessage(1 << 20, 5);
    const it = parseMultipart(src, CT, limits());
    await it.next();
    await noHang(it.discard());
    expect((await it.next()).done).toBe(true);

    const { src: src2 } = bigMessage(1 << 20, 3);
    const it2 = parseMultipart(src2, CT, limits());
    const part = (await it2.next()).value;
    await it2.return();
    expect((await collect(part.body)).length).toBe(1 << 20);
    expect((await it2.next()).done).toBe(true);
  });

  it('never hangs after return(), whatever state the open body is in', async () => {
    const { src } = bigMessage(1 << 20, 3);
    const it = parseMultipart(src, CT, limits());
    await it.next(); // untouched body
    await it.return();
    expect((await noHang(it.next())).done).toBe(true);
    await noHang(it.discard());

    const { src: src2 } = bigMessage(1 << 20, 3);
    const it2 = parseMultipart(src2, CT, limits());
    const part = (await it2.next()).value;
    await new Promise((r) =>
      part.body.once('data', (c: Buffer) => {
        part.body.pause();
        r(c);
      }),
    );
    const pending = it2.next(); // waits for the started body
    await it2.return();
    part.body.destroy();
    expect((await noHang(pending)).done).toBe(true);

    // A waiting next() goes on when the (backpressured) body it waits for is destroyed.
    const { src: src3 } = bigMessage(1 << 20, 2);
    const it3 = parseMultipart(src3, CT, limits());
    const p1 = (await it3.next()).value;
    await new Promise((r) =>
      p1.body.once('data', (c: Buffer) => {
        p1.body.pause();
        r(c);
      }),
    );
    const waiting = it3.next();
    await new Promise((r) => setTimeout(r, 20));
    p1.body.destroy();
    const p2 = await noHang(waiting);
    expect(p2.value.headers.contentId).toBe('p1');
    expect((await collect(p2.value.body)).length).toBe(1 << 20);
  });

  it('never copies or alters binary content (random bodies, random splits)', async () => {
    const rand = rng(1);
    for (let round = 0; round < 20; round++) {
      const bodies = Array.from({ length: 4 }, () => randomBytesSeeded(Math.floor(rand() * 5000), rand));
      // Plant delimiter prefixes at random places.
      for (const b of bodies) {
        for (let k = 0; k < 5 && b.length > 80; k++) {
          const at = Math.floor(rand() * (b.length - 60));
          Buffer.from(`\r\n--${B.slice(0, Math.floor(rand() * B.length))}`).copy(b, at);
        }
      }
      const m = buildMultipart(
        B,
        bodies.map((body, i) => ({ headers: [`Content-ID: <p${i}@x>`], body })),
      );
      expectParts(await parse(randomSplit(m, rand, 700)), bodies);
    }
  });
});
