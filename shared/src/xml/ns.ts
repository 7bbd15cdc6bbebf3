/** Namespace URIs used on the wire. */
export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  soap11: 'http://schemas.xmlsoap.org/soap/envelope/',
  wsa: 'http://www.w3.org/2005/08/addressing',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
  saml2: 'urn:oasis:names:tc:SAML:2.0:assertion',
  query: 'urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0',
  rim: 'urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0',
  rs: 'urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0',
  lcm: 'urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0',
  xdsb: 'urn:ihe:iti:xds-b:2007',
  xdsi: 'urn:ihe:rad:xdsi-b:2009',
  xop: 'http://www.w3.org/2004/08/xop/include',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
} as const;

/** The prefixes this product writes. */
export const XMLNS_DECLS = {
  soap: `xmlns:soap="${NS.soap}"`,
  wsa: `xmlns:wsa="${NS.wsa}"`,
  query: `xmlns:query="${NS.query}"`,
  rim: `xmlns:rim="${NS.rim}"`,
  rs: `xmlns:rs="${NS.rs}"`,
  xdsb: `xmlns:xdsb="${NS.xdsb}"`,
  xdsi: `xmlns:xdsi="${NS.xdsi}"`,
  xop: `xmlns:xop="${NS.xop}"`,
} as const;
