import { startGateway, type GatewayOptions, type RunningGateway, type SoapRoute } from '@xcai/shared';
import { iti18 } from './transactions/iti18';

/** The consumer-facing endpoints of the Initiating (Imaging) Gateway. */
export const routes: SoapRoute[] = [{ path: '/iti18', tx: iti18 }];

export function startInitiatingGateway(o: Omit<GatewayOptions, 'role' | 'routes'>): Promise<RunningGateway> {
  return startGateway({ ...o, role: 'initiating', routes });
}

export { iti18 };
