import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Action,
  adhocQueryRequestXml,
  decodeAdhocQueryRequest,
  decodeAdhocQueryResponse,
  decodeEnvelope,
  decodeRetrieveDocumentSetRequest,
  decodeRetrieveDocumentSetResponse,
  decodeRetrieveImagingDocumentSetRequest,
  encodeAdhocQueryRequest,
  encodeAdhocQueryResponse,
  encodeEnvelope,
  encodeFault,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  imagingDocuments,
  nestImagingDocuments,
  NS,
  paramValues,
  parseParamValue,
  parseXml,
  registryError,
  securityHeaderWithAssertions,
  SoapFault,
  StoredQuery,
  validateStoredQuery,
  WSA_ANONYMOUS,
} from '@xcai/shared';
import { xsdErrors } from '../support/xsd';
import { SAMPLES } from '../support/fixtures';

const body = (xml: string) => parseXml(xml).root;

function faultOf(f: () => unknown): SoapFault {
  try {
    f();
  } catch (e) {
    if (e instanceof SoapFault) return e;
    throw e;
  }
  throw new Error('expected a SoapFault');
}

describe('SOAP 1.2 envelope with WS-Addressing', () => {
  const req = encodeEnvelope({
    action: Action.ITI18,
    messageId: 'urn:uuid:11111111-2222-3333-4444-555555555555',
    to: 'https://gw.example/iti18',
    body: encodeAdhocQueryRequest({
      queryId: StoredQuery.FindDocuments,
      params: { $XDSDocumentEntryPatientId: "'P1^^^&1.2.3&ISO'" },
    }),
    request: true,
  });

  it('round-trips Action, MessageID, To, ReplyTo and validates against the IHE schemas', () => {
    const env = decodeEnvelope(req);
    expect(env.wsa).toEqual({
      action: Action.ITI18,
      messageId: 'urn:uuid:11111111-2222-3333-4444-555555555555',
      to: 'https://gw.example/iti18',
      replyTo: WSA_ANONYMOUS,
    });
    expect(env.payload.is(NS.query, 'AdhocQueryRequest')).toBe(true);
    expect(xsdErrors([req])).toBe('');
  });

  it('writes Action and RelatesTo on responses, never mustUnderstand', () => {
    const res = encodeEnvelope({
      action: Action.ITI18Response,
      relatesTo: 'urn:uuid:11111111-2222-3333-4444-555555555555',
      body: encodeAdhocQueryResponse('Success', [], []),
      request: false,
    });
    const env = decodeEnvelope(res);
    expect(env.wsa.action).toBe(Action.ITI18Response);
    expect(env.wsa.relatesTo).toBe('urn:uuid:11111111-2222-3333-4444-555555555555');
    expect(res).not.toContain('mustUnderstand');
    expect(xsdErrors([res])).toBe('');
  });

  it('accepts mustUnderstand in the wsa namespace (seen from real peers)', () => {
    const xml = readFileSync(join(SAMPLES, 'iti-43/nist-iti43-response.soap.xml'), 'utf8');
    expect(xml).toMatch(/\w+:mustUnderstand/);
    expect(() => decodeEnvelope(xml, {}, false)).not.toThrow();
  });

  it('refuses SOAP 1.1, missing Action/MessageID, duplicates, unknown mustUnderstand headers', () => {
    expect(
      faultOf(() => decodeEnvelope(`<e:Envelope xmlns:e="${NS.soap11}"><e:Body><x/></e:Body></e:Envelope>`))
        .code,
    ).toBe('VersionMismatch');
    const noAction = req.replace(/<wsa:Action[^>]*>[^<]*<\/wsa:Action>/, '');
    const f1 = faultOf(() => decodeEnvelope(noAction));
    expect([f1.code, f1.wsaSubcode]).toEqual(['Sender', 'MessageAddressingHeaderRequired']);
    const noId = req.replace(/<wsa:MessageID>[^<]*<\/wsa:MessageID>/, '');
    expect(faultOf(() => decodeEnvelope(noId)).wsaSubcode).toBe('MessageAddressingHeaderRequired');
    const dup = req.replace('</soap:Header>', `<wsa:To>x</wsa:To></soap:Header>`);
    expect(faultOf(() => decodeEnvelope(dup)).wsaSubcode).toBe('InvalidAddressingHeader');
    const mu = req.replace(
      '</soap:Header>',
      `<x:Custom xmlns:x="urn:x" soap:mustUnderstand="true"/></soap:Header>`,
    );
    expect(faultOf(() => decodeEnvelope(mu)).code).toBe('MustUnderstand');
    const dtd = `<!DOCTYPE x [<!ENTITY a "b">]>${req.replace(/^<\?xml[^>]*>/, '')}`;
    expect(faultOf(() => decodeEnvelope(dtd)).reason).toMatch(/DOCTYPE/);
  });

  it('encodes faults that validate and carry RelatesTo', () => {
    const xml = encodeFault(SoapFault.sender('bad thing', 'ActionNotSupported'), 'urn:uuid:abc');
    const env = decodeEnvelope(xml, {}, false);
    expect(env.payload.is(NS.soap, 'Fault')).toBe(true);
    expect(env.wsa.relatesTo).toBe('urn:uuid:abc');
    expect(xsdErrors([xml])).toBe('');
  });

  it('relays XUA assertions from wsse:Security unchanged', () => {
    const xml = readFileSync(join(SAMPLES, 'iti-18/xcai-iti18-request-xua.soap.xml'), 'utf8');
    const env = decodeEnvelope(xml);
    const hdr = securityHeaderWithAssertions(env);
    expect(hdr).toBeDefined();
    const assertion = parseXml(hdr as string).root.child(NS.saml2, 'Assertion');
    const original = env.security?.child(NS.saml2, 'Assertion');
    expect(assertion?.attr('ID')).toBe(original?.attr('ID'));
    const inner = (h: string) => h.slice(h.indexOf('>', h.indexOf('Assertion')) + 1);
    expect(inner(hdr as string)).toContain(xml.slice(original!.startTagEnd, original!.endTagStart));
  });
});

