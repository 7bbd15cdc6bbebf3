/**
 * RegistryError/@location by actor (shared/src/transactions/error-location.ts): the Responding
 * (Imaging) Gateway puts its own homeCommunityId (ITI TF-2 3.38.4.1.3, 3.39.4.1.3; RAD TF-3 4.75),
 * the Initiating Gateway the community concerned, the Initiating Imaging Gateway the SOP Instance UID
 * (RAD TF-3 4.69.5). The end-to-end rules are in test/conformance/.
 */
import {
  ErrorCode,
  located,
  mentionsUid,
  registryError,
  relayedError,
  RequestedDocuments,
} from '@xcai/shared';

const OWN = 'urn:oid:1.3.6.1.4.1.21367.13.70.101';
const B = 'urn:oid:1.3.6.1.4.1.21367.13.70.102';
const SOP = '1.2.392.200036.9116.2.5.1.37.2417.1';
const requested = new RequestedDocuments([
  { homeCommunityId: B, repositoryUniqueId: '1.2.3', documentUniqueId: SOP },
  { homeCommunityId: B, repositoryUniqueId: '1.2.3', documentUniqueId: `${SOP}0` },
]);

describe('mentionsUid', () => {
  it.each([
    [`No document matching composite UID [1.2.3:4.5.6:${SOP}]`, true],
    [`SOP Instance ${SOP}.`, true],
    [`SOP Instance ${SOP}0 is unknown`, false],
    [`SOP Instance 9${SOP} is unknown`, false],
    [`SOP Instance ${SOP}.7 is unknown`, false],
    [`x.${SOP}`, false],
  ])('%s → %s', (text, expected) => expect(mentionsUid(text, SOP)).toBe(expected));
});

describe('relayedError', () => {
  it('takes the document from location, else from the one requested UID codeContext names', () => {
    const byLocation = relayedError(
      registryError(ErrorCode.DocumentUniqueIdError, 'unknown', SOP),
      requested,
      B,
    );
    expect([byLocation.document, byLocation.community]).toEqual([SOP, B]);
    const byContext = relayedError(
      registryError(ErrorCode.DocumentUniqueIdError, `No document matching [${SOP}0]`, B),
      requested,
      B,
    );
    expect(byContext.document).toBe(`${SOP}0`);
    const both = relayedError(
      registryError(ErrorCode.RepositoryError, `${SOP} and ${SOP}0 failed`, 'IdsActorSimulator EL-2'),
      requested,
      B,
    );
    expect(both.document).toBeUndefined();
  });
});

describe('RequestedDocuments', () => {
  it.each([
    [`No document matching composite UID [1.2.3:4.5.6:${SOP}]`, [SOP]],
    [`SOP Instance ${SOP}.`, [SOP]],
    [`SOP Instance ${SOP}0 is unknown`, [`${SOP}0`]],
    [`SOP Instance 9${SOP} is unknown`, []],
    [`SOP Instance ${SOP}.7 is unknown`, []],
    [`x.${SOP}`, []],
    [`${SOP} and ${SOP}0 failed`, [SOP, `${SOP}0`]],
  ])('names in %s: %j (as mentionsUid)', (text, ids) => expect([...requested.namedIn(text)]).toEqual(ids));

  it('finds ids that are not dotted numbers too (ITI-43 uniqueIds)', () => {
    const docs = new RequestedDocuments([
      { repositoryUniqueId: '1.2.3', documentUniqueId: 'urn:uuid:0b9e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b' },
    ]);
    expect([...docs.namedIn('unknown urn:uuid:0b9e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b, sorry')]).toEqual([
      'urn:uuid:0b9e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b',
    ]);
  });

  it('attributes 20,000 relayed errors to 20,000 requested instances in one pass each', () => {
    const many = Array.from({ length: 20_000 }, (_, i) => ({
      repositoryUniqueId: '1.2.3',
      documentUniqueId: `${SOP}.${i + 1}`,
    }));
    const docs = new RequestedDocuments(many);
    const relayed = many.map((r) =>
      relayedError(
        registryError(ErrorCode.DocumentUniqueIdError, `No document [${r.documentUniqueId}]`, B),
        docs,
        B,
      ),
    );
    expect(relayed.every((e, i) => e.document === many[i].documentUniqueId)).toBe(true);
  });
});

describe('located', () => {
  const fromB = relayedError(
    registryError(ErrorCode.RepositoryError, 'none of the transfer syntaxes', SOP),
    requested,
    B,
  );
  const fromUs = registryError(ErrorCode.RepositoryError, 'TransferSyntaxUIDList is empty', 'somewhere');

  it('responder: our home on every error, the document named in codeContext', () => {
    const [a, b] = located([fromB, fromUs], 'responder', OWN);
    expect([a.location, b.location]).toEqual([OWN, OWN]);
    expect(a.codeContext).toBe(`document ${SOP}: none of the transfer syntaxes (community ${B})`);
  });

  it('community: the community concerned, else ours', () => {
    expect(located([fromB, fromUs], 'community', OWN).map((e) => e.location)).toEqual([B, OWN]);
  });

  it('document: the document, else the community, else ours', () => {
    const aboutB = registryError(ErrorCode.RegistryMetadataError, 'malformed', undefined, { community: B });
    expect(located([fromB, aboutB, fromUs], 'document', OWN).map((e) => e.location)).toEqual([SOP, B, OWN]);
  });
});
