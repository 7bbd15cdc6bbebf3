/**
 * Test helpers for the audit module (not exported from the package index): sample events for the
 * transaction matrix, certificate generation with deploy/certs/make-certs.sh, and a throwaway
 * rsyslogd acting as a real RFC 5425 Audit Record Repository.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type {
  AuditEvent,
  AuditedTransaction,
  AuditOutcomeGroup,
  SecurityAuditEvent,
  TransactionAuditEvent,
} from '@xcai/shared/src/audit/event';
import { TRANSACTIONS } from '@xcai/shared/src/audit/messages';
import type { AuditSinkConfig } from '@xcai/shared/src/audit/sink';

/** Logs nothing (audit sinks and repositories in tests). */
export const quietAuditLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * A sink configuration for tests: to 127.0.0.1:`port` over `transport`, presenting `client`'s
 * certificate from `certs` and expecting the ARR's certificate to name `arr`; fast rates and
 * backoffs; `extra` overrides.
 */
export function testSinkConfig(
  certs: { ca: string; certs: Record<string, { cert: string; key: string }> },
  o: { transport: 'tls' | 'relp'; port: number; spoolDir: string; client?: string },
  extra: Partial<AuditSinkConfig> = {},
): AuditSinkConfig {
  const client = certs.certs[o.client ?? 'gw-audit'] as { cert: string; key: string };
  return {
    transport: o.transport,
    host: '127.0.0.1',
    port: o.port,
    tls: { cert: client.cert, key: client.key, ca: certs.ca, servername: 'arr' },
    spoolDir: o.spoolDir,
    source: { auditSourceId: 'gw-a', applicationName: 'xcai-test' },
    ratePerSecond: 1000,
    backoffInitialMs: 50,
    backoffMaxMs: 1000,
    closeTimeoutMs: 5000,
    logger: quietAuditLogger,
    ...extra,
  };
}

export const ALL_TRANSACTIONS: AuditedTransaction[] = [
  'ITI-18',
  'ITI-38',
  'ITI-43',
  'ITI-39',
  'RAD-69',
  'RAD-75',
];
export type OutcomeCase = 'success' | 'failure' | 'partial';

export const SAMPLE_PATIENT = 'PAT-0001^^^&1.2.392.200119.6.102.1&ISO';
export const SAMPLE_HOME = 'urn:oid:1.2.392.200119.6.102.9';

function groupsFor(tx: AuditedTransaction, outcome: OutcomeCase, n: number): AuditOutcomeGroup[] {
  const kind = TRANSACTIONS[tx].kind;
  if (kind === 'query') return [];
  const doc = (i: number) => ({
    documentUniqueId: `1.2.392.200119.6.102.1.${n}.${i}`,
    repositoryUniqueId: '1.2.392.200119.6.102.5',
    homeCommunityId: SAMPLE_HOME,
  });
  const study = (i: number) => ({
    studyInstanceUid: `1.2.392.200119.6.102.2.${n}.${i}`,
    repositoryUniqueId: '1.2.392.200119.6.102.5',
    homeCommunityId: SAMPLE_HOME,
    series: [
      {
        seriesInstanceUid: `1.2.392.200119.6.102.2.${n}.${i}.1`,
        sopInstanceUids: [`1.2.392.200119.6.102.2.${n}.${i}.1.1`, `1.2.392.200119.6.102.2.${n}.${i}.1.2`],
      },
    ],
  });
  const objs = (i: number) => (kind === 'documents' ? { documents: [doc(i)] } : { studies: [study(i)] });
  if (outcome === 'success') return [{ outcome: 0, ...objs(1) }];
  if (outcome === 'failure')
    return [{ outcome: 8, description: 'XDSRepositoryError: repository unavailable', ...objs(1) }];
  return [
    { outcome: 0, ...objs(1) },
    { outcome: 4, description: 'XDSDocumentUniqueIdError: unknown <uid> & "quoted"', ...objs(2) },
  ];
}

