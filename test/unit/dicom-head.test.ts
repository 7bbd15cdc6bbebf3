import { readFileSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import {
  checkDicomHead,
  DicomHeadError,
  readDicomHead,
  TS_DEFLATED_EXPLICIT_VR_LE,
  TS_EXPLICIT_VR_LE,
  TS_IMPLICIT_VR_LE,
  type DicomHead,
} from '@xcai/shared/src/dicom/part10-head';
import { MtomError } from '@xcai/shared/src/mtom/errors';
import { parseMultipart } from '@xcai/shared/src/mtom/multipart';
import { MtomWriter } from '@xcai/shared/src/mtom/writer';
import { el, part10, SOP, SOP_CLASS } from '../fixtures/mtom/dicom';
import {
  chunks,
  collect,
  errorOf,
  fixedSplit,
  limits,
  noHang,
  randomBytesSeeded,
  randomSplit,
  rng,
  sha1,
} from '../fixtures/mtom/helpers';
import { sample } from '../support/fixtures';

const KOS = sample('kos/nist-xdsi-kos.dcm');
async function head(list: Buffer[], opts = {}): Promise<{ head: DicomHead; bytes: Buffer }> {
  const r = await noHang(readDicomHead(chunks(list), opts));
  return { head: r.head, bytes: await noHang(collect(r.stream)) };
}

describe('readDicomHead', () => {
  it('reads meta and dataset UIDs and replays the stream byte-exactly for every chunk size', async () => {
    const obj = part10({ pixels: 300 });
    for (let size = 1; size <= obj.length; size++) {
      const r = await head(fixedSplit(obj, size));
      expect(r.head).toMatchObject({
        mediaStorageSopClassUid: SOP_CLASS,
        mediaStorageSopInstanceUid: SOP,
        transferSyntaxUid: TS_EXPLICIT_VR_LE,
        sopClassUid: SOP_CLASS,
        sopInstanceUid: SOP,
      });
      expect(r.bytes.equals(obj)).toBe(true);
    }
  });

  it.each([
    ['explicit VR LE with group length', {}],
    ['explicit VR LE without group length', { groupLength: false }],
    ['implicit VR LE', { ts: TS_IMPLICIT_VR_LE }],
    ['JPEG baseline (explicit dataset)', { ts: '1.2.840.10008.1.2.4.50' }],
  ])('handles %s', async (_name, o) => {
    const obj = part10({ ...o, pixels: 100_000 });
    const rand = rng(3);
    for (let i = 0; i < 20; i++) {
      const r = await head(randomSplit(obj, rand, 1 + i * 500));
      expect(r.head.mediaStorageSopInstanceUid).toBe(SOP);
      expect(r.head.sopInstanceUid).toBe(SOP);
      expect(sha1(r.bytes)).toBe(sha1(obj));
    }
  });

  it('trims UID padding (NUL or spaces)', async () => {
    const obj = part10({ metaSop: '1.2.3 ', dataSop: '1.2.3\0', ts: TS_EXPLICIT_VR_LE + '\0' });
    const r = await head([obj]);
    expect([r.head.mediaStorageSopInstanceUid, r.head.sopInstanceUid, r.head.transferSyntaxUid]).toEqual([
      '1.2.3',
      '1.2.3',
      TS_EXPLICIT_VR_LE,
    ]);
  });

  it('gives up on the dataset quietly: deflated, undefined length, too far, no (0008,0018)', async () => {
    const deflated = await head([part10({ ts: TS_DEFLATED_EXPLICIT_VR_LE })]);
    expect(deflated.head.sopInstanceUid).toBeUndefined();
    expect(deflated.head.mediaStorageSopInstanceUid).toBe(SOP);

    const seq = el(0x00080006, 'SQ', Buffer.alloc(0), true, true);
    const undef = await head([
      part10({ beforeSop: [seq, Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0])] }),
    ]);
    expect(undef.head.sopInstanceUid).toBeUndefined();

    const far = part10({ beforeSop: [el(0x00080008, 'UN', Buffer.alloc(70_000))] });
    const farHead = await head(fixedSplit(far, 4096));
    expect(farHead.head.sopInstanceUid).toBeUndefined();
    expect(farHead.bytes.equals(far)).toBe(true);
    expect((await head([far], { maxHeadBytes: 128 * 1024 })).head.sopInstanceUid).toBe(SOP);

    const none = await head([part10({ dataSop: null })]);
    expect(none.head.sopInstanceUid).toBeUndefined();
    expect(none.head.sopClassUid).toBe(SOP_CLASS);

    // A meta group and nothing else.
    const metaOnly = part10();
    const end = metaOnly.indexOf(Buffer.from([0x08, 0x00, 0x05, 0x00]));
    expect((await head([metaOnly.subarray(0, end)])).head.sopInstanceUid).toBeUndefined();
  });

  it('reads the real NIST XDS-I KOS', async () => {
    const obj = readFileSync(KOS);
    for (const size of [1, 17, 4096]) {
      const r = await head(fixedSplit(obj, size));
      expect(r.head).toEqual({
        mediaStorageSopClassUid: '1.2.840.10008.5.1.4.1.1.88.59',
        mediaStorageSopInstanceUid: '2.25.90214658647374166344513344800740950001',
        transferSyntaxUid: TS_EXPLICIT_VR_LE,
        sopClassUid: '1.2.840.10008.5.1.4.1.1.88.59',
        sopInstanceUid: '2.25.90214658647374166344513344800740950001',
        headBytes: expect.any(Number),
      });
      expect(r.bytes.equals(obj)).toBe(true);
    }
  });

  it.each([
    ['empty', Buffer.alloc(0), 'not-dicom'],
    ['too short', Buffer.alloc(100), 'not-dicom'],
    ['no DICM', Buffer.concat([Buffer.alloc(128), Buffer.from('DICX'), Buffer.alloc(100)]), 'not-dicom'],
    [
      'no meta group',
      Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(0x00080005, 'CS', 'X')]),
      'bad-meta',
    ],
    ['missing transfer syntax', part10({ omit: [0x10] }), 'bad-meta'],
    ['missing SOP instance', part10({ omit: [3] }), 'bad-meta'],
    [
      'implicit VR meta',
      Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(0x00020010, 'UI', TS_IMPLICIT_VR_LE, false)]),
      'bad-meta',
    ],
    [
      'undefined length in meta',
      part10({ metaExtra: [el(0x00020100, 'UN', Buffer.alloc(0), true, true)] }),
      'bad-meta',
    ],
  ])('rejects %s', async (_name, buf, code) => {
    const e = await errorOf(noHang(readDicomHead(chunks(fixedSplit(buf, 7)))));
    expect(e).toBeInstanceOf(DicomHeadError);
    expect(e.code).toBe(code);
  });

  it('rejects a group length that cuts an element, or a meta group over the limit', async () => {
    const obj = part10();
    const bad = Buffer.from(obj);
    bad.writeUInt32LE(bad.readUInt32LE(132 + 8) - 3, 132 + 8);
    expect((await errorOf(readDicomHead(chunks([bad])))).code).toBe('bad-meta');
    const huge = Buffer.from(obj);
    huge.writeUInt32LE(10_000_000, 132 + 8);
    expect((await errorOf(readDicomHead(chunks([huge])))).code).toBe('too-large-head');
    const big = part10({ metaExtra: [el(0x00020102, 'OB', Buffer.alloc(70_000))] });
    expect((await errorOf(readDicomHead(chunks(fixedSplit(big, 1000))))).code).toBe('too-large-head');
    expect((await head([big], { maxHeadBytes: 100_000 })).head.sopInstanceUid).toBe(SOP);
  });

  it('reports truncation inside the meta group or a dataset element at every cut', async () => {
    const obj = part10({ pixels: 10 });
    const sopEnd = obj.indexOf(Buffer.from(SOP)) + SOP.length + 1; // past the first (meta) UID
    const dataSopEnd = obj.lastIndexOf(Buffer.from(SOP)) + SOP.length + 1;
    for (let cut = 0; cut < dataSopEnd; cut++) {
      const r = await noHang(
        readDicomHead(chunks(fixedSplit(obj.subarray(0, cut), 5))).then(
          (v) => ({ ok: v }),
          (e: DicomHeadError) => ({ err: e }),
        ),
      );
      if ('ok' in r) {
        // Only cuts exactly between dataset elements before (0008,0018) may succeed, without the UID.
        expect(r.ok.head.sopInstanceUid).toBeUndefined();
        expect(cut).toBeGreaterThan(sopEnd);
        await collect(r.ok.stream);
      } else {
        expect(r.err).toBeInstanceOf(DicomHeadError);
        expect(cut < 132 ? 'not-dicom' : 'truncated').toBe(r.err.code);
      }
    }
  });

  it('copes with a head of many small elements arriving byte by byte', async () => {
    const many = Array.from({ length: 4000 }, (_, i) => el(0x00020100 + i, 'SH', 'ab'));
    const obj = part10({ metaExtra: many, pixels: 10 });
    expect(obj.length).toBeGreaterThan(40_000);
    const r = await head(fixedSplit(obj, 1));
    expect(r.head.sopInstanceUid).toBe(SOP);
    expect(r.bytes.equals(obj)).toBe(true);
  });

  it('passes on an error of the body, and reports a body closed early', async () => {
    const src = new PassThrough();
    src.write(part10().subarray(0, 200));
    setImmediate(() => src.destroy(new Error('socket hang up')));
    const e = await errorOf(noHang(readDicomHead(src)));
    expect(e.message).toBe('socket hang up');

    const src2 = new PassThrough();
    src2.write(part10().subarray(0, 200));
    setImmediate(() => src2.destroy());
    expect((await errorOf(noHang(readDicomHead(src2)))).code).toBe('truncated');

    const src3 = new PassThrough();
    expect((await errorOf(noHang(readDicomHead(src3, { idleTimeoutMs: 30 })))).code).toBe('timeout');
    expect(src3.destroyed).toBe(true);
  });

  it('fails the replayed stream if the body fails later', async () => {
    const obj = part10({ pixels: 100_000 });
    const src = new PassThrough();
    src.write(obj.subarray(0, 5000));
    const r = await noHang(readDicomHead(src));
    const rest = collect(r.stream);
    src.write(obj.subarray(5000, 6000));
    setImmediate(() => src.destroy(new Error('reset')));
    expect((await errorOf(noHang(rest))).message).toBe('reset');
  });

  it('reads only the head and keeps backpressure on the rest', async () => {
    let produced = 0;
    const obj = part10({ pixels: 10 });
    const block = Buffer.alloc(64 * 1024, 1);
    const src = Readable.from(
      (function* () {
        yield obj;
        for (let i = 0; i < 2000; i++) {
          produced += block.length;
          yield block;
        }
      })(),
    );
    const r = await readDicomHead(src);
    expect(r.head.sopInstanceUid).toBe(SOP);
    await new Promise((res) => setTimeout(res, 50));
    expect(produced).toBeLessThan(2 << 20);
    let n = 0;
    for await (const c of r.stream) n += (c as Buffer).length;
    expect(n).toBe(obj.length + 2000 * block.length);
  });

  it('destroying the replayed stream destroys the body', async () => {
    const src = new PassThrough();
    src.write(part10());
    const r = await readDicomHead(src);
    r.stream.destroy();
    await new Promise((res) => setImmediate(res));
    expect(src.destroyed).toBe(true);
  });

  it('checks an MTOM part on its way through (head read, bytes intact)', async () => {
    const rand = rng(11);
    const objs = [part10({ pixels: 300_000 }), part10({ metaSop: '1.2.3', dataSop: '1.2.3', pixels: 5 })];
    const noise = randomBytesSeeded(1000, rand);
    const wire = new PassThrough();
    const w = new MtomWriter(wire);
    const writing = (async () => {
      await w.writeRoot('<E/>');
      for (const o of objs)
        await w.writePart(w.newContentId(), 'application/dicom', chunks(fixedSplit(o, 8191)));
      await w.writePartFromBuffer(w.newContentId(), 'application/dicom', noise);
      await w.end();
      wire.end();
    })();
    const it = parseMultipart(wire, w.contentType, limits());
    await collect((await it.next()).value.body);
    const results: (string | null)[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await readDicomHead((await it.next()).value.body);
      results.push(checkDicomHead(r.head, { sopInstanceUid: SOP, transferSyntaxUids: [TS_EXPLICIT_VR_LE] }));
      expect(sha1(await collect(r.stream))).toBe(sha1(objs[i]));
    }
    expect(results[0]).toBeNull();
    expect(results[1]).toContain('1.2.3');
    // Not DICOM: rejected, and the part is skipped so the message reads on.
    const e = await errorOf(readDicomHead((await it.next()).value.body));
    expect(e).toBeInstanceOf(DicomHeadError);
    expect((await noHang(it.next())).done).toBe(true);
    await writing;
  });

  it('a truncated MTOM part surfaces as the MtomError', async () => {
    const obj = part10({ pixels: 1000 });
    const B = 'bnd';
    const msg = Buffer.concat([Buffer.from(`--${B}\r\n\r\n`), obj.subarray(0, 300)]);
    const it = parseMultipart(chunks([msg]), `multipart/related; boundary=${B}`, limits());
    const e = await errorOf(readDicomHead((await it.next()).value.body));
    expect(e).toBeInstanceOf(MtomError);
    expect(e.code).toBe('truncated');
  });
});

