import { runMain, settingsFromEnv } from '@xcai/shared';
import { startInitiatingGateway } from './index';

runMain(() =>
  startInitiatingGateway({ settings: settingsFromEnv(process.env, { port: 8080, clientAuth: 'optional' }) }),
);
