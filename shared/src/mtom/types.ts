import type { Readable } from 'node:stream';

/** Headers of one MIME part; names are lower-cased. */
export interface PartHeaders {
  /** Content-ID without the angle brackets, e.g. `doc1@example.org` (not URL-decoded). */
  contentId?: string;
  contentType?: string;
  contentTransferEncoding?: string;
  all: Record<string, string>;
}

/** One MIME part of a multipart/related body. Its body is a stream with backpressure. */
export interface MimePart {
  headers: PartHeaders;
  body: Readable;
}

export interface MultipartLimits {
  /** Maximum bytes of one part's header block. */
  maxPartHeaderBytes: number;
  /** Maximum number of parts in one message. */
  maxParts: number;
  /** Maximum bytes of the root (SOAP envelope) part. */
  maxRootBytes: number;
  /** Maximum bytes of the whole message (all parts). */
  maxTotalBytes: number;
  /**
   * Longest wait for the next chunk of input, in ms (MtomError 'timeout'). Optional: the HTTP layer
   * usually bounds this already; time spent waiting for a slow body consumer does not count.
   */
  idleTimeoutMs?: number;
}

/** A SOAP message read from HTTP: plain `application/soap+xml` or MTOM `multipart/related`. */
export interface IncomingSoapMessage {
  /** The SOAP envelope bytes (for MTOM: the root part). Whole, since it is bounded by `maxRootBytes`. */
  envelope: Buffer;
  isMtom: boolean;
  /** The attachment parts, in stream order (none for plain SOAP). */
  attachments: AttachmentStream;
}

export interface AttachmentStream {
  /**
   * The next part after the root, or null at the end of the message. The previous part's body must
   * have been consumed (or `discard`ed) first. Rejects with MtomError on a malformed or truncated body.
   */
  next(): Promise<MimePart | null>;
  /** Reads and drops everything that is left, and releases the source. */
  discard(): Promise<void>;
  /**
   * A part whose body fails leaves the stream usable (each part has a source of its own, e.g. one
   * archive request): the merge then refuses that document only. Default: the stream is broken.
   */
  readonly independentParts?: boolean;
}
