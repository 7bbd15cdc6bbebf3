/**
 * Bad input at the query and retrieve endpoints gets a clear SOAP fault or RegistryError — never a
 * crash, a hang or an unbounded allocation (issues 2 and 3; the hostile corpus in test/hostile/
 * goes further).
 */
import { request } from 'undici';
import {
  Action,
  decodeAdhocQueryResponse,
  decodeEnvelope,
  encodeAdhocQueryRequest,
  encodeEnvelope,
  NS,
  StoredQuery,
  type RunningGateway,
  type SoapEnvelope,
  encodeFindDocumentsRequest,
  encodeRetrieveImagingDocumentSetRequest,
} from '@xcai/shared';
import { retrieveCall } from '../support/client';
import {
  demoSeeds,
  igDirectoryFor,
  spawnCommunity,
  startIG,
  testSettings,
  type CommunityProcess,
} from '../support/federation';
import { xsdErrors } from '../support/xsd';

let ref: CommunityProcess;
let ig: RunningGateway;

beforeAll(async () => {
  ref = await spawnCommunity([(await demoSeeds()).A]);
  ig = await startIG(igDirectoryFor(ref, []), { limits: { maxRequestBytes: 256 * 1024 } });
}, 60_000);

afterAll(async () => {
  await ig.close();
  await ref.stop();
});

const good = encodeFindDocumentsRequest('JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO');

