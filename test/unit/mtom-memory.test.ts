import { PassThrough, Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readDicomHead } from '@xcai/shared/src/dicom/part10-head';
import { readSoapMessage } from '@xcai/shared/src/mtom/read';
import { MtomWriter } from '@xcai/shared/src/mtom/writer';
import { part10, SOP } from '../fixtures/mtom/dicom';
import { limits } from '../fixtures/mtom/helpers';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MiB = 1 << 20;
const CHUNK = 64 * 1024;

function memory(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const HEAD = part10({ pixels: 0 });

/** A part body of `size` bytes in fresh 64 KiB chunks, starting with a DICOM Part 10 head. */
function body(size: number, index: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const c = Buffer.allocUnsafe(Math.min(CHUNK, size - sent));
      c.fill(index & 0xff);
      if (sent === 0) HEAD.copy(c);
      sent += c.length;
      this.push(c);
    },
  });
}

describe('MTOM streaming memory', () => {
  it('relays 300 MiB (writer → parser → sink) with bounded memory', async () => {
    // Parts larger than the bound, so buffering one part would fail the test as surely as a leak.
    const parts = 3;
    const partSize = 100 * MiB;
    const wire = new PassThrough();
    const w = new MtomWriter(wire);
    const before = memory();
    let peak = 0;
    const writing = (async () => {
      await w.writeRoot('<Envelope/>');
      for (let i = 0; i < parts; i++)
        await w.writePart(w.newContentId(), 'application/dicom', body(partSize, i));
      await w.end();
      wire.end();
    })();
    const msg = await readSoapMessage(wire, w.contentType, limits({ maxTotalBytes: 2 ** 40 }));
    let total = 0;
    let count = 0;
    let sinceSample = 0;
    for (;;) {
      const part = await msg.attachments.next();
      if (!part) break;
      count++;
      for await (const c of part.body) {
        total += (c as Buffer).length;
        sinceSample += (c as Buffer).length;
        if (sinceSample >= 20 * MiB) {
          sinceSample = 0;
          peak = Math.max(peak, memory() - before);
        }
      }
    }
    await writing;
    if (process.env.MTOM_MEMORY_DEBUG)
      console.log({ peakMiB: peak / MiB, endMiB: (memory() - before) / MiB });
    expect(count).toBe(parts);
    expect(total).toBe(parts * partSize);
    // A leak or a buffered part would show hundreds of MiB; streaming holds a few chunks.
    expect(peak).toBeLessThan(48 * MiB);
    expect(memory() - before).toBeLessThan(16 * MiB);
  });

  it('a DICOM head check on each part keeps memory bounded too', async () => {
    const wire = new PassThrough();
    const w = new MtomWriter(wire);
    const writing = (async () => {
      await w.writeRoot('<Envelope/>');
      for (let i = 0; i < 10; i++)
        await w.writePart(w.newContentId(), 'application/dicom', body(10 * MiB, i));
      await w.end();
      wire.end();
    })();
    const before = memory();
    let peak = 0;
    const msg = await readSoapMessage(wire, w.contentType, limits({ maxTotalBytes: 2 ** 40 }));
    let total = 0;
    for (;;) {
      const part = await msg.attachments.next();
      if (!part) break;
      const r = await readDicomHead(part.body);
      expect(r.head.sopInstanceUid).toBe(SOP);
      for await (const c of r.stream) total += (c as Buffer).length;
      peak = Math.max(peak, memory() - before);
    }
    await writing;
    expect(peak).toBeLessThan(48 * MiB);
    expect(total).toBe(10 * 10 * MiB);
  });
});
