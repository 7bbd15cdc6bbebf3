/** HL7 V3 codecs for patient discovery (ITI-55 XCPD, ITI-47 PDQv3): pure, bytes in, values out. */
export * from './model';
export * from './cx';
export * from './datatypes';
export * from './patient-query';
export * from './patient-response';
