/**
 * The imaging-source bridge: an XDS-I.b Imaging Document Source in front of one DICOMweb archive.
 * It serves RAD-69 from the archive (WADO-RS) and publishes the archive's studies (QIDO-RS polling,
 * KOS manifests, RAD-68 to the community's repository). Runs on the shared engine with the same
 * TLS, admission, audit, metrics and readiness as the gateways; its callers are its own community's
 * gateways and consumers (directory `consumers`).
 */
import { loadDirectory, startGateway, type GatewayOptions, type RunningGateway } from '@xcai/shared';
import { ArchiveClient } from './archive/client';
import { Publisher } from './publish/publisher';
import { rad69 } from './retrieve/rad69';

export interface RunningImagingSource extends RunningGateway {
  archive: ArchiveClient;
  publisher?: Publisher;
}

export async function startImagingSource(
  o: Omit<GatewayOptions, 'role' | 'routes' | 'service'>,
): Promise<RunningImagingSource> {
  const directory = o.directory ?? loadDirectory(o.settings.directoryFile);
  const settings = directory.local.archive;
  if (!settings)
    throw new Error('the directory has no local.archive section (the DICOMweb archive to serve from)');
  const archive = new ArchiveClient(settings);
  let publisher: Publisher | undefined;
  const running = await startGateway({
    ...o,
    directory,
    role: 'initiating',
    service: 'imaging-source',
    routes: [{ path: '/rad69', tx: rad69({ archive }) }],
    readinessProviders: {
      ...o.readinessProviders,
      archive: async () => {
        try {
          await archive.ping();
          return { status: 'ok' };
        } catch (e) {
          return {
            status: 'unready',
            detail: { archive: new URL(settings.url).host, reason: (e as Error).message },
          };
        }
      },
      ...(directory.local.publish
        ? {
            publisher: () => ({
              status: 'ok' as const,
              detail: publisher?.lastRun
                ? { lastRun: publisher.lastRun.at.toISOString(), ...summary(publisher.lastRun.result) }
                : { lastRun: null },
            }),
          }
        : {}),
    },
    extend: (app, gateway) => {
      o.extend?.(app, gateway);
      if (!directory.local.publish) return;
      publisher = new Publisher(
        archive,
        directory.local.publish,
        gateway,
        gateway.log.child({ component: 'publisher' }),
      );
      // A trigger for the archive (e.g. an Orthanc "stable study" hook): run the publisher now.
      app.post('/publish', (_req, res) => {
        publisher!.trigger().then(
          (r) => res.json(summary(r)),
          (e: Error) => res.status(503).json({ error: e.message }),
        );
      });
    },
  });
  publisher?.start();
  return {
    ...running,
    archive,
    publisher,
    async close(reason?: string) {
      await publisher?.close();
      await running.close(reason);
      await archive.close();
    },
  };
}

function summary(r: { published: number; replaced: number; unchanged: number; failed: unknown[] }) {
  return { published: r.published, replaced: r.replaced, unchanged: r.unchanged, failed: r.failed.length };
}

export { ArchiveClient, Publisher, rad69 };
