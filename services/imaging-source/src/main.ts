/**
 * The bridge as a process: settings from the environment (like the gateways), the archive and
 * publishing settings from the directory's `local.archive` and `local.publish` sections.
 */
import { runMain, settingsFromEnv } from '@xcai/shared';
import { startImagingSource } from './index';

runMain(() =>
  startImagingSource({ settings: settingsFromEnv(process.env, { port: 8080, clientAuth: 'required' }) }),
);
