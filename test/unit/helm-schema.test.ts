/**
 * values.schema.json of helm/xcai-gateway: Helm validates values against it on install/upgrade/template/lint,
 * but tools/helmlite (the stand-in renderer used where no helm is installed) does not. So this suite checks
 * the schema itself with a small draft-07 validator covering exactly the keywords the schema uses (the first
 * test fails if the schema starts using another keyword), against values.yaml, examples/full-values.yaml and
 * a set of bad values. The chart's templates repeat the critical checks (`fail`), see helm-chart.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import YAML from 'yaml';

const chartDir = path.resolve(__dirname, '..', '..', 'helm', 'xcai-gateway');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = { [k: string]: Json };

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const ANNOTATIONS = new Set(['$schema', 'title', 'description', 'default', 'examples', 'definitions']);
const ASSERTIONS = new Set([
  '$ref',
  'type',
  'enum',
  'const',
  'pattern',
  'minLength',
  'minimum',
  'maximum',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'uniqueItems',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
]);

/** Every keyword used anywhere in the schema that this validator does not implement. */
function unsupportedKeywords(schema: unknown, at = '#'): string[] {
  if (!isObj(schema)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(schema)) {
    if (!ANNOTATIONS.has(k) && !ASSERTIONS.has(k)) out.push(`${at}/${k}`);
    if (k === 'properties' || k === 'definitions') {
      for (const [pk, pv] of Object.entries(v as Record<string, unknown>))
        out.push(...unsupportedKeywords(pv, `${at}/${k}/${pk}`));
    } else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') {
      (v as unknown[]).forEach((s, i) => out.push(...unsupportedKeywords(s, `${at}/${k}/${i}`)));
    } else if (k === 'items' || k === 'not' || (k === 'additionalProperties' && isObj(v))) {
      out.push(...unsupportedKeywords(v, `${at}/${k}`));
    }
  }
  return out;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Minimal draft-07 validation; returns the error messages (empty = valid). */
function validate(root: Schema, schema: unknown, value: unknown, at = '$'): string[] {
  if (schema === true || schema === undefined) return [];
  if (schema === false) return [`${at}: not allowed`];
  if (!isObj(schema)) throw new Error(`bad schema at ${at}`);
  if (typeof schema.$ref === 'string') {
    const target = schema.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root);
    return validate(root, target, value, at);
  }
  const errs: string[] = [];
  const t = typeOf(value);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const ok = types.some((ty) => ty === t || (ty === 'number' && t === 'integer'));
    if (!ok) return [`${at}: expected ${types.join('|')}, got ${t}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)))
    errs.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value))
    errs.push(`${at}: must be ${JSON.stringify(schema.const)}`);
  if (typeof value === 'string') {
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value))
      errs.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
    if (typeof schema.minLength === 'number' && [...value].length < schema.minLength)
      errs.push(`${at}: shorter than ${schema.minLength}`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) errs.push(`${at}: < ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) errs.push(`${at}: > ${schema.maximum}`);
  }
  if (isObj(value)) {
    const props = isObj(schema.properties) ? schema.properties : {};
    if (Array.isArray(schema.required))
      for (const r of schema.required) if (!(String(r) in value)) errs.push(`${at}: missing ${String(r)}`);
    for (const [k, v] of Object.entries(value)) {
      if (k in props) errs.push(...validate(root, props[k], v, `${at}.${k}`));
      else if (schema.additionalProperties !== undefined)
        errs.push(...validate(root, schema.additionalProperties, v, `${at}.${k}`));
    }
  }
  if (Array.isArray(value)) {
    if (schema.items !== undefined)
      value.forEach((v, i) => errs.push(...validate(root, schema.items, v, `${at}[${i}]`)));
    if (typeof schema.minItems === 'number' && value.length < schema.minItems)
      errs.push(`${at}: fewer than ${schema.minItems} items`);
    if (schema.uniqueItems === true && new Set(value.map((v) => JSON.stringify(v))).size !== value.length)
      errs.push(`${at}: items are not unique`);
  }
  if (Array.isArray(schema.allOf)) for (const s of schema.allOf) errs.push(...validate(root, s, value, at));
  if (Array.isArray(schema.anyOf) && !schema.anyOf.some((s) => validate(root, s, value, at).length === 0))
    errs.push(`${at}: matches none of anyOf`);
  if (Array.isArray(schema.oneOf)) {
    const n = schema.oneOf.filter((s) => validate(root, s, value, at).length === 0).length;
    if (n !== 1) errs.push(`${at}: matches ${n} of oneOf (need exactly 1)`);
  }
  if (schema.not !== undefined && validate(root, schema.not, value, at).length === 0)
    errs.push(`${at}: matches a forbidden schema`);
  return errs;
}

