/**
 * The community directory: everything a gateway knows about its own community and its peers.
 * Loaded once at start from a YAML or JSON file (see `loadDirectory`); a bad file stops the service
 * with a message naming the bad entry.
 */

/** An HTTP(S) endpoint the gateway may send to, with its per-endpoint interop profile. */
export interface Endpoint {
  url: string;
  /** Per-call timeout; the caller's overall deadline still applies. */
  timeoutMs: number;
  /** Maximum simultaneous requests to this endpoint. */
  maxConcurrent: number;
  /** A response larger than this is cut off and reported (IHE XCA-I M3). */
  maxResponseBytes: number;
}

/** TLS client/server material; paths are read at start. */
export interface TlsFiles {
  /** PEM file(s) with the certificate chain we present. */
  cert: string;
  key: string;
  /** Trust anchors for verifying the other side. */
  ca: string[];
}

/** How a peer proves who it is: the certificate identity it presents (mTLS). */
export interface PeerIdentity {
  /** Trust anchors (PEM files) that may issue this peer's certificates. */
  trustAnchors: string[];
  /** Accepted certificate subject CN or subjectAltName DNS/URI values. */
  names: string[];
}

export interface RemoteCommunity {
  homeCommunityId: string;
  name: string;
  /** Where we send ITI-38 / ITI-39 / RAD-75 (initiating side). Any may be absent. */
  endpoints: {
    iti38?: Endpoint;
    iti39?: Endpoint;
    rad75?: Endpoint;
  };
  /** Maximum DocumentRequests per ITI-39 / RAD-75 request; larger requests are split. */
  maxDocumentsPerRequest: number;
  /** Send ITI-38/39/RAD-75 to this community with the asynchronous exchange (Appendix V). */
  async: boolean;
  /** Certificate identity of the community's gateways (both directions). */
  identity?: PeerIdentity;
  /** Responding side: may this community send us ITI-38/39/RAD-75 at all. */
  acceptRequests: boolean;
  /** Responding side: URL prefixes this community may name as wsa:ReplyTo / wsa:FaultTo. */
  replyTo: string[];
  /** XUA assertion policy for requests from this community. */
  xua: 'required' | 'optional';
}

export interface LocalEndpoint extends Endpoint {
  repositoryUniqueId: string;
}

/** Consumers inside our own community (initiating side) that may use the async exchange. */
export interface LocalConsumer {
  name: string;
  identity?: PeerIdentity;
  /** URL prefixes (or `http://127.0.0.1:*` style patterns) allowed as wsa:ReplyTo / wsa:FaultTo. */
  replyTo: string[];
}

export type UnknownPatientPolicy = 'empty-success' | 'XDSUnknownPatientId';

export interface Directory {
  /** Our own homeCommunityId, `urn:oid:…`. */
  homeCommunityId: string;
  name: string;
  /** Overall deadline for one inbound transaction when the caller gives none. */
  deadlineMs: number;
  local: {
    /** Local XDS registry (ITI-18). */
    registry?: Endpoint;
    /** Local XDS repositories (ITI-43), keyed by repositoryUniqueId. */
    repositories: LocalEndpoint[];
    /** Local Imaging Document Sources (RAD-69), keyed by repositoryUniqueId. */
    imagingDocumentSources: LocalEndpoint[];
  };
  communities: RemoteCommunity[];
  consumers: LocalConsumer[];
  policy: {
    /** Responding side, IHE XCA-I M6: what an unknown (or malformed) patient id yields. */
    unknownPatient: UnknownPatientPolicy;
  };
}
