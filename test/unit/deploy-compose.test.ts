/**
 * deploy/docker/compose.yaml, the two-community federation (community A: initiating gateway + reference
 * community; community B: responding gateway + reference community; Redis; the ARR; one-shot certs and seed).
 * There is no Docker engine on the build machines, so the file is checked structurally: hardening of every
 * container, start order, volumes and networks, the environment against what the services read, and the
 * directory files it mounts (they must load with loadDirectory and agree with the demo federation of
 * `npm start` and with the compose services, ports and certificates they name).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { loadDirectory, type Directory } from '@xcai/shared';
import { defaultDemoSpecs } from '../../services/reference-community/src/seed/specs';

const repoRoot = path.resolve(__dirname, '..', '..');
const dockerDir = path.join(repoRoot, 'deploy', 'docker');
const composeFile = path.join(dockerDir, 'compose.yaml');

interface Healthcheck {
  test: string[];
}
interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  networks?: string[];
  network_mode?: string;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
  read_only?: boolean;
  user?: string;
  cap_drop?: string[];
  security_opt?: string[];
  tmpfs?: string[];
  restart?: string;
}
interface Compose {
  name: string;
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean } | null>;
  volumes: Record<string, unknown>;
}

const compose = YAML.parse(fs.readFileSync(composeFile, 'utf8'), { merge: true }) as Compose;
const services = compose.services;
const names = Object.keys(services);
const ONE_SHOT = ['certs', 'seed'];
const GATEWAYS = { 'initiating-gateway-a': 'A', 'responding-gateway-b': 'B' } as const;
const REFERENCES = { 'reference-community-a': 'A', 'reference-community-b': 'B' } as const;
const demo = Object.fromEntries(defaultDemoSpecs().map((s) => [s.community, s]));

/** Named volumes and bind mounts of a service: [source, target, readOnly]. */
function mounts(s: Service): { source: string; target: string; readOnly: boolean }[] {
  return (s.volumes ?? []).map((v) => {
    const [source, target, mode] = v.split(':');
    return { source: source as string, target: target as string, readOnly: mode === 'ro' };
  });
}
const isBind = (source: string) => source.startsWith('.') || source.startsWith('/');

/** The make-certs.sh arguments of the certs service: certificate name → subjectAltNames. */
function issuedCertificates(): Map<string, string[]> {
  const script = (services.certs.command ?? []).join(' ');
  const args = script
    .slice(script.indexOf('make-certs.sh'))
    .split(/\s+/)
    .slice(2) // make-certs.sh OUT_DIR
    .filter((a) => a !== '\\');
  const out = new Map<string, string[]>();
  for (const a of args) {
    if (a.startsWith('>')) break;
    const [name, ...sans] = a.split(':');
    out.set(name as string, sans.length ? sans.join(':').split(',') : ['DNS:' + name]);
  }
  return out;
}
/** Files the certs service copies into the shared `certs` volume. */
function copiedFiles(): string[] {
  const line = (services.certs.command ?? [])
    .join('\n')
    .split('\n')
    .find((l) => l.trim().startsWith('cp '));
  return (line ?? '').trim().split(/\s+/).slice(1, -1);
}

/** Every environment variable name the service code reads (string literals and env.X accesses). */
function namesReadByServices(): Set<string> {
  const out = new Set<string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'dist') walk(p);
      } else if (e.name.endsWith('.ts')) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/\b((?:XCAI|REDIS|OTEL)_[A-Z0-9_]+)\b/g))
          out.add(m[1] as string);
      }
    }
  };
  walk(path.join(repoRoot, 'shared', 'src'));
  for (const svc of ['initiating-gateway', 'responding-gateway'])
    walk(path.join(repoRoot, 'services', svc, 'src'));
  return out;
}

