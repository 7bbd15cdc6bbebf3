/**
 * deploy/docker/*.Dockerfile and the demo Audit Record Repository launcher of the compose deployment.
 * No Docker engine here: the Dockerfiles are checked for the properties every image must keep (multi-stage
 * build of the services, uid 10001, base image pinnable by digest, entry points that exist), and the
 * compose deployment's Audit Record Repository (the product's repository-main, with compose.yaml's settings
 * and health check) is run for real against a gateway audit sink.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import { createAuditSink } from '@xcai/shared/src/audit/sink';
import { sampleTransactionEvent, waitFor } from '../support/audit';

const repoRoot = path.resolve(__dirname, '..', '..');
const dockerDir = path.join(repoRoot, 'deploy', 'docker');
const dockerfiles = fs.readdirSync(dockerDir).filter((f) => f.endsWith('.Dockerfile'));
const SERVICES = ['initiating-gateway', 'responding-gateway', 'reference-community', 'imaging-source'];

interface Instruction {
  op: string;
  args: string;
}
/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(file: string): Instruction[] {
  const text = fs.readFileSync(path.join(dockerDir, file), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: (op as string).toUpperCase(), args: rest.join(' ') };
    });
}
/** The instructions of the last (runtime) stage. */
function runtimeStage(ins: Instruction[]): Instruction[] {
  const last = ins.map((i) => i.op).lastIndexOf('FROM');
  return ins.slice(last);
}

describe('deploy/docker/*.Dockerfile', () => {
  it('has one Dockerfile per service image plus the certs tool', () => {
    expect(dockerfiles.sort()).toEqual(
      [...SERVICES.map((s) => `${s}.Dockerfile`), 'certs.Dockerfile'].sort(),
    );
  });

  it.each(dockerfiles)(
    '%s: BuildKit syntax, base image from a build argument (pinnable by digest)',
    (file) => {
      const text = fs.readFileSync(path.join(dockerDir, file), 'utf8');
      expect(text.startsWith('# syntax=docker/dockerfile:1\n')).toBe(true);
      const ins = instructions(file);
      const first = ins.findIndex((i) => i.op === 'FROM');
      const arg = ins.slice(0, first).find((i) => i.op === 'ARG');
      expect(arg?.args).toMatch(/^(NODE|DEBIAN)_IMAGE=[a-z0-9.-]+:[a-z0-9.-]+$/);
      const argName = (arg?.args ?? '').split('=')[0];
      for (const from of ins.filter((i) => i.op === 'FROM'))
        expect(from.args).toMatch(new RegExp(`^\\$\\{${argName}\\}`));
      expect(text).not.toMatch(/:latest\b/);
    },
  );

  it.each(dockerfiles)('%s: runs as uid/gid 10001, never as root', (file) => {
    const rt = runtimeStage(instructions(file));
    const users = rt.filter((i) => i.op === 'USER');
    expect(users.map((u) => u.args)).toEqual(['10001:10001']);
    // Nothing after USER switches back or installs.
    const after = rt.slice(rt.findIndex((i) => i.op === 'USER'));
    expect(after.some((i) => i.op === 'RUN')).toBe(false);
  });

  it.each(SERVICES)(
    '%s.Dockerfile: multi-stage build, production dependencies only, root-owned app, entry point exists',
    (svc) => {
      const ins = instructions(`${svc}.Dockerfile`);
      expect(ins.filter((i) => i.op === 'FROM').map((i) => i.args)).toEqual([
        '${NODE_IMAGE} AS build',
        '${NODE_IMAGE}',
      ]);
      const build = ins.slice(0, ins.map((i) => i.op).lastIndexOf('FROM'));
      expect(
        build.some(
          (i) =>
            i.op === 'RUN' &&
            i.args.includes(`npm ci --omit=dev --ignore-scripts --workspace services/${svc}`),
        ),
      ).toBe(true);
      const rt = runtimeStage(ins);
      expect(rt.filter((i) => i.op === 'COPY').map((i) => i.args)).toEqual([
        '--from=build --chown=root:root /prod/ /app/',
      ]);
      // npm/corepack/yarn removed from the runtime (R59).
      expect(rt.find((i) => i.op === 'RUN')?.args).toMatch(/rm -rf \/usr\/local\/lib\/node_modules\/npm/);
      const cmd = JSON.parse(rt.find((i) => i.op === 'CMD')?.args ?? '[]') as string[];
      expect(cmd[0]).toBe('node');
      const main = cmd[1] as string;
      expect(main).toBe(`services/${svc}/dist/main.js`);
      expect(
        fs.existsSync(path.join(repoRoot, main.replace('/dist/', '/src/').replace(/\.js$/, '.ts'))),
      ).toBe(true);
    },
  );

  it('certs.Dockerfile: only the make-certs.sh script enters the image', () => {
    const ins = instructions('certs.Dockerfile');
    const copies = ins.filter((i) => i.op === 'COPY');
    expect(copies.map((c) => c.args)).toEqual([
      '--chown=root:root --chmod=0755 make-certs.sh /usr/local/bin/make-certs.sh',
    ]);
    expect(fs.existsSync(path.join(repoRoot, 'deploy', 'certs', 'make-certs.sh'))).toBe(true);
  });

  it('keeps keys and certificates out of the root build context (/.dockerignore)', () => {
    const ignore = fs.readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8').split('\n');
    for (const p of ['**/*.key', '**/*.pem', '**/*.crt']) expect(ignore).toContain(p);
  });
});

