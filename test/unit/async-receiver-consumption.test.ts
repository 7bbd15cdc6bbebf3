/**
 * The async response receiver holds the sender's request open until the transaction has taken the
 * response's attachments (shared/src/async/README.md). A small MTOM answer is read off the socket
 * whole while its envelope is parsed: the end of the sender's body must not count as the end of the
 * transaction's reading, else the receiver drops the parts not taken yet (found by the soak, issue 16).
 */
import { PassThrough, Writable } from 'node:stream';
import { MtomWriter, readSoapMessage } from '@xcai/shared';
import { trackConsumption } from '@xcai/shared/src/async/receiver';

const LIMITS = { maxRootBytes: 1 << 20, maxPartHeaderBytes: 16 * 1024, maxParts: 10, maxTotalBytes: 1 << 24 };

async function smallMtom(part: Buffer): Promise<{ body: Buffer; contentType: string }> {
  const chunks: Buffer[] = [];
  const w = new MtomWriter(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }), {
    action: 'urn:ihe:iti:2007:CrossGatewayRetrieveResponse',
  });
  await w.writeRoot(
    '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body/></soap:Envelope>',
  );
  await w.writePartFromBuffer(w.newContentId(), 'application/dicom', part);
  await w.end();
  return { body: Buffer.concat(chunks), contentType: w.contentType };
}

const settled = (p: Promise<void>) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 100))]);

it('a small answer read whole: not done until its part was taken, and the part is intact', async () => {
  const part = Buffer.alloc(4404, 7);
  const { body, contentType } = await smallMtom(part);
  const source = new PassThrough();
  source.write(body);
  const msg = await readSoapMessage(source, contentType, LIMITS);
  const t = trackConsumption(msg, source);
  source.end(); // the sender's last bytes (and its end) come while the transaction has not read yet
  expect(await settled(t.done)).toBe(false);
  const p = await t.attachments.next();
  const got: Buffer[] = [];
  for await (const c of p!.body) got.push(c as Buffer);
  expect(Buffer.concat(got).equals(part)).toBe(true);
  expect(await t.attachments.next()).toBeNull();
  expect(await settled(t.done)).toBe(true);
});

it('a sender that goes away ends the wait', async () => {
  const { body, contentType } = await smallMtom(Buffer.alloc(64 * 1024, 1));
  const source = new PassThrough();
  source.write(body.subarray(0, 2000));
  const msg = await readSoapMessage(source, contentType, LIMITS);
  const t = trackConsumption(msg, source);
  expect(await settled(t.done)).toBe(false);
  source.destroy(new Error('the sender went away'));
  expect(await settled(t.done)).toBe(true);
});