function sharesNetwork(a: string, b: string): boolean {
  const na = services[a].networks ?? [];
  return (services[b].networks ?? []).some((n) => na.includes(n));
}
/** The port a service listens on: XCAI_PORT (gateways), --port (reference communities), XCAI_ARR_PORT, 6379. */
function listenPort(name: string): number {
  const s = services[name];
  if (s.environment?.XCAI_PORT) return Number(s.environment.XCAI_PORT);
  if (s.environment?.XCAI_ARR_PORT) return Number(s.environment.XCAI_ARR_PORT);
  const i = (s.command ?? []).indexOf('--port');
  if (i >= 0) return Number(s.command?.[i + 1]);
  if (name === 'redis') return 6379;
  throw new Error(`no port known for ${name}`);
}
/** The certificate name a gateway presents (XCAI_TLS_CERT …/<name>.crt). */
const certName = (gw: string) => path.basename(services[gw].environment?.XCAI_TLS_CERT ?? '', '.crt');

function directoryOf(gw: string): Directory {
  const m = mounts(services[gw]).find((x) => x.target === services[gw].environment?.XCAI_DIRECTORY);
  expect(m && isBind(m.source)).toBe(true);
  return loadDirectory(path.resolve(dockerDir, (m as { source: string }).source));
}

describe('deploy/docker/compose.yaml', () => {
  it('is a compose file with exactly the federation services', () => {
    expect(Object.keys(compose).filter((k) => !k.startsWith('x-'))).toEqual([
      'name',
      'services',
      'networks',
      'volumes',
    ]);
    expect(new Set(names)).toEqual(
      new Set([
        ...ONE_SHOT,
        'redis',
        'audit-repository',
        ...Object.keys(GATEWAYS),
        ...Object.keys(REFERENCES),
      ]),
    );
  });

  it('hardens every container: read-only root, non-root, no capabilities, no privilege escalation', () => {
    for (const [name, s] of Object.entries(services)) {
      expect({ name, readOnly: s.read_only, user: s.user }).toEqual({
        name,
        readOnly: true,
        user: '10001:10001',
      });
      expect(s.cap_drop).toEqual(['ALL']);
      expect(s.security_opt).toContain('no-new-privileges:true');
      expect((s.tmpfs ?? []).some((t) => t.split(':')[0] === '/tmp')).toBe(true);
    }
  });

  it('builds the project images from deploy/docker/*.Dockerfile with the right build context', () => {
    const built = new Map<string, string>();
    for (const [name, s] of Object.entries(services)) {
      if (!s.build) {
        expect({ name, image: s.image }).toEqual({ name, image: expect.stringMatching(/^redis:\d/) });
        continue;
      }
      const context = path.resolve(dockerDir, s.build.context);
      const dockerfile = path.resolve(context, s.build.dockerfile);
      expect(path.dirname(dockerfile)).toBe(dockerDir);
      expect(fs.existsSync(dockerfile)).toBe(true);
      // Service images build from the repository root (workspaces); the certs image from deploy/certs only.
      expect(context).toBe(s.image === 'xcai/certs:dev' ? path.join(repoRoot, 'deploy', 'certs') : repoRoot);
      // One image name per Dockerfile, whichever service builds it first.
      const seen = built.get(s.image as string);
      if (seen) expect(seen).toBe(dockerfile);
      built.set(s.image as string, dockerfile);
    }
    expect([...built.keys()].sort()).toEqual([
      'xcai/certs:dev',
      'xcai/initiating-gateway:dev',
      'xcai/reference-community:dev',
      'xcai/responding-gateway:dev',
    ]);
  });

  it('starts in order: one-shots complete first, the rest waits for healthy dependencies, no cycle', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(names).toContain(dep);
        expect({ name, dep, condition }).toEqual({
          name,
          dep,
          condition: ONE_SHOT.includes(dep) ? 'service_completed_successfully' : 'service_healthy',
        });
        if (!ONE_SHOT.includes(dep)) expect(services[dep].healthcheck?.test.length).toBeGreaterThan(0);
      }
      if (ONE_SHOT.includes(name)) {
        expect(s.restart).toBeUndefined();
        expect(s.network_mode).toBe('none'); // init steps need no network
      } else {
        expect(s.restart).toBe('unless-stopped');
        expect(s.healthcheck?.test[0]).toBe('CMD');
      }
    }
    // Topological order exists.
    const done = new Set<string>();
    for (let progress = true; progress;) {
      progress = false;
      for (const n of names)
        if (!done.has(n) && Object.keys(services[n].depends_on ?? {}).every((d) => done.has(d))) {
          done.add(n);
          progress = true;
        }
    }
    expect([...done].sort()).toEqual([...names].sort());
    // Everything that reads certificates or seed data waits for them.
    for (const [name, s] of Object.entries(services)) {
      for (const m of mounts(s)) {
        if (m.source === 'certs' && name !== 'certs')
          expect(Object.keys(s.depends_on ?? {})).toContain('certs');
        if (m.source === 'seed' && name !== 'seed') expect(Object.keys(s.depends_on ?? {})).toContain('seed');
      }
    }
  });

  it('declares every named volume and network it uses; bind mounts exist and are read-only', () => {
    const usedVolumes = new Set<string>();
    for (const s of Object.values(services)) {
      for (const m of mounts(s)) {
        if (isBind(m.source)) {
          expect(fs.existsSync(path.resolve(dockerDir, m.source))).toBe(true);
          expect(m.readOnly).toBe(true);
        } else {
          expect(Object.keys(compose.volumes)).toContain(m.source);
          usedVolumes.add(m.source);
        }
      }
      for (const n of s.networks ?? []) expect(Object.keys(compose.networks)).toContain(n);
    }
    expect([...usedVolumes].sort()).toEqual(Object.keys(compose.volumes).sort());
    // The CA key never leaves the certs service; the others mount the certificates read-only.
    for (const [name, s] of Object.entries(services)) {
      for (const m of mounts(s)) {
        if (m.source === 'ca') expect(name).toBe('certs');
        if (m.source === 'certs' && name !== 'certs') expect(m.readOnly).toBe(true);
      }
    }
    expect(copiedFiles()).not.toContain('ca.key');
  });

  it('isolates the communities: each reference community on its own internal network, only the gateways federate', () => {
    expect(services['reference-community-a'].networks).toEqual(['community-a']);
    expect(services['reference-community-b'].networks).toEqual(['community-b']);
    for (const n of ['community-a', 'community-b', 'federation'])
      expect(compose.networks[n]?.internal).toBe(true);
    const federated = names.filter((n) => services[n].networks?.includes('federation')).sort();
    expect(federated).toEqual(Object.keys(GATEWAYS).sort());
    expect(sharesNetwork('reference-community-a', 'responding-gateway-b')).toBe(false);
    expect(sharesNetwork('reference-community-b', 'initiating-gateway-a')).toBe(false);
    // Only the consumer-facing SOAP port of community A's initiating gateway is published, on loopback.
    const published = names.filter((n) => services[n].ports?.length);
    expect(published).toEqual(['initiating-gateway-a']);
    expect(services['initiating-gateway-a'].ports).toEqual(['127.0.0.1:8443:8443']);
  });

  it('sets only environment variables the gateways and the ARR read, and the settings they need', () => {
    const known = namesReadByServices();
    const arrEnv = services['audit-repository'].environment ?? {};
    for (const k of Object.keys(arrEnv)) expect({ k, known: known.has(k) }).toEqual({ k, known: true });
    expect(services['audit-repository'].command).toEqual(['node', 'shared/dist/audit/repository-main.js']);
    expect(fs.existsSync(path.join(repoRoot, 'shared', 'src', 'audit', 'repository-main.ts'))).toBe(true);
    expect(mounts(services['audit-repository']).find((m) => m.source === 'arr')?.target).toBe(
      arrEnv.XCAI_ARR_DIR,
    );
    for (const gw of Object.keys(GATEWAYS)) {
      const env = services[gw].environment ?? {};
      for (const k of Object.keys(env))
        expect({ gw, k, known: known.has(k) }).toEqual({ gw, k, known: true });
      expect(env).toMatchObject({
        XCAI_DIRECTORY: '/etc/xcai/directory.yaml',
        XCAI_HOST: '0.0.0.0',
        XCAI_AUDIT_TRANSPORT: 'tls',
        XCAI_AUDIT_SPOOL_DIR: '/var/spool/xcai-audit',
        REDIS_URL: 'redis://redis:6379/0',
      });
      expect(env.XCAI_AUDIT_SOURCE_ID).toBe(gw);
      // Numbers are plain integers, which every reader of these variables accepts.
      for (const k of ['XCAI_PORT', 'XCAI_MGMT_PORT', 'XCAI_AUDIT_PORT', 'XCAI_AUDIT_MAX_SPOOL_BYTES'])
        expect(env[k]).toMatch(/^\d+$/);
      // The healthcheck probes the management port the gateway listens on.
      expect(services[gw].healthcheck?.test.join(' ')).toContain(`127.0.0.1:${env.XCAI_MGMT_PORT}/readyz`);
      // The audit spool survives a container re-creation.
      expect(mounts(services[gw]).find((m) => m.target === env.XCAI_AUDIT_SPOOL_DIR)?.source).toMatch(
        /^audit-spool-/,
      );
    }
    // One Redis, one key prefix per deployment.
    const prefixes = Object.keys(GATEWAYS).map((gw) => services[gw].environment?.XCAI_REDIS_PREFIX);
    expect(new Set(prefixes).size).toBe(prefixes.length);
    expect(services['responding-gateway-b'].environment?.XCAI_TLS_CLIENT_AUTH).toBe('required');
  });

  it('gives every TLS client and server a certificate the certs service issues, valid for its host name', () => {
    const issued = issuedCertificates();
    const copied = copiedFiles();
    expect(copied).toContain('ca.crt');
    for (const [name] of issued)
      expect(copied).toEqual(expect.arrayContaining([`${name}.crt`, `${name}.key`]));
    // The demo's certificate names.
    expect([...issued.keys()].sort()).toEqual(['audit-repository', 'consumer', 'gw-a', 'gw-b']);
    const fileInVolume = (svc: string, file: string) => {
      const m = mounts(services[svc]).find((x) => x.source === 'certs');
      expect(m).toBeDefined();
      expect(path.posix.dirname(file)).toBe(m?.target);
      expect(copied).toContain(path.posix.basename(file));
    };
    for (const gw of Object.keys(GATEWAYS)) {
      const env = services[gw].environment ?? {};
      for (const k of [
        'XCAI_TLS_CERT',
        'XCAI_TLS_KEY',
        'XCAI_TLS_CA',
        'XCAI_AUDIT_TLS_CERT',
        'XCAI_AUDIT_TLS_KEY',
      ])
        fileInVolume(gw, env[k] as string);
      fileInVolume(gw, env.XCAI_AUDIT_TLS_CA as string);
      // Peers reach the gateway by its service name, which its certificate must carry.
      expect(issued.get(certName(gw))).toContain(`DNS:${gw}`);
      expect(new URL(env.XCAI_PUBLIC_URL as string).host).toBe(`${gw}:${env.XCAI_PORT}`);
      // The audit repository is reached by name over TLS.
      expect(env.XCAI_AUDIT_HOST).toBe('audit-repository');
      expect(sharesNetwork(gw, 'audit-repository')).toBe(true);
      expect(Number(env.XCAI_AUDIT_PORT)).toBe(listenPort('audit-repository'));
    }
    const arr = services['audit-repository'].environment ?? {};
    for (const k of ['XCAI_ARR_TLS_CERT', 'XCAI_ARR_TLS_KEY', 'XCAI_ARR_TLS_CA'])
      fileInVolume('audit-repository', arr[k] as string);
    expect(issued.get('audit-repository')).toEqual(
      expect.arrayContaining(['DNS:audit-repository', 'IP:127.0.0.1']), // by name, and by its own health check
    );
    // The published consumer port: the initiating gateway's certificate is valid for localhost too.
    expect(issued.get('gw-a')).toEqual(expect.arrayContaining(['DNS:localhost', 'IP:127.0.0.1']));
  });

  it('serves each community the seed data the seed service generates', () => {
    const seed = services.seed;
    const out = (seed.command ?? [])[(seed.command ?? []).indexOf('--out') + 1];
    expect(seed.command).toEqual(
      expect.arrayContaining(['services/reference-community/dist/seed/cli.js', '--demo']),
    );
    expect(mounts(seed).find((m) => m.source === 'seed')?.target).toBe(out);
    for (const [ref, label] of Object.entries(REFERENCES)) {
      const cmd = services[ref].command ?? [];
      expect(cmd.slice(0, 2)).toEqual(['node', 'services/reference-community/dist/main.js']);
      expect(cmd[cmd.indexOf('--seed') + 1]).toBe(`${out}/${label}`);
      expect(cmd[cmd.indexOf('--host') + 1]).toBe('0.0.0.0');
      expect(mounts(services[ref]).find((m) => m.source === 'seed')).toMatchObject({
        target: out,
        readOnly: true,
      });
    }
  });
});

