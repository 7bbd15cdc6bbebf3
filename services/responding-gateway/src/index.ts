import { startGateway, type GatewayOptions, type RunningGateway, type SoapRoute } from '@xcai/shared';
import { iti38 } from './transactions/iti38';
import { iti39 } from './transactions/iti39';
import { rad75 } from './transactions/rad75';
import { iti55 } from './transactions/iti55';

/** The endpoints other communities call. */
export const routes: SoapRoute[] = [
  { path: '/iti38', tx: iti38 },
  { path: '/iti39', tx: iti39 },
  { path: '/rad75', tx: rad75 },
  { path: '/iti55', tx: iti55 },
];

export function startRespondingGateway(o: Omit<GatewayOptions, 'role' | 'routes'>): Promise<RunningGateway> {
  return startGateway({ ...o, role: 'responding', routes });
}

export { iti38, iti39, rad75, iti55 };
