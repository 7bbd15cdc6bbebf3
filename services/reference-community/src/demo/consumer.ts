/**
 * `npm run demo:consumer -- --patient <id> [--out DIR]` plays the PACS (Imaging Document
 * Consumer) against the demo federation started by `npm start`:
 *   ITI-18 FindDocuments → ITI-43 for the KOS manifests (SHA-1/size checked) → read the KOS →
 *   RAD-69 for every instance → DICOM files written to a folder, each checked against the source.
 * It reads the endpoints from $DEMO_ENDPOINTS_FILE (default .run/demo/endpoints.json).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import {
  Action,
  cidFromHref,
  contentIdKey,
  decodeAdhocQueryResponse,
  decodeEnvelope,
  decodeRetrieveDocumentSetResponse,
  documentEntryFacts,
  encodeEnvelope,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  MtomWriter,
  nestImagingDocuments,
  NS,
  readSoapMessage,
  type DocumentRequest,
  type ImagingDocumentRef,
  type RegistryError,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { readKos } from '../seed/kos';
import type { SeedManifest } from '../seed/types';
import type { DemoEndpoints } from './federation';

const ROOT = resolve(__dirname, '../../../..');
/** What this PACS accepts: uncompressed, and the lossless JPEG and JPEG-LS the seed also holds. */
const TRANSFER_SYNTAXES = [
  '1.2.840.10008.1.2.1',
  '1.2.840.10008.1.2',
  '1.2.840.10008.1.2.4.70',
  '1.2.840.10008.1.2.4.80',
];
const XML_LIMITS = { maxBytes: 1 << 28, maxTextLength: 1 << 28, maxElements: 5_000_000 };

interface Tally {
  kos: number;
  instances: number;
  bytes: number;
  verified: number;
  problems: string[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { patient: { type: 'string' }, out: { type: 'string' } } });
  const file = process.env.DEMO_ENDPOINTS_FILE ?? join(ROOT, '.run/demo/endpoints.json');
  let ep: DemoEndpoints;
  try {
    ep = JSON.parse(readFileSync(file, 'utf8')) as DemoEndpoints;
  } catch {
    throw new Error(`cannot read ${file}: start the federation first with "npm start"`);
  }
  const patient = values.patient ?? ep.patients[0]?.id;
  if (!patient) throw new Error('usage: npm run demo:consumer -- --patient <id^^^&oid&ISO>');
  const out = resolve(values.out ?? join(ep.runDir, 'consumer', patient.split('^')[0]));
  mkdirSync(out, { recursive: true });
  const dispatcher = new Agent({
    connect: {
      ca: readFileSync(ep.tls.ca),
      cert: readFileSync(ep.tls.clientCertificate),
      key: readFileSync(ep.tls.clientKey),
      minVersion: 'TLSv1.2',
    },
  });
  const byHome = new Map(ep.communities.map((c) => [c.homeCommunityId, c]));
  const tally = new Map<string, Tally>(
    ep.communities.map((c) => [c.label, { kos: 0, instances: 0, bytes: 0, verified: 0, problems: [] }]),
  );
  const labelOf = (home?: string): string => byHome.get(home ?? '')?.label ?? home ?? '?';
  const note = (home: string | undefined, problem: string) =>
    tally.get(labelOf(home))?.problems.push(problem);

  // 1. ITI-18: every community's KOS manifests for the patient.
  process.stdout.write(`ITI-18 FindDocuments for ${patient} …\n`);
  const query = encodeFindDocumentsRequest(patient, {
    params: { $XDSDocumentEntryFormatCode: "('1.2.840.10008.5.1.4.1.1.88.59^^1.2.840.10008.2.6.1')" },
  });
  const qEnv = await soap(ep.consumer.iti18, Action.ITI18, query, dispatcher);
  const qRes = decodeAdhocQueryResponse(qEnv.doc, qEnv.payload);
  reportErrors(`ITI-18 (${qRes.status.replace(/.*:/, '')})`, qRes.errors);
  const entries = qRes.objects.map(documentEntryFacts).filter((f) => f?.uniqueId && f.repositoryUniqueId);
  process.stdout.write(`  ${entries.length} KOS manifest(s) found\n`);

  // 2. ITI-43: the KOS documents, checked against the registered hash and size.
  const docReqs: DocumentRequest[] = entries.map((f) => ({
    homeCommunityId: f!.home,
    repositoryUniqueId: f!.repositoryUniqueId!,
    documentUniqueId: f!.uniqueId!,
  }));
  const kosFiles = docReqs.length
    ? await retrieve(ep.consumer.iti43, Action.ITI43, encodeRetrieveDocumentSetRequest(docReqs), dispatcher)
    : { docs: [], errors: [] };
  reportErrors('ITI-43', kosFiles.errors);
  const instances: ImagingDocumentRef[] = [];
  for (const d of kosFiles.docs) {
    const facts = entries.find((f) => f!.uniqueId === d.documentUniqueId);
    const t = tally.get(labelOf(d.homeCommunityId));
    if (t) t.kos++;
    if (facts?.hash && (sha1(d.bytes) !== facts.hash || d.bytes.length !== facts.size)) {
      note(d.homeCommunityId, `KOS ${d.documentUniqueId} does not match its registered hash/size`);
      continue;
    }
    const kos = readKos(d.bytes);
    for (const s of kos.series) {
      for (const i of s.instances) {
        instances.push({
          homeCommunityId: d.homeCommunityId,
          repositoryUniqueId: s.retrieveLocationUid ?? '',
          documentUniqueId: i.sopInstanceUid,
          studyInstanceUid: s.studyInstanceUid,
          seriesInstanceUid: s.seriesInstanceUid,
        });
      }
    }
  }

  // 3. RAD-69: every referenced instance, in one request grouped by study and series.
  process.stdout.write(`RAD-69 for ${instances.length} instance(s) …\n`);
  const sources = sourceIndex(ep);
  if (instances.length) {
    const img = await retrieve(
      ep.consumer.rad69,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(nestImagingDocuments(instances, TRANSFER_SYNTAXES)),
      dispatcher,
    );
    reportErrors('RAD-69', img.errors);
    for (const e of img.errors) note(e.location, `${e.errorCode}: ${e.codeContext}`);
    for (const d of img.docs) {
      const t = tally.get(labelOf(d.homeCommunityId));
      writeFileSync(join(out, `${d.documentUniqueId}.dcm`), d.bytes);
      if (!t) continue;
      t.instances++;
      t.bytes += d.bytes.length;
      const source = sources.get(d.documentUniqueId);
      if (source && source === sha1(d.bytes)) t.verified++;
      else t.problems.push(`instance ${d.documentUniqueId} differs from the source`);
    }
  }

  process.stdout.write(`\nDICOM files written to ${out}\n\nPer community:\n`);
  for (const [label, t] of tally) {
    process.stdout.write(
      `  ${label}: ${t.kos} KOS, ${t.instances} instance(s), ${(t.bytes / 1048576).toFixed(1)} MiB, ${t.verified} byte-identical to the source` +
        (t.problems.length
          ? `, ${t.problems.length} problem(s):\n    - ${t.problems.join('\n    - ')}`
          : '') +
        '\n',
    );
  }
  await dispatcher.close();
  const bad = [...tally.values()].some((t) => t.problems.length || t.verified !== t.instances);
  process.exitCode = bad ? 1 : 0;
}

