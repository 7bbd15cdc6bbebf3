/**
 * ATNA wiring of a gateway process: settings and defaults, how the audit trail is opened (and when
 * start-up must fail), the fail-closed check, the security-event helpers, and the patient links
 * that name the patient in retrieve records.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  auditApplicationStart,
  auditNodeAuthenticationFailure,
  auditRefusal,
  auditRejectedAsyncResponse,
  AUDIT_UNAVAILABLE_REASON,
} from '@xcai/shared/src/audit/gateway';
import type { AuditEvent, SecurityAuditEvent, TransactionAuditEvent } from '@xcai/shared/src/audit/event';
import { buildAuditMessages } from '@xcai/shared/src/audit/messages';
import { documentEntryLinks, PatientLinks } from '@xcai/shared/src/audit/patient-links';
import { parseAuditRecord } from '@xcai/shared/src/audit/report';
import { createAuditSink } from '@xcai/shared/src/audit/sink';
import { sampleTransactionEvent, validateWithXsd } from '../support/audit';
import {
  auditSettingsFromEnv,
  DEFAULT_AUDIT_SPOOL_DIR,
  openGatewayAudit,
  type AuditSettings,
} from '@xcai/shared/src/service/audit';
import { settingsFromEnv, SettingsError } from '@xcai/shared/src/service/settings';
import { readDirectory } from '@xcai/shared/src/directory/load';
import { loadAuditRecords } from '@xcai/shared/src/audit/report';
import { AUDIT_SCHEMA } from '../support/fixtures';

const directory = readDirectory({ homeCommunityId: 'urn:oid:1.2.3.4', name: 'T' }, 'test');
const lines: { level: string; msg: string }[] = [];
const log = {
  debug: () => undefined,
  info: (msg: string) => lines.push({ level: 'info', msg }),
  warn: (msg: string) => lines.push({ level: 'warn', msg }),
  error: (msg: string) => lines.push({ level: 'error', msg }),
  child: () => log,
};
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-wiring-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('audit settings from the environment', () => {
  it('defaults to a local audit trail in /var/lib/xcai/audit (transport none)', () => {
    const a = auditSettingsFromEnv({});
    expect(a).toMatchObject({
      transport: 'none',
      spoolDir: DEFAULT_AUDIT_SPOOL_DIR,
      spoolDirIsDefault: true,
    });
    expect(settingsFromEnv({ XCAI_DIRECTORY: 'd.yaml' }, { port: 1, clientAuth: 'optional' }).audit).toEqual(
      a,
    );
  });

  it('reads every XCAI_AUDIT_* variable; the audit TLS client defaults to the gateway certificate', () => {
    const a = auditSettingsFromEnv({
      XCAI_AUDIT_TRANSPORT: 'tls',
      XCAI_AUDIT_HOST: 'arr.example',
      XCAI_AUDIT_PORT: '6514',
      XCAI_AUDIT_SPOOL_DIR: '/spool',
      XCAI_AUDIT_MAX_SPOOL_BYTES: '64MiB',
      XCAI_AUDIT_RATE: '50',
      XCAI_AUDIT_RETAIN_DAYS: '2000',
      XCAI_AUDIT_RETAIN_BYTES: '2GiB',
      XCAI_AUDIT_SOURCE_ID: 'ig-1',
      XCAI_AUDIT_ENTERPRISE_SITE_ID: '1.2.3',
      XCAI_AUDIT_APP_NAME: 'ig',
      XCAI_AUDIT_TLS_SERVERNAME: 'arr',
      XCAI_TLS_CERT: '/tls/gw.crt',
      XCAI_TLS_KEY: '/tls/gw.key',
      XCAI_TLS_CA: '/tls/ca.crt, /tls/ca2.crt',
    });
    expect(a).toEqual({
      transport: 'tls',
      host: 'arr.example',
      port: 6514,
      spoolDir: '/spool',
      spoolDirIsDefault: false,
      maxSpoolBytes: 64 * 1024 * 1024,
      tls: {
        cert: '/tls/gw.crt',
        key: '/tls/gw.key',
        ca: ['/tls/ca.crt', '/tls/ca2.crt'],
        servername: 'arr',
        ciphers: undefined,
      },
      ratePerSecond: 50,
      retainDays: 2000,
      retainBytes: 2 * 1024 * 1024 * 1024,
      sourceId: 'ig-1',
      enterpriseSiteId: '1.2.3',
      appName: 'ig',
    });
    expect(
      auditSettingsFromEnv({
        XCAI_AUDIT_TRANSPORT: 'tls',
        XCAI_AUDIT_HOST: 'h',
        XCAI_AUDIT_TLS_CERT: '/a.crt',
        XCAI_AUDIT_TLS_KEY: '/a.key',
        XCAI_AUDIT_TLS_CA: '/a-ca.crt',
        XCAI_TLS_CERT: '/tls/gw.crt',
      }).tls,
    ).toMatchObject({ cert: '/a.crt', key: '/a.key', ca: ['/a-ca.crt'] });
  });

  it('refuses bad values with a message naming the variable', () => {
    const bad = (env: NodeJS.ProcessEnv) => () =>
      settingsFromEnv({ XCAI_DIRECTORY: 'd', ...env }, { port: 1, clientAuth: 'optional' });
    expect(bad({ XCAI_AUDIT_TRANSPORT: 'tcp' })).toThrow(
      /XCAI_AUDIT_TRANSPORT must be tls, relp, udp, none or off/,
    );
    expect(bad({ XCAI_AUDIT_TRANSPORT: 'tls' })).toThrow(/XCAI_AUDIT_HOST/);
    expect(bad({ XCAI_AUDIT_PORT: 'x' })).toThrow(SettingsError);
    expect(bad({ XCAI_AUDIT_MAX_SPOOL_BYTES: 'lots' })).toThrow(/XCAI_AUDIT_MAX_SPOOL_BYTES/);
    expect(bad({ XCAI_AUDIT_RATE: '0' })).toThrow(/XCAI_AUDIT_RATE/);
  });
});

describe('openGatewayAudit', () => {
  const open = (settings: AuditSettings) =>
    openGatewayAudit({ role: 'initiating', settings, directory, log: log as never });

  it('opens a local trail: records are spooled, hash-chained and count as delivered', async () => {
    const dir = path.join(tmp, 'local');
    const a = open({ transport: 'none', spoolDir: dir });
    expect(a.mode).toBe('local');
    auditApplicationStart(a.sink, 'test start');
    await a.managed!.flush();
    expect(a.managed!.depth()).toBe(0);
    await a.sink.close();
    const recs = loadAuditRecords([dir]);
    expect(recs).toHaveLength(1);
    const v = parseAuditRecord(recs[0]!.id, recs[0]!.xml)!;
    expect([v.eventId, v.auditSource]).toEqual(['110100', `initiating-gateway@${os.hostname()}`]);
  });

  it('falls back to no trail (with an error log) only when the built-in default directory is unusable', () => {
    const blocker = path.join(tmp, 'not-a-dir');
    fs.writeFileSync(blocker, 'x');
    lines.length = 0;
    const a = open({ transport: 'none', spoolDir: path.join(blocker, 'audit'), spoolDirIsDefault: true });
    expect(a.mode).toBe('off');
    expect(lines.some((l) => l.level === 'error' && /audit trail DISABLED/.test(l.msg))).toBe(true);
    // A directory the operator chose, or a repository, must work: start-up fails instead.
    expect(() => open({ transport: 'none', spoolDir: path.join(blocker, 'audit') })).toThrow(
      /cannot open the audit spool/,
    );
    expect(() =>
      open({ transport: 'tls', host: '127.0.0.1', spoolDir: path.join(tmp, 'tls'), spoolDirIsDefault: true }),
    ).toThrow(/needs a client certificate/);
  });

  it('a spool held by another live sink is not shared: explicit directory → start-up fails', async () => {
    const dir = path.join(tmp, 'held');
    const first = open({ transport: 'none', spoolDir: dir });
    expect(() => open({ transport: 'none', spoolDir: dir })).toThrow(/in use/);
    await first.sink.close();
  });

  it('off: no trail, a warning; settings built in code without a spool directory: no trail', () => {
    lines.length = 0;
    expect(open({ transport: 'off' }).mode).toBe('off');
    expect(lines.some((l) => l.level === 'warn' && /audit trail OFF/.test(l.msg))).toBe(true);
    expect(open({ transport: 'none' }).mode).toBe('off');
  });
});

describe('fail closed', () => {
  it('auditRefusal gives a SOAP Receiver fault while the sink is unhealthy (spool full), none after', async () => {
    const sink = createAuditSink({
      transport: 'tls',
      host: '127.0.0.1',
      port: 9, // nothing listens: records stay undelivered
      tls: { cert: 'x', key: 'x', ca: 'x' },
      spoolDir: path.join(tmp, 'full'),
      source: { auditSourceId: 't' },
      maxSpoolBytes: 4000,
      backoffInitialMs: 60_000,
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
      closeTimeoutMs: 100,
    });
    expect(auditRefusal(sink)).toBeUndefined();
    for (let i = 0; i < 3; i++) sink.record(sampleTransactionEvent('ITI-18', 'responder', 'success', i));
    await sink.flush();
    expect(sink.healthy()).toBe(false);
    const f = auditRefusal(sink)!;
    expect([f.code, f.httpStatus, f.reason]).toEqual(['Receiver', 500, AUDIT_UNAVAILABLE_REASON]);
    await sink.close();
    // Sinks without healthy() (memory sinks in tests, the no-op sink) never refuse.
    expect(auditRefusal({ record: () => undefined, close: async () => undefined })).toBeUndefined();
  });
});

describe('security records written by the gateway helpers', () => {
  it('node-authentication failure and rejected async response validate and name the peer', async () => {
    const got: AuditEvent[] = [];
    const sink = { record: (e: AuditEvent) => got.push(e), close: async () => undefined };
    auditNodeAuthenticationFailure(sink, {
      remoteAddress: '::ffff:192.0.2.7',
      remotePort: 50123,
      certificateSubject: 'O=x,CN=intruder',
      reason: 'certificate signed by an unknown authority',
    });
    auditRejectedAsyncResponse(sink, {
      remoteAddress: '2001:db8::1',
      reason: 'wsa:RelatesTo matches no pending request',
      relatesTo: 'urn:uuid:1c2f3a4b-0000-4000-8000-000000000001',
    });
    auditRejectedAsyncResponse(sink, { remoteAddress: '127.0.0.1', reason: 'no RelatesTo <&>' });
    expect(got.map((e) => e.kind)).toEqual([
      'node-authentication-failure',
      'rejected-async-response',
      'rejected-async-response',
    ]);
    const first = got[0] as SecurityAuditEvent;
    expect(first.peer).toEqual({
      userId: 'tls://192.0.2.7:50123',
      networkAccessPointId: '192.0.2.7',
      certificateSubject: 'O=x,CN=intruder',
    });
    const xmls = got.flatMap((e) => buildAuditMessages(e, { auditSourceId: 'gw' }));
    const r = await validateWithXsd(xmls, AUDIT_SCHEMA, path.join(tmp, 'sec'));
    if (!r.ok) console.error(r.output);
    expect(r.ok).toBe(true);
  });
});

describe('patient links (naming the patient in retrieve records)', () => {
  const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
  const entry = (uid: string, study: string) =>
    `<rim:ExtrinsicObject home="urn:oid:1.2" id="urn:uuid:x" mimeType="application/dicom">` +
    `<rim:Slot name="urn:ihe:iti:xds:2013:referenceIdList"><rim:ValueList>` +
    `<rim:Value>${study}^^^^urn:ihe:iti:xds:2016:studyInstanceUID</rim:Value>` +
    `<rim:Value>A123^^^&amp;1.2.3&amp;ISO^urn:ihe:iti:xds:2013:accession</rim:Value></rim:ValueList></rim:Slot>` +
    `<rim:ExternalIdentifier id="urn:uuid:a" registryObject="urn:uuid:x" value="${PATIENT.replace(/&/g, '&amp;')}" identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"/>` +
    `<rim:ExternalIdentifier identificationScheme='urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab' value='${uid}' id='urn:uuid:b'/>` +
    `</rim:ExtrinsicObject>`;

  it('reads patient, uniqueId and study UIDs from a serialised DocumentEntry', () => {
    expect(documentEntryLinks(entry('1.2.3.9', '1.2.3.7'))).toEqual({
      patientId: PATIENT,
      uniqueId: '1.2.3.9',
      studyUids: ['1.2.3.7'],
    });
    expect(documentEntryLinks('<rim:RegistryPackage id="x"/>')).toBeUndefined();
  });

  it('fills the patient of a later retrieve of the same documents / studies; bounded', () => {
    const links = new PatientLinks(3);
    const q = sampleTransactionEvent('ITI-18', 'responder', 'success');
    q.resultObjects = [entry('9.1', '9.2')];
    links.apply(q);
    expect(q.resultObjects).toBeUndefined();
    const r43: TransactionAuditEvent = {
      ...sampleTransactionEvent('ITI-43', 'responder', 'success'),
      patientIds: [],
    };
    r43.groups[0]!.documents![0]!.documentUniqueId = '9.1';
    links.apply(r43);
    expect(r43.patientIds).toEqual([PATIENT]);
    const r69: TransactionAuditEvent = {
      ...sampleTransactionEvent('RAD-69', 'responder', 'success'),
      patientIds: [],
    };
    r69.groups[0]!.studies![0]!.studyInstanceUid = '9.2';
    links.apply(r69);
    expect(r69.patientIds).toEqual([PATIENT]);
    const unknown: TransactionAuditEvent = {
      ...sampleTransactionEvent('ITI-39', 'responder', 'success'),
      patientIds: [],
    };
    links.apply(unknown);
    expect(unknown.patientIds).toEqual([]);
    links.note([entry('8.1', '8.2'), entry('7.1', '7.2')]);
    expect(links.size).toBe(3);
  });
});