async function post(
  body: string | Buffer,
  contentType = 'application/soap+xml; charset=UTF-8',
  path = '/iti18',
) {
  const res = await request(`${ig.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    text,
    envelope: text ? decodeEnvelope(text, { maxBytes: 1 << 24 }, false) : undefined,
  };
}

function fault(env: SoapEnvelope | undefined): { code?: string; subcode?: string; reason?: string } {
  expect(env?.payload.is(NS.soap, 'Fault')).toBe(true);
  const p = env!.payload;
  return {
    code: p.child(NS.soap, 'Code')?.child(NS.soap, 'Value')?.trimmedText(),
    subcode: p.child(NS.soap, 'Code')?.child(NS.soap, 'Subcode')?.child(NS.soap, 'Value')?.trimmedText(),
    reason: p.child(NS.soap, 'Reason')?.child(NS.soap, 'Text')?.trimmedText(),
  };
}

describe('envelope-level problems → SOAP faults', () => {
  it('malformed XML', async () => {
    const r = await post(
      '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><x></soap:Body>',
    );
    expect(r.status).toBe(400);
    expect(fault(r.envelope)).toMatchObject({
      code: 'soap:Sender',
      reason: expect.stringMatching(/XML not accepted/),
    });
    expect(xsdErrors([r.text])).toBe('');
  });

  it('a DTD or entity declaration', async () => {
    const env = encodeEnvelope({ action: Action.ITI18, body: good, request: true }).replace(
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    );
    const r = await post(env);
    expect(r.status).toBe(400);
    expect(fault(r.envelope).reason).toMatch(/DOCTYPE/);
  });

  it('a body over the configured limit (read no further than the limit)', async () => {
    const big = encodeEnvelope({
      action: Action.ITI18,
      body: good.replace('</rim:AdhocQuery>', `<!--${'x'.repeat(400 * 1024)}--></rim:AdhocQuery>`),
      request: true,
    });
    const r = await post(big);
    expect(r.status).toBe(400);
    expect(fault(r.envelope).reason).toMatch(/too large/);
  });

  it('an action this endpoint does not serve', async () => {
    const r = await post(encodeEnvelope({ action: Action.ITI38, body: good, request: true }));
    expect(fault(r.envelope)).toMatchObject({ code: 'soap:Sender', subcode: 'wsa:ActionNotSupported' });
  });

  it('missing WS-Addressing headers', async () => {
    const env = encodeEnvelope({ action: Action.ITI18, body: good, request: true }).replace(
      /<soap:Header>.*<\/soap:Header>/,
      '',
    );
    const r = await post(env);
    expect(fault(r.envelope)).toMatchObject({
      code: 'soap:Sender',
      subcode: 'wsa:MessageAddressingHeaderRequired',
    });
  });

  it('SOAP 1.1 and other media types', async () => {
    const r = await post(
      encodeEnvelope({ action: Action.ITI18, body: good, request: true }),
      'text/xml; charset=utf-8',
    );
    expect(r.status).toBe(400);
    expect(fault(r.envelope).reason).toMatch(/SOAP 1\.1|media type|text\/xml/i);
    const r2 = await post('{"json": true}', 'application/json');
    expect(r2.status).toBe(400);
  });

  it('a body that is not an AdhocQueryRequest', async () => {
    const r = await post(
      encodeEnvelope({ action: Action.ITI18, body: '<x:Other xmlns:x="urn:x"/>', request: true }),
    );
    expect(fault(r.envelope).reason).toMatch(/expected query:AdhocQueryRequest/);
  });
});

describe('query-level problems → RegistryErrors', () => {
  async function registryErrors(body: string) {
    const r = await post(encodeEnvelope({ action: Action.ITI18, body, request: true }));
    expect(r.status).toBe(200);
    const res = decodeAdhocQueryResponse(r.envelope!.doc, r.envelope!.payload);
    return { status: res.status, codes: res.errors.map((e) => e.errorCode) };
  }

  it('an unknown stored query id', async () => {
    expect(
      await registryErrors(
        encodeAdhocQueryRequest({ queryId: 'urn:uuid:00000000-0000-0000-0000-000000000000', params: {} }),
      ),
    ).toEqual({
      status: 'Failure',
      codes: ['XDSUnknownStoredQuery'],
    });
  });

  it('a missing required parameter', async () => {
    expect(
      await registryErrors(
        encodeAdhocQueryRequest({
          queryId: StoredQuery.FindDocuments,
          params: { $XDSDocumentEntryStatus: "('x')" },
        }),
      ),
    ).toEqual({
      status: 'Failure',
      codes: ['XDSStoredQueryMissingParam'],
    });
  });

  it('a single-valued parameter given twice, and an unbalanced list', async () => {
    const twice = encodeAdhocQueryRequest({
      queryId: StoredQuery.FindDocuments,
      params: {
        $XDSDocumentEntryPatientId: ["'a^^^&1.2&ISO'", "'b^^^&1.2&ISO'"],
        $XDSDocumentEntryStatus: "('x')",
      },
    });
    expect((await registryErrors(twice)).codes).toEqual(['XDSStoredQueryParamNumber']);
    const unbalanced = encodeAdhocQueryRequest({
      queryId: StoredQuery.FindDocuments,
      params: { $XDSDocumentEntryPatientId: "'a^^^&1.2&ISO'", $XDSDocumentEntryStatus: "('x'" },
    });
    expect((await registryErrors(unbalanced)).status).toBe('Failure');
  });
});

describe('retrieve problems', () => {
  it('a retrieve request without DocumentRequest is a Sender fault', async () => {
    const a = await retrieveCall(
      `${ig.url}/iti43`,
      Action.ITI43,
      '<xdsb:RetrieveDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007"/>',
    );
    expect(a.status).toBe(400);
    expect(a.envelope.payload.is(NS.soap, 'Fault')).toBe(true);
  });

  it('an MTOM request cut short is a Sender fault', async () => {
    const boundary = 'b0undary';
    const body =
      `--${boundary}\r\nContent-Type: application/xop+xml; type="application/soap+xml"\r\nContent-ID: <root@x>\r\n\r\n` +
      encodeEnvelope({ action: Action.RAD69, body: '<x/>', request: true }).slice(0, 200);
    const r = await post(
      body,
      `multipart/related; type="application/xop+xml"; boundary=${boundary}; start="<root@x>"`,
      '/rad69',
    );
    expect(r.status).toBe(400);
    expect(fault(r.envelope).code).toBe('soap:Sender');
  });
});

describe('a large study', () => {
  // 20,000 instances (breast tomosynthesis, cardiac CT): a RAD-69 of about 5 MiB of XML.
  const request20k = () =>
    encodeRetrieveImagingDocumentSetRequest({
      studies: [
        {
          studyInstanceUid: '1.2.392.200036.9999.1',
          series: [
            {
              seriesInstanceUid: '1.2.392.200036.9999.1.1',
              documents: Array.from({ length: 20_000 }, (_, i) => ({
                repositoryUniqueId: ref.idsRepositoryUniqueId,
                documentUniqueId: `1.2.392.200036.9116.2.5.1.37.2418725938.1.${i + 1}`,
              })),
            },
          ],
        },
      ],
      transferSyntaxUids: ['1.2.840.10008.1.2.1'],
    });

  it('is read whole when the request limit allows it: the XML limit follows XCAI_MAX_REQUEST_BYTES', async () => {
    const body = request20k();
    expect(body.length).toBeGreaterThan(4 * 1024 * 1024);
    const big = await startIG(igDirectoryFor(ref, []), {
      settings: { ...testSettings, maxRequestBytes: 16 * 1024 * 1024 },
    });
    try {
      const a = await retrieveCall(`${big.url}/rad69`, Action.RAD69, body);
      expect(a.envelope.payload.is(NS.soap, 'Fault')).toBe(false);
      expect(a.status).toBe(200);
      // none of these instances exists: each one is answered with an error located at its SOP Instance UID
      expect(a.errors.length).toBe(20_000);
      expect(a.errors[19_999].location).toBe('1.2.392.200036.9116.2.5.1.37.2418725938.1.20000');
    } finally {
      await big.close();
    }
  }, 60_000);
});

describe('the gateway is still up', () => {
  it('answers a good query after all that', async () => {
    const r = await post(encodeEnvelope({ action: Action.ITI18, body: good, request: true }));
    expect(decodeAdhocQueryResponse(r.envelope!.doc, r.envelope!.payload).status).toBe('Success');
  });
});
