/**
 * RAD-69 Retrieve Imaging Document Set served by the bridge as an Imaging Document Source
 * (RAD TF-3 4.69), answered from a DICOMweb archive.
 *
 * Plan: the documents named for our RepositoryUniqueId are grouped by series; one QIDO-RS search
 * per series says which instances the archive has (those it lacks are XDSDocumentUniqueIdError
 * before anything is sent). The rest become WADO-RS retrievals — per instance, or per series when
 * many of one series are asked for — in the transfer syntax the instance is stored in when that was
 * requested (learnt from the archive), else the requester's first choice (the archive transcodes,
 * recorded in the audit). They are spread over `maxConcurrent` lanes, each a sub-answer of the
 * shared streaming merge: the archive's parts stream into the MTOM response with backpressure, the
 * same DICOM checks as at the gateways run on each, and a requester that goes away cancels the
 * archive requests.
 */
import {
  Action,
  decodeRetrieveImagingDocumentSetRequest,
  dicomCheck,
  documentFailed,
  encodeRetrieveResult,
  ErrorCode,
  imagingDocuments,
  locate,
  mergeRetrieve,
  registryError,
  imagingSourceAuditEvents,
  Semaphore,
  validateImagingRequest,
  type Ctx,
  type ImagingDocumentRef,
  type ImagingRequest,
  type Outcome,
  type RegistryError,
  type RetrieveAnswer,
  type RetrieveCall,
  type RetrievePolicy,
  type RetrieveResult,
  type Target,
  type Transaction,
} from '@xcai/shared';
import { str, uidSegment, type ArchiveClient } from '../archive/client';
import { ANY_SYNTAX, ArchiveLane, type LaneContext, type Unit } from './archive-lane';

export interface BridgeRetrieveOptions {
  archive: ArchiveClient;
  /** Stored syntaxes learnt from the archive, shared by every request (bounded). */
  storedSyntax?: Map<string, string>;
}

const MAX_LEARNT = 200_000;

/** What the audit needs beyond the merge's report. */
interface BridgeResult extends RetrieveResult {
  transcoded: Map<string, string>;
}

