/**
 * The community directory: everything a gateway knows about its own community and its peers.
 * Loaded at start from a YAML or JSON file (see `loadDirectory`); a bad file stops the service
 * with a message naming the bad entry. Reloaded when the file changes (service/reload.ts); a bad
 * new file keeps the running directory.
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
    /** ITI-55 Cross Gateway Patient Discovery (communities in `xcpd` identity mode). */
    iti55?: Endpoint;
  };
  /** How our patient ids translate into this community's (absent: `shared`, the same ids). */
  patientIdentity?: CommunityPatientIdentity;
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
  /** Responding side: limits for requests from this community, overriding `inboundLimits`. */
  inboundLimits?: Partial<PeerLimits>;
  /**
   * Responding side, R10: which patient privacy policies permit sharing with this community — the
   * top-level `consent` defaults with this community's overrides. Present when `consent` is configured.
   */
  consent?: ConsentPolicy;
  /** Responding side, R9: the document classes this community may query and retrieve. */
  documents?: DocumentPolicy;
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
  /** XUA assertion policy for requests from this consumer (default optional). */
  xua?: 'required' | 'optional';
  /** Limits for requests from this consumer, overriding `inboundLimits`. */
  inboundLimits?: Partial<PeerLimits>;
}

/**
 * Limits per peer on the inbound side (security/peer-limits.ts). A peer is the community or consumer
 * the caller's certificate maps to, else the certificate itself, else the remote address.
 */
export interface PeerLimits {
  /** Requests of one peer being served at once (SOAP endpoints); more are refused (HTTP 429). */
  maxConcurrentRequests: number;
  /** Sustained request rate of one peer (token bucket); faster requests are refused (HTTP 429). */
  requestsPerSecond: number;
  /** Requests one peer may send at once above the sustained rate (bucket size). */
  burst: number;
  /** Open connections of one peer; more are closed at once. */
  maxConnections: number;
  /** Largest request of one peer (root part); undefined: the process limit (XCAI_MAX_REQUEST_BYTES). */
  maxRequestBytes?: number;
}

/** Inbound limits: defaults for every peer plus the server-wide timeouts against slow senders. */
export interface InboundLimits extends PeerLimits {
  /** Time for the request line and headers (HTTP 408 + close after it). */
  headersTimeoutMs: number;
  /** Longest pause between body bytes of a request to a SOAP endpoint. */
  bodyIdleTimeoutMs: number;
  /** Time to receive one whole request. */
  requestTimeoutMs: number;
  /** Time for a TLS handshake. */
  handshakeTimeoutMs: number;
  /** Peers whose counters are kept (the least recently seen idle ones are forgotten beyond it). */
  maxTrackedPeers: number;
  /**
   * Connections whose TLS handshake is not complete, per source address and in total; beyond
   * them the oldest such connection is closed (security/connection-guard.ts).
   */
  maxHalfOpenPerAddress: number;
  maxHalfOpen: number;
  /** Connections without a request in progress, per source address and in total (oldest closed beyond). */
  maxIdlePerAddress: number;
  maxIdle: number;
}

/** How XUA assertions (IHE ITI-40, SAML 2.0 in wsse:Security) are validated (security/xua/). */
export interface XuaSettings {
  /** PEM files with the certificates of the IdPs / STSs whose signatures are accepted. */
  idpCertificates: string[];
  /** Accepted AudienceRestriction/Audience values (exact match). */
  audiences: string[];
  /** Tolerated clock difference for IssueInstant / NotBefore / NotOnOrAfter. */
  clockSkewMs: number;
  /** Accept SHA-1 signatures and digests (refused by default; a per-deployment risk decision). */
  allowSha1: boolean;
  /** If set, the assertion's Issuer must be one of these. */
  issuers?: string[];
}

export type UnknownPatientPolicy = 'empty-success' | 'XDSUnknownPatientId';

