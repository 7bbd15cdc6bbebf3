/**
 * Shared machinery of the four retrieve transactions (ITI-43, ITI-39, RAD-69, RAD-75): sub-request
 * construction, and the streaming merge of several MTOM answers into one.
 *
 * The merge (see README, "Streaming retrieve"): an MTOM response must start with its root part,
 * which lists every DocumentResponse and carries the status and errors. So the merger
 *  1. waits for the root of every sub-answer (bounded by each call's timeout);
 *  2. reads ahead into a bounded buffer (`lookaheadBytes`), verifying each complete document —
 *     documents that fail are withheld and reported as RegistryErrors;
 *  3. commits its own root, listing the verified documents and those not yet seen;
 *  4. streams the buffered parts, then the rest straight from the upstream sockets, interleaving
 *     sub-answers part by part as they arrive, with backpressure, verifying on the way.
 * A check that fails after the root was committed aborts the response: the requester sees a
 * truncated MTOM package, never a bad document passed as good. Memory stays bounded by the
 * lookahead budget whatever the size of a document or a study.
 */
import { quietly } from '../util/quietly';
import { Readable } from 'node:stream';
import { ErrorCode } from '../ebrim/error-codes';
import { consolidatedStatus, registryWarning, type RegistryError, type Status } from '../ebrim/status';
import { base64Stream } from '../mtom/base64';
import { MtomError } from '../mtom/errors';
import type { AttachmentStream, MimePart } from '../mtom/types';
import { contentIdKey, cidFromHref, XopResolver } from '../mtom/xop';
import type { Call, Ctx, OutgoingPart, Outcome, Reply, Target } from '../pipeline/transaction';
import type { CallFailure } from '../outbound/client';
import {
  decodeRetrieveDocumentSetResponse,
  encodeDocumentResponse,
  encodeRetrieveDocumentSetResponse,
  type DecodedDocumentResponse,
  type DocumentRequest,
  type DocumentResponseMeta,
  type RetrieveResponseRoot,
} from '../xds/retrieve';
import { checkMimeType, IntegrityError, verifiedStream, verifyBuffered, type Verification } from './verify';
import { communityOf, relayedError, RequestedDocuments } from './error-location';
import { flatCopy } from '../util/intern';

export interface RetrieveAnswer {
  root: RetrieveResponseRoot;
  attachments: AttachmentStream;
}

export interface RetrieveCall extends Call<RetrieveAnswer> {
  /** The documents this sub-request asked for. */
  requested: DocumentRequest[];
}

export function retrieveCall(o: Omit<RetrieveCall, 'read' | 'mtom'>): RetrieveCall {
  const call: RetrieveCall = {
    ...o,
    mtom: true,
    read: async (res) => {
      // Sent and answered: the request text (megabytes for a large study) is not needed again;
      // audit names the documents from `requested`.
      call.body = '';
      return { root: decodeRetrieveDocumentSetResponse(res.envelope.payload), attachments: res.attachments };
    },
  };
  return call;
}

/** Splits a list into chunks of at most `size`. */
export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** What the merge needs to know about the transaction it serves. */
export interface RetrievePolicy {
  /** HomeCommunityId to write on a returned document. */
  home(target: Target, returned: DecodedDocumentResponse, requested: DocumentRequest): string | undefined;
  /** What to verify for a requested document (undefined: nothing to check it against). */
  verification(target: Target, requested: DocumentRequest): Verification | undefined;
  /** The RegistryError for a document that could not be delivered. */
  documentError(target: Target, requested: DocumentRequest, reason: string): RegistryError;
  /** Bytes of parts that may be held to verify documents before the root is committed. */
  lookaheadBytes: number;
}

export interface OutDoc {
  meta: DocumentResponseMeta;
  contentId: string;
  target: Target;
  requested: DocumentRequest;
}

export interface DeliveryReport {
  delivered: OutDoc[];
  failed: { doc: OutDoc; reason: string }[];
  /** Why the response was cut short after its root was committed. */
  aborted?: string;
}

export interface SubRetrieveResult {
  call: RetrieveCall;
  ok: boolean;
  status?: Status;
}

export interface RetrieveResult {
  status: Status;
  errors: RegistryError[];
  documents: OutDoc[];
  parts: AsyncIterable<OutgoingPart>;
  /** Filled while the parts stream (for audit). */
  report: DeliveryReport;
  subRequests: SubRetrieveResult[];
}

