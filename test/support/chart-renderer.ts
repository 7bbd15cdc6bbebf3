/**
 * How the chart tests render and lint helm/xcai-gateway: a real `helm` when one is on PATH, otherwise
 * the project's own tools/helmlite (Go text/template + sprig, the engine of Helm 3), built once with
 * Go from Debian's packages and cached by the hash of its sources. With neither, `reason` says why.
 * Env: HELMLITE=/path/to/helmlite (a prebuilt binary), XCAI_CHART_RENDERER=helmlite (ignore helm).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
const HELMLITE_SRC = path.join(REPO_ROOT, 'tools', 'helmlite');
export const K8S_VALIDATE = path.join(REPO_ROOT, 'tools', 'k8s-validate.js');

export interface ChartRenderer {
  kind: 'helm' | 'helmlite';
  bin: string;
}

export interface RenderOptions {
  chart: string;
  release?: string;
  namespace?: string;
  files?: string[];
  sets?: string[];
}

const onPath = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

/** Builds tools/helmlite into the cache (atomically: parallel test workers never see half a binary). */
export function buildHelmlite(): string {
  const hash = createHash('sha256');
  for (const f of ['main.go', 'build.sh']) hash.update(fs.readFileSync(path.join(HELMLITE_SRC, f)));
  const cache = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  const bin = path.join(cache, 'xcai-helmlite', hash.digest('hex').slice(0, 16), 'helmlite');
  if (fs.existsSync(bin)) return bin;
  const tmp = `${bin}.${process.pid}.tmp`;
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  execFileSync(path.join(HELMLITE_SRC, 'build.sh'), [tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
  fs.renameSync(tmp, bin);
  return bin;
}

export function findChartRenderer(): { renderer?: ChartRenderer; reason?: string } {
  if (process.env.HELMLITE) return { renderer: { kind: 'helmlite', bin: process.env.HELMLITE } };
  if (process.env.XCAI_CHART_RENDERER !== 'helmlite' && onPath('helm', ['version', '--short']))
    return { renderer: { kind: 'helm', bin: 'helm' } };
  if (!onPath('go', ['version'])) return { reason: 'neither helm nor go is installed (CI installs go)' };
  return { renderer: { kind: 'helmlite', bin: buildHelmlite() } };
}

function valuesArgs(r: ChartRenderer, o: RenderOptions): string[] {
  const set = r.kind === 'helm' ? '--set' : '-set';
  return [...(o.files ?? []).flatMap((f) => ['-f', f]), ...(o.sets ?? []).flatMap((s) => [set, s])];
}

/** Arguments of `helm template` (or helmlite's equivalent). */
export function templateArgs(r: ChartRenderer, o: RenderOptions): string[] {
  const release = o.release ?? 'release-name';
  const ns = o.namespace ?? 'default';
  return r.kind === 'helm'
    ? ['template', release, o.chart, '-n', ns, ...valuesArgs(r, o)]
    : ['-name', release, '-namespace', ns, ...valuesArgs(r, o), o.chart];
}

/** Arguments of `helm lint --strict` (or helmlite's equivalent). */
export function lintArgs(r: ChartRenderer, o: RenderOptions): string[] {
  return r.kind === 'helm'
    ? ['lint', '--strict', o.chart, ...valuesArgs(r, o)]
    : ['-lint', '-strict', ...valuesArgs(r, o), o.chart];
}
