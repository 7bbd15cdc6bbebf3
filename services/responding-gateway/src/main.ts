import { runMain, settingsFromEnv } from '@xcai/shared';
import { startRespondingGateway } from './index';

runMain(() =>
  startRespondingGateway({ settings: settingsFromEnv(process.env, { port: 8080, clientAuth: 'required' }) }),
);
