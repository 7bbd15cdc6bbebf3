/** `xcai validate`: checks community directory files the way the gateways load them. */
import { accessSync, constants } from 'node:fs';
import { DirectoryError, loadDirectory } from '../directory/load';
import type { Directory } from '../directory/types';

export interface ValidationResult {
  file: string;
  ok: boolean;
  /** What makes the file unusable: the gateway would refuse to start with it. */
  problems: string[];
  /** What loads but deserves a look (plain-HTTP peers, unreadable trust anchors…). */
  warnings: string[];
  summary?: {
    homeCommunityId: string;
    name: string;
    communities: number;
    registry: boolean;
    repositories: number;
    imagingDocumentSources: number;
    consumers: number;
  };
}

export function validateDirectoryFile(file: string): ValidationResult {
  let d: Directory;
  try {
    d = loadDirectory(file);
  } catch (e) {
    if (e instanceof DirectoryError) return { file, ok: false, problems: e.problems, warnings: [] };
    return { file, ok: false, problems: [(e as Error).message], warnings: [] };
  }
  return {
    file,
    ok: true,
    problems: [],
    warnings: directoryWarnings(d),
    summary: {
      homeCommunityId: d.homeCommunityId,
      name: d.name,
      communities: d.communities.length,
      registry: d.local.registry !== undefined,
      repositories: d.local.repositories.length,
      imagingDocumentSources: d.local.imagingDocumentSources.length,
      consumers: d.consumers.length,
    },
  };
}

function directoryWarnings(d: Directory): string[] {
  const w: string[] = [];
  const plain = (path: string, url: string | undefined) => {
    if (url?.startsWith('http:'))
      w.push(`${path}: ${url} is plain HTTP (no TLS, no peer authentication): for tests only`);
  };
  const readable = (path: string, file: string) => {
    try {
      accessSync(file, constants.R_OK);
    } catch {
      w.push(`${path}: cannot read ${file}`);
    }
  };
  d.communities.forEach((c, i) => {
    const path = `communities[${i}] (${c.name})`;
    const eps = Object.entries(c.endpoints).filter(([, e]) => e !== undefined);
    if (eps.length === 0 && !c.acceptRequests)
      w.push(`${path}: has no endpoint and accepts no requests: it does nothing`);
    for (const [k, e] of eps) plain(`${path}.endpoints.${k}`, e?.url);
    c.identity?.trustAnchors.forEach((f, j) => readable(`${path}.identity.trustAnchors[${j}]`, f));
  });
  d.consumers.forEach((c, i) =>
    c.identity?.trustAnchors.forEach((f, j) => readable(`consumers[${i}].identity.trustAnchors[${j}]`, f)),
  );
  (d.revocation ?? []).forEach((r, i) => {
    readable(`revocation[${i}].trustAnchor`, r.trustAnchor);
    r.crls.forEach((f, j) => readable(`revocation[${i}].crls[${j}]`, f));
  });
  if (d.consent?.file) readable('consent.file', d.consent.file);
  const breakGlass = d.communities.filter((c) => c.consent?.breakGlass).map((c) => c.name);
  if (breakGlass.length && !d.breakGlass?.until)
    w.push(
      `break-glass is switched on for ${breakGlass.join(', ')} without breakGlass.until: it never expires`,
    );
  plain('local.registry', d.local.registry?.url);
  plain('local.patientDemographicsSupplier', d.local.patientDemographicsSupplier?.url);
  if (d.local.patientDemographicsSupplier && !d.patientIdentity?.assigningAuthority)
    w.push(
      'patientIdentity.assigningAuthority is not set: a responding gateway answers every ITI-55 with an application error',
    );
  d.local.repositories.forEach((e, i) => plain(`local.repositories[${i}]`, e.url));
  d.local.imagingDocumentSources.forEach((e, i) => plain(`local.imagingDocumentSources[${i}]`, e.url));
  return w;
}

export function formatValidation(r: ValidationResult): string {
  const lines: string[] = [];
  if (r.ok && r.summary) {
    const s = r.summary;
    lines.push(
      `OK ${r.file}: ${s.homeCommunityId} (${s.name}); ${s.communities} remote communit${s.communities === 1 ? 'y' : 'ies'}, ` +
        `registry ${s.registry ? 'yes' : 'no'}, ${s.repositories} repositor${s.repositories === 1 ? 'y' : 'ies'}, ` +
        `${s.imagingDocumentSources} imaging document source(s), ${s.consumers} consumer(s)`,
    );
  } else {
    lines.push(`INVALID ${r.file}:`);
    for (const p of r.problems) lines.push(`  - ${p}`);
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n') + '\n';
}
