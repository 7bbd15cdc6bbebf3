/** XDS / XCA error codes used by this product (ITI TF-3 Table 4.2.4.1-2). */
export const ErrorCode = {
  UnknownCommunity: 'XDSUnknownCommunity',
  MissingHomeCommunityId: 'XDSMissingHomeCommunityId',
  UnavailableCommunity: 'XDSUnavailableCommunity',
  UnknownPatientId: 'XDSUnknownPatientId',
  UnknownStoredQuery: 'XDSUnknownStoredQuery',
  StoredQueryMissingParam: 'XDSStoredQueryMissingParam',
  StoredQueryParamNumber: 'XDSStoredQueryParamNumber',
  TooManyResults: 'XDSTooManyResults',
  ResultNotSinglePatient: 'XDSResultNotSinglePatient',
  RegistryError: 'XDSRegistryError',
  RegistryBusy: 'XDSRegistryBusy',
  RepositoryError: 'XDSRepositoryError',
  RepositoryBusy: 'XDSRepositoryBusy',
  DocumentUniqueIdError: 'XDSDocumentUniqueIdError',
  UnknownRepositoryId: 'XDSUnknownRepositoryId',
  RegistryMetadataError: 'XDSRegistryMetadataError',
} as const;
