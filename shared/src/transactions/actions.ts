/** wsa:Action values (ITI TF-2, RAD TF-3; SPEC-NOTES §3). */
export const Action = {
  ITI18: 'urn:ihe:iti:2007:RegistryStoredQuery',
  ITI18Response: 'urn:ihe:iti:2007:RegistryStoredQueryResponse',
  ITI38: 'urn:ihe:iti:2007:CrossGatewayQuery',
  ITI38Response: 'urn:ihe:iti:2007:CrossGatewayQueryResponse',
  ITI39: 'urn:ihe:iti:2007:CrossGatewayRetrieve',
  ITI39Response: 'urn:ihe:iti:2007:CrossGatewayRetrieveResponse',
  ITI43: 'urn:ihe:iti:2007:RetrieveDocumentSet',
  ITI43Response: 'urn:ihe:iti:2007:RetrieveDocumentSetResponse',
  RAD69: 'urn:ihe:rad:2009:RetrieveImagingDocumentSet',
  /** RAD-69 reuses the ITI-43 response action. */
  RAD69Response: 'urn:ihe:iti:2007:RetrieveDocumentSetResponse',
  RAD75: 'urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet',
  RAD75Response: 'urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSetResponse',
  /** ITI TF-2 3.55.4.1.1 / 3.55.4.2.1 (XCPD). */
  ITI55: 'urn:hl7-org:v3:PRPA_IN201305UV02:CrossGatewayPatientDiscovery',
  ITI55Response: 'urn:hl7-org:v3:PRPA_IN201306UV02:CrossGatewayPatientDiscovery',
  /** ITI TF-2 3.47.4.1.1 / 3.47.4.2.1 (PDQv3). */
  ITI47: 'urn:hl7-org:v3:PRPA_IN201305UV02',
  ITI47Response: 'urn:hl7-org:v3:PRPA_IN201306UV02',
} as const;
