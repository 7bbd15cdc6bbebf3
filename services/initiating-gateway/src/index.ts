import { startGateway, type GatewayOptions, type RunningGateway, type SoapRoute } from '@xcai/shared';
import { iti18 } from './transactions/iti18';
import { iti43 } from './transactions/iti43';
import { rad69 } from './transactions/rad69';

/** The consumer-facing endpoints of the Initiating (Imaging) Gateway. */
export const routes: SoapRoute[] = [
  { path: '/iti18', tx: iti18 },
  { path: '/iti43', tx: iti43 },
  { path: '/rad69', tx: rad69 },
];

export function startInitiatingGateway(o: Omit<GatewayOptions, 'role' | 'routes'>): Promise<RunningGateway> {
  return startGateway({ ...o, role: 'initiating', routes });
}

export { iti18, iti43, rad69 };
