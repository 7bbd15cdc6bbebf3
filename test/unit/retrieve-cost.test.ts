/**
 * Issue 17: the retrieve path's cheaper forms keep their behaviour — the DICOM head check hands the
 * part body itself on (bytes read put back, no stream in between), a buffered instance's head is
 * parsed in place with the same result, decoded ids are flat copies that do not keep the message.
 */
import { PassThrough } from 'node:stream';
import { parseDicomHead, readDicomHead } from '@xcai/shared/src/dicom/part10-head';
import { verifyBuffered } from '@xcai/shared/src/transactions/verify';
import { decodeEnvelope } from '@xcai/shared/src/soap/envelope';
import { decodeRetrieveImagingDocumentSetRequest } from '@xcai/shared/src/xds/retrieve';
import { XopResolver } from '@xcai/shared/src/mtom/xop';
import { ByteLimit } from '@xcai/shared/src/outbound/client';
import { part10, SOP } from '../fixtures/mtom/dicom';

async function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('DICOM head check on a streamed part', () => {
  it('hands on the body itself, every byte in order, whatever the chunking', async () => {
    const obj = Buffer.concat([part10(), Buffer.alloc(300_000, 7)]);
    for (const size of [7, 131, 4096, 65536]) {
      const body = new PassThrough({ highWaterMark: 1024 });
      const writing = (async () => {
        for (let i = 0; i < obj.length; i += size) {
          if (!body.write(obj.subarray(i, i + size))) await new Promise((r) => body.once('drain', r));
        }
        body.end();
      })();
      const { head, stream } = await readDicomHead(body);
      expect(stream).toBe(body);
      expect(head.sopInstanceUid).toBe(SOP);
      expect((await collect(stream)).equals(obj)).toBe(true);
      await writing;
    }
  });

  it('parses a buffered instance in place with the same head as the streamed check', async () => {
    const obj = part10();
    const chunks = [obj.subarray(0, 50), obj.subarray(50, 140), obj.subarray(140)];
    const body = new PassThrough();
    body.end(obj);
    const { head, stream } = await readDicomHead(body);
    stream.destroy();
    expect(parseDicomHead(chunks)).toEqual(head);
    const v = { kind: 'dicom' as const, sopInstanceUid: SOP, transferSyntaxUids: [head.transferSyntaxUid] };
    expect(await verifyBuffered(v, chunks)).toBeNull();
    expect(await verifyBuffered({ ...v, sopInstanceUid: '1.2.3' }, chunks)).toMatch(/1\.2\.3/);
    expect(await verifyBuffered(v, [Buffer.from('not dicom at all')])).toMatch(/not a valid DICOM/);
  });
});

describe('decoded retrieve ids', () => {
  it('are the values asked for, and the message id is a copy of its own', () => {
    const uids = Array.from({ length: 3 }, (_, i) => `1.2.826.0.1.3680043.10.543.3.${i}`);
    const xml =
      `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">` +
      `<soap:Header><wsa:Action>urn:ihe:rad:2009:RetrieveImagingDocumentSet</wsa:Action><wsa:MessageID>urn:uuid:0d3f5a30-8a5e-4d7b-9d8e-3e0f1b2c4d5e</wsa:MessageID></soap:Header>` +
      `<soap:Body><xdsi:RetrieveImagingDocumentSetRequest xmlns:xdsi="urn:ihe:rad:xdsi-b:2009" xmlns:xdsb="urn:ihe:iti:xds-b:2007">` +
      `<xdsi:StudyRequest studyInstanceUID="1.2.3.1"><xdsi:SeriesRequest seriesInstanceUID="1.2.3.2">` +
      uids
        .map(
          (u) =>
            `<xdsb:DocumentRequest><xdsb:HomeCommunityId>urn:oid:1.2.3</xdsb:HomeCommunityId><xdsb:RepositoryUniqueId>1.2.3.9</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>${u}</xdsb:DocumentUniqueId></xdsb:DocumentRequest>`,
        )
        .join('') +
      `</xdsi:SeriesRequest></xdsi:StudyRequest><xdsi:TransferSyntaxUIDList><xdsi:TransferSyntaxUID>1.2.840.10008.1.2.1</xdsi:TransferSyntaxUID></xdsi:TransferSyntaxUIDList>` +
      `</xdsi:RetrieveImagingDocumentSetRequest></soap:Body></soap:Envelope>`;
    const env = decodeEnvelope(xml, {}, true);
    const req = decodeRetrieveImagingDocumentSetRequest(env.payload);
    expect(req.studies[0].series[0].documents.map((d) => d.documentUniqueId)).toEqual(uids);
    expect(req.transferSyntaxUids).toEqual(['1.2.840.10008.1.2.1']);
    expect(env.wsa.messageId).toBe('urn:uuid:0d3f5a30-8a5e-4d7b-9d8e-3e0f1b2c4d5e');
    // One repository id for every instance: held once.
    const [a, b] = req.studies[0].series[0].documents;
    expect(a.repositoryUniqueId).toBe(b.repositoryUniqueId);
  });
});

describe('XOP resolver without per-part sets', () => {
  it('still refuses a repeated Content-ID, matched or not, and lists only the unmatched Includes', () => {
    const r = new XopResolver();
    r.expect('cid:a@x');
    r.expect('cid:b@x');
    expect(r.accept('<a@x>')).toBe('cid:a@x');
    expect(() => r.accept('a@x')).toThrow(/two MIME parts have the Content-ID/);
    expect(r.accept('z@x')).toBeNull();
    expect(() => r.accept('z@x')).toThrow(/two MIME parts have the Content-ID/);
    expect(r.remaining()).toEqual(['cid:b@x']);
    expect(r.dangling()).toEqual(['z@x']);
    expect(() => r.expect('cid:b@x')).toThrow(/two xop:Include elements/);
  });
});

describe('response byte limit without a Transform', () => {
  it('passes every byte on with the count, and fails past the limit', async () => {
    const data = Buffer.alloc(200_000, 3);
    const src = new PassThrough();
    const limited = new ByteLimit(src, data.length);
    const got = collect(limited);
    for (let i = 0; i < data.length; i += 10_000) {
      if (!src.write(data.subarray(i, i + 10_000))) await new Promise((r) => src.once('drain', r));
    }
    src.end();
    expect((await got).equals(data)).toBe(true);
    expect(limited.bytes).toBe(data.length);

    const src2 = new PassThrough();
    const small = new ByteLimit(src2, 1000);
    const failed = collect(small).catch((e: Error) => e);
    src2.write(Buffer.alloc(600));
    src2.write(Buffer.alloc(600));
    expect(await failed).toMatchObject({ kind: 'too-large' });
  });
});