/** One document waiting for, or holding, its bytes (kept small: there is one per instance). */
interface Slot {
  doc: OutDoc;
  /** NO_CHUNKS until bytes arrive. */
  chunks: Buffer[];
  complete: boolean;
  /** The rest of the part when the lookahead stopped inside it. */
  live?: Readable;
  rejected?: string;
  /** Listed in the committed root. */
  committed?: boolean;
  /** Handed to the writer. */
  sent?: boolean;
}

/** Shared by every slot without bytes (never pushed to: a slot gets its own array first). */
const NO_CHUNKS: Buffer[] = Object.freeze([]) as unknown as Buffer[];

/** What to check a document against, computed when it is checked rather than kept per document. */
type VerifyOf = (doc: OutDoc) => Verification | undefined;

class Budget {
  stopped = false;
  constructor(private left: number) {}
  take(n: number): boolean {
    this.left -= n;
    return this.left >= 0 && !this.stopped;
  }
  give(n: number): void {
    this.left += n;
  }
}

/** One sub-answer being read. */
class Upstream {
  readonly resolver = new XopResolver();
  readonly byHref = new Map<string, Slot>();
  readonly inline: Slot[] = [];
  state: 'reading' | 'blocked' | 'done' | 'broken' = 'reading';
  broken?: string;
  current?: Slot;
  lookahead: Promise<void> = Promise.resolve();
  /** The sub-answer's parts. Its root is not kept: the merge has taken what it needs from it. */
  readonly attachments: AttachmentStream;

  constructor(
    readonly call: RetrieveCall,
    answer: RetrieveAnswer,
    private readonly verify: VerifyOf,
  ) {
    this.attachments = answer.attachments;
  }

  /** Reads whole parts into memory while the budget lasts, verifying each complete one. */
  async readAhead(budget: Budget): Promise<void> {
    try {
      while (!budget.stopped) {
        const part = await this.attachments.next();
        if (!part) {
          this.state = 'done';
          return;
        }
        const slot = this.slotFor(part);
        if (!slot) {
          await drain(part.body);
          continue;
        }
        let failed = false;
        for (;;) {
          let c: Buffer | null;
          try {
            c = await readChunk(part.body);
          } catch (e) {
            if (!this.attachments.independentParts) throw e;
            // Only this part's own source failed: refuse this document, read on.
            slot.rejected = `the part was cut short: ${(e as Error)?.message ?? String(e)}`;
            budget.give(slot.chunks.reduce((n, x) => n + x.length, 0));
            slot.chunks = NO_CHUNKS;
            part.body.destroy();
            failed = true;
            break;
          }
          if (c === null) break;
          if (slot.chunks === NO_CHUNKS) slot.chunks = [];
          slot.chunks.push(c);
          if (!budget.take(c.length)) {
            slot.live = part.body;
            this.current = slot;
            this.state = 'blocked';
            return;
          }
        }
        if (failed) continue;
        slot.complete = true;
        const bad = await verifyBuffered(this.verify(slot.doc), slot.chunks);
        if (bad) {
          slot.rejected = bad;
          budget.give(slot.chunks.reduce((n, c) => n + c.length, 0));
          slot.chunks = NO_CHUNKS;
        }
      }
      this.state = 'blocked';
    } catch (e) {
      this.state = 'broken';
      this.broken =
        e instanceof MtomError ? `malformed MTOM answer: ${e.message}` : ((e as Error)?.message ?? String(e));
      quietly(this.attachments.discard());
    }
  }

  /** The slot a part belongs to, or undefined for a part nobody asked for (it is skipped). */
  slotFor(part: MimePart): Slot | undefined {
    // Whoever reads the body reports its errors; this keeps a late one from going unhandled.
    part.body.on('error', () => undefined);
    const href = this.resolver.accept(part);
    if (href === null) return undefined;
    const slot = this.byHref.get(href);
    return slot && !slot.rejected ? slot : undefined;
  }

  /** Parts still to send, in stream order; the consumer must drain each body before the next. */
  async *rest(): AsyncGenerator<{ slot: Slot; body: Readable }> {
    await this.lookahead;
    if (this.current) {
      const s = this.current;
      this.current = undefined;
      const chunks = s.chunks;
      s.chunks = NO_CHUNKS; // the part's stream holds them until it has sent them
      yield { slot: s, body: resume(chunks, s.live) };
    }
    if (this.state !== 'blocked') return;
    for (;;) {
      const part = await this.attachments.next();
      if (!part) break;
      const slot = this.slotFor(part);
      if (!slot) {
        await drain(part.body);
        continue;
      }
      yield { slot, body: part.body };
    }
    this.state = 'done';
  }
}

