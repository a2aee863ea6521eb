/**
 * Generate the ArenaDeployment CustomResourceDefinition from the TypeBox schema.
 * crds/arenadeployment.yaml is this function's output (`arena gen-crd`); a test
 * fails when the checked-in file differs. The ArenaLoadTest CRD
 * (crds/arenaloadtest.yaml, `arena gen-crd --kind ArenaLoadTest`) is generated
 * from loadtest-schema.ts the same way.
 *
 * The JSON Schema is turned into a Kubernetes structural schema:
 * - `additionalProperties: false` is dropped (the apiserver prunes unknown fields,
 *   and `kubectl apply` rejects them with field validation Strict);
 * - `exclusiveMinimum: N` (draft 2019) becomes `minimum: N, exclusiveMinimum: true` (OpenAPI 3.0);
 * - fields with a `default` are not listed as `required` (the apiserver fills them);
 * - `const` becomes a one-value `enum`; `$id` is dropped; metadata is `type: object`
 *   with the name length checked by a CEL rule.
 */
import { stringify } from 'yaml';
import {
  ArenaDeploymentSpecSchema,
  ArenaDeploymentStatusSchema,
  GROUP,
  KIND,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from './schema.js';
import {
  ArenaLoadTestSpecSchema,
  ArenaLoadTestStatusSchema,
  LOADTEST_KIND,
  LOADTEST_PLURAL,
  LOADTEST_SHORT_NAMES,
  LOADTEST_SINGULAR,
} from './loadtest-schema.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Convert one JSON Schema node (TypeBox output) into an OpenAPI v3 structural schema node. */
export function toStructural(node: unknown): Json {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== 'object') return node as Json;
  const out: Record<string, Json> = {};
  const src = node as Record<string, unknown>;
  for (const key of Object.keys(src)) {
    const v = src[key];
    if (key === '$id' || key === '$schema') continue;
    if (key === 'additionalProperties' && v === false) continue;
    if (key === 'exclusiveMinimum' && typeof v === 'number') {
      out['minimum'] = v;
      out['exclusiveMinimum'] = true;
      continue;
    }
    if (key === 'exclusiveMaximum' && typeof v === 'number') {
      out['maximum'] = v;
      out['exclusiveMaximum'] = true;
      continue;
    }
    if (key === 'const') {
      out['enum'] = [v as Json];
      continue;
    }
    if (key === 'required' && Array.isArray(v)) {
      // A field with a default is filled in by the apiserver: do not also call it required.
      const props = (src['properties'] ?? {}) as Record<string, Record<string, unknown>>;
      const req = (v as string[]).filter((k) => props[k]?.['default'] === undefined);
      if (req.length > 0) out['required'] = req;
      continue;
    }
    out[key] =
      key === 'properties'
        ? Object.fromEntries(Object.entries(v as object).map(([k, s]) => [k, toStructural(s)]))
        : toStructural(v);
  }
  return out;
}

/** The CustomResourceDefinition object (apiextensions.k8s.io/v1). */
export function arenaDeploymentCrd(): Record<string, Json> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'arena' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: SHORT_NAMES,
        categories: ['arena'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: {
            status: {},
            scale: {
              specReplicasPath: '.spec.api.replicas',
              statusReplicasPath: '.status.replicas',
              labelSelectorPath: '.status.selector',
            },
          },
          additionalPrinterColumns: [
            {
              name: 'Target',
              type: 'integer',
              jsonPath: '.spec.load.targetConcurrency',
              description: 'Peak in-flight requests to hold',
            },
            { name: 'Min', type: 'integer', jsonPath: '.status.plan.minReplicas' },
            { name: 'Max', type: 'integer', jsonPath: '.status.plan.maxReplicas' },
            { name: 'Replicas', type: 'integer', jsonPath: '.status.replicas' },
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'ArenaDeployment: an LLM-backed API with PgBouncer and Redis, sized by the arena capacity planner.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: toStructural(ArenaDeploymentSpecSchema),
                status: toStructural(ArenaDeploymentStatusSchema),
              },
              'x-kubernetes-validations': [
                {
                  rule: 'self.metadata.name.size() <= 40',
                  message: 'metadata.name must be at most 40 characters so derived object names stay within 63',
                },
              ],
            },
          },
        },
      ],
    },
  };
}

/** The CRD as the YAML text checked in at crds/arenadeployment.yaml. */
export function arenaDeploymentCrdYaml(): string {
  return `# Generated from operator/api/v1alpha1/schema.ts by \`arena gen-crd\`. Do not edit by hand.\n${stringify(arenaDeploymentCrd(), { lineWidth: 0 })}`;
}

/**
 * The ArenaLoadTest CustomResourceDefinition (apiextensions.k8s.io/v1), generated from
 * loadtest-schema.ts the same way as the ArenaDeployment one. Printer columns: Phase,
 * Runners (spec.parallelism), P99 (status.summary.p99Ms, ms), Age.
 */
export function arenaLoadTestCrd(): Record<string, Json> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${LOADTEST_PLURAL}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'arena' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: LOADTEST_KIND,
        listKind: `${LOADTEST_KIND}List`,
        plural: LOADTEST_PLURAL,
        singular: LOADTEST_SINGULAR,
        shortNames: LOADTEST_SHORT_NAMES,
        categories: ['arena'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'Runners', type: 'integer', jsonPath: '.spec.parallelism', description: 'Runner pods' },
            {
              name: 'P99',
              type: 'number',
              jsonPath: '.status.summary.p99Ms',
              description: 'Merged 99th percentile latency, ms',
            },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'ArenaLoadTest: a distributed load test run by N runner pods (an Indexed Job) whose results merge exactly.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: toStructural(ArenaLoadTestSpecSchema),
                status: toStructural(ArenaLoadTestStatusSchema),
              },
              'x-kubernetes-validations': [
                {
                  rule: 'self.metadata.name.size() <= 40',
                  message: 'metadata.name must be at most 40 characters so derived object names stay within 63',
                },
              ],
            },
          },
        },
      ],
    },
  };
}

/** The CRD as the YAML text checked in at crds/arenaloadtest.yaml. */
export function arenaLoadTestCrdYaml(): string {
  return `# Generated from operator/api/v1alpha1/loadtest-schema.ts by \`arena gen-crd --kind ArenaLoadTest\`. Do not edit by hand.\n${stringify(arenaLoadTestCrd(), { lineWidth: 0 })}`;
}
