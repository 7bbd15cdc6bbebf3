import { hostname } from 'node:os';
import type { AuditParticipant, EventOutcome, TransactionAuditEvent } from '../audit/event';
import type { RegistryError, Status } from '../ebrim/status';
import type { Ctx, Delivery, Target } from '../pipeline/transaction';
import { WSA_ANONYMOUS } from '../soap/ids';
import { submissionAuditEvent, type Submission } from '../xds/metadata';

const HOST = hostname();

/** Requester and responder of the transaction we serve: the caller, and us at the endpoint it called. */
export function inboundParticipants(ctx: Ctx): { requester: AuditParticipant; responder: AuditParticipant } {
  return {
    requester: {
      userId: ctx.envelope.wsa.replyTo ?? WSA_ANONYMOUS,
      networkAccessPointId: ctx.caller.remoteAddress,
      certificateSubject: ctx.caller.certificate?.subject,
    },
    responder: { userId: ctx.endpointUrl, networkAccessPointId: HOST },
  };
}

/** The record of a submission we received (ITI-41 / RAD-68 at a repository, ITI-42 at a registry). */
export function receivedSubmissionAudit(
  transaction: 'ITI-41' | 'RAD-68' | 'ITI-42',
  submission: Submission | undefined,
  res: { status: Status; errors: RegistryError[] } | undefined,
  ctx: Ctx,
  delivery: Delivery,
): TransactionAuditEvent {
  return submissionAuditEvent({
    transaction,
    side: 'responder',
    submission,
    status: res?.status,
    errors: res?.errors ?? [],
    participants: inboundParticipants(ctx),
    humanRequestors: ctx.humanRequestors,
    messageId: ctx.envelope.wsa.messageId,
    delivered: delivery.ok,
  });
}

/** Requester and responder of a sub-request we send: us, and the endpoint we called. */
export function outboundParticipants(target: Target): {
  requester: AuditParticipant;
  responder: AuditParticipant;
} {
  let host: string | undefined;
  try {
    host = new URL(target.endpoint.url).hostname;
  } catch {
    host = undefined;
  }
  return {
    requester: { userId: WSA_ANONYMOUS, alternativeUserId: String(process.pid), networkAccessPointId: HOST },
    responder: { userId: target.endpoint.url, networkAccessPointId: host },
  };
}

export function outcomeOf(status: Status | undefined, delivery: Delivery = { ok: true }): EventOutcome {
  if (!delivery.ok || status === undefined) return 8;
  return status === 'Success' ? 0 : status === 'PartialSuccess' ? 4 : 8;
}
