/**
 * The reference registry, as the registry actor, against malformed stored-query parameters
 * (issue 12, items 5 and 7): a time bound that is not a DTM, or an unquoted string value, gives
 * XDSRegistryError naming the parameter — never an empty Success, which a consumer would read as
 * "no documents". Valid bounds still filter.
 */
import { request } from 'undici';
import {
  Action,
  APPROVED_STATUS,
  decodeAdhocQueryResponse,
  decodeEnvelope,
  encodeEnvelope,
  isDtm,
  quoteParam,
} from '@xcai/shared';
import { demoSeeds, spawnCommunity, type CommunityProcess } from '../support/federation';

const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
let ref: CommunityProcess;

beforeAll(async () => {
  ref = await spawnCommunity([(await demoSeeds()).A]);
}, 60_000);
afterAll(() => ref?.stop());

const slot = (name: string, value: string) =>
  `<rim:Slot name="${name}"><rim:ValueList><rim:Value>${value.replace(/&/g, '&amp;')}</rim:Value></rim:ValueList></rim:Slot>`;

async function findDocuments(extra: string, patient = quoteParam(PATIENT)) {
  const body =
    '<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">' +
    '<query:ResponseOption returnComposedObjects="true" returnType="ObjectRef"/><rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">' +
    slot('$XDSDocumentEntryPatientId', patient) +
    slot('$XDSDocumentEntryStatus', `(${quoteParam(APPROVED_STATUS)})`) +
    extra +
    '</rim:AdhocQuery></query:AdhocQueryRequest>';
  const res = await request(ref.registry, {
    method: 'POST',
    headers: { 'content-type': 'application/soap+xml; charset=UTF-8' },
    body: encodeEnvelope({ action: Action.ITI18, body, request: true }),
  });
  const env = decodeEnvelope(await res.body.text(), {}, false);
  return decodeAdhocQueryResponse(env.doc, env.payload);
}

it('DTM values: the forms of ITI TF-3 4.2.3.1.7, and nothing else', () => {
  for (const ok of ['2024', '202402', '20240229', '2024022923', '202402292359', '20240229235959'])
    expect(isDtm(ok)).toBe(true);
  for (const bad of [
    'yesterday',
    '20230229',
    '202413',
    '20240100',
    '2024022924',
    '20240229236',
    '2024-02-29',
    '',
    '20240229235960',
  ])
    expect(isDtm(bad)).toBe(false);
});

it.each([
  ['$XDSDocumentEntryCreationTimeFrom', "'garbage'"],
  ['$XDSDocumentEntryCreationTimeTo', '20241301'],
  ['$XDSDocumentEntryServiceStartTimeFrom', "'2024-01-01'"],
])('a malformed %s (%s) gives XDSRegistryError naming it', async (name, value) => {
  const r = await findDocuments(slot(name, value));
  expect(r.status).toBe('Failure');
  expect(r.errors).toEqual([expect.objectContaining({ errorCode: 'XDSRegistryError', location: name })]);
});

it('an unquoted patient id gives XDSRegistryError naming the parameter', async () => {
  const r = await findDocuments('', PATIENT);
  expect(r.status).toBe('Failure');
  expect(r.errors).toEqual([
    expect.objectContaining({ errorCode: 'XDSRegistryError', location: '$XDSDocumentEntryPatientId' }),
  ]);
});

it('valid bounds still filter: a range before everything finds nothing, an open one finds the documents', async () => {
  const all = await findDocuments('');
  expect(all.status).toBe('Success');
  expect(all.objects.length).toBeGreaterThan(0);
  const none = await findDocuments(slot('$XDSDocumentEntryCreationTimeTo', '1900'));
  expect(none).toMatchObject({ status: 'Success', errors: [] });
  expect(none.objects).toHaveLength(0);
  const open = await findDocuments(slot('$XDSDocumentEntryCreationTimeFrom', '1900'));
  expect(open.objects).toHaveLength(all.objects.length);
});
