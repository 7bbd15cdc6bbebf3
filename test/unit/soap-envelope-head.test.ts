/**
 * The head of an envelope (everything before soap:Body), found and decoded without the body: what
 * the async response receiver authenticates before reading on (issue 12, item 4).
 */
import { decodeEnvelopeHead, SoapFault } from '@xcai/shared';
import { findBodyStart } from '@xcai/shared/src/soap/envelope-head';

const HEADER =
  '<e:Header><a:Action>urn:x</a:Action><a:MessageID>urn:uuid:1</a:MessageID>' +
  '<a:RelatesTo>urn:uuid:00000000-0000-4000-8000-000000000001</a:RelatesTo></e:Header>';
const ENV = (inner: string) =>
  `<?xml version="1.0"?><!-- c --><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" ` +
  `xmlns:a="http://www.w3.org/2005/08/addressing" x="a>b">${inner}`;

describe('findBodyStart', () => {
  it('finds the Body child of the Envelope, whatever its prefix', () => {
    const text = ENV(`${HEADER}<e:Body><p/></e:Body></e:Envelope>`);
    const r = findBodyStart(Buffer.from(text));
    expect(r).toEqual({ bodyAt: text.indexOf('<e:Body>'), rootQname: 'e:Envelope' });
  });

  it('is not fooled by Body in comments, CDATA, attribute values or deeper elements', () => {
    const tricky =
      '<e:Header><!-- <e:Body> --><x:H xmlns:x="urn:x" v="<e:Body>"><x:Body/><![CDATA[<e:Body>]]></x:H></e:Header>';
    const text = ENV(`${tricky}<e:Body><p/></e:Body></e:Envelope>`);
    const r = findBodyStart(Buffer.from(text));
    expect(r).toEqual({ bodyAt: text.lastIndexOf('<e:Body>'), rootQname: 'e:Envelope' });
  });

  it('asks for more while the head is incomplete, and says so when it cannot be one', () => {
    const text = ENV(`${HEADER}<e:Body>`);
    for (const cut of [10, 60, text.indexOf('<e:Body>') + 3])
      expect(findBodyStart(Buffer.from(text.slice(0, cut)))).toBe('more');
    expect(findBodyStart(Buffer.from('<!DOCTYPE x><x/>'))).toBe('malformed');
    expect(findBodyStart(Buffer.from(ENV('</e:Envelope>')))).toBe('malformed');
  });
});

describe('decodeEnvelopeHead', () => {
  it('reads the WS-Addressing headers of the head alone', () => {
    const text = ENV(`${HEADER}<e:Body><p/></e:Body></e:Envelope>`);
    const r = findBodyStart(Buffer.from(text));
    if (typeof r === 'string') throw new Error(r);
    const wsa = decodeEnvelopeHead(Buffer.from(text).subarray(0, r.bodyAt), r.rootQname);
    expect(wsa).toMatchObject({
      action: 'urn:x',
      relatesTo: 'urn:uuid:00000000-0000-4000-8000-000000000001',
    });
  });

  it('refuses a head that is not a SOAP 1.2 envelope or holds more than a header', () => {
    expect(() => decodeEnvelopeHead(Buffer.from('<e:Envelope xmlns:e="urn:other">'), 'e:Envelope')).toThrow(
      SoapFault,
    );
    const two = Buffer.from(ENV(`${HEADER}<e:Other/>`));
    expect(() => decodeEnvelopeHead(two, 'e:Envelope')).toThrow(/unexpected element/);
  });
});
