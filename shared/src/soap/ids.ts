import { randomUUID } from 'node:crypto';

export const WSA_ANONYMOUS = 'http://www.w3.org/2005/08/addressing/anonymous';
export const WSA_NONE = 'http://www.w3.org/2005/08/addressing/none';

export function newMessageId(): string {
  return `urn:uuid:${randomUUID()}`;
}

/** True for a ReplyTo that asks for the response on the same HTTP connection. */
export function isAnonymous(address: string | undefined): boolean {
  return address === undefined || address === '' || address === WSA_ANONYMOUS;
}
