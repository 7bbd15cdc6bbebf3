const OID = /^[0-2](\.(0|[1-9][0-9]*))+$/;

/** An ISO OID of at most 64 characters (the XDS limit). */
export function isOid(v: string): boolean {
  return v.length <= 64 && OID.test(v);
}
