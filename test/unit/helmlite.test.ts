/**
 * tools/helmlite, the Helm-3-compatible renderer the chart tests use where no helm is installed:
 * each case is a behaviour `helm template` / `helm lint --strict` documents, on a small chart written here.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import { buildHelmlite } from '../support/chart-renderer';

const hasGo = spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
if (!hasGo && !process.env.HELMLITE) console.warn('SKIPPING the helmlite tests: go is not installed');
const suite = hasGo || process.env.HELMLITE ? describe : describe.skip;

let bin = '';
let root = '';

function chart(name: string, files: Record<string, string>): string {
  const dir = path.join(root, name);
  for (const [f, text] of Object.entries({
    'Chart.yaml': `apiVersion: v2\nname: ${name}\nversion: 1.2.3\nappVersion: "9.9"\nkubeVersion: ">=1.25.0-0"\n`,
    'templates/NOTES.txt': 'Thanks for installing {{ .Release.Name }}',
    ...files,
  })) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  }
  return dir;
}

function run(args: string[]) {
  return spawnSync(bin, args, { encoding: 'utf8' });
}

function objects(stdout: string): Record<string, unknown>[] {
  return YAML.parseAllDocuments(stdout)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((d): d is Record<string, unknown> => d !== null);
}

suite('tools/helmlite', () => {
  beforeAll(() => {
    bin = process.env.HELMLITE ?? buildHelmlite();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'helmlite-'));
  }, 120_000);
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const configmap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
  namespace: {{ .Release.Namespace }}
data:
  values: {{ toJson .Values | quote }}
`;

  it('merges values.yaml, then -f files, then -set; -set types ints and booleans, null deletes', () => {
    const dir = chart('merge', {
      'values.yaml': 'a: {b: 1, c: keep, gone: x}\nlist: [1, 2]\nport: 8080\n',
      'templates/cm.yaml': configmap,
    });
    const over = path.join(root, 'over.yaml');
    fs.writeFileSync(over, 'a: {b: 2, d: [x]}\nlist: [3]\n');
    const r = run([
      '-name', 'rel', '-namespace', 'ns', '-f', over,
      '-set', 'a.b=3,a.e=true,a.f=0123,a.gone=null', '-set', 'items[1].name=two', '-set', 'tags={x,y}',
      '-set', 'dotted\\.key=v', dir,
    ]); // prettier-ignore
    expect(r.stderr).toBe('');
    const [cm] = objects(r.stdout);
    expect(cm.metadata).toEqual({ name: 'rel-cm', namespace: 'ns' });
    const values = JSON.parse((cm.data as { values: string }).values);
    expect(values).toEqual({
      a: { b: 3, c: 'keep', d: ['x'], e: true, f: '0123' },
      list: [3], // lists are replaced, not merged
      port: 8080,
      items: [null, { name: 'two' }],
      tags: ['x', 'y'],
      'dotted.key': 'v',
    });
  });

  it('include, tpl, required, fail, toYaml (Helm layout, numbers through JSON) and <no value>', () => {
    const dir = chart('funcs', {
      'values.yaml':
        'greeting: "hello {{ .Release.Name }}"\nbig: 1000000\nlabels: {z: "1", a: b}\nports: [80, 443]\n',
      'templates/_helpers.tpl':
        '{{- define "funcs.name" -}}{{ .Chart.Name }}-{{ .Chart.Version }}{{- end -}}',
      'templates/cm.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "funcs.name" . }}
  labels:
    {{- toYaml .Values.labels | nindent 4 }}
data:
  greeting: {{ tpl .Values.greeting . | quote }}
  big: {{ .Values.big | quote }}
  missing: "[{{ .Values.nothing }}]"
  app: {{ .Chart.AppVersion | quote }}
  kube: "{{ .Capabilities.KubeVersion.Major }}.{{ .Capabilities.KubeVersion.Minor }}"
  apps: "{{ .Capabilities.APIVersions.Has "apps/v1" }} {{ .Capabilities.APIVersions.Has "example.com/v9" }}"
  template: {{ .Template.Name | quote }}
  yaml: |
    {{- toYaml (dict "ports" .Values.ports "big" .Values.big) | nindent 4 }}
`,
      'templates/guard.yaml': `{{- if .Values.mustFail }}{{ fail "refused: mustFail is set" }}{{ end -}}
{{- if .Values.needName }}{{ required "name is required" .Values.name }}{{ end -}}
`,
    });
    const r = run(['-name', 'rel', dir]);
    expect(r.stderr).toBe('');
    const [cm] = objects(r.stdout);
    expect((cm.metadata as { name: string }).name).toBe('funcs-1.2.3');
    expect((cm.metadata as { labels: unknown }).labels).toEqual({ a: 'b', z: '1' });
    expect(cm.data).toEqual({
      greeting: 'hello rel',
      big: '1e+06', // what helm prints for a large number read from YAML
      missing: '[]',
      app: '9.9',
      kube: '1.27',
      apps: 'true false',
      template: 'funcs/templates/cm.yaml',
      yaml: 'big: 1000000\nports:\n- 80\n- 443\n', // toYaml goes through JSON and YAML, as helm's does
    });
    const failed = run(['-set', 'mustFail=true', dir]);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain('error calling fail: refused: mustFail is set');
    expect(run(['-set', 'needName=true', dir]).stderr).toContain('name is required');
    expect(run(['-set', 'needName=true', '-set', 'name=x', dir]).status).toBe(0);
  });

  it('renders no partials, no NOTES.txt and no empty documents; orders manifests as helm installs them', () => {
    const dir = chart('order', {
      'templates/a-deploy.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n',
      'templates/b-empty.yaml': '{{- if false }}\nkind: Secret\n{{- end }}\n# only a comment\n',
      'templates/c-svc.yaml':
        'apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n',
      'templates/_partial.yaml': 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: never\n',
    });
    const r = run([dir]);
    expect(r.stderr).toBe('');
    expect(objects(r.stdout).map((o) => o.kind)).toEqual(['ServiceAccount', 'Service', 'Deployment']);
    expect(r.stdout).toContain('# Source: order/templates/c-svc.yaml');
    expect(r.stdout).not.toContain('Thanks for installing');
  });

  it("refuses a Kubernetes version outside the chart's kubeVersion, and env (helm removes it)", () => {
    const dir = chart('kube', { 'templates/cm.yaml': configmap });
    expect(run(['-kube-version', 'v1.24.0', dir]).stderr).toMatch(/incompatible with Kubernetes v1\.24\.0/);
    expect(run(['-kube-version', 'v1.30.2', dir]).status).toBe(0);
    const envChart = chart('envchart', { 'templates/cm.yaml': '{{ env "HOME" }}' });
    expect(run([envChart]).stderr).toMatch(/function "env" not defined/);
  });

  it('lints: strict refuses a missing value; bad names and chart metadata are reported', () => {
    const good = chart('good', { 'values.yaml': 'name: x\n', 'templates/cm.yaml': configmap });
    const ok = run(['-lint', '-strict', good]);
    expect([ok.status, ok.stderr]).toEqual([0, '']);
    expect(ok.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');

    const missing = chart('missing', {
      'templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.cm.name }}\n',
    });
    expect(run(['-lint', missing]).stderr).toMatch(/has no metadata\.name|nil pointer/);
    const strict = run(['-lint', '-strict', '-set', 'cm.other=1', missing]);
    expect(strict.status).toBe(1);
    expect(strict.stderr).toMatch(/map has no entry for key "name"/);

    const bad = chart('bad', {
      'Chart.yaml': 'apiVersion: v1\nname: other\nversion: one\n',
      'templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Name\n',
    });
    const lint = run(['-lint', bad]);
    expect(lint.status).toBe(1);
    expect(lint.stderr).toContain('apiVersion must be v2');
    expect(lint.stderr).toContain('must match the chart directory "bad"');
    expect(lint.stderr).toContain('"one" is not SemVer 2');
    expect(lint.stderr).toContain('"Not_A_Name" is not a valid DNS-1123 name');
  });
});
