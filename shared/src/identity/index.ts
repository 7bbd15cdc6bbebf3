/** Patient identity across communities (XCPD, static correlations, the correlation cache). */
export * from './cache';
export * from './redis-cache';
export * from './setup';
export * from './match';
export * from './translate';
export * from './discover';
export * from './respond';