describe('stored query parameters (ITI TF-2 3.18.4.1.2.3.5)', () => {
  it('parses quoted strings, lists, numbers and escaped quotes', () => {
    expect(parseParamValue("'P1^^^&1.2.3&ISO'")).toEqual(['P1^^^&1.2.3&ISO']);
    expect(parseParamValue("('a', 'b','c')")).toEqual(['a', 'b', 'c']);
    expect(parseParamValue('(1, 2)')).toEqual(['1', '2']);
    expect(parseParamValue('20200101')).toEqual(['20200101']);
    expect(parseParamValue("'O''Brien'")).toEqual(["O'Brien"]);
    expect(parseParamValue("('it''s', 'x')")).toEqual(["it's", 'x']);
    for (const bad of ["'abc", "('a'", "('a' 'b')", "'a'b'"]) expect(() => parseParamValue(bad)).toThrow();
  });

  it('keeps several Slots (AND) apart from several Values (OR)', () => {
    const xml = encodeAdhocQueryRequest({
      queryId: StoredQuery.FindDocuments,
      params: {
        $XDSDocumentEntryPatientId: "'P1^^^&1.2.3&ISO'",
        $XDSDocumentEntryStatus: [
          "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
          "('urn:x:Deprecated')",
        ],
      },
    });
    const doubled = xml.replace(
      '</rim:AdhocQuery>',
      `<rim:Slot name="$XDSDocumentEntryClassCode"><rim:ValueList><rim:Value>('a^^s')</rim:Value></rim:ValueList></rim:Slot><rim:Slot name="$XDSDocumentEntryClassCode"><rim:ValueList><rim:Value>('b^^s')</rim:Value></rim:ValueList></rim:Slot></rim:AdhocQuery>`,
    );
    const doc = parseXml(doubled);
    const req = decodeAdhocQueryRequest(doc, doc.root);
    expect(req.query).toBe('FindDocuments');
    expect(paramValues(req.params, '$XDSDocumentEntryStatus')).toHaveLength(2);
    expect(req.params.get('$XDSDocumentEntryClassCode')).toEqual([['a^^s'], ['b^^s']]);
  });

  it('reports missing, surplus and conflicting parameters', () => {
    const m = (o: Record<string, string[][]>) => new Map(Object.entries(o));
    expect(validateStoredQuery('FindDocuments', m({})).map((e) => e.errorCode)).toEqual([
      'XDSStoredQueryMissingParam',
      'XDSStoredQueryMissingParam',
    ]);
    expect(
      validateStoredQuery(
        'FindDocuments',
        m({ $XDSDocumentEntryPatientId: [['a', 'b']], $XDSDocumentEntryStatus: [['s']] }),
      ).map((e) => e.errorCode),
    ).toEqual(['XDSStoredQueryParamNumber']);
    expect(
      validateStoredQuery(
        'GetDocuments',
        m({ $XDSDocumentEntryEntryUUID: [['u']], $XDSDocumentEntryUniqueId: [['i']] }),
      )[0].errorCode,
    ).toBe('XDSStoredQueryParamNumber');
    expect(validateStoredQuery('GetDocuments', m({ $XDSDocumentEntryUniqueId: [['i']] }))).toEqual([]);
  });

  it('rewrites only the home attribute when relaying a query', () => {
    const xml = readFileSync(
      join(SAMPLES, 'iti-18/nist-iti18-getDocuments-with-home-request.body.xml'),
      'utf8',
    );
    const doc = parseXml(xml);
    const req = decodeAdhocQueryRequest(doc, doc.root);
    expect(req.home).toBeDefined();
    const moved = adhocQueryRequestXml(req, 'urn:oid:9.9.9');
    const again = parseXml(moved);
    const r2 = decodeAdhocQueryRequest(again, again.root);
    expect(r2.home).toBe('urn:oid:9.9.9');
    expect(r2.params).toEqual(req.params);
    const stripped = parseXml(adhocQueryRequestXml(req, undefined));
    expect(decodeAdhocQueryRequest(stripped, stripped.root).home).toBeUndefined();
  });
});