/* ---------- the Audit Record Repository of the compose deployment ---------- */

const composeFile = path.join(dockerDir, 'compose.yaml');
const arrService = (
  YAML.parse(fs.readFileSync(composeFile, 'utf8'), { merge: true }) as {
    services: Record<
      string,
      { command: string[]; environment: Record<string, string>; healthcheck: { test: string[] } }
    >;
  }
).services['audit-repository'];
const arrMain = path.join(repoRoot, arrService.command[1] as string); // shared/dist/audit/repository-main.js
const haveOpenssl = spawnSync('openssl', ['version']).status === 0;
const why = !haveOpenssl
  ? '`openssl` is not installed'
  : !fs.existsSync(arrMain)
    ? `${path.relative(repoRoot, arrMain)} is not built (npm run build)`
    : undefined;
if (why) console.warn(`SKIPPING the compose audit-repository test: ${why}`);
const arrSuite = why ? describe.skip : describe;

arrSuite('compose.yaml audit-repository: the product ARR as compose runs it, and its health check', () => {
  let tmp: string;
  let arr: ChildProcess | undefined;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xcai-compose-arr-'));
    // The same certificate names and subjectAltNames as the compose `certs` service.
    execFileSync(
      'bash',
      [
        path.join(repoRoot, 'deploy', 'certs', 'make-certs.sh'),
        path.join(tmp, 'certs'),
        'gw-a:DNS:gw-a,DNS:initiating-gateway-a,DNS:localhost,IP:127.0.0.1',
        'audit-repository:DNS:audit-repository,DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
  });
  afterAll(() => {
    arr?.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** The service's environment with its container paths moved into the temporary directory. */
  const env = (port: number): NodeJS.ProcessEnv => {
    const out: NodeJS.ProcessEnv = { ...process.env };
    for (const [k, v] of Object.entries(arrService.environment))
      out[k] = v.startsWith('/etc/xcai/certs/')
        ? path.join(tmp, 'certs', path.basename(v))
        : v.startsWith('/var/lib/')
          ? path.join(tmp, 'arr')
          : v;
    return { ...out, XCAI_ARR_HOST: '127.0.0.1', XCAI_ARR_PORT: String(port) };
  };
  /** Runs the compose healthcheck (CMD node -e …) with the service's environment. */
  const healthcheck = (port: number) => {
    const [cmd, node, ...args] = arrService.healthcheck.test;
    expect([cmd, node]).toEqual(['CMD', 'node']);
    return spawnSync(process.execPath, args, { env: env(port), encoding: 'utf8', timeout: 15_000 });
  };

  it('stores the records a gateway sends over mutual TLS; the healthcheck passes while it runs, fails after', async () => {
    const proc = spawn(process.execPath, [arrMain], { env: env(0), stdio: ['ignore', 'pipe', 'pipe'] });
    arr = proc;
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const started = await new Promise<{ port: number; dir: string }>((resolve, reject) => {
      let out = '';
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"audit repository started"'));
        if (line) resolve(JSON.parse(line) as { port: number; dir: string });
      });
      proc.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    expect(started.dir).toBe(path.join(tmp, 'arr'));

    // A gateway's sink with initiating-gateway-a's audit settings (its own certificate, the demo CA).
    const certs = (f: string) => fs.readFileSync(path.join(tmp, 'certs', f), 'utf8');
    const sink = createAuditSink({
      transport: 'tls',
      host: '127.0.0.1',
      port: started.port,
      tls: {
        cert: certs('gw-a.crt'),
        key: certs('gw-a.key'),
        ca: certs('ca.crt'),
        servername: 'audit-repository',
      },
      spoolDir: path.join(tmp, 'spool'),
      source: { auditSourceId: 'initiating-gateway-a' },
      confirmMs: 200,
      closeTimeoutMs: 3000,
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    sink.record(sampleTransactionEvent('RAD-69', 'responder', 'success'));
    const records = () =>
      fs.existsSync(started.dir)
        ? fs
            .readdirSync(started.dir)
            .filter((f) => /^audit-\d{8}\.jsonl$/.test(f))
            .flatMap((f) => fs.readFileSync(path.join(started.dir, f), 'utf8').split('\n').filter(Boolean))
            .map((l) => JSON.parse(l) as { peer: string; xml: string })
        : [];
    await waitFor(() => records().length > 0, 20_000, 'a record at the ARR');
    await sink.close();
    const [rec] = records();
    expect(rec?.peer).toContain('CN=gw-a');
    expect(rec?.xml).toContain('<AuditMessage');

    const healthy = healthcheck(started.port);
    expect(healthy.stderr).toBe('');
    expect(healthy.status).toBe(0);
    proc.kill('SIGTERM');
    expect(await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)))).toBe(0);
    arr = undefined;
    expect(healthcheck(started.port).status).toBe(1);
  });
});
