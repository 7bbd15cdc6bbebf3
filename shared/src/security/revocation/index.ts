/**
 * Certificate revocation (R5): CRLs and OCSP per trust anchor for the certificates peers present
 * (checker.ts, on the wire in connections.ts), and OCSP stapling of our own certificate
 * (stapling.ts). CRLs and OCSP responses are parsed and verified here (der.ts, crl.ts, ocsp.ts).
 */
export { RevocationChecker, type RevocationVerdict, type OcspPoster } from './checker';
export { installInboundRevocation, revocationGate } from './inbound';
export { revocationConnector } from './outbound';
export { aiaOcspUrl, installOcspStapling } from './stapling';
export { parseCrl, readCrlFile, issuedBy, type Crl } from './crl';
export { certId, encodeOcspRequest, verifyOcspResponse, OcspError, type OcspAnswer } from './ocsp';