describe('public samples decode', () => {
  const dir = (d: string) =>
    readdirSync(join(SAMPLES, d)).filter((f) => f.endsWith('.xml') && !f.includes('testplan'));
  const payloadOf = (xml: string) => {
    const doc = parseXml(xml, { maxBytes: 1 << 26, maxTextLength: 1 << 26 });
    if (doc.root.is(NS.soap, 'Envelope'))
      return decodeEnvelope(xml, { maxBytes: 1 << 26, maxTextLength: 1 << 26 }, false);
    return { doc, payload: doc.root };
  };

  it.each([...dir('iti-18'), ...dir('iti-38').map((f) => `../iti-38/${f}`)])('iti-18/%s', (f) => {
    const { doc, payload } = payloadOf(readFileSync(join(SAMPLES, 'iti-18', f), 'utf8'));
    if (payload.is(NS.query, 'AdhocQueryRequest')) {
      const req = decodeAdhocQueryRequest(doc, payload);
      expect(req.queryId).toMatch(/^urn:uuid:/);
    } else if (payload.is(NS.query, 'AdhocQueryResponse')) {
      const res = decodeAdhocQueryResponse(doc, payload);
      expect(['Success', 'PartialSuccess', 'Failure']).toContain(res.status);
    } else {
      expect(payload.is(NS.soap, 'Fault')).toBe(true);
    }
  });

  it('the ITI-38 response sample carries home on every top-level object', () => {
    const { doc, payload } = payloadOf(
      readFileSync(join(SAMPLES, 'iti-38/nist-iti38-response.soap.xml'), 'utf8'),
    );
    const res = decodeAdhocQueryResponse(doc, payload);
    expect(res.objects.length).toBe(2);
    expect(res.objects.every((o) => o.attr('home')?.startsWith('urn:oid:'))).toBe(true);
  });

  it.each([...dir('iti-43').map((f) => `iti-43/${f}`), ...dir('iti-39').map((f) => `iti-39/${f}`)])(
    '%s',
    (f) => {
      const { payload } = payloadOf(readFileSync(join(SAMPLES, f), 'utf8'));
      if (payload.is(NS.xdsb, 'RetrieveDocumentSetRequest'))
        expect(decodeRetrieveDocumentSetRequest(payload).length).toBeGreaterThan(0);
      else if (payload.is(NS.xdsb, 'RetrieveDocumentSetResponse'))
        expect(decodeRetrieveDocumentSetResponse(payload).status).toBeDefined();
      else expect(payload.local).toMatch(/Fault|RetrieveDocumentSetResponse/);
    },
  );

  it.each([...dir('rad-69').map((f) => `rad-69/${f}`), ...dir('rad-75').map((f) => `rad-75/${f}`)])(
    '%s',
    (f) => {
      const { payload } = payloadOf(readFileSync(join(SAMPLES, f), 'utf8'));
      const req = decodeRetrieveImagingDocumentSetRequest(payload);
      expect(req.studies.length).toBeGreaterThan(0);
      const docs = imagingDocuments(req);
      expect(docs.length).toBeGreaterThan(0);
      // Splitting and re-nesting keeps every document under its study and series, and the TS list;
      // a study requested in two StudyRequest elements (one per community) comes back as one.
      const again = nestImagingDocuments(docs, req.transferSyntaxUids);
      expect(imagingDocuments(again)).toEqual(expect.arrayContaining(docs));
      expect(imagingDocuments(again)).toHaveLength(docs.length);
      expect(new Set(again.studies.map((s) => s.studyInstanceUid)).size).toBe(again.studies.length);
      const xml = encodeRetrieveImagingDocumentSetRequest(again);
      expect(decodeRetrieveImagingDocumentSetRequest(body(xml))).toEqual(again);
      expect(xsdErrors([encodeEnvelope({ action: Action.RAD69, body: xml, request: true })])).toBe('');
    },
  );

  it('retrieve request encoding validates', () => {
    const xml = encodeRetrieveDocumentSetRequest([
      { homeCommunityId: 'urn:oid:1.2.3', repositoryUniqueId: '1.2.3.4', documentUniqueId: '1.2.3.4.5' },
      { repositoryUniqueId: '1.2.3.4', documentUniqueId: '1.2.3.4.6' },
    ]);
    const env = encodeEnvelope({ action: Action.ITI43, body: xml, request: true });
    expect(xsdErrors([env])).toBe('');
    const err = encodeAdhocQueryResponse(
      'Failure',
      [registryError('XDSRegistryError', 'x & y <z>', 'urn:oid:1')],
      [],
    );
    expect(xsdErrors([encodeEnvelope({ action: Action.ITI18Response, body: err, request: false })])).toBe('');
  });
});