/** A code as the directory names it: `code`, or `code^^codingScheme` as in stored-query parameters. */
export interface CodeMatch {
  code: string;
  /** Absent: any coding scheme. */
  scheme?: string;
}

/**
 * Responding side (R10): whether the patient's acknowledged privacy policies (BPPC: the policy
 * OIDs in the eventCodeList of their Privacy Policy Acknowledgement documents) let data go to one
 * community. A policy in `deny` wins over one in `permit`; with neither, `default` decides
 * (`permit` where sharing is the rule unless the patient objects, `deny` where it needs consent).
 */
export interface ConsentPolicy {
  permit: string[];
  deny: string[];
  default: 'permit' | 'deny';
  /**
   * R11: an XUA assertion whose PurposeOfUse is an emergency code (`breakGlass.purposesOfUse`)
   * may override a refusal. Off unless switched on here (and `breakGlass.until` not passed).
   */
  breakGlass: boolean;
}

/** Where a Responding Gateway reads consent (disclosure/). */
export interface ConsentSettings {
  /**
   * `bppc`: the patient's Privacy Policy Acknowledgement documents in the local registry (ITI TF-1
   * §19); `service`: POST {patientId, community} to a URL, answer {policies: [...]}; `file`: a JSON
   * or YAML map from patient id to policy OIDs, reread when it changes.
   */
  source: 'bppc' | 'service' | 'file';
  /** bppc: classCodes of consent documents (default 57016-8, LOINC; ITI TF-3 5.1.2.1.1.1). */
  classCodes: CodeMatch[];
  service?: Endpoint;
  file?: string;
  /** How long a patient's acknowledged policies are reused. */
  cacheMs: number;
  /** The policy of every community without its own `consent` settings. */
  policy: ConsentPolicy;
}

/**
 * Responding side (R9): the document classes a community may see. A DocumentEntry outside any
 * given list is left out of query answers as if it did not exist, and its retrieve is answered
 * XDSDocumentUniqueIdError. Absent lists do not restrict; every confidentialityCode of an entry
 * must be allowed.
 */
export interface DocumentPolicy {
  classCodes?: CodeMatch[];
  typeCodes?: CodeMatch[];
  confidentialityCodes?: CodeMatch[];
}

/** R11: what counts as an emergency, until when break-glass may be used, who is told. */
export interface BreakGlassSettings {
  /** XUA PurposeOfUse codes that ask for emergency access (default HL7 ActReason ETREAT and BTG). */
  purposesOfUse: CodeMatch[];
  /** After this instant break-glass is off everywhere (the switch-on expires). */
  until?: Date;
  /** POSTed a JSON alert (no patient id) for every break-glass access. */
  webhook?: Endpoint;
}

/** R5: revocation of the certificates one trust anchor issues (security/revocation/). */
export interface RevocationSettings {
  /** A PEM file of trust anchors, as named in an identity's trustAnchors or XCAI_TLS_CA. */
  trustAnchor: string;
  /** CRL files (PEM or DER) of the anchor and of its intermediate CAs; reread when they change. */
  crls: string[];
  /** Use a CRL past its nextUpdate (logged) instead of refusing every certificate it covers. */
  allowExpiredCrl: boolean;
  /** OCSP for the peer's own certificate; responses are cached until their nextUpdate. */
  ocsp?: {
    /**
     * The anchor's responder (http://). Named here, not taken from the peer's certificate (AIA):
     * the gateway sends only to URLs the directory names (R8).
     */
    url: string;
    timeoutMs: number;
    /** Responder unreachable (and no CRL): accept with a warning instead of refusing. */
    softFail: boolean;
  };
}

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
    /** Local Patient Demographics Supplier (PDQv3, ITI-47): demographics for XCPD at both ends. */
    patientDemographicsSupplier?: Endpoint;
    /** imaging-source only: the DICOMweb archive it stands in front of. */
    archive?: ArchiveSettings;
    /** imaging-source only: how the archive's studies are published (RAD-68). */
    publish?: PublishSettings;
  };
  communities: RemoteCommunity[];
  consumers: LocalConsumer[];
  policy: {
    /** Responding side, IHE XCA-I M6: what an unknown (or malformed) patient id yields. */
    unknownPatient: UnknownPatientPolicy;
  };
  /** XUA validation; absent: assertions are relayed unchecked and no human requestor is audited. */
  xua?: XuaSettings;
  /** Per-peer inbound limits and timeouts (the loader always fills them in). */
  inboundLimits?: InboundLimits;
  /** Responding side, R10: where consent is read and the default policy; absent: no consent check. */
  consent?: ConsentSettings;
  /** R11: emergency PurposeOfUse codes, expiry of the switch-on, alert webhook. */
  breakGlass?: BreakGlassSettings;
  /** R5: CRLs and OCSP per trust anchor (empty: revocation is not checked). */
  revocation?: RevocationSettings[];
  /** Our patient ids and the correlation cache (the loader always fills them in). */
  patientIdentity?: PatientIdentitySettings;
}

