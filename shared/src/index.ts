export * from './xml/parse';
export * from './xml/write';
export * from './xml/ns';
export * from './soap/ids';
export * from './soap/fault';
export * from './soap/envelope';
export * from './ebrim/status';
export * from './ebrim/error-codes';
export * from './ebrim/stored-query';
export * from './ebrim/query';
export * from './ebrim/registry-object';
export * from './xds/retrieve';
export * from './xds/metadata';
export * from './xds/kos-codes';
export * from './directory/types';
export * from './directory/load';
export * from './audit/event';
export * from './audit/gateway';
export * from './integrity/store';
export * from './inbound/body';
export * from './outbound/client';
export * from './pipeline/transaction';
export * from './pipeline/dispatch';
export * from './pipeline/engine';
export * from './transactions/actions';
export * from './transactions/audit-support';
export * from './transactions/query';
export * from './util/deadline';
export * from './util/log';
export * from './util/semaphore';
export * from './inbound/server';
export * from './inbound/wsdl';
export * from './service/settings';
export * from './service/bootstrap';
export * from './service/audit';
export * from './pipeline/hooks';
export * from './transactions/verify';
export * from './transactions/retrieve';
export * from './transactions/retrieve-plan';
export * from './mtom/index';
export * from './dicom/index';
export * from './circuit/breaker';
export * from './observability';
export * from './util/quietly';
export * from './async/index';
export * from './integrity/redis-store';
export * from './transactions/retrieve-policy';
export * from './transactions/retrieve-routes';
export {
  registryQuery,
  screenPatientMatch,
  screenQueryAnswer,
  screenRetrieve,
  Disclosure,
  needsDisclosure,
} from './disclosure';
export * from './directory/policy';
export * from './transactions/error-location';
export * from './hl7v3/index';
export * from './identity/index';
export * from './transactions/patient-discovery';
export * from './directory/patient-identity';