describe('deploy/docker/config: the directories of the compose deployment', () => {
  it.each(Object.entries(GATEWAYS))(
    '%s: loads with loadDirectory and follows the demo conventions',
    (gw, label) => {
      const d = directoryOf(gw);
      const own = demo[label];
      expect(d.homeCommunityId).toBe(own.homeCommunityId);
      expect(d.local.repositories.map((r) => r.repositoryUniqueId)).toEqual([own.repositoryUniqueId]);
      expect(d.local.imagingDocumentSources.map((r) => r.repositoryUniqueId)).toEqual([
        own.idsRepositoryUniqueId,
      ]);
      // The demo's paths on the community's own reference community.
      const ref = `reference-community-${label.toLowerCase()}`;
      const local = [
        d.local.registry?.url,
        d.local.repositories[0]?.url,
        d.local.imagingDocumentSources[0]?.url,
      ];
      expect(local.map((u) => new URL(u as string).pathname)).toEqual(['/registry', '/repository', '/ids']);
      for (const u of local) {
        const url = new URL(u as string);
        expect(url.hostname).toBe(ref);
        expect(Number(url.port)).toBe(listenPort(ref));
        expect(sharesNetwork(gw, ref)).toBe(true);
      }
      // The peer is the other community, identified by the demo's certificate name.
      const peerLabel = label === 'A' ? 'B' : 'A';
      expect(d.communities.map((c) => c.homeCommunityId)).toEqual([demo[peerLabel].homeCommunityId]);
      const peerGw = Object.keys(GATEWAYS).find((g) => g !== gw) as string;
      const c = d.communities[0];
      expect(c.identity?.names).toEqual([certName(peerGw)]);
      for (const anchor of c.identity?.trustAnchors ?? []) {
        expect(anchor).toBe(services[gw].environment?.XCAI_TLS_CA);
      }
    },
  );

  it('lets A call B on the paths and port B serves, and B answer A asynchronously at A’s receiver', () => {
    const a = directoryOf('initiating-gateway-a');
    const b = directoryOf('responding-gateway-b');
    const rgEnv = services['responding-gateway-b'].environment ?? {};
    const eps = a.communities[0].endpoints;
    expect(Object.fromEntries(Object.entries(eps).map(([k, e]) => [k, e?.url]))).toEqual({
      iti38: `${rgEnv.XCAI_PUBLIC_URL}/iti38`,
      iti39: `${rgEnv.XCAI_PUBLIC_URL}/iti39`,
      rad75: `${rgEnv.XCAI_PUBLIC_URL}/rad75`,
    });
    expect(sharesNetwork('initiating-gateway-a', 'responding-gateway-b')).toBe(true);
    // B accepts A and allows exactly A's async receiver (<publicUrl>/async-response) as ReplyTo.
    expect(b.communities[0]).toMatchObject({ acceptRequests: true });
    expect(b.communities[0].replyTo).toEqual([
      `${services['initiating-gateway-a'].environment?.XCAI_PUBLIC_URL}/async-response`,
    ]);
  });
});
