/**
 * The acknowledged audit transport against a REAL receiver: rsyslogd with imrelp (RELP over mutual
 * TLS, tls.authMode "name" with a permitted peer). A record counts as delivered only once rsyslog
 * acknowledged it: records sent to a frozen rsyslog are not counted, and after it is killed and
 * replaced every record arrives. Skipped with a message only when rsyslogd or imrelp is missing
 * (CI installs rsyslog-relp).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildAuditMessages } from '@xcai/shared/src/audit/messages';
import { loadAuditRecords } from '@xcai/shared/src/audit/report';
import { createAuditSink, type ManagedAuditSink } from '@xcai/shared/src/audit/sink';
import { verifySpool } from '@xcai/shared/src/audit/spool';
import { parseSyslogMessage } from '@xcai/shared/src/audit/syslog';
import {
  findRsyslogd,
  freePort,
  makeCerts,
  RsyslogReceiver,
  sampleTransactionEvent,
  testSinkConfig,
  transactionMatrix,
  waitFor,
} from '../support/audit';

const rsyslogd = findRsyslogd();
const imrelp = ['/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so', '/usr/lib/rsyslog/imrelp.so'].some((f) =>
  fs.existsSync(f),
);
if (!rsyslogd || !imrelp)
  console.warn(
    'SKIPPING RELP audit tests: rsyslogd with imrelp is not installed (apt-get install rsyslog-relp)',
  );
const maybe = rsyslogd && imrelp ? describe : describe.skip;

const source = { auditSourceId: 'gw-a', applicationName: 'xcai-test' };

maybe('rsyslog imrelp as the Audit Record Repository (RELP over TLS)', () => {
  let tmp: string;
  let certs: ReturnType<typeof makeCerts>;
  let port: number;
  let receivers: RsyslogReceiver[] = [];
  let n = 0;

  async function startReceiver(): Promise<RsyslogReceiver> {
    const rs = new RsyslogReceiver(
      path.join(tmp, `rsyslog-${++n}`),
      port,
      {
        ca: path.join(tmp, 'certs', 'ca.crt'),
        cert: certs.certs.arr!.certFile,
        key: certs.certs.arr!.keyFile,
      },
      ['gw-audit'],
      'imrelp',
    );
    await rs.start(rsyslogd as string);
    receivers.push(rs);
    return rs;
  }

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-relp-'));
    certs = makeCerts(path.join(tmp, 'certs'), ['arr', 'gw-audit']);
  });
  beforeEach(async () => {
    port = await freePort();
    receivers = [];
  });
  afterEach(async () => {
    for (const r of receivers) await r.stop();
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const sink = (spoolDir: string): ManagedAuditSink =>
    createAuditSink(testSinkConfig(certs, { transport: 'relp', port, spoolDir }));

  /** Record ids received by every rsyslog of this test. */
  const received = () =>
    receivers.flatMap((r) => r.lines().map((l) => parseSyslogMessage(l).sd['xcai@32473']!.id!));

  test('every record is acknowledged: N records give exactly N at rsyslog, all counted delivered', async () => {
    await startReceiver();
    const spoolDir = path.join(tmp, 'spool-exact');
    const s = sink(spoolDir);
    const events = transactionMatrix().map((m) => m.event);
    const expected = events.flatMap((e) => buildAuditMessages(e, source)).length;
    for (const e of events) s.record(e);
    expect(await s.drain(30_000)).toBe(true);
    await s.close();
    const ids = received();
    expect(ids).toHaveLength(expected);
    expect(new Set(ids)).toEqual(new Set(loadAuditRecords([spoolDir]).map((r) => r.id)));
    expect(s.metrics()).toMatchObject({ delivered: expected, depth: 0 });
  });

  test('frozen, then killed and replaced: nothing sent to the frozen receiver counts as delivered, nothing is lost', async () => {
    const first = await startReceiver();
    const spoolDir = path.join(tmp, 'spool-frozen');
    const s = sink(spoolDir);
    s.record(sampleTransactionEvent('ITI-38', 'responder', 'success', 0));
    expect(await s.drain(20_000)).toBe(true);
    const deliveredBefore = s.metrics().delivered;

    first.freeze();
    const total = 160;
    for (let i = 1; i <= total; i++) s.record(sampleTransactionEvent('RAD-75', 'responder', 'success', i));
    await s.flush();
    await new Promise((r) => setTimeout(r, 3000));
    // Sent (the kernel took them), never acknowledged: still undelivered.
    expect(s.metrics().delivered).toBe(deliveredBefore);
    expect(s.depth()).toBe(total);

    await first.kill();
    await startReceiver();
    const all = new Set(loadAuditRecords([spoolDir]).map((r) => r.id));
    await waitFor(
      () => received().filter((id) => all.has(id)).length >= all.size && s.depth() === 0,
      60_000,
      'every record',
    );
    await s.close();
    const got = new Set(received());
    const lost = [...all].filter((id) => !got.has(id)).length;
    process.stdout.write(
      `RELP: ${total} records sent to a frozen rsyslog; lost ${lost} of ${all.size}; ` +
        `${received().length - got.size} duplicate(s)\n`,
    );
    expect(lost).toBe(0);
    expect(verifySpool(spoolDir).ok).toBe(true);
  });
});
