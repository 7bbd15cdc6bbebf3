/**
 * Renders helm/xcai-gateway with a real helm when one is on PATH, else with the project's own
 * tools/helmlite (test/support/chart-renderer.ts), and asserts on the rendered objects. The suite is
 * skipped, with one line saying why, only when neither helm nor Go is available (CI installs Go).
 */
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import YAML from 'yaml';
import { loadDirectory, readDirectory } from '@xcai/shared';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import {
  findChartRenderer,
  K8S_VALIDATE,
  lintArgs,
  REPO_ROOT as repoRoot,
  templateArgs,
  type ChartRenderer,
} from '../support/chart-renderer';

const chartDir = path.join(repoRoot, 'helm', 'xcai-gateway');
const fullValuesFile = path.join(chartDir, 'examples', 'full-values.yaml');

const found = findChartRenderer();
if (!found.renderer) console.warn(`SKIPPING the helm chart tests: ${found.reason}`);
const suite = found.renderer ? describe : describe.skip;
const renderer = found.renderer as ChartRenderer;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: unknown;
  [k: string]: unknown;
}
type Values = Record<string, unknown>;

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xcai-helm-test-'));
afterAll(() => fs.rmSync(tmpDir, { recursive: true, force: true }));
let tmpCount = 0;
function valuesFile(values: unknown): string {
  const f = path.join(tmpDir, `values-${++tmpCount}.yaml`);
  fs.writeFileSync(f, YAML.stringify(values));
  return f;
}

