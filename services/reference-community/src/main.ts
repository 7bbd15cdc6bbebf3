/**
 * Runs one reference community as its own process:
 *   node services/reference-community/dist/main.js --seed DIR [--seed DIR …] [--port N] [--host H] [--delay-ms N]
 *     [--corrupt UID …] [--truncate UID …]   (fault injection for tests) [--store DIR] (ITI-41 documents)
 *   or, for a community without seeds (every document submitted to it, e.g. by the imaging-source
 *   bridge): --home-community-id urn:oid:OID [--repository-unique-id OID] instead of --seed.
 * Prints one JSON line {"url": …, "registry": …, "repository": …, "ids": …, "pdq": …} on stdout when ready.
 */
import { parseArgs } from 'node:util';
import { createLogger, parseSize } from '@xcai/shared';
import { startReferenceCommunity } from './server';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string', multiple: true },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      'delay-ms': { type: 'string', default: '0' },
      corrupt: { type: 'string', multiple: true },
      truncate: { type: 'string', multiple: true },
      store: { type: 'string' },
      'home-community-id': { type: 'string' },
      'repository-unique-id': { type: 'string' },
    },
  });
  if (!values.seed?.length && !values['home-community-id'])
    throw new Error(
      'usage: main.js --seed DIR [--seed DIR …] | --home-community-id ID [--repository-unique-id OID]; [--port N] [--delay-ms N]',
    );
  const log = createLogger({ service: 'reference-community' }, 'warn', (l) => process.stderr.write(l + '\n'));
  const c = await startReferenceCommunity({
    seedDirs: values.seed ?? [],
    homeCommunityId: values['home-community-id'],
    repositoryUniqueId: values['repository-unique-id'],
    host: values.host,
    port: Number(values.port),
    delayMs: Number(values['delay-ms']),
    faults: { corrupt: values.corrupt, truncate: values.truncate },
    storeDir: values.store,
    maxRequestBytes: parseSize(process.env.XCAI_MAX_REQUEST_BYTES ?? '4MiB'),
    log,
  });
  const m = c.manifests[0];
  process.stdout.write(
    JSON.stringify({
      url: c.url,
      registry: c.registryUrl,
      repository: c.repositoryUrl,
      ids: c.idsUrl,
      provide: c.provideUrl,
      register: c.registerUrl,
      pdq: c.pdqUrl,
      homeCommunityId: m?.homeCommunityId ?? values['home-community-id'],
      repositoryUniqueId: m?.repositoryUniqueId ?? c.repositoryUniqueId,
      idsRepositoryUniqueId: m?.idsRepositoryUniqueId,
    }) + '\n',
  );
  const stop = () => void c.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(2);
});
