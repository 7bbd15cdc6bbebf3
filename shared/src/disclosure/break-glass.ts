/**
 * Break-glass (R11; MHLW guideline §6.9 2) 1), §7.2): in an emergency a clinician may see data that
 * consent would withhold — only
 *  - where the calling community's policy switches it on (`communities[].consent.breakGlass`),
 *  - before `breakGlass.until` (the switch-on expires),
 *  - with a validated XUA assertion whose PurposeOfUse is an emergency code (HL7 ActReason ETREAT
 *    or BTG by default): without XUA there is no break-glass, and the access ends with the
 *    assertion's validity.
 * Every such access is announced: a `warn` log event `break-glass`, the Prometheus counter
 * xcai_break_glass_total, a Security Alert audit record (110127 Emergency Override Started) and,
 * when configured, a JSON POST to `breakGlass.webhook`. The log and the webhook carry no patient id
 * (the audit record does). The transaction's own audit record is tagged `break-glass: …`.
 */
import type { Counter } from 'prom-client';
import type { AuditSink, PurposeOfUse } from '../audit/event';
import { auditEmergencyOverride } from '../audit/gateway';
import type { BreakGlassSettings } from '../directory/types';
import type { Ctx } from '../pipeline/transaction';
import { inboundParticipants } from '../transactions/audit-support';
import type { Logger } from '../util/log';

/** The emergency PurposeOfUse of the request, when break-glass may be used now. */
export function emergencyPurpose(
  ctx: Pick<Ctx, 'purposesOfUse'>,
  s: BreakGlassSettings | undefined,
  now: Date,
): PurposeOfUse | undefined {
  if (!s || (s.until && now.getTime() >= s.until.getTime())) return undefined;
  return ctx.purposesOfUse?.find((p) =>
    s.purposesOfUse.some((m) => m.code === p.code && (m.scheme === undefined || m.scheme === p.codeSystem)),
  );
}

export interface BreakGlassUse {
  patientId: string;
  purpose: PurposeOfUse;
  /** What consent said (the refusal that was overridden). */
  overridden: string;
}

export class BreakGlassAlerts {
  constructor(
    private readonly o: {
      settings: BreakGlassSettings | undefined;
      audit: AuditSink;
      log: Logger;
      counter: Counter;
    },
  ) {}

  raise(ctx: Ctx, transaction: string, use: BreakGlassUse): void {
    const community = ctx.caller.community?.homeCommunityId ?? 'unknown';
    const user = ctx.humanRequestors[0]?.userId ?? 'unknown';
    const purpose = `${use.purpose.code}${use.purpose.codeSystem ? `^^${use.purpose.codeSystem}` : ''}`;
    const time = new Date().toISOString();
    this.o.counter.inc({ community });
    this.o.log.warn('break-glass access', {
      event: 'break-glass',
      community,
      user,
      purposeOfUse: purpose,
      transaction,
      messageId: ctx.envelope.wsa.messageId,
    });
    auditEmergencyOverride(this.o.audit, {
      requester: inboundParticipants(ctx).requester,
      humanRequestors: ctx.humanRequestors,
      purposesOfUse: ctx.purposesOfUse ?? [],
      patientId: use.patientId,
      community,
      description: `${transaction} from ${community} by ${user} for ${purpose}: consent overridden (${use.overridden})`,
    });
    const hook = this.o.settings?.webhook;
    if (!hook) return;
    const body = JSON.stringify({
      event: 'break-glass',
      time,
      gateway: ctx.gateway.directory.homeCommunityId,
      community,
      user,
      purposeOfUse: purpose,
      transaction,
      messageId: ctx.envelope.wsa.messageId,
    });
    // Fire and forget: an alert that cannot be delivered must not hold up the clinician.
    ctx.gateway.outbound
      .post({
        endpoint: hook,
        contentType: 'application/json',
        body,
        signal: AbortSignal.timeout(hook.timeoutMs),
        headersTimeoutMs: hook.timeoutMs,
      })
      .then(
        (res) => {
          res.body.resume();
          if (res.status >= 300)
            this.o.log.warn('break-glass webhook refused the alert', { status: res.status, url: hook.url });
        },
        (e: Error) =>
          this.o.log.warn('break-glass webhook not reached', { url: hook.url, reason: e.message }),
      );
  }
}