/** Renders the chart; throws with the renderer's stderr on failure. */
function renderText(files: string[] = [], sets: string[] = [], chart = chartDir): string {
  const args = templateArgs(renderer, { chart, release: 'hie-a', namespace: 'xcai', files, sets });
  const r = spawnSync(renderer.bin, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${renderer.kind} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
function render(files: string[] = [], sets: string[] = []): K8sObject[] {
  return YAML.parseAllDocuments(renderText(files, sets))
    .map((d) => d.toJS() as K8sObject | null)
    .filter((d): d is K8sObject => d !== null);
}
/** Renders expecting failure; returns stderr. */
function renderFails(files: string[] = [], sets: string[] = []): string {
  const r = spawnSync(renderer.bin, templateArgs(renderer, { chart: chartDir, files, sets }), {
    encoding: 'utf8',
  });
  expect(r.status).not.toBe(0);
  return r.stderr;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
function mergeValues(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeValues(base[k], v) : v;
  return out;
}
const readYaml = (f: string) => YAML.parse(fs.readFileSync(f, 'utf8')) as Values;
const defaultValues = readYaml(path.join(chartDir, 'values.yaml'));
const fullValues = mergeValues(defaultValues, readYaml(fullValuesFile)) as Values;

const COMPONENTS = {
  initiatingGateway: 'initiating-gateway',
  respondingGateway: 'responding-gateway',
} as const;
const component = (o: K8sObject) => o.metadata.labels?.['app.kubernetes.io/component'];
const ofKind = (docs: K8sObject[], kind: string) => docs.filter((d) => d.kind === kind);
const workloads = (docs: K8sObject[]) =>
  docs.filter((d) => d.kind === 'Deployment' || d.kind === 'StatefulSet');
function workloadOf(docs: K8sObject[], comp: string): K8sObject {
  const w = workloads(docs).filter((d) => component(d) === comp);
  expect(w).toHaveLength(1);
  return w[0];
}
function podSpec(w: K8sObject): IPodSpec {
  return (w.spec as { template: { spec: IPodSpec } }).template.spec;
}
function podAnnotations(w: K8sObject): Record<string, string> {
  return (w.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata
    .annotations;
}
const env = (spec: IPodSpec) =>
  Object.fromEntries((spec.containers[0].env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

/* ---------- the expected NetworkPolicy egress, computed independently from the values ---------- */

interface EgressEntry {
  cidr?: string;
  except?: string[];
  namespaceSelector?: unknown;
  podSelector?: unknown;
  port?: number;
  components?: string[];
}
interface Endpoint {
  url: string;
  egress?: EgressEntry[];
}
interface Directory {
  local: { registry?: Endpoint; repositories: Endpoint[]; imagingDocumentSources: Endpoint[] };
  communities: Array<{
    homeCommunityId: string;
    endpoints: Partial<Record<'iti38' | 'iti39' | 'rad75', Endpoint>>;
    acceptRequests: boolean;
    replyTo: string[];
    egress?: EgressEntry[];
  }>;
  consumers: Array<{ replyTo: string[]; egress?: EgressEntry[] }>;
}

/** Canonical JSON (sorted keys) so that peers compare by value. */
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (isObj(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}
function peerOf(e: EgressEntry): INetworkPolicyPeer {
  if (e.cidr) return { ipBlock: e.except ? { cidr: e.cidr, except: e.except } : { cidr: e.cidr } };
  const p: Record<string, unknown> = {};
  if (e.namespaceSelector) p.namespaceSelector = e.namespaceSelector;
  if (e.podSelector) p.podSelector = e.podSelector;
  return p as INetworkPolicyPeer;
}
/** Port of a URL by the WHATWG parser (independent of the template's regexes). */
function urlPort(u: string): number {
  const url = new URL(u);
  if (url.port) return Number(url.port);
  const port = { 'https:': 443, 'http:': 80, 'redis:': 6379, 'rediss:': 6379 }[url.protocol];
  if (!port) throw new Error(`no default port for ${u}`);
  return port;
}
function expectedEgress(values: Values, comp: string): Set<string> {
  const out = new Set<string>();
  const add = (entries: EgressEntry[] | undefined, ports: number[], proto = 'TCP') => {
    for (const e of entries ?? []) {
      if (e.components && !e.components.includes(comp)) continue;
      for (const port of e.port ? [e.port] : ports) out.add(`${canon(peerOf(e))} ${port}/${proto}`);
    }
  };
  const dir = values.directory as Directory;
  for (const ep of [dir.local.registry, ...dir.local.repositories, ...dir.local.imagingDocumentSources])
    if (ep) add(ep.egress, [urlPort(ep.url)]);
  for (const c of dir.communities) {
    if (comp === 'initiating-gateway') {
      const eps = Object.values(c.endpoints).filter((e): e is Endpoint => !!e);
      if (eps.length)
        add(
          c.egress,
          eps.map((e) => urlPort(e.url)),
        );
    } else if (c.acceptRequests && c.replyTo.length) add(c.egress, c.replyTo.map(urlPort));
  }
  if (comp === 'initiating-gateway')
    for (const c of dir.consumers) if (c.replyTo.length) add(c.egress, c.replyTo.map(urlPort));
  const redis = values.redis as { url: string; egress: EgressEntry[] };
  add(redis.egress, [urlPort(redis.url)]);
  const audit = values.audit as { transport: string; port: number; egress: EgressEntry[] };
  if (audit.transport !== 'none') add(audit.egress, [audit.port], audit.transport === 'udp' ? 'UDP' : 'TCP');
  // The initiating gateway's replicas hand async responses over to each other on the SOAP port.
  if (comp === 'initiating-gateway') {
    const self = { podSelector: { matchLabels: selectorOf(comp) } } as EgressEntry;
    const soap = (values.initiatingGateway as { containerPorts: { soap: number } }).containerPorts.soap;
    add([self], [soap]);
  }
  const tracing = values.tracing as { otlpEndpoint: string; egress: EgressEntry[] };
  if (tracing.otlpEndpoint) add(tracing.egress, [urlPort(tracing.otlpEndpoint)]);
  const dns = (values.networkPolicy as { dns: { peers: EgressEntry[] } }).dns.peers;
  for (const p of dns) for (const proto of ['UDP', 'TCP']) out.add(`${canon(peerOf(p))} 53/${proto}`);
  return out;
}
/** The rendered egress as (peer, port/protocol) pairs; every rule must name peers and ports. */
function renderedEgress(np: INetworkPolicy): Set<string> {
  const out = new Set<string>();
  for (const rule of np.spec?.egress ?? []) {
    expect(rule.to?.length).toBeGreaterThan(0); // a rule without `to` would allow every destination
    expect(rule.ports?.length).toBeGreaterThan(0); // ... and one without ports every port
    for (const peer of rule.to ?? [])
      for (const p of rule.ports ?? []) out.add(`${canon(peer)} ${String(p.port)}/${p.protocol ?? 'TCP'}`);
  }
  return out;
}
const sorted = (s: Set<string>) => [...s].sort();
const selectorOf = (comp: string) => ({
  'app.kubernetes.io/name': 'xcai-gateway',
  'app.kubernetes.io/instance': 'hie-a',
  'app.kubernetes.io/component': comp,
});

/* ---------------------------------------------------------------------------------------------- */

suite(`helm chart helm/xcai-gateway (rendered with ${renderer?.kind})`, () => {
  let defaults: K8sObject[];
  let full: K8sObject[];
  beforeAll(() => {
    defaults = render();
    full = render([fullValuesFile]);
  });

  it('lints (strict) with the default values and with examples/full-values.yaml', () => {
    for (const files of [[], [fullValuesFile]]) {
      const r = spawnSync(renderer.bin, lintArgs(renderer, { chart: chartDir, files }), { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
  });

  it('passes the Kubernetes schema check (tools/k8s-validate.js) for both renders', () => {
    for (const files of [[], [fullValuesFile]]) {
      const f = path.join(tmpDir, `rendered-${++tmpCount}.yaml`);
      fs.writeFileSync(f, renderText(files));
      const r = spawnSync(process.execPath, [K8S_VALIDATE, f], { cwd: repoRoot, encoding: 'utf8' });
      expect(r.stdout).toMatch(/ 0 failed, 0 skipped/);
      expect(r.status).toBe(0);
    }
  });

  it('deploys both gateways by default, each with its Service, ServiceAccount, PDB and NetworkPolicy', () => {
    for (const comp of Object.values(COMPONENTS)) {
      expect(workloadOf(defaults, comp).kind).toBe('Deployment');
      for (const kind of ['Service', 'ServiceAccount', 'PodDisruptionBudget', 'NetworkPolicy'])
        expect(ofKind(defaults, kind).filter((d) => component(d) === comp)).toHaveLength(1);
    }
    expect(ofKind(defaults, 'ConfigMap')).toHaveLength(1);
    expect(ofKind(defaults, 'HorizontalPodAutoscaler')).toHaveLength(0);
    // Nothing the chart does not own: no Secrets (keys are never generated), no Ingress, no RBAC.
    expect(new Set(defaults.map((d) => d.kind))).toEqual(
      new Set([
        'ConfigMap',
        'Deployment',
        'Service',
        'ServiceAccount',
        'PodDisruptionBudget',
        'NetworkPolicy',
      ]),
    );
  });

  it.each(Object.entries(COMPONENTS))('renders nothing for %s when it is disabled', (key, comp) => {
    const docs = render([], [`${key}.enabled=false`]);
    expect(docs.filter((d) => component(d) === comp)).toEqual([]);
    const other = Object.values(COMPONENTS).find((c) => c !== comp) as string;
    expect(workloadOf(docs, other).kind).toBe('Deployment');
    expect(ofKind(docs, 'ConfigMap')).toHaveLength(1);
  });

  it('renders nothing when both gateways are disabled', () => {
    expect(render([], ['initiatingGateway.enabled=false', 'respondingGateway.enabled=false'])).toEqual([]);
  });

  it('runs every pod non-root, read-only, without privilege escalation, all capabilities dropped', () => {
    for (const docs of [defaults, full]) {
      const ws = workloads(docs);
      expect(ws).toHaveLength(2);
      for (const w of ws) {
        const spec = podSpec(w);
        expect(spec.securityContext).toMatchObject({
          runAsNonRoot: true,
          runAsUser: 10001,
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(spec.automountServiceAccountToken).toBe(false);
        expect(spec.hostNetwork ?? false).toBe(false);
        expect(spec.containers).toHaveLength(1);
        expect(spec.initContainers ?? []).toEqual([]);
        for (const c of spec.containers) {
          expect(c.securityContext).toMatchObject({
            runAsNonRoot: true,
            runAsUser: 10001,
            privileged: false,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          });
          expect(c.securityContext?.capabilities?.add).toBeUndefined();
          // Only the SOAP and management ports (no debug / SSH ports, R31, R59).
          expect((c.ports ?? []).map((p) => [p.name, p.containerPort])).toEqual([
            ['soap', 8443],
            ['mgmt', 9090],
          ]);
        }
      }
      for (const sa of ofKind(docs, 'ServiceAccount')) expect(sa.automountServiceAccountToken).toBe(false);
    }
  });

  it('gives the only writable paths, /tmp and the audit spool, their own volumes', () => {
    for (const w of workloads(defaults)) {
      const spec = podSpec(w);
      const mounts = spec.containers[0].volumeMounts ?? [];
      const writable = mounts.filter((m) => !m.readOnly).map((m) => m.mountPath);
      expect(writable.sort()).toEqual(['/tmp', '/var/spool/xcai-audit']);
      const vol = (name: string) => spec.volumes?.find((v) => v.name === name);
      expect(vol('tmp')?.emptyDir).toBeDefined();
      expect(vol('audit-spool')?.emptyDir).toEqual({ sizeLimit: '512Mi' });
    }
  });

  it('keeps the audit spool on a per-pod PVC (StatefulSet) when persistence is enabled', () => {
    const rg = workloadOf(full, 'responding-gateway') as unknown as IStatefulSet;
    expect(rg.kind).toBe('StatefulSet');
    expect(rg.spec?.volumeClaimTemplates?.map((t) => t.metadata?.name)).toEqual(['audit-spool']);
    expect(rg.spec?.volumeClaimTemplates?.[0].spec).toMatchObject({
      storageClassName: 'encrypted-ssd',
      resources: { requests: { storage: '2Gi' } },
    });
    expect(rg.spec?.template.spec?.volumes?.find((v) => v.name === 'audit-spool')).toBeUndefined();
    expect(workloadOf(full, 'initiating-gateway').kind).toBe('Deployment');
  });

  it('sets the service contract environment: directory, ports, TLS paths, Redis, hand-over, audit, tracing', () => {
    const ig = podSpec(workloadOf(full, 'initiating-gateway'));
    const rg = podSpec(workloadOf(full, 'responding-gateway'));
    const audit = {
      XCAI_AUDIT_TRANSPORT: 'tls',
      XCAI_AUDIT_HOST: 'arr.hie-a.example',
      XCAI_AUDIT_PORT: '6514',
      XCAI_AUDIT_TLS_CERT: '/etc/xcai/audit-tls/tls.crt',
      XCAI_AUDIT_TLS_KEY: '/etc/xcai/audit-tls/tls.key',
      XCAI_AUDIT_TLS_CA: '/etc/xcai/audit-tls/ca.crt',
      XCAI_AUDIT_TLS_SERVERNAME: 'arr.hie-a.example',
      XCAI_AUDIT_TLS_CIPHERS: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384',
      XCAI_AUDIT_SPOOL_DIR: '/var/spool/xcai-audit',
      XCAI_AUDIT_MAX_SPOOL_BYTES: '805306368',
      XCAI_AUDIT_RETAIN_BYTES: '134217728',
      XCAI_AUDIT_RETAIN_DAYS: '1830',
      XCAI_AUDIT_RATE: '100',
      XCAI_AUDIT_ENTERPRISE_SITE_ID: '2.999.1',
      XCAI_AUDIT_APP_NAME: 'hie-a-xcai',
    };
    const redis = {
      REDIS_PASSWORD: { secretKeyRef: { name: 'xcai-redis', key: 'redis-password' } },
      REDIS_URL: 'rediss://redis.hie-a.example:6380/0',
      REDIS_TLS_CA_FILE: '/etc/xcai/redis-ca/ca.crt',
    };
    expect(env(ig)).toEqual({
      XCAI_DIRECTORY: '/etc/xcai/directory.yaml',
      XCAI_HOST: '0.0.0.0',
      XCAI_PORT: '8443',
      XCAI_MGMT_PORT: '9090',
      XCAI_PUBLIC_URL: 'https://ig.hie-a.example:8443',
      XCAI_TLS_CERT: '/etc/xcai/tls/tls.crt',
      XCAI_TLS_KEY: '/etc/xcai/tls/tls.key',
      XCAI_TLS_CA: '/etc/xcai/tls/ca.crt',
      XCAI_TLS_CLIENT_AUTH: 'required',
      XCAI_TLS_MIN_VERSION: 'TLSv1.2',
      XCAI_MAX_REQUEST_BYTES: '8MiB',
      ...redis,
      XCAI_REDIS_PREFIX: 'hie-a:hie-a-initiating-gateway:',
      POD_IP: { fieldRef: { fieldPath: 'status.podIP' } },
      XCAI_INTERNAL_URL: 'https://$(POD_IP):8443',
      XCAI_HANDOVER_SECRET: { secretKeyRef: { name: 'xcai-handover', key: 'handover-secret' } },
      XCAI_CIRCUIT_FAILURES: '3',
      XCAI_CIRCUIT_COOLDOWN_MS: '60000',
      ...audit,
      XCAI_AUDIT_SOURCE_ID: 'hie-a-initiating-gateway',
      XCAI_OTLP_ENDPOINT: 'http://otel-collector.observability.svc.cluster.local:4318',
      XCAI_LOG_LEVEL: 'info',
      NODE_OPTIONS: '--enable-source-maps --max-old-space-size=384',
    });
    // Kubernetes expands $(VAR) only from entries declared before: the password and the pod IP come first.
    const names = (ig.containers[0].env ?? []).map((e) => e.name);
    expect(names.indexOf('REDIS_PASSWORD')).toBeLessThan(names.indexOf('REDIS_URL'));
    expect(names.indexOf('POD_IP')).toBeLessThan(names.indexOf('XCAI_INTERNAL_URL'));
    // The responding gateway never receives async responses: no hand-over settings.
    expect(env(rg)).toMatchObject({
      XCAI_TLS_CLIENT_AUTH: 'required',
      XCAI_TLS_MIN_VERSION: 'TLSv1.3',
      XCAI_PUBLIC_URL: 'https://rg.hie-a.example:8443',
      XCAI_REDIS_PREFIX: 'hie-a:hie-a-responding-gateway:',
      XCAI_AUDIT_SOURCE_ID: 'hie-a-responding-gateway',
      ...redis,
      ...audit,
    });
    for (const k of ['POD_IP', 'XCAI_INTERNAL_URL', 'XCAI_HANDOVER_SECRET'])
      expect(env(rg)).not.toHaveProperty(k);
    // Defaults: optional client certificates for consumers; no password, no tracing; the gateway's own
    // certificate for the ARR; hand-over keyed from the TLS key.
    const igDefault = env(podSpec(workloadOf(defaults, 'initiating-gateway')));
    expect(igDefault).toMatchObject({
      XCAI_TLS_CLIENT_AUTH: 'optional',
      XCAI_PUBLIC_URL: 'https://hie-a-xcai-gateway-initiating-gateway.xcai.svc:8443',
      REDIS_URL: 'redis://redis:6379/0',
      XCAI_REDIS_PREFIX: 'xcai:xcai:hie-a-xcai-gateway-initiating-gateway:',
      XCAI_INTERNAL_URL: 'https://$(POD_IP):8443',
      XCAI_MAX_REQUEST_BYTES: '4MiB',
      XCAI_CIRCUIT_FAILURES: '5',
      XCAI_CIRCUIT_COOLDOWN_MS: '30000',
      XCAI_AUDIT_TLS_CERT: '/etc/xcai/tls/tls.crt',
      XCAI_AUDIT_TLS_KEY: '/etc/xcai/tls/tls.key',
      XCAI_AUDIT_TLS_CA: '/etc/xcai/tls/ca.crt',
      XCAI_AUDIT_RETAIN_BYTES: '134217728',
    });
    for (const k of [
      'XCAI_TLS_CIPHERS',
      'REDIS_PASSWORD',
      'NODE_EXTRA_CA_CERTS',
      'XCAI_HANDOVER_SECRET',
      'XCAI_OTLP_ENDPOINT',
      'XCAI_AUDIT_SOURCE_ID',
      'XCAI_AUDIT_ENTERPRISE_SITE_ID',
      'XCAI_AUDIT_APP_NAME',
      'XCAI_AUDIT_TLS_SERVERNAME',
    ])
      expect(igDefault).not.toHaveProperty(k);
    expect(env(podSpec(workloadOf(defaults, 'responding-gateway')))).toMatchObject({
      XCAI_TLS_CLIENT_AUTH: 'required',
    });
  });

  it('sets only environment variables the services read (or that Kubernetes expands into them)', () => {
    const known = new Set<string>();
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts'))
          for (const m of fs.readFileSync(p, 'utf8').matchAll(/\b((?:XCAI|REDIS|OTEL)_[A-Z0-9_]+)\b/g))
            known.add(m[1] as string);
      }
    };
    for (const d of ['shared/src', 'services/initiating-gateway/src', 'services/responding-gateway/src'])
      walk(path.join(repoRoot, d));
    // Read by Node itself, or only expanded into other values ($(POD_IP)).
    const notServiceSettings = ['NODE_OPTIONS', 'POD_IP'];
    for (const docs of [defaults, full])
      for (const w of workloads(docs))
        for (const name of Object.keys(env(podSpec(w))))
          expect({ name, read: known.has(name) || notServiceSettings.includes(name) }).toEqual({
            name,
            read: true,
          });
  });

  it('maps an external Redis (single URL, Sentinel or Cluster; password and CA from Secrets) to the REDIS_* settings', () => {
    const redisEnv = (sets: string[]) => {
      const e = env(podSpec(workloadOf(render([], sets), 'initiating-gateway')));
      return Object.fromEntries(Object.entries(e).filter(([k]) => k.startsWith('REDIS_')));
    };
    const password = { REDIS_PASSWORD: { secretKeyRef: { name: 'r', key: 'redis-password' } } };
    expect(redisEnv([])).toEqual({ REDIS_URL: 'redis://redis:6379/0' });
    // The URL never carries the password: the gateway reads REDIS_PASSWORD itself.
    expect(redisEnv(['redis.existingSecret=r', 'redis.url=rediss://gw@redis.x:6380/2'])).toEqual({
      ...password,
      REDIS_URL: 'rediss://gw@redis.x:6380/2',
    });
    expect(
      redisEnv([
        'redis.sentinel.hosts={redis-node-0.redis-headless:26379,redis-node-1.redis-headless:26379}',
        'redis.sentinel.masterName=mymaster',
        'redis.sentinel.existingSecret=s',
        'redis.existingSecret=r',
        'redis.tls=true',
        'redis.username=xcai',
        'redis.caSecret=ca',
      ]),
    ).toEqual({
      ...password,
      REDIS_SENTINELS: 'redis-node-0.redis-headless:26379,redis-node-1.redis-headless:26379',
      REDIS_SENTINEL_NAME: 'mymaster',
      REDIS_SENTINEL_PASSWORD: { secretKeyRef: { name: 's', key: 'sentinel-password' } },
      REDIS_TLS: 'true',
      REDIS_USERNAME: 'xcai',
      REDIS_TLS_CA_FILE: '/etc/xcai/redis-ca/ca.crt',
    });
    expect(redisEnv(['redis.cluster.nodes={rc-0.rc-headless:6379,rc-1.rc-headless:6379}'])).toEqual({
      REDIS_CLUSTER_NODES: 'rc-0.rc-headless:6379,rc-1.rc-headless:6379',
    });
    // What the gateway would refuse at startup is refused at render time, with the reason.
    expect(renderFails([], ['redis.sentinel.hosts={s:26379}', 'redis.cluster.nodes={c:6379}'])).toMatch(
      /not both/,
    );
    expect(renderFails([], ['redis.caSecret=ca'])).toMatch(/never falls back to plaintext/);
    expect(renderFails([], ['redis.tls=true'])).toMatch(/rediss:\/\//);
    expect(renderFails([], ['redis.sentinel.hosts={no-port}'])).toMatch(/sentinel|pattern|hosts/i);
    const prefixes = workloads(render([valuesFile({ redis: { keyPrefix: 'site1:' } })])).map(
      (w) => env(podSpec(w)).XCAI_REDIS_PREFIX,
    );
    expect(prefixes).toEqual([
      'site1:hie-a-xcai-gateway-initiating-gateway:',
      'site1:hie-a-xcai-gateway-responding-gateway:',
    ]);
  });

  it('mounts the optional Secrets (audit TLS, Redis CA, XUA IdP certificates) read-only, as directories', () => {
    const spec = podSpec(workloadOf(full, 'initiating-gateway'));
    const vol = (name: string) => spec.volumes?.find((v) => v.name === name);
    expect(vol('audit-tls')?.projected?.sources).toEqual([
      {
        secret: {
          name: 'arr-client-tls',
          items: [
            { key: 'tls.crt', path: 'tls.crt' },
            { key: 'tls.key', path: 'tls.key' },
          ],
        },
      },
      { secret: { name: 'arr-trust', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
    ]);
    expect(vol('redis-ca')?.secret).toMatchObject({
      secretName: 'xcai-redis-ca',
      items: [{ key: 'ca.crt', path: 'ca.crt' }],
    });
    expect(vol('xua-idp-0')?.secret?.secretName).toBe('hie-idp-signing');
    const mounts = Object.fromEntries((spec.containers[0].volumeMounts ?? []).map((m) => [m.name, m]));
    expect(mounts['audit-tls']).toEqual({
      name: 'audit-tls',
      mountPath: '/etc/xcai/audit-tls',
      readOnly: true,
    });
    expect(mounts['redis-ca']).toEqual({ name: 'redis-ca', mountPath: '/etc/xcai/redis-ca', readOnly: true });
    expect(mounts['xua-idp-0']).toEqual({
      name: 'xua-idp-0',
      mountPath: '/etc/xcai/xua/idp',
      readOnly: true,
    });
    // Only the CA from a Secret: the gateway's own certificate stays the client certificate.
    const caOnly = render([], ['audit.tls.caSecret=arr-trust']);
    const e = env(podSpec(workloadOf(caOnly, 'responding-gateway')));
    expect([e.XCAI_AUDIT_TLS_CERT, e.XCAI_AUDIT_TLS_CA]).toEqual([
      '/etc/xcai/tls/tls.crt',
      '/etc/xcai/audit-tls/ca.crt',
    ]);
    // Nothing of it by default.
    const dflt = podSpec(workloadOf(defaults, 'initiating-gateway')).volumes?.map((v) => v.name);
    expect(dflt).toEqual(['directory', 'tls', 'tmp', 'audit-spool']);
  });

  it('audits locally only with audit.transport none (no ARR host, no audit egress), over UDP with udp', () => {
    const none = render([fullValuesFile], ['audit.transport=none']);
    const e = env(podSpec(workloadOf(none, 'initiating-gateway')));
    expect(e.XCAI_AUDIT_TRANSPORT).toBe('none');
    for (const k of ['XCAI_AUDIT_HOST', 'XCAI_AUDIT_PORT', 'XCAI_AUDIT_TLS_CERT'])
      expect(e).not.toHaveProperty(k);
    expect(e.XCAI_AUDIT_SPOOL_DIR).toBe('/var/spool/xcai-audit');
    const np = ofKind(none, 'NetworkPolicy') as unknown as INetworkPolicy[];
    expect(JSON.stringify(np)).not.toContain('10.30.0.5/32');
    expect(podSpec(workloadOf(none, 'initiating-gateway')).volumes?.some((v) => v.name === 'audit-tls')).toBe(
      false,
    );
    expect(renderFails([], ['audit.transport=off'])).toMatch(
      /audit\.transport must be tls, relp, udp or none/,
    );
  });

  it('refuses an audit spool volume too small for maxSpoolBytes + retainBytes (eviction)', () => {
    expect(renderFails([], ['initiatingGateway.auditSpool.sizeLimit=256Mi'])).toMatch(
      /initiatingGateway\.auditSpool: the spool volume \(256Mi\) is smaller/,
    );
    expect(() => render([], ['initiatingGateway.auditSpool.sizeLimit=0.5Gi'])).not.toThrow();
    expect(
      renderFails(
        [fullValuesFile],
        ['respondingGateway.auditSpool.persistence.size=800M', 'respondingGateway.auditSpool.sizeLimit=2Gi'],
      ),
    ).toMatch(/respondingGateway\.auditSpool: the spool volume \(800M\)/);
    expect(() => render([], ['audit.maxSpoolBytes=100000000', 'audit.retainBytes=300000000'])).not.toThrow();
    expect(renderFails([], ['audit.retainBytes=400000000'])).toMatch(/auditSpool/);
  });

  it('hands async responses over between initiating-gateway replicas: pod address, egress and ingress to its own pods', () => {
    const np = (docs: K8sObject[], comp: string) =>
      (ofKind(docs, 'NetworkPolicy') as unknown as INetworkPolicy[]).find(
        (n) => n.metadata?.labels?.['app.kubernetes.io/component'] === comp,
      ) as INetworkPolicy;
    const self = canon({ podSelector: { matchLabels: selectorOf('initiating-gateway') } });
    expect(renderedEgress(np(full, 'initiating-gateway'))).toContain(`${self} 8443/TCP`);
    const rgSelf = canon({ podSelector: { matchLabels: selectorOf('responding-gateway') } });
    expect([...renderedEgress(np(full, 'responding-gateway'))].some((x) => x.startsWith(rgSelf))).toBe(false);
    // A restricted SOAP ingress still admits the other replicas; an open one needs no rule.
    expect(np(full, 'initiating-gateway').spec?.ingress?.[0].from).toContainEqual({
      podSelector: { matchLabels: selectorOf('initiating-gateway') },
    });
    expect(np(defaults, 'initiating-gateway').spec?.ingress?.[0].from).toBeUndefined();
    // An explicit internal URL (e.g. IPv6) is used as given, and must be https.
    const v6 = render([], ['initiatingGateway.internalUrl=https://[$(POD_IP)]:8443']);
    expect(env(podSpec(workloadOf(v6, 'initiating-gateway'))).XCAI_INTERNAL_URL).toBe(
      'https://[$(POD_IP)]:8443',
    );
    expect(renderFails([], ['initiatingGateway.internalUrl=http://$(POD_IP):8080'])).toMatch(
      /internalUrl must be https/,
    );
  });

  it('validates XUA: IdP certificates only from mounted Secrets, and xua: required only with directory.xua', () => {
    const dir = structuredClone(fullValues.directory) as Directory & { xua: { idpCertificates: string[] } };
    dir.xua.idpCertificates = ['/etc/xcai/xua/elsewhere/idp.crt'];
    expect(renderFails([fullValuesFile, valuesFile({ directory: dir })])).toMatch(
      /idp\.crt is not under a mounted IdP Secret/,
    );
    const noXua = structuredClone(fullValues.directory) as Record<string, unknown>;
    delete noXua.xua;
    // values files merge maps: null removes the key from the merged values, as in Helm.
    expect(renderFails([fullValuesFile, valuesFile({ directory: { ...noXua, xua: null } })])).toMatch(
      /directory\.communities\[0\]\.xua is required but directory\.xua/,
    );
  });

  it('renders a directory file the services load (loadDirectory), equal to the values without egress', () => {
    for (const docs of [defaults, full]) {
      const cm = ofKind(docs, 'ConfigMap')[0] as unknown as IConfigMap;
      const f = path.join(tmpDir, `directory-${++tmpCount}.yaml`);
      fs.writeFileSync(f, cm.data?.['directory.yaml'] ?? '');
      expect(() => loadDirectory(f)).not.toThrow();
    }
    const d = loadDirectory(
      (() => {
        const f = path.join(tmpDir, `directory-${++tmpCount}.yaml`);
        fs.writeFileSync(
          f,
          (ofKind(full, 'ConfigMap')[0] as unknown as IConfigMap).data?.['directory.yaml'] ?? '',
        );
        return f;
      })(),
    );
    expect(d.xua).toMatchObject({ idpCertificates: ['/etc/xcai/xua/idp/idp.crt'], clockSkewMs: 60000 });
    expect(d.communities[0].inboundLimits).toEqual({
      maxConcurrentRequests: 64,
      requestsPerSecond: 100,
      burst: 200,
    });
    expect(d.inboundLimits?.maxRequestBytes).toBe(8 * 1024 * 1024);
  });

  it('probes /healthz (startup, liveness) and /readyz (readiness) on the management port', () => {
    for (const w of workloads(full)) {
      const c = podSpec(w).containers[0];
      expect(c.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'mgmt' });
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'mgmt' });
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'mgmt' });
    }
  });

  it('pins images by digest when given, and can refuse to render without one (R26)', () => {
    expect(podSpec(workloadOf(full, 'initiating-gateway')).containers[0].image).toBe(
      'registry.hie-a.example:5000/xcai/initiating-gateway@sha256:' + '1'.repeat(64),
    );
    expect(podSpec(workloadOf(defaults, 'responding-gateway')).containers[0].image).toBe(
      'registry.invalid/xcai/responding-gateway:0.1.0',
    );
    expect(renderFails([], ['global.requireImageDigest=true'])).toMatch(/image\.digest is not set/);
    expect(renderFails([], ['respondingGateway.image.digest=sha256:abc'])).toMatch(/sha256:<64 hex>/);
  });

  it('mounts TLS material only from the named Secrets (and trust anchors under /etc/xcai/trust)', () => {
    const spec = podSpec(workloadOf(full, 'initiating-gateway'));
    const tls = spec.volumes?.find((v) => v.name === 'tls');
    expect(tls?.projected?.sources).toEqual([
      {
        secret: {
          name: 'ig-tls',
          items: [
            { key: 'tls.crt', path: 'tls.crt' },
            { key: 'tls.key', path: 'tls.key' },
          ],
        },
      },
      { secret: { name: 'community-trust-bundle', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
    ]);
    const mounts = Object.fromEntries((spec.containers[0].volumeMounts ?? []).map((m) => [m.name, m]));
    expect(mounts.tls).toMatchObject({ mountPath: '/etc/xcai/tls', readOnly: true });
    expect(mounts.tls.subPath).toBeUndefined(); // a rotated Secret must reach the pod
    const trust = (spec.volumes ?? []).filter((v) => v.name.startsWith('trust-'));
    expect(trust.map((v) => v.secret?.secretName)).toEqual([
      'community-trust-bundle',
      'community-b-trust',
      'community-c-trust',
    ]);
    expect(trust.map((v) => mounts[v.name].mountPath)).toEqual([
      '/etc/xcai/trust/community',
      '/etc/xcai/trust/community-b',
      '/etc/xcai/trust/community-c',
    ]);
    const rgTls = podSpec(workloadOf(full, 'responding-gateway')).volumes?.find((v) => v.name === 'tls');
    expect(rgTls?.projected?.sources?.map((s) => s.secret?.name)).toEqual(['rg-tls', 'rg-tls']);
    const dflt = podSpec(workloadOf(defaults, 'initiating-gateway')).volumes?.find((v) => v.name === 'tls');
    expect(dflt?.projected?.sources?.map((s) => s.secret?.name)).toEqual([
      'hie-a-xcai-gateway-initiating-gateway-tls',
      'hie-a-xcai-gateway-initiating-gateway-tls',
    ]);
    // The chart never renders key material.
    for (const docs of [defaults, full]) expect(ofKind(docs, 'Secret')).toEqual([]);
    expect(renderText([fullValuesFile])).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY|BEGIN CERTIFICATE/);
  });

  it('renders consent, break-glass, document classes and revocation into the directory, their peers into egress', () => {
    const dir = structuredClone(fullValues.directory) as unknown as Record<string, unknown>;
    const responder = { cidr: '192.0.2.50/32' };
    const endpoint = (url: string) => ({
      url,
      timeoutMs: 2000,
      maxConcurrent: 4,
      maxResponseBytes: 65536,
      egress: [responder],
    });
    dir.consent = {
      source: 'service',
      service: endpoint('http://consent.example:8081/c'),
      default: 'deny',
      permit: ['1.2.3.1'],
    };
    dir.breakGlass = { webhook: endpoint('https://alerts.example:8444/hook'), until: '2030-01-01T00:00:00Z' };
    dir.revocation = [
      {
        trustAnchor: '/etc/xcai/trust/community-b/ca.crt',
        crls: ['/etc/xcai/trust/community-b/ca.crl'],
        ocsp: { url: 'http://ocsp.example:8082/', egress: [responder] },
      },
    ];
    const communities = dir.communities as Record<string, unknown>[];
    communities[0] = {
      ...communities[0],
      consent: { default: 'permit' },
      documents: { classCodes: ['IMAGES'] },
    };
    const docs = render([fullValuesFile, valuesFile({ directory: dir })]);
    const rendered = YAML.parse(
      (ofKind(docs, 'ConfigMap')[0] as unknown as IConfigMap).data?.['directory.yaml'] ?? '',
    );
    expect(rendered.consent.service).toEqual({
      url: 'http://consent.example:8081/c',
      timeoutMs: 2000,
      maxConcurrent: 4,
      maxResponseBytes: 65536,
    });
    expect(rendered.breakGlass.webhook.egress).toBeUndefined();
    expect(rendered.revocation[0].ocsp).toEqual({ url: 'http://ocsp.example:8082/' });
    expect(rendered.communities[0].documents).toEqual({ classCodes: ['IMAGES'] });
    const d = readDirectory(rendered, 'chart');
    expect(d.consent?.source).toBe('service');
    expect(d.communities[0].consent?.default).toBe('permit');
    const egress = (comp: string) =>
      renderedEgress(
        (ofKind(docs, 'NetworkPolicy') as unknown as INetworkPolicy[]).find(
          (n) => n.metadata?.labels?.['app.kubernetes.io/component'] === comp,
        ) as INetworkPolicy,
      );
    const peer = canon({ ipBlock: { cidr: '192.0.2.50/32' } });
    for (const port of ['8081', '8444', '8082'])
      expect(egress('responding-gateway')).toContain(`${peer} ${port}/TCP`);
    expect(egress('initiating-gateway')).toContain(`${peer} 8082/TCP`); // OCSP: both sides
    expect(egress('initiating-gateway')).not.toContain(`${peer} 8081/TCP`); // consent: responding side only
  });

  it('puts the directory (without the chart-only egress keys) in the ConfigMap both gateways mount', () => {
    const cms = ofKind(full, 'ConfigMap') as unknown as IConfigMap[];
    expect(cms).toHaveLength(1);
    const rendered = YAML.parse(cms[0].data?.['directory.yaml'] ?? '') as unknown;
    const strip = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(strip)
        : isObj(v)
          ? Object.fromEntries(
              Object.entries(v)
                .filter(([k]) => k !== 'egress')
                .map(([k, x]) => [k, strip(x)]),
            )
          : v;
    expect(rendered).toEqual(strip(fullValues.directory));
    expect(JSON.stringify(rendered)).not.toContain('"egress"');
    for (const w of workloads(full)) {
      const spec = podSpec(w);
      expect(spec.volumes?.find((v) => v.name === 'directory')?.configMap?.name).toBe(cms[0].metadata?.name);
      expect(spec.containers[0].volumeMounts).toContainEqual({
        name: 'directory',
        mountPath: '/etc/xcai/directory.yaml',
        subPath: 'directory.yaml',
        readOnly: true,
      });
    }
  });

  it('rolls the pods when the directory changes (checksum annotation), but not for egress-only changes', () => {
    const sum = (docs: K8sObject[]) => {
      const sums = workloads(docs).map((w) => podAnnotations(w)['checksum/directory']);
      expect(new Set(sums).size).toBe(1);
      const cm = ofKind(docs, 'ConfigMap')[0] as unknown as IConfigMap;
      const data = cm.data?.['directory.yaml'] ?? '';
      // The annotation is the hash of the directory file as rendered (the ConfigMap's data).
      expect(sums[0]).toBe(createHash('sha256').update(data.replace(/\n$/, '')).digest('hex'));
      expect(cm.metadata?.annotations?.['xcai.io/directory-sha256']).toBe(sums[0]);
      return sums[0];
    };
    const base = sum(full);
    expect(sum(render([fullValuesFile], ['directory.deadlineMs=99999']))).not.toBe(base);
    const dir = structuredClone(fullValues.directory) as Directory;
    dir.communities[0].replyTo = ['https://ig2.community-b.example:9443/async-response'];
    expect(sum(render([fullValuesFile, valuesFile({ directory: dir })]))).not.toBe(base);
    const egressOnly = structuredClone(fullValues.directory) as Directory;
    egressOnly.communities[0].egress = [{ cidr: '198.51.100.99/32' }];
    const docs = render([fullValuesFile, valuesFile({ directory: egressOnly })]);
    expect(sum(docs)).toBe(base);
    expect(JSON.stringify(ofKind(docs, 'NetworkPolicy'))).toContain('198.51.100.99/32');
  });

  it.each([
    ['default', () => defaultValues, () => [] as string[]],
    ['full', () => fullValues, () => [fullValuesFile]],
  ])(
    'limits egress to exactly the configured peers, Redis, audit, tracing and DNS (%s values)',
    (_n, values, files) => {
      const docs = render(files());
      const nps = ofKind(docs, 'NetworkPolicy') as unknown as INetworkPolicy[];
      expect(nps).toHaveLength(2);
      for (const np of nps) {
        const comp = np.metadata?.labels?.['app.kubernetes.io/component'] as string;
        expect(np.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
        expect(np.spec?.podSelector.matchLabels?.['app.kubernetes.io/component']).toBe(comp);
        expect(sorted(renderedEgress(np))).toEqual(sorted(expectedEgress(values(), comp)));
      }
    },
  );

  it('derives egress ports from the URLs (per component) unless an entry names one', () => {
    const np = (comp: string) =>
      (ofKind(full, 'NetworkPolicy') as unknown as INetworkPolicy[]).find(
        (n) => n.metadata?.labels?.['app.kubernetes.io/component'] === comp,
      ) as INetworkPolicy;
    const ig = renderedEgress(np('initiating-gateway'));
    const rg = renderedEgress(np('responding-gateway'));
    const b = canon({ ipBlock: { cidr: '198.51.100.10/32' } });
    expect(ig).toContain(`${b} 8443/TCP`); // community B's RG endpoints
    expect(ig).not.toContain(`${b} 9443/TCP`);
    expect(rg).toContain(`${b} 9443/TCP`); // community B's async receiver (replyTo)
    expect(rg).not.toContain(`${b} 8443/TCP`);
    const c = canon({ ipBlock: { cidr: '203.0.113.0/29' } });
    expect(ig).toContain(`${c} 443/TCP`);
    expect(ig).toContain(`${c} 8443/TCP`);
    expect([...rg].some((x) => x.startsWith(c))).toBe(false); // components: [initiating-gateway]
    expect(rg).toContain(`${canon({ ipBlock: { cidr: '203.0.113.8/32' } })} 7443/TCP`);
    // UDP audit transport → UDP rule
    const udp = render([fullValuesFile], ['audit.transport=udp', 'audit.port=514']);
    const udpNp = ofKind(udp, 'NetworkPolicy')[0] as unknown as INetworkPolicy;
    expect(renderedEgress(udpNp)).toContain(`${canon({ ipBlock: { cidr: '10.30.0.5/32' } })} 514/UDP`);
  });

  it('allows ingress only to the SOAP and management ports, from the configured sources', () => {
    for (const docs of [defaults, full]) {
      for (const np of ofKind(docs, 'NetworkPolicy') as unknown as INetworkPolicy[]) {
        const ports = (np.spec?.ingress ?? []).flatMap((r) => (r.ports ?? []).map((p) => p.port));
        expect(ports).toEqual([8443, 9090]);
      }
    }
    const rg = (ofKind(full, 'NetworkPolicy') as unknown as INetworkPolicy[]).find(
      (n) => n.metadata?.labels?.['app.kubernetes.io/component'] === 'responding-gateway',
    );
    expect(rg?.spec?.ingress?.[0].from).toEqual([
      { ipBlock: { cidr: '198.51.100.10/32' } },
      { ipBlock: { cidr: '203.0.113.0/28' } },
    ]);
    expect(render([], ['networkPolicy.enabled=false']).filter((d) => d.kind === 'NetworkPolicy')).toEqual([]);
  });

  it('refuses a directory entry without egress, or whose port cannot be derived, while NetworkPolicy is on', () => {
    const noEgress = structuredClone(fullValues.directory) as Directory;
    delete noEgress.communities[1].egress;
    expect(renderFails([fullValuesFile, valuesFile({ directory: noEgress })])).toMatch(
      /directory\.communities\[1\] \(urn:oid:2\.999\.3\) has no egress entry for initiating-gateway/,
    );
    const wildcard = structuredClone(fullValues.directory) as Directory;
    wildcard.consumers[0].replyTo = ['http://127.0.0.1:*'];
    expect(renderFails([fullValuesFile, valuesFile({ directory: wildcard })])).toMatch(/cannot be derived/);
    // ... which is fine once the entry names its port, or with NetworkPolicy off
    wildcard.consumers[0].egress = [{ cidr: '127.0.0.1/32', port: 18080 }];
    expect(() => render([fullValuesFile, valuesFile({ directory: wildcard })])).not.toThrow();
    expect(() =>
      render([fullValuesFile, valuesFile({ directory: noEgress })], ['networkPolicy.enabled=false']),
    ).not.toThrow();
  });

  it('fails to render a bad homeCommunityId and other values the schema rejects (the templates repeat the schema checks that matter)', () => {
    expect(renderFails([], ['directory.homeCommunityId=urn:oid:1.02'])).toMatch(/directory\.homeCommunityId/);
    const badPeer = structuredClone(fullValues.directory) as Directory;
    badPeer.communities[0].homeCommunityId = '2.999.2';
    expect(renderFails([fullValuesFile, valuesFile({ directory: badPeer })])).toMatch(
      /communities\[0\]\.homeCommunityId "2\.999\.2" is not urn:oid/,
    );
    const dup = structuredClone(fullValues.directory) as Directory;
    dup.communities[1].homeCommunityId = dup.communities[0].homeCommunityId;
    expect(renderFails([fullValuesFile, valuesFile({ directory: dup })])).toMatch(/used twice/);
    const plain = structuredClone(fullValues.directory) as Directory;
    (plain.communities[0].endpoints.iti38 as Endpoint).url = 'http://rg.community-b.example/iti38';
    expect(renderFails([fullValuesFile, valuesFile({ directory: plain })])).toMatch(/must be https/);
    const anchor = structuredClone(fullValues.directory) as Directory & {
      communities: Array<{ identity: { trustAnchors: string[] } }>;
    };
    anchor.communities[0].identity.trustAnchors = ['/etc/xcai/trust/not-mounted/ca.crt'];
    expect(renderFails([fullValuesFile, valuesFile({ directory: anchor })])).toMatch(
      /not under a mounted trust Secret/,
    );
    expect(renderFails([], ['respondingGateway.tls.clientAuth=optional'])).toMatch(/mutual TLS/);
    expect(renderFails([], ['respondingGateway.publicUrl=http://rg.example'])).toMatch(
      /publicUrl must be https/,
    );
  });

  it('adds an autoscaling/v2 HPA per component when enabled, targeting its workload', () => {
    const hpas = ofKind(full, 'HorizontalPodAutoscaler') as unknown as IHorizontalPodAutoscaler[];
    expect(hpas).toHaveLength(2);
    for (const h of hpas) {
      const comp = h.metadata?.labels?.['app.kubernetes.io/component'] as string;
      const w = workloadOf(full, comp);
      expect(h.apiVersion).toBe('autoscaling/v2');
      expect(h.spec?.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: w.kind, name: w.metadata.name });
      expect((w.spec as { replicas?: number }).replicas).toBeUndefined(); // the HPA owns replicas
    }
    const ig = hpas.find((h) => h.metadata?.name === 'hie-a-initiating-gateway');
    expect(ig?.spec).toMatchObject({ minReplicas: 3, maxReplicas: 10 });
    expect(ig?.spec?.metrics?.map((m) => m.resource?.name)).toEqual(['cpu', 'memory']);
    const only = render([], ['respondingGateway.autoscaling.enabled=true']);
    expect(ofKind(only, 'HorizontalPodAutoscaler').map(component)).toEqual(['responding-gateway']);
    expect((workloadOf(only, 'initiating-gateway').spec as { replicas?: number }).replicas).toBe(2);
  });

  it('adds a PodDisruptionBudget per component when enabled', () => {
    const pdbs = ofKind(full, 'PodDisruptionBudget') as unknown as IPodDisruptionBudget[];
    expect(pdbs.map((p) => [p.metadata?.name, p.spec?.minAvailable, p.spec?.maxUnavailable])).toEqual([
      ['hie-a-initiating-gateway', undefined, 1],
      ['hie-a-responding-gateway', 2, undefined],
    ]);
    const off = render([], ['initiatingGateway.podDisruptionBudget.enabled=false']);
    expect(ofKind(off, 'PodDisruptionBudget').map(component)).toEqual(['responding-gateway']);
    const pct = render([], ['initiatingGateway.podDisruptionBudget.minAvailable=50%']);
    const igPdb = ofKind(pct, 'PodDisruptionBudget')[0] as unknown as IPodDisruptionBudget;
    expect(igPdb.spec).toMatchObject({ minAvailable: '50%' });
  });

  it('with autoscaling on, the defaults give a multi-replica deployment that keeps a replica serving', () => {
    const docs = render(
      [],
      ['initiatingGateway.autoscaling.enabled=true', 'respondingGateway.autoscaling.enabled=true'],
    );
    const pdbs = ofKind(docs, 'PodDisruptionBudget') as unknown as IPodDisruptionBudget[];
    const hpas = ofKind(docs, 'HorizontalPodAutoscaler') as unknown as IHorizontalPodAutoscaler[];
    for (const comp of ['initiating-gateway', 'responding-gateway']) {
      const w = workloadOf(docs, comp);
      const hpa = hpas.find((h) => component(h as unknown as K8sObject) === comp);
      expect(hpa?.spec?.minReplicas).toBeGreaterThanOrEqual(2);
      expect((w.spec as { replicas?: number }).replicas).toBeUndefined();
      // A node drain or an upgrade always leaves one replica serving.
      const pdb = pdbs.find((p) => component(p as unknown as K8sObject) === comp);
      expect([pdb?.spec?.minAvailable, pdb?.spec?.maxUnavailable]).toEqual([1, undefined]);
      expect(pdb?.spec?.selector?.matchLabels).toEqual(
        (w.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels,
      );
      const c = podSpec(w).containers[0];
      expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
      // Every replica shares the one Redis, under the one prefix of this deployment.
      expect(env(podSpec(w)).REDIS_URL).toBe('redis://redis:6379/0');
      expect(env(podSpec(w)).XCAI_REDIS_PREFIX).toMatch(new RegExp(`${comp}:$`));
    }
    // Replicas reach each other by pod address for the async hand-over.
    expect(env(podSpec(workloadOf(docs, 'initiating-gateway'))).XCAI_INTERNAL_URL).toContain('$(POD_IP)');
    // One replica: a PDB that lets it be moved (minAvailable 1 would block every drain).
    const one = render([], ['initiatingGateway.replicas=1']);
    const onePdb = (ofKind(one, 'PodDisruptionBudget') as unknown as IPodDisruptionBudget[]).find(
      (p) => component(p as unknown as K8sObject) === 'initiating-gateway',
    );
    expect([onePdb?.spec?.minAvailable, onePdb?.spec?.maxUnavailable]).toEqual([undefined, 1]);
  });

  it('prints NOTES.txt with every Secret the release expects and the async hand-over address', () => {
    // `helm template` does not print NOTES.txt: render it through a copy of the chart that includes it.
    const copy = path.join(tmpDir, `chart-${++tmpCount}`);
    fs.cpSync(chartDir, copy, { recursive: true });
    fs.writeFileSync(
      path.join(copy, 'templates', 'zz-notes.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n' +
        '  notes: {{ include "xcai-gateway/templates/NOTES.txt" . | toJson }}\n',
    );
    const notes = (files: string[]) => {
      const cm = YAML.parseAllDocuments(renderText(files, [], copy))
        .map((d) => d.toJS() as K8sObject)
        .find((d) => d?.metadata?.name === 'notes') as unknown as IConfigMap;
      return cm.data?.notes ?? '';
    };
    const text = notes([fullValuesFile]);
    for (const secret of [
      'ig-tls',
      'rg-tls',
      'community-b-trust',
      'hie-idp-signing',
      'xcai-redis',
      'xcai-redis-ca',
      'xcai-handover',
      'arr-client-tls',
      'arr-trust',
    ])
      expect(text).toContain(`Secret ${secret}`);
    expect(text).toContain('Replica hand-over: https://$(POD_IP):8443');
    expect(text).toContain('Redis key prefix: hie-a:hie-a-initiating-gateway:');
    expect(notes([])).toMatch(/WARNING: initiatingGateway\.image\.digest is not set/);
  });

  it('exposes SOAP + management in-cluster, and only SOAP on the optional external Service', () => {
    const services = ofKind(full, 'Service') as unknown as IService[];
    for (const s of services.filter((x) => !x.metadata?.name?.endsWith('-external'))) {
      expect(s.spec?.type).toBe('ClusterIP');
      expect(s.spec?.ports?.map((p) => [p.name, p.port, p.targetPort])).toEqual([
        ['soap', 8443, 'soap'],
        ['mgmt', 9090, 'mgmt'],
      ]);
    }
    const ext = services.filter((x) => x.metadata?.name?.endsWith('-external'));
    expect(ext.map((s) => s.metadata?.name)).toEqual(['hie-a-responding-gateway-external']);
    expect(ext[0].spec).toMatchObject({
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      loadBalancerSourceRanges: ['198.51.100.10/32', '203.0.113.0/28'],
    });
    expect(ext[0].spec?.ports?.map((p) => p.name)).toEqual(['soap']);
  });
});