export function rad69(o: BridgeRetrieveOptions): Transaction<ImagingRequest, never, BridgeResult> {
  const s = o.archive.settings;
  const storedSyntax = o.storedSyntax ?? new Map<string, string>();
  const target: Target = {
    kind: 'local',
    location: s.repositoryUniqueId,
    label: `archive ${new URL(s.url).host}`,
    endpoint: {
      url: s.url,
      timeoutMs: s.timeoutMs,
      maxConcurrent: s.maxConcurrent,
      maxResponseBytes: Number.MAX_SAFE_INTEGER,
    },
  };
  return {
    name: 'RAD-69',
    requestAction: Action.RAD69,
    responseAction: Action.RAD69Response,
    decode: (ctx) => decodeRetrieveImagingDocumentSetRequest(ctx.envelope.payload),
    validate: (req) => validateImagingRequest(req),
    plan: () => ({ calls: [], errors: [] }),
    async merge(req, _o, invalid, ctx) {
      const notFound = new Set<string>();
      const failures = new Map<string, string>();
      const transcoded = new Map<string, string>();
      const policy: RetrievePolicy = {
        home: (_t, d) => d.homeCommunityId,
        verification: (_t, r) => dicomCheck(req.transferSyntaxUids)(r),
        documentError: (_t, r, reason) =>
          notFound.has(r.documentUniqueId)
            ? notInArchive(r.documentUniqueId, `SOP Instance ${r.documentUniqueId} is not in the archive`)
            : documentFailed(target, r, failures.get(r.documentUniqueId) ?? reason),
        lookaheadBytes: ctx.gateway.limits.lookaheadBytes,
      };
      // RAD TF-3 4.69.5: each error's location is the DocumentUniqueId (SOP Instance UID) concerned.
      const home = ctx.gateway.directory.homeCommunityId;
      if (invalid.length)
        return { ...locate(await mergeRetrieve([], invalid, policy, ctx), 'document', home), transcoded };
      const errors: RegistryError[] = [];
      const ours: ImagingDocumentRef[] = [];
      for (const d of imagingDocuments(req)) {
        if (d.repositoryUniqueId !== s.repositoryUniqueId)
          errors.push(
            registryError(
              ErrorCode.UnknownRepositoryId,
              `repository ${d.repositoryUniqueId} is not this Imaging Document Source`,
              undefined,
              { document: d.documentUniqueId },
            ),
          );
        else ours.push(d);
      }
      const present = await preflight(o.archive, target, ours, ctx, errors, storedSyntax);
      const units = plan(present, req.transferSyntaxUids, s.seriesThreshold, s.anySyntax, storedSyntax);
      const lanes = Math.min(s.maxConcurrent, units.length);
      let n = 0;
      const cids = new Map<string, string>();
      const cid = (d: ImagingDocumentRef) => {
        let c = cids.get(d.documentUniqueId);
        if (!c) cids.set(d.documentUniqueId, (c = `archive${++n}@bridge`));
        return c;
      };
      const lane: Omit<LaneContext, 'contentId'> = {
        archive: o.archive,
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(Math.max(1, ctx.deadline.remaining()))]),
        transferSyntaxUids: req.transferSyntaxUids,
        notFound,
        failures,
        transcoded,
        storedSyntax,
        maxPartBytes: Number.MAX_SAFE_INTEGER,
      };
      const outcomes: Outcome<RetrieveAnswer>[] = [];
      for (let i = 0; i < lanes; i++) {
        const mine = units.filter((_u, k) => k % lanes === i);
        const docs = mine.flatMap((u) => (u.kind === 'instance' ? [u.doc] : u.docs));
        const call: RetrieveCall = {
          target,
          requested: docs,
          action: 'WADO-RS',
          responseAction: 'WADO-RS',
          body: '',
          mtom: false,
          read: () => Promise.reject(new Error('not sent through dispatch')),
          failed: () => [],
        };
        outcomes.push({
          call,
          ok: true,
          ms: 0,
          value: {
            root: {
              status: 'Success',
              errors: [],
              documents: docs.map((d) => ({
                homeCommunityId: d.homeCommunityId,
                repositoryUniqueId: d.repositoryUniqueId,
                documentUniqueId: d.documentUniqueId,
                mimeType: 'application/dicom',
                content: { kind: 'xop', href: `cid:${cid(d)}` },
              })),
            },
            attachments: new ArchiveLane(mine, { ...lane, contentId: cid }),
          },
        });
      }
      if (storedSyntax.size > MAX_LEARNT) storedSyntax.clear();
      const res = await mergeRetrieve(outcomes, errors, policy, ctx);
      // The lanes are not sub-requests of another IHE actor: nothing to audit for them.
      return { ...locate(res, 'document', home), subRequests: [], transcoded };
    },
    encode: (res) => encodeRetrieveResult(res),
    audit: (req, res, ctx, delivery) =>
      imagingSourceAuditEvents(req, res, ctx, delivery).map((e) => withTranscoding(e, res)),
  };
}

/** Transcoded instances are named in the success record's outcome description. */
function withTranscoding<E extends { side?: string; groups?: { outcome: number; description?: string }[] }>(
  e: E,
  res: BridgeResult | undefined,
): E {
  if (!res?.transcoded.size || e.side !== 'responder') return e;
  const delivered = new Set(res.report.delivered.map((d) => d.requested.documentUniqueId));
  const list = [...res.transcoded].filter(([sop]) => delivered.has(sop));
  if (!list.length) return e;
  const text = `transcoded by the archive: ${list.map(([sop, how]) => `${sop} ${how}`).join('; ')}`;
  for (const g of e.groups ?? [])
    if (g.outcome === 0) g.description = g.description ? `${g.description}; ${text}` : text;
  return e;
}

