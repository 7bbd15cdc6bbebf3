import { startGateway, type GatewayOptions, type RunningGateway, type SoapRoute } from '@xcai/shared';
import { iti38 } from './transactions/iti38';

/** The endpoints other communities call. */
export const routes: SoapRoute[] = [{ path: '/iti38', tx: iti38 }];

export function startRespondingGateway(o: Omit<GatewayOptions, 'role' | 'routes'>): Promise<RunningGateway> {
  return startGateway({ ...o, role: 'responding', routes });
}

export { iti38 };