/**
 * Consolidates retrieve answers into one streamed response. `policy` says how documents are
 * stamped and checked; the returned parts stream straight from the sub-answers.
 */
export async function mergeRetrieve(
  outcomes: Outcome<RetrieveAnswer>[],
  planErrors: RegistryError[],
  policy: RetrievePolicy,
  ctx: Ctx,
): Promise<RetrieveResult> {
  const errors = [...planErrors];
  const subRequests: SubRetrieveResult[] = [];
  const upstreams: Upstream[] = [];
  let n = 0;
  const stamp = Date.now().toString(36);
  // One flat string per document (a template result is a chain of pieces).
  const newCid = () => flatCopy(`doc${++n}.${stamp}@xcai`);
  const verify: VerifyOf = (doc) => policy.verification(doc.target, doc.requested);

  for (const o of outcomes) {
    const call = o.call as RetrieveCall;
    if (!o.ok) {
      errors.push(...o.errors);
      subRequests.push({ call, ok: false });
      continue;
    }
    const ans = o.value;
    subRequests.push({ call, ok: true, status: ans.root.status });
    const up = new Upstream(call, ans, verify);
    upstreams.push(up);
    const community = communityOf(call.target);
    const requested = new RequestedDocuments(call.requested);
    const relayed = ans.root.errors.map((e) => relayedError(e, requested, community));
    errors.push(...relayed);
    const wanted = new Map(call.requested.map((r) => [`${r.repositoryUniqueId}|${r.documentUniqueId}`, r]));
    const byUid = new Map(call.requested.map((r) => [r.documentUniqueId, r]));
    const seen = new Set<DocumentRequest>();
    let unasked = 0;
    const homeless = ans.root.documents.filter((d) => !d.homeCommunityId).length;
    if (homeless && call.target.kind === 'community') {
      errors.push(
        registryWarning(
          ErrorCode.RegistryMetadataError,
          `Responding Gateway of ${call.target.label} returned ${homeless} DocumentResponse(s) without the required HomeCommunityId; ` +
            `set to ${call.target.location}, the community asked`,
          undefined,
          { community },
        ),
      );
    }
    for (const d of ans.root.documents) {
      const req =
        wanted.get(`${d.repositoryUniqueId}|${d.documentUniqueId}`) ?? byUid.get(d.documentUniqueId);
      if (!req || seen.has(req)) {
        ctx.log.warn('sub-answer returned a document that was not asked for; dropped', {
          target: call.target.label,
        });
        unasked++;
        continue;
      }
      seen.add(req);
      const verification = policy.verification(call.target, req);
      const doc: OutDoc = {
        meta: sharedIds({ ...stripContent(d), homeCommunityId: policy.home(call.target, d, req) }, req),
        contentId: newCid(),
        target: call.target,
        requested: req,
      };
      const slot: Slot = { doc, chunks: NO_CHUNKS, complete: false };
      const badMime = checkMimeType(verification, d.mimeType);
      if (badMime) slot.rejected = badMime;
      if (d.content.kind === 'inline') {
        up.inline.push(slot);
        if (!slot.rejected) {
          slot.chunks = await readAllChunks(base64Stream(d.content.base64)).catch((e: Error) => {
            slot.rejected = `inline Document is not valid base64: ${e.message}`;
            return [];
          });
          slot.complete = !slot.rejected;
          if (slot.complete) slot.rejected = (await verifyBuffered(verification, slot.chunks)) ?? undefined;
        }
      } else {
        try {
          up.byHref.set(d.content.href, slot);
          up.resolver.expect(d.content.href);
        } catch (e) {
          slot.rejected = (e as Error).message;
        }
      }
    }
    if (unasked > 0)
      errors.push(
        registryWarning(
          ErrorCode.RegistryMetadataError,
          `${call.target.label} returned ${unasked} DocumentResponse(s) that were not asked for (or twice); dropped`,
          undefined,
          { community },
        ),
      );
    const reported = reportedDocuments(relayed, requested);
    for (const r of call.requested) {
      if (!seen.has(r) && !reported.has(r.documentUniqueId)) {
        errors.push(policy.documentError(call.target, r, `not returned by ${call.target.label}`));
      }
    }
  }

  // Read ahead within the budget; commit at the latest when the deadline comes.
  const budget = new Budget(policy.lookaheadBytes);
  for (const up of upstreams) up.lookahead = up.readAhead(budget);
  await settleBy(
    upstreams.map((u) => u.lookahead),
    ctx.deadline.remaining(),
    () => (budget.stopped = true),
  );

  const committed: Slot[] = [];
  for (const up of upstreams) {
    const slots = [...up.byHref.values(), ...up.inline];
    for (const s of slots) {
      const reason =
        s.rejected ??
        (up.state === 'broken' && !s.complete
          ? `answer from ${up.call.target.label} was cut short: ${up.broken}`
          : undefined) ??
        (up.state === 'done' && !s.complete
          ? `the answer from ${up.call.target.label} has no part for this document`
          : undefined);
      if (reason) errors.push(policy.documentError(up.call.target, s.doc.requested, reason));
      else {
        s.committed = true;
        committed.push(s);
      }
    }
    // Malformed after its documents were complete (e.g. a second part with the same Content-ID):
    // what arrived intact is delivered, and the consumer is told the answer was not clean.
    if (up.state === 'broken' && slots.some((s) => s.committed))
      errors.push(
        registryWarning(
          ErrorCode.RegistryMetadataError,
          `the answer from ${up.call.target.label} is malformed after its documents: ${up.broken}`,
          undefined,
          { community: communityOf(up.call.target) },
        ),
      );
  }

  const report: DeliveryReport = { delivered: [], failed: [] };
  const status = consolidatedStatus(errors, committed.length > 0);
  return {
    status,
    errors,
    documents: committed.map((s) => s.doc),
    parts: streamParts(committed, upstreams, report, verify),
    report,
    subRequests,
  };
}