function notInArchive(sop: string, why: string): RegistryError {
  return registryError(ErrorCode.DocumentUniqueIdError, why, sop, { document: sop });
}

/** Which of the requested instances the archive has, per series (QIDO-RS); the rest are reported. */
async function preflight(
  archive: ArchiveClient,
  target: Target,
  docs: ImagingDocumentRef[],
  ctx: Ctx,
  errors: RegistryError[],
  storedSyntax: Map<string, string>,
): Promise<{ docs: ImagingDocumentRef[]; seriesSize: number }[]> {
  const bySeries = new Map<string, ImagingDocumentRef[]>();
  for (const d of docs) {
    const k = `${d.studyInstanceUid}|${d.seriesInstanceUid}`;
    let l = bySeries.get(k);
    if (!l) bySeries.set(k, (l = []));
    l.push(d);
  }
  const gate = new Semaphore(archive.settings.maxConcurrent);
  const out: { docs: ImagingDocumentRef[]; seriesSize: number }[] = [];
  await Promise.all(
    [...bySeries.values()].map(async (list) => {
      const { studyInstanceUid: st, seriesInstanceUid: se } = list[0];
      let release: (() => void) | undefined;
      try {
        release = await gate.acquire(ctx.signal);
        const found = await archive.json(
          `/studies/${uidSegment(st)}/series/${uidSegment(se)}/instances?includefield=00083002`,
          AbortSignal.any([
            ctx.signal,
            AbortSignal.timeout(Math.max(1, ctx.deadline.cap(archive.settings.timeoutMs))),
          ]),
        );
        // Only what is needed of each instance's attributes is kept (a series may have thousands).
        // PS3.18 Available Transfer Syntax UID, when the archive gives it: the syntax it stores.
        const have = new Map((found ?? []).map((i) => [str(i, '00080018') ?? '', str(i, '00083002') ?? '']));
        const keep: ImagingDocumentRef[] = [];
        for (const d of list) {
          const available = have.get(d.documentUniqueId);
          if (available === undefined) {
            errors.push(
              notInArchive(
                d.documentUniqueId,
                `SOP Instance ${d.documentUniqueId} is not in series ${d.seriesInstanceUid} of study ${d.studyInstanceUid} in the archive`,
              ),
            );
            continue;
          }
          if (available) storedSyntax.set(d.documentUniqueId, available);
          keep.push(d);
        }
        if (keep.length) out.push({ docs: keep, seriesSize: have.size });
      } catch (e) {
        for (const d of list)
          errors.push(
            documentFailed(target, d, `the archive could not be searched: ${(e as Error).message}`),
          );
      } finally {
        release?.();
      }
    }),
  );
  return out;
}

/** Retrieval units: a series when enough of it is asked for, else instance by instance. */
function plan(
  series: { docs: ImagingDocumentRef[]; seriesSize: number }[],
  requested: string[],
  threshold: number,
  anySyntax: boolean,
  storedSyntax: Map<string, string>,
): Unit[] {
  const units: Unit[] = [];
  const syntaxFor = (d: ImagingDocumentRef) => {
    const stored = storedSyntax.get(d.documentUniqueId);
    if (stored && requested.includes(stored)) return stored;
    if (!stored && anySyntax) return ANY_SYNTAX;
    return requested[0];
  };
  for (const { docs } of series) {
    if (docs.length >= threshold && anySyntax) {
      const [d] = docs;
      units.push({
        kind: 'series',
        studyInstanceUid: d.studyInstanceUid,
        seriesInstanceUid: d.seriesInstanceUid,
        docs,
        syntax: ANY_SYNTAX,
      });
    } else for (const d of docs) units.push({ kind: 'instance', doc: d, syntax: syntaxFor(d) });
  }
  return units;
}