async function soap(url: string, action: string, body: string, dispatcher: Agent) {
  const res = await request(url, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/soap+xml; charset=UTF-8' },
    body: encodeEnvelope({ action, to: url, body, request: true }),
  });
  const env = decodeEnvelope(await res.body.text(), XML_LIMITS, false);
  if (env.payload.is(NS.soap, 'Fault'))
    throw new Error(`${action}: SOAP fault: ${env.payload.descendants(NS.soap, 'Text')[0]?.text}`);
  return env;
}

interface Retrieved {
  docs: { homeCommunityId?: string; documentUniqueId: string; bytes: Buffer }[];
  errors: RegistryError[];
}

async function retrieve(url: string, action: string, body: string, dispatcher: Agent): Promise<Retrieved> {
  const chunks: Buffer[] = [];
  const w = new MtomWriter(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }), {
    action,
  });
  await w.writeRoot(encodeEnvelope({ action, to: url, body, request: true }));
  await w.end();
  const res = await request(url, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': w.contentType },
    body: Buffer.concat(chunks),
  });
  const msg = await readSoapMessage(res.body, String(res.headers['content-type']), {
    maxRootBytes: 1 << 26,
    maxPartHeaderBytes: 1 << 14,
    maxParts: 1_000_000,
    maxTotalBytes: 2 ** 40,
  });
  const env = decodeEnvelope(msg.envelope, XML_LIMITS, false);
  if (env.payload.is(NS.soap, 'Fault'))
    throw new Error(`${action}: SOAP fault: ${env.payload.descendants(NS.soap, 'Text')[0]?.text}`);
  const root = decodeRetrieveDocumentSetResponse(env.payload);
  const parts = new Map<string, Buffer>();
  for (let p = await msg.attachments.next(); p; p = await msg.attachments.next()) {
    const bufs: Buffer[] = [];
    for await (const c of p.body) bufs.push(c as Buffer);
    parts.set(contentIdKey(p.headers.contentId ?? ''), Buffer.concat(bufs));
  }
  return {
    errors: root.errors,
    docs: root.documents.map((d) => ({
      homeCommunityId: d.homeCommunityId,
      documentUniqueId: d.documentUniqueId,
      bytes:
        d.content.kind === 'inline'
          ? Buffer.from(d.content.base64, 'base64')
          : (parts.get(contentIdKey(cidFromHref(d.content.href))) ?? Buffer.alloc(0)),
    })),
  };
}

/** SHA-1 of every seeded instance, to check what arrived against the source. */
function sourceIndex(ep: DemoEndpoints): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of ep.communities) {
    const m = JSON.parse(readFileSync(join(c.seedDir, 'manifest.json'), 'utf8')) as SeedManifest;
    for (const p of m.patients)
      for (const s of p.studies)
        for (const r of s.series) for (const i of r.instances) out.set(i.sopInstanceUid, i.sha1);
  }
  return out;
}

function reportErrors(what: string, errors: RegistryError[]): void {
  for (const e of errors)
    process.stdout.write(
      `  ${what}: ${e.severity === 'Warning' ? 'warning' : 'error'} ${e.errorCode} at ${e.location ?? '-'}: ${e.codeContext}\n`,
    );
}

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

main().catch((e: Error) => {
  process.stderr.write(`demo consumer: ${e.message}\n`);
  process.exit(2);
});