/**
 * Buffered documents first, then the rest as the sub-answers deliver them. A part counts as
 * delivered once the consumer of this generator asks for the next one (it has written it).
 */
async function* streamParts(
  committed: Slot[],
  upstreams: Upstream[],
  report: DeliveryReport,
  verify: VerifyOf,
): AsyncGenerator<OutgoingPart> {
  let current: { slot: Slot; failure?: string } | undefined;
  let completed = false;
  const confirm = () => {
    if (current) report.delivered.push(current.slot.doc);
    current = undefined;
  };
  const emit = async (slot: Slot, body: Readable): Promise<OutgoingPart> => {
    const flight: { slot: Slot; failure?: string } = { slot };
    current = flight;
    slot.sent = true;
    let checked: Readable;
    try {
      checked = slot.complete ? body : await verifiedStream(verify(slot.doc), body);
    } catch (e) {
      flight.failure = (e as Error).message;
      body.destroy();
      throw e;
    }
    checked.once('error', (e: Error) => (flight.failure = e.message));
    return { contentId: slot.doc.contentId, contentType: slot.doc.meta.mimeType, body: checked };
  };
  try {
    for (const s of committed) {
      if (!s.complete) continue;
      // The part's stream holds the chunks until it has sent them; the slot lets them go, so the
      // lookahead's memory is free again once its parts are written, not at the end of the response.
      const chunks = s.chunks;
      s.chunks = NO_CHUNKS;
      yield await emit(s, Readable.from(chunks, { objectMode: false }));
      confirm();
    }
    for await (const { slot, body } of interleave(upstreams.map((u) => u.rest()))) {
      if (!slot.committed || slot.sent) {
        await drain(body);
        continue;
      }
      yield await emit(slot, body);
      confirm();
    }
    const missing = committed.filter((s) => !s.sent);
    if (missing.length) {
      throw new IntegrityError(`${missing.length} committed document(s) never arrived from the sub-answers`);
    }
    completed = true;
  } finally {
    if (!completed) {
      const reason = current?.failure ?? 'the response could not be completed';
      report.aborted = reason;
      if (current) report.failed.push({ doc: current.slot.doc, reason });
      for (const s of committed) if (!s.sent) report.failed.push({ doc: s.doc, reason });
    }
    for (const u of upstreams) quietly(u.attachments.discard());
  }
}

