/**
 * The `admit` hook (EngineHooks.admit): decides whether the caller of a transaction may use it, and
 * who the human behind it is.
 *
 * Responding side (ITI-38 / ITI-39 / RAD-75 from other communities):
 *   1. A client certificate that was presented but did not verify → refused.
 *   2. The caller is the community its certificate maps to (identities.ts). A caller that maps to no
 *      community with an identity is accepted only through the communities that name no identity
 *      (an explicit "any authenticated caller" entry, e.g. tests and plain-HTTP labs); with none →
 *      refused ("certificate does not belong to a community of the directory").
 *   3. The community must have `acceptRequests: true` (R9) → else refused.
 *   4. XUA per `communities[].xua` (below).
 * Initiating side (ITI-18 / ITI-43 / RAD-69 from local consumers):
 *   1. as above;
 *   2. the caller is the consumer its certificate maps to, else the first consumer without identity;
 *      when the directory lists consumers and none fits → refused. An empty `consumers` list admits
 *      every caller the TLS settings let in (XCAI_TLS_CLIENT_AUTH=optional: also without a certificate).
 *   3. XUA per `consumers[].xua`.
 * XUA: with a top-level `xua` in the directory, a request carrying an assertion must carry exactly
 * one valid assertion (xua/check.ts) — also where the policy is `optional` — and one that lacks it
 * is refused where the policy is `required`; the validated subject and roles become the human
 * requestor of the audit records, and only the validated assertion is relayed. Without `xua`,
 * assertions are relayed as received and no human requestor is recorded.
 *
 * Refusals are SOAP Sender faults; certificate problems are also audited as node-authentication
 * failures (the engine audits the refused transaction itself).
 */
import { auditNodeAuthenticationFailure } from '../audit/gateway';
import type { AuditSink } from '../audit/event';
import type { Directory } from '../directory/types';
import type { Admission, AnyTransaction } from '../pipeline/engine';
import type { Caller } from '../pipeline/transaction';
import { securityHeaderWithAssertions, type SoapEnvelope } from '../soap/envelope';
import { SoapFault } from '../soap/fault';
import type { Logger } from '../util/log';
import { factsOf } from './identities';
import { XuaRefusal, type XuaCheck } from './xua/check';
import type { CodedValue } from './xua/claims';
import type { PurposeOfUse } from '../audit/event';

/** The assertion's PurposeOfUse codes, as audited and as break-glass reads them (disclosure/). */
function purposesOf(values: readonly CodedValue[]): PurposeOfUse[] {
  return values.map((v) => ({
    code: v.code,
    ...(v.codeSystem ? { codeSystem: v.codeSystem } : {}),
    ...(v.displayName ? { displayName: v.displayName } : {}),
  }));
}

export interface AdmissionOptions {
  role: 'initiating' | 'responding';
  directory: Directory;
  audit: AuditSink;
  log: Logger;
  /** Present when the directory configures XUA validation. */
  xua?: XuaCheck;
}

export type AdmitFn = (tx: AnyTransaction, envelope: SoapEnvelope, caller: Caller) => Admission;

export function createAdmission(o: AdmissionOptions): AdmitFn {
  const log = o.log.child({ component: 'admission' });
  const nodeFailure = (caller: Caller, reason: string, subject?: string): SoapFault => {
    auditNodeAuthenticationFailure(o.audit, {
      remoteAddress: caller.remoteAddress,
      certificateSubject: subject ?? caller.certificate?.subject,
      reason,
    });
    log.warn('caller refused', {
      from: caller.remoteAddress,
      subject: subject ?? caller.certificate?.subject,
      reason,
    });
    return SoapFault.sender(`not authorised: ${reason}`);
  };

  const who = (tx: AnyTransaction, caller: Caller): 'required' | 'optional' => {
    const facts = factsOf(caller);
    if (facts?.unverified)
      throw nodeFailure(
        caller,
        `client certificate not accepted (${facts.unverified.reason})`,
        facts.unverified.subject,
      );
    const d = o.directory;
    if (o.role === 'responding') {
      const community = caller.community;
      if (!community) {
        const open = d.communities.filter((c) => !c.identity && c.acceptRequests);
        if (open.length === 0)
          throw nodeFailure(
            caller,
            caller.certificate
              ? 'the certificate presented does not belong to a community of the directory'
              : 'a client certificate of a community of the directory is required',
          );
        return open.some((c) => c.xua === 'required') ? 'required' : 'optional';
      }
      if (!community.acceptRequests) {
        log.warn('request from a community not accepted here', {
          community: community.homeCommunityId,
          tx: tx.name,
        });
        throw SoapFault.sender(`not authorised: community ${community.homeCommunityId} is not accepted here`);
      }
      return community.xua;
    }
    if (caller.consumer) return caller.consumer.xua ?? 'optional';
    if (d.consumers.length === 0) return 'optional';
    throw nodeFailure(
      caller,
      caller.certificate
        ? 'the certificate presented does not belong to a consumer of this gateway'
        : 'a client certificate of a consumer of this gateway is required',
    );
  };

  return (tx, envelope, caller) => {
    const policy = who(tx, caller);
    if (!o.xua) return { humanRequestors: [], forwardHeaders: securityHeaderWithAssertions(envelope) };
    try {
      const home = o.role === 'responding' ? caller.community?.homeCommunityId : undefined;
      const r = o.xua.check(envelope, policy === 'required', home);
      if (r.assertion)
        log.debug('XUA assertion accepted', {
          issuer: r.assertion.issuer,
          signer: r.assertion.signer.subject,
        });
      return {
        humanRequestors: r.humanRequestors,
        purposesOfUse: r.assertion ? purposesOf(r.assertion.purposeOfUse) : [],
        forwardHeaders: r.forwardHeaders,
      };
    } catch (e) {
      if (e instanceof XuaRefusal) {
        log.warn('XUA assertion refused', { tx: tx.name, from: caller.remoteAddress, reason: e.detail });
        throw e.fault;
      }
      throw e;
    }
  };
}
