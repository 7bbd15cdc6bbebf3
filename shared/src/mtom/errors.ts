/** Why a multipart/MTOM message (or a piece of one) was rejected. */
export type MtomErrorCode =
  /** The Content-Type header is unusable (no boundary, bad syntax). */
  | 'bad-content-type'
  /** Not SOAP 1.2 nor MTOM (e.g. text/xml, which is SOAP 1.1). */
  | 'unsupported-media-type'
  /** The input ended (or the source closed) before the close delimiter. */
  | 'truncated'
  /** A size limit (whole message or root part) was exceeded. */
  | 'too-large'
  /** A part's header block is larger than `maxPartHeaderBytes`. */
  | 'header-too-large'
  /** More than `maxParts` parts. */
  | 'too-many-parts'
  /** A header line without a colon, or a header value that cannot be written safely. */
  | 'bad-header'
  /** A boundary line followed by something other than padding, a line break or `--`. */
  | 'bad-delimiter'
  /** An MTOM message with no part at all. */
  | 'missing-root'
  /** `start` names a part that is not the first one. */
  | 'root-not-first'
  /** The root part is not application/xop+xml (or application/soap+xml). */
  | 'bad-root'
  /** A Content-Transfer-Encoding other than binary, 8bit or 7bit. */
  | 'unsupported-encoding'
  /** Inline base64 with characters outside the base64 alphabet. */
  | 'bad-base64'
  /** An xop:Include href that is not a usable cid: URL. */
  | 'bad-href'
  /** Two parts with the same Content-ID. */
  | 'duplicate-content-id'
  /** Two xop:Include elements naming the same Content-ID. */
  | 'duplicate-include'
  /** No input arrived within `idleTimeoutMs`. */
  | 'timeout'
  /** The source stream failed (e.g. the connection was reset). */
  | 'source-error'
  /** The output stream failed or closed while writing. */
  | 'write-failed'
  /** An API was used out of order (programming error). */
  | 'bad-state';

export class MtomError extends Error {
  override readonly name = 'MtomError';
  constructor(
    readonly code: MtomErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
