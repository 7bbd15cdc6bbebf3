/**
 * The demo communities as `npm start` runs them: the studies of defaultDemoSpecs(), but each
 * community issues its own patient ids under its own assigning authority — what XCPD (ITI-55) is
 * for. A's JP1001 is B's B-4711 and C's C-20031; Tanaka is not known in C at all. Every community's
 * MPI holds the name in kanji and kana (B writes kana in katakana, A and C in hiragana), birth
 * date, sex and address. A also registers the patients it holds no studies of, so that its
 * Patient Demographics Supplier can give their demographics to the initiating gateway.
 */
import { parseCx } from './ids';
import { DEMO_AFFINITY_DOMAIN_OID, DEMO_COMMUNITY_OIDS, defaultDemoSpecs } from './specs';
import type { PatientAddress, PatientSpec, SeedSpec } from './types';

/** Assigning authorities of the three communities' patient ids (A keeps the demo affinity domain's). */
export const XCPD_DEMO_AUTHORITIES = {
  A: DEMO_AFFINITY_DOMAIN_OID,
  B: '1.3.6.1.4.1.21367.13.20.2000',
  C: '1.3.6.1.4.1.21367.13.20.3000',
} as const;

type Label = keyof typeof XCPD_DEMO_AUTHORITIES;

/** Each person's id in each community (A's id number → the others'); absent: not known there. */
const IDS: Record<string, Partial<Record<Label, string>>> = {
  JP1001: { A: 'JP1001', B: 'B-4711', C: 'C-20031' },
  JP1002: { A: 'JP1002', B: 'B-4712', C: 'C-20032' },
  JP1003: { A: 'JP1003', B: 'B-4713' },
};

const ADDRESSES: Record<string, PatientAddress> = {
  JP1001: {
    streetAddressLine: ['架空町1-2-3'],
    city: 'さくら市',
    state: '東京都',
    postalCode: '190-0001',
    country: 'JP',
  },
  JP1002: {
    streetAddressLine: ['仮名台4-5-6'],
    city: 'もみじ市',
    state: '神奈川県',
    postalCode: '250-0002',
    country: 'JP',
  },
  JP1003: {
    streetAddressLine: ['見本通7-8'],
    city: 'かえで市',
    state: '埼玉県',
    postalCode: '330-0003',
    country: 'JP',
  },
};

/** Each demo person's patient id (CX) in every community that knows them, keyed by A's id. */
export function xcpdDemoPatientIds(): Map<string, Partial<Record<Label, string>>> {
  const cx = (label: Label, id: string) => `${id}^^^&${XCPD_DEMO_AUTHORITIES[label]}&ISO`;
  return new Map(
    Object.values(IDS).map((ids) => [
      cx('A', ids.A as string),
      Object.fromEntries(Object.entries(ids).map(([l, id]) => [l, cx(l as Label, id as string)])),
    ]),
  );
}

const toKatakana = (s: string) =>
  s.replace(/[\u3041-\u3096]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0x60));

function inCommunity(p: PatientSpec, label: Label, oid: string): PatientSpec | undefined {
  const number = parseCx(p.id).id;
  const id = IDS[number]?.[label];
  if (!id) return undefined;
  return {
    ...p,
    id: `${id}^^^&${XCPD_DEMO_AUTHORITIES[label]}&ISO`,
    localId: `${number.replace('JP', 'M')}^^^&${oid}.6&ISO`,
    name: {
      ...p.name,
      ...(label === 'B' && p.name.phonetic ? { phonetic: toKatakana(p.name.phonetic) } : {}),
    },
    address: ADDRESSES[number],
  };
}

export function xcpdDemoSpecs(): SeedSpec[] {
  const specs = defaultDemoSpecs();
  const everyone = new Map<string, PatientSpec>();
  for (const s of specs) for (const p of s.patients) if (!everyone.has(p.id)) everyone.set(p.id, p);
  return specs.map((s) => {
    const label = s.community as Label;
    const oid = DEMO_COMMUNITY_OIDS[label];
    const patients = s.patients
      .map((p) => inCommunity(p, label, oid))
      .filter((p): p is PatientSpec => p !== undefined);
    if (label === 'A') {
      // Registered in A's MPI without studies there.
      for (const [id, p] of everyone) {
        if (s.patients.some((q) => q.id === id)) continue;
        // Demographics only: no studies, and no consent documents of the other community's.
        const registered = inCommunity({ ...p, studies: [], consents: [] }, 'A', oid);
        if (registered) patients.push(registered);
      }
    }
    return { ...s, patients };
  });
}