/** Merges async generators, taking items in the order they become available. */
async function* interleave<T>(gens: AsyncGenerator<T>[]): AsyncGenerator<T> {
  if (gens.length === 1) {
    yield* gens[0];
    return;
  }
  type Next = { g: AsyncGenerator<T>; r?: IteratorResult<T>; e?: unknown };
  const pending = new Map<AsyncGenerator<T>, Promise<Next>>();
  const arm = (g: AsyncGenerator<T>) =>
    pending.set(
      g,
      g.next().then(
        (r) => ({ g, r }),
        (e: unknown) => ({ g, e }),
      ),
    );
  gens.forEach(arm);
  try {
    while (pending.size) {
      const { g, r, e } = await Promise.race(pending.values());
      pending.delete(g);
      if (e !== undefined) throw e;
      if (!r || r.done) continue;
      yield r.value;
      arm(g);
    }
  } finally {
    for (const g of gens) void g.return(undefined).catch(() => undefined);
  }
}

export function encodeRetrieveResult(res: RetrieveResult): Reply {
  const payload = encodeRetrieveDocumentSetResponse(
    res.status,
    res.errors,
    res.documents.map((d) => encodeDocumentResponse(d.meta, d.contentId)),
  );
  return { kind: 'mtom', payload, parts: res.parts };
}

/** Errors for every document of a failed sub-request. */
export function failedDocuments(
  call: { requested: DocumentRequest[] },
  make: (doc: DocumentRequest) => RegistryError,
): (why: CallFailure) => RegistryError[] {
  return () => call.requested.map(make);
}

/**
 * The requested document's own id strings where the answer repeats them, so each instance holds its
 * ids once (the answer's copies go with its root).
 */
function sharedIds(meta: DocumentResponseMeta, req: DocumentRequest): DocumentResponseMeta {
  if (meta.documentUniqueId === req.documentUniqueId) meta.documentUniqueId = req.documentUniqueId;
  if (meta.repositoryUniqueId === req.repositoryUniqueId) meta.repositoryUniqueId = req.repositoryUniqueId;
  if (meta.homeCommunityId !== undefined && meta.homeCommunityId === req.homeCommunityId)
    meta.homeCommunityId = req.homeCommunityId;
  return meta;
}

function stripContent(d: DecodedDocumentResponse): DocumentResponseMeta {
  const { content: _c, ...meta } = d;
  void _c;
  return meta;
}

/** The requested documents an error of the sub-answer already reports. */
function reportedDocuments(errors: RegistryError[], requested: RequestedDocuments): Set<string> {
  const reported = new Set<string>();
  for (const e of errors) {
    if (e.document) reported.add(e.document);
    if (e.location) reported.add(e.location);
    for (const id of requested.namedIn(e.codeContext)) reported.add(id);
  }
  return reported;
}

/** Resolves when all settle or after `ms`, calling `onTimeout` in that case. */
async function settleBy(ps: Promise<void>[], ms: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(ps),
    new Promise<void>((r) => {
      timer = setTimeout(
        () => {
          onTimeout();
          r();
        },
        Math.max(1, ms),
      );
    }),
  ]);
  clearTimeout(timer);
}

/** Replays buffered chunks, then the live rest of a part. */
function resume(chunks: Buffer[], live?: Readable): Readable {
  if (!live) return Readable.from(chunks, { objectMode: false });
  async function* all() {
    yield* chunks;
    for await (const c of live as Readable) yield c as Buffer;
  }
  const r = Readable.from(all(), { objectMode: false });
  r.once('close', () => {
    if (!live.readableEnded) live.destroy();
  });
  return r;
}

/** The next chunk of a stream, or null at its end. */
async function readChunk(s: Readable): Promise<Buffer | null> {
  for (;;) {
    const c = s.read() as Buffer | null;
    if (c !== null) return c;
    if (s.readableEnded) return null;
    if (s.errored) throw s.errored;
    if (s.destroyed) throw new MtomError('truncated', 'part closed before its end');
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        cleanup();
        resolve();
      };
      const fail = (e: Error) => {
        cleanup();
        reject(e);
      };
      const cleanup = () => {
        s.off('readable', done);
        s.off('end', done);
        s.off('close', done);
        s.off('error', fail);
      };
      s.on('readable', done);
      s.on('end', done);
      s.on('close', done);
      s.on('error', fail);
    });
  }
}

async function readAllChunks(s: Readable): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return out;
}

async function drain(s: Readable): Promise<void> {
  for await (const _ of s) void _;
}

export { cidFromHref, contentIdKey };