/**
 * How patient ids cross to a community (issue 14): `shared` — one assigning authority for all, our
 * ids are sent unchanged; `xcpd` — discovered with ITI-55 and cached; `static` — a correlation file.
 */
export type PatientIdentityMode = 'shared' | 'xcpd' | 'static';

export interface CommunityPatientIdentity {
  mode: PatientIdentityMode;
  /** xcpd / static: the assigning authority (OID) of the community's patient ids. */
  assigningAuthority?: string;
  /** static: our patient id (CX) → the community's (CX). */
  correlations?: ReadonlyMap<string, string>;
}

export interface PatientIdentitySettings {
  /** The assigning authority (OID) of our own community's patient ids. */
  assigningAuthority?: string;
  /** How long a discovered correlation is kept. */
  cacheTtlMs: number;
  /** How long "this community does not know the patient" is kept. */
  noMatchTtlMs: number;
  /** Correlations kept in process when there is no Redis (least recently used beyond it). */
  maxCachedCorrelations: number;
}

/** A DICOMweb archive (WADO-RS, QIDO-RS) behind the imaging-source bridge. */
export interface ArchiveSettings {
  /** DICOMweb base URL, e.g. https://pacs.example/dicom-web */
  url: string;
  /** The bridge's RepositoryUniqueId as an Imaging Document Source (RetrieveLocationUID in the KOS). */
  repositoryUniqueId: string;
  /** Credentials read from files: `user:password` (basic) or a token (bearer). */
  auth?: { basicFile?: string; bearerFile?: string };
  /** Trust anchors (PEM files) for an https archive; default: the system store. Verification is always on. */
  ca: string[];
  /** Time for the archive's response headers, and longest pause inside a body. */
  timeoutMs: number;
  /** Requests to the archive at once, per RAD-69 request and in total. */
  maxConcurrent: number;
  /**
   * Ask `transfer-syntax=*` to receive an instance as stored, then deliver it only if its syntax was
   * requested (else ask again for a requested one: the archive transcodes). Off by default.
   */
  anySyntax: boolean;
  /** Retrieve a whole series (one request) when at least this many of its instances are asked for. */
  seriesThreshold: number;
}

export interface PublishSettings {
  /** The community repository's Provide and Register endpoint (RAD-68 / ITI-41). */
  repository: Endpoint;
  /** QIDO-RS polling interval; 0: only when triggered. */
  intervalMs: number;
  /** Where the watermark (published studies) is kept between runs. */
  stateFile: string;
  /** Affinity-domain assigning authority (OID) of the patient ids the archive holds. */
  assigningAuthority: string;
  /** IssuerOfPatientID values mapped to other affinity-domain authorities (OIDs). */
  issuers: Record<string, string>;
  /** XDSSubmissionSet.sourceId (OID). */
  sourceId: string;
  /** XDS languageCode of the manifests. */
  languageCode: string;
  /** authorInstitution (XON) of the manifests, optional. */
  institution?: string;
}
