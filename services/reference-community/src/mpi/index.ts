/**
 * The reference community's Master Patient Index: a Patient Identity Source over the seeded
 * patients. Each community issues its own ids (the XDS patient id, in the community's assigning
 * authority, and the local MRN); the person's name is kept in the representations the seed has —
 * romaji (ABC), kanji (IDE), kana (SYL) — with birth date, sex and address.
 */
import {
  demographicsMatch,
  parsePatientCx,
  patientIdToIi,
  type AdministrativeGender,
  type Demographics,
  type InstanceId,
  type NameRepresentation,
  type PatientQuery,
  type PersonName,
} from '@xcai/shared';
import type { ManifestPatient, SeedManifest } from '../seed/types';

export interface PatientRecord {
  /** The community's patient id first, then the local MRN. */
  ids: InstanceId[];
  person: Demographics;
}

const REPRESENTATIONS: NameRepresentation[] = ['ABC', 'IDE', 'SYL'];

/** A DICOM PN (`alphabetic=ideographic=phonetic`, components `family^given^middle^prefix^suffix`). */
export function namesOfPn(pn: string): PersonName[] {
  return pn.split('=').flatMap((group, i) => {
    const [family = '', given = '', middle = '', prefix = '', suffix = ''] = group.split('^');
    const some = (...v: string[]) => v.filter((x) => x.trim() !== '');
    const name: PersonName = {
      family: some(family),
      given: some(given, middle),
      prefix: some(prefix),
      suffix: some(suffix),
      use: [REPRESENTATIONS[i] ?? 'ABC'],
    };
    return name.family.length || name.given.length ? [name] : [];
  });
}

const GENDER: Record<string, AdministrativeGender> = { M: 'M', F: 'F' };

function record(p: ManifestPatient): PatientRecord {
  const ids = [p.id, p.sourcePatientId]
    .map(parsePatientCx)
    .filter((x) => x !== undefined)
    .map(patientIdToIi)
    .filter((ii, i, all) => all.findIndex((o) => o.root === ii.root && o.extension === ii.extension) === i);
  return {
    ids,
    person: {
      names: namesOfPn(p.dicomName),
      gender: GENDER[p.sex] ?? 'UN',
      birthTime: p.birthDate,
      addresses: p.address ? [{ ...p.address }] : [],
    },
  };
}

export class PatientIndex {
  readonly records: PatientRecord[];

  constructor(manifests: SeedManifest[]) {
    this.records = manifests.flatMap((m) => m.patients.map(record));
  }

  /**
   * The patients matching every criterion of a PDQ query: one of the ids it names (when it names
   * any) and the demographics it gives. With OtherIDsScopingOrganization, only patients with an id
   * in one of those domains.
   */
  find(q: Pick<PatientQuery, 'ids' | 'demographics' | 'scopingOrganizations'>): PatientRecord[] {
    return this.records.filter((r) => {
      if (
        q.ids.length &&
        !q.ids.some((a) => r.ids.some((b) => a.root === b.root && a.extension === b.extension))
      )
        return false;
      if (q.scopingOrganizations.length && !r.ids.some((i) => q.scopingOrganizations.includes(i.root)))
        return false;
      return demographicsMatch(q.demographics, r.person);
    });
  }
}
