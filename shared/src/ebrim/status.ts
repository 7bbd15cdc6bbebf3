import { NS } from '../xml/ns';
import type { XmlElement } from '../xml/parse';
import { attrs } from '../xml/write';

export type Status = 'Success' | 'PartialSuccess' | 'Failure';

export const STATUS_URN: Record<Status, string> = {
  Success: 'urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success',
  Failure: 'urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure',
  PartialSuccess: 'urn:ihe:iti:2007:ResponseStatusType:PartialSuccess',
};

/** Reads a status URN; lenient about the prefix, since real peers vary. Unknown → undefined. */
export function statusFromUrn(urn: string | undefined): Status | undefined {
  if (!urn) return undefined;
  const tail = urn.slice(urn.lastIndexOf(':') + 1);
  return tail === 'Success' || tail === 'PartialSuccess' || tail === 'Failure' ? tail : undefined;
}

export type Severity = 'Error' | 'Warning';

const SEVERITY_URN: Record<Severity, string> = {
  Error: 'urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error',
  Warning: 'urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning',
};

export interface RegistryError {
  errorCode: string;
  /** Human-readable explanation; never PHI beyond the ids the requester sent. */
  codeContext: string;
  /** Where (see transactions/error-location.ts for what each transaction puts here). */
  location?: string;
  severity: Severity;
  /** Not on the wire: the requested document (DocumentUniqueId, SOP Instance UID) this error is about. */
  document?: string;
  /** Not on the wire: the homeCommunityId of the other community this error is about. */
  community?: string;
}

/** What an error is about, for locating it later (see transactions/error-location.ts). */
export interface Concerns {
  document?: string;
  community?: string;
}

export function registryError(
  errorCode: string,
  codeContext: string,
  location?: string,
  about: Concerns = {},
): RegistryError {
  return { errorCode, codeContext, location, severity: 'Error', ...about };
}

export function registryWarning(
  errorCode: string,
  codeContext: string,
  location?: string,
  about: Concerns = {},
): RegistryError {
  return { ...registryError(errorCode, codeContext, location, about), severity: 'Warning' };
}

export function encodeRegistryErrorList(errors: RegistryError[]): string {
  if (errors.length === 0) return '';
  const items = errors
    .map(
      (e) =>
        `<rs:RegistryError${attrs({
          codeContext: e.codeContext,
          errorCode: e.errorCode,
          location: e.location,
          severity: SEVERITY_URN[e.severity],
        })}/>`,
    )
    .join('');
  return `<rs:RegistryErrorList xmlns:rs="${NS.rs}"${attrs({ highestSeverity: highestSeverity(errors) })}>${items}</rs:RegistryErrorList>`;
}

function highestSeverity(errors: RegistryError[]): string {
  return SEVERITY_URN[errors.some((e) => e.severity === 'Error') ? 'Error' : 'Warning'];
}

/** Reads an rs:RegistryErrorList. Lenient: also accepts it in the rim namespace (seen from real peers). */
export function decodeRegistryErrors(parent: XmlElement): RegistryError[] {
  const list = parent.child(NS.rs, 'RegistryErrorList') ?? parent.child(NS.rim, 'RegistryErrorList');
  if (!list) return [];
  return list.children
    .filter((c) => c.local === 'RegistryError')
    .map((c) => ({
      errorCode: c.attr('errorCode') ?? 'XDSRegistryError',
      codeContext: c.attr('codeContext') ?? c.trimmedText(),
      location: c.attr('location'),
      severity: (c.attr('severity') ?? '').endsWith('Warning') ? 'Warning' : 'Error',
    }));
}

export function hasErrors(errors: RegistryError[]): boolean {
  return errors.some((e) => e.severity === 'Error');
}

/**
 * The status of a consolidated response (ITI TF-2 / ebRS): Success when there are no errors
 * (warnings allowed), Failure when errors and nothing was delivered, PartialSuccess otherwise.
 */
export function consolidatedStatus(errors: RegistryError[], delivered: boolean): Status {
  if (!hasErrors(errors)) return 'Success';
  return delivered ? 'PartialSuccess' : 'Failure';
}