describe('checkDicomHead', () => {
  const base: DicomHead = {
    mediaStorageSopClassUid: SOP_CLASS,
    mediaStorageSopInstanceUid: SOP,
    transferSyntaxUid: TS_EXPLICIT_VR_LE,
    sopInstanceUid: SOP,
    headBytes: 0,
  };
  const want = { sopInstanceUid: SOP, transferSyntaxUids: [TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE] };

  it('accepts a matching head, with or without the dataset UID', () => {
    expect(checkDicomHead(base, want)).toBeNull();
    expect(checkDicomHead({ ...base, sopInstanceUid: undefined }, want)).toBeNull();
  });

  it('reports each violation', () => {
    expect(
      checkDicomHead({ ...base, mediaStorageSopInstanceUid: '9.9', sopInstanceUid: '9.9' }, want),
    ).toMatch(/SOP Instance UID 9\.9, expected 1\.2\.826/);
    expect(checkDicomHead({ ...base, sopInstanceUid: '9.9' }, want)).toMatch(
      /inconsistent.*\(0008,0018\) 9\.9/,
    );
    expect(checkDicomHead({ ...base, mediaStorageSopInstanceUid: '9.9' }, want)).toMatch(/inconsistent/);
    expect(checkDicomHead({ ...base, transferSyntaxUid: '1.2.840.10008.1.2.4.90' }, want)).toMatch(
      /Transfer Syntax 1\.2\.840\.10008\.1\.2\.4\.90/,
    );
    expect(checkDicomHead(base, { sopInstanceUid: SOP, transferSyntaxUids: [] })).toMatch(/\(none\)/);
  });
});
