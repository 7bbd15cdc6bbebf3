/**
 * A generated national-scale directory: `n` remote communities, each with ITI-38 / ITI-39 / RAD-75
 * endpoints and a certificate identity, as the fan-out benchmark and the directory tests use it.
 */
import { stringify } from 'yaml';

export const NATIONAL_HOME = 'urn:oid:1.3.6.1.4.1.21367.13.71';
/** homeCommunityId of community i (0-based). */
export const nationalHome = (i: number): string => `${NATIONAL_HOME}.${i + 1}`;
/** The certificate name of community i's gateways. */
export const nationalName = (i: number): string => `gw-${i + 1}.farm.test`;

export interface NationalDirectoryOptions {
  communities: number;
  /** Base URL of community i's gateway (its endpoints are `${base}/iti38` …). */
  base(i: number): string;
  /** Trust anchors (PEM files) of the communities' certificates. */
  trustAnchors: string[];
  timeoutMs?: number;
  maxConcurrent?: number;
  /** Consumers allowed to call this gateway (as in the directory file). */
  consumers?: unknown[];
}

export function nationalDirectory(o: NationalDirectoryOptions): Record<string, unknown> {
  const ep = (url: string) => ({
    url,
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.maxConcurrent ? { maxConcurrent: o.maxConcurrent } : {}),
  });
  return {
    homeCommunityId: `${NATIONAL_HOME}.0`,
    name: 'National hub',
    communities: Array.from({ length: o.communities }, (_, i) => ({
      homeCommunityId: nationalHome(i),
      name: `Community ${i + 1}`,
      endpoints: {
        iti38: ep(`${o.base(i)}/iti38`),
        iti39: ep(`${o.base(i)}/iti39`),
        rad75: ep(`${o.base(i)}/rad75`),
      },
      identity: { trustAnchors: o.trustAnchors, names: [nationalName(i)] },
    })),
    ...(o.consumers ? { consumers: o.consumers } : {}),
  };
}

/** The directory as a YAML file's text, as an operator would write it. */
export function nationalDirectoryYaml(o: NationalDirectoryOptions): string {
  return stringify(nationalDirectory(o), { aliasDuplicateObjects: false });
}