/** Helm's merge of a values file over the chart defaults: maps merge deeply, everything else replaces. */
function mergeValues(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeValues(base[k], v) : v;
  return out;
}

const clone = <T>(v: T): T => structuredClone(v);
const schema = JSON.parse(fs.readFileSync(path.join(chartDir, 'values.schema.json'), 'utf8')) as Schema;
const defaults = YAML.parse(fs.readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')) as Record<
  string,
  unknown
>;
const full = mergeValues(
  defaults,
  YAML.parse(fs.readFileSync(path.join(chartDir, 'examples', 'full-values.yaml'), 'utf8')),
) as Record<string, unknown>;
const check = (values: unknown) => validate(schema, schema, values);

/** The full example with one change applied (by a mutator on a deep copy). */
function fullWith(mutate: (v: FullValues) => void): unknown {
  const v = clone(full) as unknown as FullValues;
  mutate(v);
  return v;
}
interface FullValues {
  [k: string]: unknown;
  directory: {
    homeCommunityId: string;
    communities: Array<Record<string, unknown> & { endpoints: Record<string, { url: string }> }>;
    local: { repositories: Array<Record<string, unknown>> };
    consumers: Array<Record<string, unknown>>;
  };
  respondingGateway: { tls: { clientAuth: string }; image: { digest: string } };
  redis: { url: string; egress: Array<Record<string, unknown>> };
}

describe('helm values.schema.json', () => {
  it('is a draft-07 schema that uses only keywords this test validates', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(unsupportedKeywords(schema)).toEqual([]);
  });

  it('accepts the chart defaults and the full example', () => {
    expect(check(defaults)).toEqual([]);
    expect(check(full)).toEqual([]);
  });

  it('covers every key of values.yaml (no key the schema would reject as unknown)', () => {
    // values.yaml validating already proves it; this also checks that each top-level key is declared.
    const declared = Object.keys(schema.properties as Record<string, unknown>);
    for (const k of Object.keys(defaults)) expect(declared).toContain(k);
  });

  it('documents every key of values.yaml in the chart README', () => {
    const readme = fs.readFileSync(path.join(chartDir, 'README.md'), 'utf8');
    const freeForm =
      /(^|\.)(annotations|resources|nodeSelector|podLabels|podAnnotations|commonLabels|behavior|affinity)$/;
    const leaves: string[] = [];
    const walk = (v: unknown, at: string) => {
      if (isObj(v) && Object.keys(v).length > 0 && !freeForm.test(at))
        for (const [k, x] of Object.entries(v)) walk(x, at ? `${at}.${k}` : k);
      else leaves.push(at);
    };
    walk(defaults, '');
    const undocumented = leaves
      .map((k) => k.replace(/^(initiatingGateway|respondingGateway)\./, '<gw>.'))
      .filter((k) => !readme.includes(`\`${k}\``) && !readme.includes(`\`${k.replace(/\.[^.]+$/, '.*')}\``));
    expect(undocumented).toEqual([]);
  });

  it.each([
    'urn:oid:1.2.03', // leading zero
    '1.2.3', // no urn:oid:
    'urn:oid:3.1', // first arc > 2
    'urn:oid:1', // a single arc
    'urn:oid:1.2.', // trailing dot
    'URN:OID:1.2.3',
    ' urn:oid:1.2.3',
  ])('rejects the bad homeCommunityId %j (ours and a peer)', (bad) => {
    expect(check(fullWith((v) => void (v.directory.homeCommunityId = bad)))).toEqual([
      expect.stringContaining('$.directory.homeCommunityId: '),
    ]);
    expect(check(fullWith((v) => void (v.directory.communities[0].homeCommunityId = bad)))).toEqual([
      expect.stringContaining('$.directory.communities[0].homeCommunityId: '),
    ]);
  });

  it.each([4194304, '4MiB', '512KiB', '16MB', '1.5GiB', '1048576'])('accepts the size %j', (size) => {
    expect(check(fullWith((v) => void (v.maxRequestBytes = size)))).toEqual([]);
  });

  it.each(['urn:oid:1.2.392.200119.6.102', 'urn:oid:2.16.840.1.113883.3.72.5.9.1', 'urn:oid:0.0'])(
    'accepts the homeCommunityId %j',
    (good) => {
      expect(check(fullWith((v) => void (v.directory.homeCommunityId = good)))).toEqual([]);
    },
  );

  const bad: Array<[string, (v: FullValues) => void, string]> = [
    [
      'a plaintext (http://) endpoint of a remote community',
      (v) => {
        v.directory.communities[0].endpoints.iti38.url = 'http://rg.community-b.example/iti38';
      },
      '$.directory.communities[0].endpoints.iti38.url',
    ],
    [
      'a plaintext replyTo of a remote community',
      (v) => {
        v.directory.communities[0].replyTo = ['http://ig.community-b.example/async'];
      },
      '$.directory.communities[0].replyTo[0]',
    ],
    [
      'a misspelt directory key',
      (v) => void (v.directory.communities[0].endpoint = {}),
      '$.directory.communities[0].endpoint',
    ],
    [
      'a missing required directory key (xua)',
      (v) => void delete v.directory.communities[0].xua,
      'missing xua',
    ],
    [
      'an unknown xua policy',
      (v) => void (v.directory.communities[0].xua = 'sometimes'),
      '$.directory.communities[0].xua',
    ],
    [
      'an unknown unknownPatient policy',
      (v) => {
        (v.directory as unknown as { policy: { unknownPatient: string } }).policy.unknownPatient = 'error';
      },
      '$.directory.policy.unknownPatient',
    ],
    [
      'a urn:oid: repositoryUniqueId',
      (v) => {
        v.directory.local.repositories[0].repositoryUniqueId = 'urn:oid:1.2.3';
      },
      '$.directory.local.repositories[0].repositoryUniqueId',
    ],
    [
      'a trust anchor outside /etc/xcai/trust',
      (v) => {
        v.directory.communities[0].identity = { trustAnchors: ['/tmp/ca.crt'], names: ['x'] };
      },
      '$.directory.communities[0].identity.trustAnchors[0]',
    ],
    [
      'an egress entry with both cidr and podSelector',
      (v) => {
        v.redis.egress = [{ cidr: '10.0.0.1/32', podSelector: { matchLabels: { a: 'b' } } }];
      },
      '$.redis.egress[0]',
    ],
    [
      'an egress entry with neither cidr nor selector',
      (v) => void (v.redis.egress = [{ port: 6379 }]),
      '$.redis.egress[0]',
    ],
    [
      'a malformed CIDR',
      (v) => void (v.redis.egress = [{ cidr: '10.0.0.300/32' }]),
      '$.redis.egress[0].cidr',
    ],
    [
      'an egress port out of range',
      (v) => void (v.redis.egress = [{ cidr: '10.0.0.1/32', port: 70000 }]),
      '$.redis.egress[0].port',
    ],
    [
      'an unknown egress component',
      (v) => {
        v.redis.egress = [{ cidr: '10.0.0.1/32', components: ['reference-community'] }];
      },
      '$.redis.egress[0].components[0]',
    ],
    [
      'a password in the Redis URL',
      (v) => void (v.redis.url = 'redis://:secret@redis:6379/0'),
      '$.redis.url',
    ],
    ['a non-redis Redis URL', (v) => void (v.redis.url = 'http://redis:6379'), '$.redis.url'],
    [
      'an optional client certificate on the responding side',
      (v) => {
        v.respondingGateway.tls.clientAuth = 'optional';
      },
      '$.respondingGateway.tls.clientAuth',
    ],
    [
      'a malformed image digest',
      (v) => void (v.respondingGateway.image.digest = 'sha256:abc'),
      '$.respondingGateway.image.digest',
    ],
    ['an unknown top-level key', (v) => void (v.redisUrl = 'redis://x'), '$.redisUrl'],
    [
      'the removed deadlineMs (the services never read XCAI_DEADLINE_MS)',
      (v) => void (v.deadlineMs = 1000),
      '$.deadlineMs',
    ],
    [
      'audit turned off',
      (v) => void ((v.audit as Record<string, unknown>).transport = 'off'),
      '$.audit.transport',
    ],
    [
      'a zero audit retainBytes (the service refuses it)',
      (v) => void ((v.audit as Record<string, unknown>).retainBytes = 0),
      '$.audit.retainBytes',
    ],
    [
      'an XUA IdP certificate outside /etc/xcai/xua',
      (v) => {
        (v.directory as unknown as { xua: { idpCertificates: string[] } }).xua.idpCertificates = [
          '/tmp/idp.crt',
        ];
      },
      '$.directory.xua.idpCertificates[0]',
    ],
    [
      'an XUA section without IdP certificates',
      (v) => void ((v.directory as unknown as { xua: Record<string, unknown> }).xua = { audiences: ['x'] }),
      'missing idpCertificates',
    ],
    [
      'an unknown per-peer limit',
      (v) => void (v.directory.communities[0].inboundLimits = { requestsPerMinute: 10 }),
      '$.directory.communities[0].inboundLimits.requestsPerMinute',
    ],
    [
      'a server timeout in a per-peer limit (only top-level)',
      (v) => void (v.directory.consumers[0].inboundLimits = { requestTimeoutMs: 1000 }),
      '$.directory.consumers[0].inboundLimits.requestTimeoutMs',
    ],
    [
      'a malformed inbound maxRequestBytes',
      (v) => {
        (v.directory as unknown as { inboundLimits: Record<string, unknown> }).inboundLimits.maxRequestBytes =
          '8 megs';
      },
      '$.directory.inboundLimits.maxRequestBytes',
    ],
    ['a malformed maxRequestBytes', (v) => void (v.maxRequestBytes = '4 MiBs'), '$.maxRequestBytes'],
    [
      'a plaintext internal URL',
      (v) => void ((v.initiatingGateway as Record<string, unknown>).internalUrl = 'http://$(POD_IP):8443'),
      '$.initiatingGateway.internalUrl',
    ],
    [
      'a Redis key prefix with a space',
      (v) => void ((v.redis as unknown as Record<string, unknown>).keyPrefix = 'a b'),
      '$.redis.keyPrefix',
    ],
    [
      'a circuit breaker that never opens',
      (v) => void ((v.circuit as Record<string, unknown>).failureThreshold = 0),
      '$.circuit.failureThreshold',
    ],
  ];
  it.each(bad)('rejects %s', (_name, mutate, where) => {
    const errors = check(fullWith(mutate));
    expect(errors).not.toEqual([]);
    expect(errors.join('\n')).toContain(where);
  });
});
