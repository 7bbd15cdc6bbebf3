/**
 * XUA at the gateway's door: takes the wsse:Security header of a request, requires (per policy) and
 * validates the single SAML 2.0 assertion in it against the directory's `xua` settings (see
 * ./xua.ts for what validation means), and turns the validated claims into the human requestor of
 * the audit records. What is relayed on sub-requests is the validated assertion, byte for byte.
 */
import type { HumanRequestor } from '../../audit/event';
import type { XuaSettings } from '../../directory/types';
import { securityHeaderWithAssertions, type SoapEnvelope } from '../../soap/envelope';
import { SoapFault } from '../../soap/fault';
import { relayElement } from '../../xml/write';
import { readCertificateFiles } from '../certificates';
import {
  findAssertions,
  validateAssertion,
  XuaError,
  type ValidatedAssertion,
  type XuaPolicy,
} from './index';

/** Why an assertion was refused: the generic fault for the peer, the detail for our log. */
export class XuaRefusal extends Error {
  constructor(
    readonly fault: SoapFault,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'XuaRefusal';
  }
}

export interface XuaOutcome {
  assertion?: ValidatedAssertion;
  humanRequestors: HumanRequestor[];
  /** wsse:Security with the validated assertion, to relay; undefined when there is none. */
  forwardHeaders?: string;
}

const REFUSED = 'the XUA assertion was not accepted';

export class XuaCheck {
  private readonly policy: XuaPolicy;

  constructor(settings: XuaSettings, now?: () => Date) {
    const trusted = readCertificateFiles(settings.idpCertificates).map((f) => f.pem.toString('utf8'));
    this.policy = {
      trustedCertificates: trusted,
      audiences: settings.audiences,
      clockSkewMs: settings.clockSkewMs,
      allowSha1: settings.allowSha1,
      ...(settings.issuers ? { issuers: settings.issuers } : {}),
      ...(now ? { now } : {}),
    };
  }

  /**
   * Checks the request's assertion. `required`: a request without one is refused. `homeCommunityId`:
   * when given, an assertion naming another home community is refused (the caller is bound to it).
   * Throws XuaRefusal.
   */
  check(env: SoapEnvelope, required: boolean, homeCommunityId?: string): XuaOutcome {
    let assertions: string[] = [];
    if (env.security) {
      try {
        assertions = findAssertions(relayElement(env.doc, env.security));
      } catch (e) {
        throw refusal('wsse:InvalidSecurity', `wsse:Security not readable: ${(e as Error).message}`);
      }
    }
    if (assertions.length === 0) {
      if (required)
        throw new XuaRefusal(
          new SoapFault('Sender', 'an XUA assertion is required for this requester', 'wsse:InvalidSecurity'),
          'no SAML assertion in wsse:Security',
        );
      return { humanRequestors: [] };
    }
    if (assertions.length > 1)
      throw refusal(
        'wsse:InvalidSecurity',
        `${assertions.length} SAML assertions in wsse:Security (one expected)`,
      );
    let a: ValidatedAssertion;
    try {
      a = validateAssertion(assertions[0], this.policy);
    } catch (e) {
      if (e instanceof XuaError)
        throw refusal(
          e.reason === 'malformed' ? 'wsse:InvalidSecurityToken' : 'wsse:FailedAuthentication',
          `${e.reason}: ${e.message}`,
        );
      throw e;
    }
    if (a.oneTimeUse)
      throw refusal('wsse:FailedAuthentication', 'OneTimeUse assertions cannot be relayed by a gateway');
    if (homeCommunityId && a.homeCommunityId && a.homeCommunityId !== homeCommunityId)
      throw refusal(
        'wsse:FailedAuthentication',
        `the assertion names home community ${a.homeCommunityId}, the caller is ${homeCommunityId}`,
      );
    return {
      assertion: a,
      humanRequestors: [humanRequestorOf(a)],
      forwardHeaders: securityHeaderWithAssertions(env),
    };
  }
}

function refusal(
  subcode: 'wsse:InvalidSecurity' | 'wsse:InvalidSecurityToken' | 'wsse:FailedAuthentication',
  detail: string,
) {
  return new XuaRefusal(new SoapFault('Sender', REFUSED, subcode), detail);
}

/** The audit's human requestor: NameID as user id, subject-id as name, roles, organisation. */
export function humanRequestorOf(a: ValidatedAssertion): HumanRequestor {
  const h: HumanRequestor = {
    userId: a.subjectNameId,
    roles: a.roles.map((r) => ({
      code: r.code,
      ...(r.codeSystem ? { codeSystem: r.codeSystem } : {}),
      ...(r.displayName ? { displayName: r.displayName } : {}),
    })),
  };
  if (a.subjectId) h.userName = a.subjectId;
  const org = a.organization ?? a.organizationId ?? a.homeCommunityId;
  if (org) h.organization = org;
  return h;
}
