/**
 * The operator's apiserver access: server-side apply with one field manager,
 * deletes, status through the status subresource, Events and Leases, over operator/kube/client.ts (node's https with one
 * keep-alive agent; not @kubernetes/client-node, whose import alone costs
 * ~70 MiB and which opens a new TLS connection per call: docs/operator.md,
 * "Cache and memory"). The informers list and watch through operator/kube/informer.ts
 * on the same client. Every request except informer list/watch and `serves`
 * is counted by verb (arena_operator_kube_requests_total) and timed
 * (arena_operator_kube_request_duration_seconds).
 */
import type * as k8s from '@kubernetes/client-node';
import type { ArenaDeploymentStatus } from '../api/v1alpha1/schema.js';
import type { ArenaLoadTestStatus } from '../api/v1alpha1/loadtest-schema.js';
import { FIELD_MANAGER } from '../render/names.js';
import { APPLY_PATCH, KubeApiError, groupVersionPath, resourcePath, type KubeClient } from '../kube/client.js';
import { ARENA, CHILD_KINDS, CONFIGMAP, LOADTEST, LOADTEST_CHILD_KINDS, kindKey, type KindInfo } from './kinds.js';
import { microTime, nowRfc3339 } from './conditions.js';
import type { OperatorMetrics } from './metrics.js';

export type KubeObj = k8s.KubernetesObject & { spec?: unknown; status?: unknown; data?: unknown; [k: string]: unknown };

/** A coordination.k8s.io/v1 Lease as JSON (renewTime and acquireTime: metav1.MicroTime strings, conditions.ts microTime). */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

const LEASE: KindInfo = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases' };
const EVENT: KindInfo = { apiVersion: 'v1', kind: 'Event', plural: 'events' };

/**
 * Everything the reconciler writes: server-side apply of a child, delete of a child,
 * the ArenaDeployment's status subresource and an Event. `Kube` implements it against
 * the apiserver; reconciler.test.ts implements it with fakes that record the calls.
 */
export interface ReconcileWriter {
  /** Server-side apply of a desired child (field manager arena-operator, force). */
  apply(obj: k8s.KubernetesObject): Promise<unknown>;
  /** Delete a child (background propagation). */
  delete(obj: k8s.KubernetesObject): Promise<void>;
  /** Server-side apply of an ArenaDeployment's status subresource. */
  applyStatus(namespace: string, name: string, status: ArenaDeploymentStatus): Promise<void>;
  /** Record a core/v1 Event about an object. */
  event(about: KubeObj, type: 'Normal' | 'Warning', reason: string, message: string, instance: string): Promise<void>;
}

export class Kube implements ReconcileWriter {
  /** Kinds by `Kind.apiVersion`: the operator's own and those found by discovery (pluralOf). */
  private readonly kinds = new Map<string, KindInfo>(
    [ARENA, LOADTEST, ...CHILD_KINDS, ...LOADTEST_CHILD_KINDS, LEASE, EVENT].map((k) => [
      kindKey(k.apiVersion, k.kind),
      k,
    ]),
  );

  constructor(
    readonly client: KubeClient,
    private readonly metrics: OperatorMetrics,
  ) {}

  /** Count a request by verb; the returned function, called when it has answered, observes its duration. */
  count(verb: string): () => void {
    this.metrics.kubeRequests.inc({ verb });
    return this.metrics.kubeRequestDuration.startTimer({ verb });
  }

  /** Count and time `request` (arena_operator_kube_requests_total, arena_operator_kube_request_duration_seconds). */
  private async timed<T>(verb: string, request: () => Promise<T>): Promise<T> {
    const end = this.count(verb);
    try {
      return await request();
    } finally {
      end();
    }
  }

  /**
   * The KindInfo (plural) of `apiVersion`/`kind`: the operator's kinds are known; any other is looked
   * up once in the apiserver's discovery document of its group version.
   * @throws Error when the apiserver does not serve that kind.
   */
  private async kindOf(apiVersion: string, kind: string): Promise<KindInfo> {
    const key = kindKey(apiVersion, kind);
    const known = this.kinds.get(key);
    if (known) return known;
    const doc = await this.timed('discovery', () =>
      this.client.request<{ resources?: { name: string; kind: string }[] }>('GET', groupVersionPath(apiVersion)),
    );
    const r = doc.resources?.find((x) => x.kind === kind && !x.name.includes('/'));
    if (!r) throw new Error(`the apiserver serves no ${kind} in ${apiVersion}`);
    const info = { apiVersion, kind, plural: r.name };
    this.kinds.set(key, info);
    return info;
  }

  /** The path of `obj` (its kind, namespace and name). */
  private async pathOf(obj: k8s.KubernetesObject): Promise<string> {
    const kind = await this.kindOf(obj.apiVersion ?? '', obj.kind ?? '');
    return resourcePath(kind, obj.metadata?.namespace, obj.metadata?.name ?? '');
  }

  /** Server-side apply (PATCH application/apply-patch+yaml, field manager arena-operator, force). @returns the object as stored. */
  async apply<T extends k8s.KubernetesObject>(obj: T): Promise<T> {
    const path = await this.pathOf(obj);
    return this.timed('apply', () =>
      this.client.request<T>('PATCH', path, {
        query: { fieldManager: FIELD_MANAGER, force: true },
        body: obj,
        contentType: APPLY_PATCH,
      }),
    );
  }

