/**
 * The Helm chart (charts/arena-operator) with the real helm, offline:
 * lint, template with default and non-default values, every rendered object
 * validated against the Kubernetes OpenAPI schemas, values.schema.json and the
 * templates' own checks rejecting bad values with a message naming the value,
 * and the chart's CRD, RBAC and README kept in sync with their sources.
 * The install into a control plane is in install.test.ts.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { repoPath } from '../../testing/paths.js';
import { CHART_DIR, helm, helmAsync, helmAvailable, setArgs, template, validateK8s, type KubeObject } from './tools.js';
import { chartCopies, chartReadme, stale, valuesDocs } from './sync.js';

/** Values that exercise the optional parts. */
export const NON_DEFAULT = {
  replicaCount: 2,
  podDisruptionBudget: { enabled: true },
  'metrics.serviceMonitor.enabled': true,
  'metrics.serviceMonitor.labels': { release: 'kube-prometheus-stack' },
  'metrics.prometheusRule.enabled': true,
  'metrics.prometheusRule.planUtilizationThreshold': 0.85,
  'metrics.prometheusRule.alertLabels': { team: 'platform' },
  resources: { requests: { cpu: '250m', memory: '384Mi' }, limits: { cpu: '1', memory: '1Gi' } },
  'operator.watchNamespace': 'arena',
  'operator.workers': 8,
  'operator.logLevel': 'debug',
  'leaderElection.id': 'arena-operator-blue',
  'image.repository': 'registry.example.com/platform/arena-operator',
  'image.digest': `sha256:${'a'.repeat(64)}`,
  imagePullSecrets: [{ name: 'regcred' }],
  tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'platform', effect: 'NoSchedule' }],
};