/** A transaction event for the matrix; `n` varies the ids. */
export function sampleTransactionEvent(
  tx: AuditedTransaction,
  side: 'requester' | 'responder',
  outcome: OutcomeCase,
  n = 1,
  patientId = SAMPLE_PATIENT,
): TransactionAuditEvent {
  const query = TRANSACTIONS[tx].kind === 'query';
  const requestXml = Buffer.from(
    `<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"><rim:AdhocQuery xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"><rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList><rim:Value>'${patientId}'</rim:Value></rim:ValueList></rim:Slot></rim:AdhocQuery></query:AdhocQueryRequest>`,
    'utf8',
  );
  return {
    kind: 'transaction',
    transaction: tx,
    side,
    eventDateTime: new Date(Date.UTC(2025, 0, 15, 9, 30, n % 60, 0)),
    requester: {
      userId: 'http://www.w3.org/2005/08/addressing/anonymous',
      alternativeUserId: `${process.pid}@gw-initiating`,
      networkAccessPointId: '127.0.0.1',
      certificateSubject: 'CN=gw-initiating,O=xcai test',
    },
    responder: {
      userId: `https://gw-responding.example:8443/${tx.toLowerCase()}`,
      networkAccessPointId: 'gw-responding.example',
    },
    humanRequestors: [
      {
        userId: `dr-${n}@idp.example`,
        userName: `Dr. Test <${n}>`,
        roles: [{ code: '309343006', codeSystem: '2.16.840.1.113883.6.96', displayName: 'Physician' }],
      },
    ],
    patientIds: [patientId],
    query: query
      ? {
          storedQueryId: 'urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d',
          requestXml,
          homeCommunityId: SAMPLE_HOME,
        }
      : undefined,
    outcome: outcome === 'success' ? 0 : outcome === 'failure' ? 8 : 4,
    outcomeDescription:
      outcome === 'success'
        ? undefined
        : outcome === 'failure'
          ? 'XDSRegistryError'
          : 'PartialSuccess: 1 of 2 communities failed',
    groups: groupsFor(tx, outcome, n),
    messageId: `urn:uuid:00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    purposesOfUse: [
      { code: 'TREATMENT', codeSystem: '2.16.840.1.113883.3.18.7.1', displayName: 'Treatment' },
    ],
  };
}

export function sampleSecurityEvents(): SecurityAuditEvent[] {
  const when = new Date(Date.UTC(2025, 0, 15, 8, 0, 0));
  const peer = {
    userId: 'tls://192.0.2.7:50432',
    networkAccessPointId: '192.0.2.7',
    certificateSubject: 'CN=intruder,O=x',
  };
  return [
    {
      kind: 'node-authentication-failure',
      eventDateTime: when,
      outcome: 8,
      description: 'client certificate not trusted',
      peer,
    },
    {
      kind: 'rejected-async-response',
      eventDateTime: when,
      outcome: 4,
      description: 'RelatesTo matches no pending request',
      peer,
      objectId: 'urn:uuid:5b5f2e5c-3c1c-4d7e-9b7e-0d5c2f1a6b10',
    },
    {
      kind: 'configuration-loaded',
      eventDateTime: when,
      outcome: 0,
      description: 'directory and trust store loaded (sha256 abc)',
      objectId: 'file:///etc/xcai/gateway.yaml',
      configurationKinds: ['software', 'security', 'network'],
    },
    {
      kind: 'emergency-override',
      eventDateTime: when,
      outcome: 0,
      description: 'ITI-38 from urn:oid:1.2.392.200119.6.102.8 by dr.a for ETREAT: consent overridden',
      peer,
      objectId: 'urn:oid:1.2.392.200119.6.102.8',
      humanRequestors: [{ userId: 'dr.a', userName: 'Dr A', roles: [] }],
      purposesOfUse: [
        { code: 'ETREAT', codeSystem: '2.16.840.1.113883.5.8', displayName: 'Emergency Treatment' },
      ],
      patientIds: [SAMPLE_PATIENT],
    },
    {
      kind: 'application-start',
      eventDateTime: when,
      outcome: 0,
      description: 'initiating gateway 0.1.0 started',
    },
    {
      kind: 'application-stop',
      eventDateTime: when,
      outcome: 0,
      description: 'SIGTERM',
      peer: { userId: 'systemd' },
    },
  ];
}

/** Every transaction × side × outcome case. */
export function transactionMatrix(): {
  tx: AuditedTransaction;
  side: 'requester' | 'responder';
  outcome: OutcomeCase;
  event: AuditEvent;
}[] {
  const out: {
    tx: AuditedTransaction;
    side: 'requester' | 'responder';
    outcome: OutcomeCase;
    event: AuditEvent;
  }[] = [];
  let n = 0;
  for (const tx of ALL_TRANSACTIONS) {
    for (const side of ['requester', 'responder'] as const) {
      for (const outcome of ['success', 'failure', 'partial'] as const) {
        out.push({ tx, side, outcome, event: sampleTransactionEvent(tx, side, outcome, ++n) });
      }
    }
  }
  return out;
}

/** Finds the repository root (the directory with deploy/certs/make-certs.sh). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'deploy', 'certs', 'make-certs.sh'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
}

/** Runs make-certs.sh (new CA per directory). Returns PEM contents by name. */
export function makeCerts(
  outDir: string,
  names: string[],
): { ca: string; certs: Record<string, { cert: string; key: string; certFile: string; keyFile: string }> } {
  execFileSync('bash', [path.join(repoRoot(), 'deploy', 'certs', 'make-certs.sh'), outDir, ...names], {
    stdio: 'ignore',
  });
  const certs: Record<string, { cert: string; key: string; certFile: string; keyFile: string }> = {};
  for (const spec of names) {
    const name = spec.split(':')[0] as string;
    const certFile = path.join(outDir, `${name}.crt`);
    const keyFile = path.join(outDir, `${name}.key`);
    certs[name] = {
      cert: fs.readFileSync(certFile, 'utf8'),
      key: fs.readFileSync(keyFile, 'utf8'),
      certFile,
      keyFile,
    };
  }
  return { ca: fs.readFileSync(path.join(outDir, 'ca.crt'), 'utf8'), certs };
}

/** A free TCP port on 127.0.0.1 (probe: bind 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function findRsyslogd(): string | undefined {
  for (const p of ['/usr/sbin/rsyslogd', '/sbin/rsyslogd', '/usr/local/sbin/rsyslogd'])
    if (fs.existsSync(p)) return p;
  try {
    return execFileSync('sh', ['-c', 'command -v rsyslogd'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * rsyslogd as an RFC 5425 receiver: imtcp + gtls, mutual auth with x509/name and the given
 * permitted peers; every message's raw text is appended, one per line, to `outFile`.
 */
export class RsyslogReceiver {
  readonly outFile: string;
  private child?: ChildProcess;
  private readonly conf: string;
  private readonly pidFile: string;
  log = '';

  constructor(
    readonly dir: string,
    readonly port: number,
    tlsFiles: { ca: string; cert: string; key: string },
    permittedPeers: string[],
    /** imtcp: RFC 5425 (gtls driver); imrelp: RELP over TLS (the acknowledged transport). */
    input: 'imtcp' | 'imrelp' = 'imtcp',
  ) {
    fs.mkdirSync(path.join(dir, 'work'), { recursive: true });
    this.outFile = path.join(dir, 'received.log');
    this.conf = path.join(dir, 'rsyslog.conf');
    this.pidFile = path.join(dir, 'rsyslogd.pid');
    const peers = permittedPeers.map((p) => `"${p}"`).join(',');
    fs.writeFileSync(
      this.conf,
      `global(
  workDirectory="${path.join(dir, 'work')}"
  maxMessageSize="1m"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="${tlsFiles.ca}"
  defaultNetstreamDriverCertFile="${tlsFiles.cert}"
  defaultNetstreamDriverKeyFile="${tlsFiles.key}"
)
${
  input === 'imtcp'
    ? `module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/name" PermittedPeer=[${peers}])
input(type="imtcp" port="${port}" address="127.0.0.1")`
    : `module(load="imrelp")
input(type="imrelp" port="${port}" address="127.0.0.1" tls="on" tls.caCert="${tlsFiles.ca}" tls.myCert="${tlsFiles.cert}" tls.myPrivKey="${tlsFiles.key}" tls.authMode="name" tls.permittedPeer=[${peers}])`
}
${input === 'imrelp' ? 'main_queue(queue.type="Direct")\n' : ''}template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="${this.outFile}" template="raw" flushOnTXEnd="on" asyncWriting="off")
`,
    );
  }

  /** Starts rsyslogd and waits until it accepts TCP connections. */
  async start(bin: string): Promise<void> {
    fs.rmSync(this.pidFile, { force: true });
    const child = spawn(bin, ['-n', '-f', this.conf, '-i', this.pidFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`rsyslogd exited: ${this.log}`);
      if (await canConnect(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`rsyslogd did not start listening: ${this.log}`);
  }

  /** SIGSTOP: rsyslogd keeps its sockets but reads and answers nothing. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  /** SIGKILL (after SIGCONT), resolved when it is gone: no chance to flush or answer. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }

  private counted = 0;
  private countedBytes = 0;

  /** Number of lines received so far (incremental: reads only what was appended since). */
  count(): number {
    let size: number;
    try {
      size = fs.statSync(this.outFile).size;
    } catch {
      return 0;
    }
    if (size < this.countedBytes) {
      this.counted = 0;
      this.countedBytes = 0;
    }
    if (size > this.countedBytes) {
      const fd = fs.openSync(this.outFile, 'r');
      try {
        const buf = Buffer.allocUnsafe(size - this.countedBytes);
        const n = fs.readSync(fd, buf, 0, buf.length, this.countedBytes);
        let last = -1;
        for (let i = buf.indexOf(0x0a); i >= 0 && i < n; i = buf.indexOf(0x0a, i + 1)) {
          this.counted++;
          last = i;
        }
        this.countedBytes += last + 1;
      } finally {
        fs.closeSync(fd);
      }
    }
    return this.counted;
  }

  lines(): string[] {
    if (!fs.existsSync(this.outFile)) return [];
    return fs
      .readFileSync(this.outFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '');
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Waits (polling) until `cond` is true; rejects after `timeoutMs` with `what`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Validates XML documents against an XSD with xmllint (binary if installed, else xmllint-wasm). */
export async function validateWithXsd(
  xmls: string[],
  xsdPath: string,
  tmpDir: string,
): Promise<{ ok: boolean; output: string }> {
  fs.mkdirSync(tmpDir, { recursive: true });
  const files = xmls.map((x, i) => {
    const f = path.join(tmpDir, `record-${String(i).padStart(4, '0')}.xml`);
    fs.writeFileSync(f, x);
    return f;
  });
  let bin: string | undefined;
  try {
    bin = execFileSync('sh', ['-c', 'command -v xmllint'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    bin = undefined;
  }
  if (bin) {
    try {
      const out = execFileSync(bin, ['--noout', '--schema', xsdPath, ...files], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      return { ok: true, output: out };
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const wasm = require('xmllint-wasm') as {
    validateXML(o: {
      xml: { fileName: string; contents: string }[];
      schema: { fileName: string; contents: string }[];
    }): Promise<{ valid: boolean; rawOutput: string }>;
  };
  const r = await wasm.validateXML({
    xml: files.map((f) => ({ fileName: path.basename(f), contents: fs.readFileSync(f, 'utf8') })),
    schema: [{ fileName: path.basename(xsdPath), contents: fs.readFileSync(xsdPath, 'utf8') }],
  });
  return { ok: r.valid, output: r.rawOutput };
}