  /** Delete (background propagation). @throws KubeApiError (404 when it is already gone). */
  async delete(obj: k8s.KubernetesObject): Promise<void> {
    const path = await this.pathOf(obj);
    await this.timed('delete', () =>
      this.client.request('DELETE', path, { query: { propagationPolicy: 'Background' } }),
    );
  }

  /** Server-side apply of the status subresource of an ArenaDeployment. */
  async applyStatus(namespace: string, name: string, status: ArenaDeploymentStatus): Promise<void> {
    await this.applyStatusOf(ARENA, namespace, name, status);
  }

  /** Server-side apply of the status subresource of an ArenaLoadTest. */
  async applyLoadTestStatus(namespace: string, name: string, status: ArenaLoadTestStatus): Promise<void> {
    await this.applyStatusOf(LOADTEST, namespace, name, status);
  }

  /** Server-side apply (field manager arena-operator, force) of the status subresource of an arena.dev object. */
  private async applyStatusOf(kind: KindInfo, namespace: string, name: string, status: unknown): Promise<void> {
    await this.timed('apply-status', () =>
      this.client.request('PATCH', resourcePath(kind, namespace, name, 'status'), {
        query: { fieldManager: FIELD_MANAGER, force: true },
        body: { apiVersion: kind.apiVersion, kind: kind.kind, metadata: { name, namespace }, status },
        contentType: APPLY_PATCH,
      }),
    );
  }

  /** GET a ConfigMap from the apiserver (not the cache); undefined when it does not exist. */
  async getConfigMap(namespace: string, name: string): Promise<k8s.V1ConfigMap | undefined> {
    return this.getIfExists<k8s.V1ConfigMap>('get', resourcePath(CONFIGMAP, namespace, name));
  }

  /** A counted GET of `path`; undefined when the apiserver answers 404. @throws KubeApiError (other statuses), Error. */
  private async getIfExists<T>(verb: string, path: string): Promise<T | undefined> {
    try {
      return await this.timed(verb, () => this.client.request<T>('GET', path));
    } catch (e) {
      if (e instanceof KubeApiError && e.code === 404) return undefined;
      throw e;
    }
  }

  /** Record a core/v1 Event about an object. */
  async event(
    about: KubeObj,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    instance: string,
  ): Promise<void> {
    const now = new Date();
    const ns = about.metadata?.namespace ?? 'default';
    await this.timed('create-event', () =>
      this.client.request('POST', resourcePath(EVENT, ns), {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { generateName: `${about.metadata?.name}.`, namespace: ns },
          involvedObject: {
            apiVersion: about.apiVersion,
            kind: about.kind,
            name: about.metadata?.name,
            namespace: ns,
            uid: about.metadata?.uid,
            resourceVersion: about.metadata?.resourceVersion,
          },
          reason,
          message: message.slice(0, 1024),
          type,
          count: 1,
          firstTimestamp: nowRfc3339(now),
          lastTimestamp: nowRfc3339(now),
          eventTime: microTime(now),
          action: reason,
          reportingComponent: FIELD_MANAGER,
          reportingInstance: instance,
          source: { component: FIELD_MANAGER },
        },
      }),
    );
  }

  /** GET the Lease `namespace/name` (verb get-lease); undefined when it does not exist. */
  async getLease(namespace: string, name: string): Promise<Lease | undefined> {
    return this.getIfExists<Lease>('get-lease', resourcePath(LEASE, namespace, name));
  }

  /** Create a Lease (verb create-lease). @throws KubeApiError 409 when it exists. */
  async createLease(namespace: string, lease: Lease): Promise<Lease> {
    return this.timed('create-lease', () =>
      this.client.request<Lease>('POST', resourcePath(LEASE, namespace), {
        body: { apiVersion: LEASE.apiVersion, kind: LEASE.kind, ...lease },
      }),
    );
  }

  /**
   * Replace a Lease (PUT, verb update-lease); `lease.metadata.resourceVersion` makes it conditional.
   * @throws KubeApiError 409 when the Lease changed since that resourceVersion.
   */
  async replaceLease(namespace: string, name: string, lease: Lease): Promise<Lease> {
    return this.timed('update-lease', () =>
      this.client.request<Lease>('PUT', resourcePath(LEASE, namespace, name), {
        body: { apiVersion: LEASE.apiVersion, kind: LEASE.kind, ...lease },
      }),
    );
  }

  /**
   * Whether the apiserver serves the custom resource `kind` (its CRD is installed): a list with limit 1,
   * in `namespace` or cluster-wide, answers 404 when it is not.
   * @throws on apiserver errors other than 404.
   */
  async serves(kind: KindInfo, namespace?: string): Promise<boolean> {
    try {
      await this.client.request('GET', resourcePath(kind, namespace), { query: { limit: 1 } });
      return true;
    } catch (e) {
      if (e instanceof KubeApiError && e.code === 404) return false;
      throw e;
    }
  }
}