const kinds = (objs: KubeObject[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
const one = (objs: KubeObject[], kind: string) => {
  const found = objs.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}, got ${kinds(objs).join(', ')}`);
  return found[0]!;
};
const container = (objs: KubeObject[]) => one(objs, 'Deployment').spec.template.spec.containers[0];

before(() => {
  const missing = helmAvailable();
  assert.ok(!missing, missing);
});

test('helm lint --strict passes with default and with non-default values', () => {
  for (const values of [{}, NON_DEFAULT]) {
    const r = helm(['lint', '--strict', CHART_DIR, ...setArgs(values)]);
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    assert.match(r.out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

test('helm template with default values: the operator objects, every one valid against the Kubernetes OpenAPI schema', async () => {
  const objs = template();
  assert.deepEqual(kinds(objs), [
    'ClusterRole/arena-operator',
    'ClusterRoleBinding/arena-operator',
    'Deployment/arena-operator',
    'Role/arena-operator-leader-election',
    'RoleBinding/arena-operator-leader-election',
    'Service/arena-operator-metrics',
    'ServiceAccount/arena-operator',
  ]);
  for (const o of objs) await validateK8s(o);
  for (const o of objs)
    if (o.kind !== 'ClusterRole' && o.kind !== 'ClusterRoleBinding')
      assert.equal(o.metadata.namespace, 'arena-system', `${o.kind} namespace`);
  // the check can fail: a broken Deployment is rejected
  const broken = structuredClone(one(objs, 'Deployment'));
  broken.spec.replicas = 'two';
  await assert.rejects(validateK8s(broken));
});

test('the Deployment: arena operator run with leader election, probes, metrics port, POD_NAMESPACE and a restricted security context', () => {
  const objs = template();
  const dep = one(objs, 'Deployment');
  const c = container(objs);
  assert.equal(dep.spec.replicas, 1);
  assert.equal(c.image, 'ghcr.io/example/arena-operator:0.1.0', 'the tag defaults to the appVersion');
  assert.deepEqual(c.command, ['arena']);
  assert.deepEqual(c.args.slice(0, 2), ['operator', 'run']);
  for (const a of [
    '--leader-elect',
    '--leader-election-namespace=$(POD_NAMESPACE)',
    '--leader-election-id=arena-operator',
    '--metrics-bind-address=:8080',
    '--health-probe-bind-address=:8081',
    '--workers=4',
    '--log-level=info',
  ]) {
    assert.ok(c.args.includes(a), `args ${JSON.stringify(c.args)} lack ${a}`);
  }
  assert.deepEqual(c.env.find((e: any) => e.name === 'POD_NAMESPACE').valueFrom, {
    fieldRef: { fieldPath: 'metadata.namespace' },
  });
  assert.deepEqual(
    c.ports.map((p: any) => [p.name, p.containerPort]),
    [
      ['metrics', 8080],
      ['health', 8081],
    ],
  );
  assert.equal(c.livenessProbe.httpGet.path, '/healthz');
  // /readyz is 200 on a leader that has synced and on a standby waiting for the Lease
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } });
  const pod = dep.spec.template.spec;
  assert.equal(pod.serviceAccountName, 'arena-operator');
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.equal(c.securityContext.seccompProfile.type, 'RuntimeDefault');
  // the metrics Service selects the operator pods and targets the named port
  const svc = one(objs, 'Service');
  assert.deepEqual(svc.spec.selector, dep.spec.selector.matchLabels);
  assert.deepEqual(svc.spec.ports, [{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
});

test('without leader election: no Lease Role, no --leader-elect, readiness on /readyz', () => {
  const objs = template({ 'leaderElection.enabled': false });
  assert.ok(!objs.some((o) => o.kind === 'Role' || o.kind === 'RoleBinding'));
  const c = container(objs);
  assert.ok(!c.args.some((a: string) => a.startsWith('--leader-elect')));
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
});

test('helm template with non-default values: replicas, resources, ServiceMonitor, PrometheusRule, PDB; all valid (prometheus-operator schemas included)', async () => {
  const objs = template(NON_DEFAULT);
  assert.deepEqual(kinds(objs), [
    'ClusterRole/arena-operator',
    'ClusterRoleBinding/arena-operator',
    'Deployment/arena-operator',
    'PodDisruptionBudget/arena-operator',
    'PrometheusRule/arena-operator',
    'Role/arena-operator-leader-election',
    'RoleBinding/arena-operator-leader-election',
    'Service/arena-operator-metrics',
    'ServiceAccount/arena-operator',
    'ServiceMonitor/arena-operator',
  ]);
  for (const o of objs) await validateK8s(o);
  const dep = one(objs, 'Deployment');
  const c = container(objs);
  assert.equal(dep.spec.replicas, 2);
  assert.deepEqual(c.resources, NON_DEFAULT.resources);
  assert.equal(c.image, `registry.example.com/platform/arena-operator@sha256:${'a'.repeat(64)}`);
  for (const a of ['--namespace=arena', '--workers=8', '--log-level=debug', '--leader-election-id=arena-operator-blue'])
    assert.ok(c.args.includes(a), `args lack ${a}`);
  assert.deepEqual(dep.spec.template.spec.imagePullSecrets, [{ name: 'regcred' }]);
  assert.ok(dep.spec.template.spec.affinity.podAntiAffinity, 'two replicas are spread over nodes');
  assert.equal(one(objs, 'PodDisruptionBudget').spec.minAvailable, 1);
  const sm = one(objs, 'ServiceMonitor');
  assert.equal((sm.metadata as any).labels.release, 'kube-prometheus-stack');
  assert.deepEqual(sm.spec.selector.matchLabels, dep.spec.selector.matchLabels);
  assert.equal(sm.spec.endpoints[0].port, 'metrics');
  assert.equal(sm.spec.endpoints[0].honorLabels, true);
  // a broken PrometheusRule is rejected by the prometheus-operator schema, so the check can fail
  const broken = structuredClone(one(objs, 'PrometheusRule'));
  broken.spec.groups[0].rules[0].for = 5;
  await assert.rejects(validateK8s(broken));
});

test('the PrometheusRule alerts on reconcile errors, planned saturation (> threshold for 10m) and error findings', () => {
  const rules: any[] = one(template(NON_DEFAULT), 'PrometheusRule').spec.groups.flatMap((g: any) => g.rules);
  const byName = Object.fromEntries(rules.map((r) => [r.alert, r]));
  const job = 'job="arena-operator-metrics"';
  assert.match(
    byName['ArenaOperatorReconcileErrors'].expr,
    /^sum\(rate\(arena_operator_reconcile_errors_total\{job="arena-operator-metrics"\}\[5m\]\)\) > 0$/,
  );
  assert.equal(
    byName['ArenaPlanNearSaturation'].expr,
    `max by (namespace, name, resource) (arena_plan_utilization{${job}}) > 0.85`,
  );
  assert.equal(byName['ArenaPlanNearSaturation'].for, '10m');
  assert.equal(
    byName['ArenaPlanInfeasible'].expr,
    `max by (namespace, name) (arena_plan_findings{${job}, severity="error"}) > 0`,
  );
  assert.ok(byName['ArenaOperatorDown'], 'an alert when the operator is not scraped');
  for (const r of rules) {
    assert.equal(r.labels.team, 'platform', `${r.alert}: alertLabels`);
    assert.match(r.labels.severity, /^(warning|critical)$/);
    assert.ok(r.annotations.summary && r.annotations.description, `${r.alert}: annotations`);
  }
  // Prometheus templates survive Helm's templating
  assert.match(
    byName['ArenaPlanNearSaturation'].annotations.summary,
    /\{\{ \$labels\.namespace \}\}\/\{\{ \$labels\.name \}\}/,
  );
});

/** Bad values, and what the error must name. */
const BAD: [string, Record<string, unknown>, RegExp][] = [
  ['negative replicas', { replicaCount: -1 }, /at '\/replicaCount': minimum: got -1, want 0/],
  ['replicas as a string', { replicaCount: 'two' }, /at '\/replicaCount': got string, want integer/],
  ['unknown top-level key (typo)', { replicas: 2 }, /additional properties 'replicas' not allowed/],
  [
    'unknown nested key',
    { 'metrics.serviceMonitor.enable': true },
    /at '\/metrics\/serviceMonitor': additional properties 'enable' not allowed/,
  ],
  [
    'log level',
    { 'operator.logLevel': 'verbose' },
    /at '\/operator\/logLevel': value must be one of 'debug', 'info', 'warn', 'error'/,
  ],
  ['workers 0', { 'operator.workers': 0 }, /at '\/operator\/workers': minimum: got 0, want 1/],
  [
    'resync period',
    { 'operator.resyncPeriod': 'soon' },
    /at '\/operator\/resyncPeriod': 'soon' does not match pattern/,
  ],
  [
    'memory quantity',
    { 'resources.limits.memory': 'lots' },
    /at '\/resources\/limits\/memory': 'lots' does not match pattern/,
  ],
  ['privileged port', { 'metrics.port': 80 }, /at '\/metrics\/port': minimum: got 80, want 1,?024/],
  [
    'privilege escalation',
    { 'securityContext.allowPrivilegeEscalation': true },
    /at '\/securityContext\/allowPrivilegeEscalation': value must be false/,
  ],
  ['root', { 'podSecurityContext.runAsNonRoot': false }, /at '\/podSecurityContext\/runAsNonRoot': value must be true/],
  [
    'scrape interval',
    { 'metrics.serviceMonitor.interval': 'often' },
    /at '\/metrics\/serviceMonitor\/interval': 'often' does not match pattern/,
  ],
  [
    'threshold 0',
    { 'metrics.prometheusRule.planUtilizationThreshold': 0 },
    /at '\/metrics\/prometheusRule\/planUtilizationThreshold': exclusiveMinimum/,
  ],
  ['digest', { 'image.digest': 'sha256:xyz' }, /at '\/image\/digest': 'sha256:xyz' does not match pattern/],
  [
    'service type',
    { 'metrics.service.type': 'Ingress' },
    /at '\/metrics\/service\/type': value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'/,
  ],
  // checks in the templates (a relation between values, or a friendlier message than the schema's)
  ['latest tag', { 'image.tag': 'latest' }, /image\.tag: 'latest' is not allowed: pin a version/],
  [
    'two replicas without leader election',
    { replicaCount: 2, 'leaderElection.enabled': false },
    /replicaCount is 2 but leaderElection\.enabled is false/,
  ],
  [
    'PDB with one replica',
    { 'podDisruptionBudget.enabled': true },
    /podDisruptionBudget\.enabled needs replicaCount >= 2/,
  ],
  ['same port twice', { 'health.port': 8080 }, /metrics\.port and health\.port are both 8080/],
  [
    'no ServiceAccount name',
    { 'serviceAccount.create': false },
    /serviceAccount\.name is required when serviceAccount\.create is false/,
  ],
];

test('bad values are rejected at template time with a message naming the value', async () => {
  const results = await Promise.all(
    BAD.map(([, values]) => helmAsync(['template', 'x', CHART_DIR, ...setArgs(values)])),
  );
  BAD.forEach(([what, , message], i) => {
    const r = results[i]!;
    assert.notEqual(r.code, 0, `${what}: helm template accepted ${JSON.stringify(BAD[i]![1])}`);
    assert.match(r.err, message, `${what}: unexpected message`);
  });
});

// ------------------------------------------------------------------ sync with the sources

const rulesOf = (file: string) => (parse(readFileSync(repoPath(file), 'utf8')) as { rules: unknown[] }).rules;

test("the chart's CRD and RBAC files are copies of crds/ and operator/rbac/ (make chart-sync)", () => {
  const bad = stale(chartCopies()).map((g) => `${g.path} differs from ${g.source}`);
  assert.deepEqual(bad, [], 'run make chart-sync');
});

test('the rendered RBAC has exactly the rules of operator/rbac/ and the rendered CRDs are crds/arenadeployment.yaml and crds/arenaloadtest.yaml', () => {
  const objs = template({}, ['--include-crds']);
  assert.deepEqual(one(objs, 'ClusterRole').rules, rulesOf('operator/rbac/role.yaml'));
  assert.deepEqual(one(objs, 'Role').rules, rulesOf('operator/rbac/leader-election-role.yaml'));
  const crds = objs.filter((o) => o.kind === 'CustomResourceDefinition');
  assert.deepEqual(
    crds.sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name))),
    ['crds/arenadeployment.yaml', 'crds/arenaloadtest.yaml'].map((f) => parse(readFileSync(repoPath(f), 'utf8'))),
  );
  // the bindings give those rules to the operator's ServiceAccount in the release namespace
  for (const b of [one(objs, 'ClusterRoleBinding'), one(objs, 'RoleBinding')]) {
    assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: 'arena-operator', namespace: 'arena-system' }]);
  }
  assert.equal(one(objs, 'ClusterRoleBinding').roleRef.name, one(objs, 'ClusterRole').metadata.name);
  assert.equal(one(objs, 'RoleBinding').roleRef.name, one(objs, 'Role').metadata.name);
});

test("the chart README's values table matches values.yaml (make chart-sync), and every value is documented", () => {
  const readme = chartReadme();
  assert.deepEqual(
    stale([readme]).map((g) => g.path),
    [],
    'run make chart-sync',
  );
  const docs = valuesDocs(readFileSync(`${CHART_DIR}/values.yaml`, 'utf8'));
  for (const key of [
    'replicaCount',
    'image.repository',
    'leaderElection.enabled',
    'metrics.serviceMonitor.enabled',
    'metrics.prometheusRule.planUtilizationThreshold',
    'resources',
  ]) {
    assert.ok(
      docs.some((d) => d.key === key),
      `${key} is not in the README`,
    );
  }
  // the generator refuses an undocumented value, so the table cannot silently miss one
  assert.throws(() => valuesDocs('# -- documented\na: 1\nb: 2\n'), /values\.yaml: b has no "# --" description/);
});
