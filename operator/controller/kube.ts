/**
 * The operator's apiserver access: server-side apply with one field manager,
 * deletes, status through the status subresource, Events, and list calls for
 * informers. Every request except informer list/watch is counted by verb.
 */
import * as k8s from '@kubernetes/client-node';
import type { ArenaDeploymentStatus } from '../api/v1alpha1/schema.js';
import type { ArenaLoadTestStatus } from '../api/v1alpha1/loadtest-schema.js';
import { FIELD_MANAGER } from '../render/names.js';
import { ARENA, GROUP, LOADTEST, VERSION, type KindInfo } from './kinds.js';
import { microTime } from './conditions.js';
import type { OperatorMetrics } from './metrics.js';

export type KubeObj = k8s.KubernetesObject & { spec?: unknown; status?: unknown; data?: unknown; [k: string]: unknown };

/** Load a kubeconfig: an explicit file, else in-cluster when running in a pod, else the default (KUBECONFIG, ~/.kube/config). */
export function loadKubeConfig(file?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (file) kc.loadFromFile(file);
  else if (process.env['KUBERNETES_SERVICE_HOST']) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster in the kubeconfig');
  return kc;
}

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
  readonly objects: k8s.KubernetesObjectApi;
  readonly custom: k8s.CustomObjectsApi;
  readonly core: k8s.CoreV1Api;
  readonly coordination: k8s.CoordinationV1Api;

  constructor(
    readonly kc: k8s.KubeConfig,
    private readonly metrics: OperatorMetrics,
  ) {
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  }

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

  /** Server-side apply (PATCH application/apply-patch+yaml, field manager arena-operator, force). */
  async apply<T extends k8s.KubernetesObject>(obj: T): Promise<T> {
    return this.timed('apply', () =>
      this.objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply),
    );
  }

  async delete(obj: k8s.KubernetesObject): Promise<void> {
    await this.timed('delete', () =>
      this.objects.delete(obj, undefined, undefined, undefined, undefined, 'Background'),
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
      this.custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: kind.plural,
          name,
          body: { apiVersion: kind.apiVersion, kind: kind.kind, metadata: { name, namespace }, status },
          fieldManager: FIELD_MANAGER,
          force: true,
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply),
      ),
    );
  }

  /** GET a ConfigMap from the apiserver (not the cache); undefined when it does not exist. */
  async getConfigMap(namespace: string, name: string): Promise<k8s.V1ConfigMap | undefined> {
    try {
      return await this.timed('get', () => this.core.readNamespacedConfigMap({ namespace, name }));
    } catch (e) {
      if ((e as { code?: number }).code === 404) return undefined;
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
      this.core.createNamespacedEvent({
        namespace: ns,
        body: {
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
          firstTimestamp: now,
          lastTimestamp: now,
          eventTime: microTime(now),
          action: reason,
          reportingComponent: FIELD_MANAGER,
          reportingInstance: instance,
          source: { component: FIELD_MANAGER },
        },
      }),
    );
  }

  /**
   * Whether the apiserver serves the custom resource `kind` (its CRD is installed): a list with limit 1,
   * in `namespace` or cluster-wide, answers 404 when it is not.
   * @throws on apiserver errors other than 404.
   */
  async serves(kind: KindInfo, namespace?: string): Promise<boolean> {
    const [group, version] = kind.apiVersion.split('/') as [string, string];
    try {
      if (namespace)
        await this.custom.listNamespacedCustomObject({ group, version, namespace, plural: kind.plural, limit: 1 });
      else await this.custom.listClusterCustomObject({ group, version, plural: kind.plural, limit: 1 });
      return true;
    } catch (e) {
      if ((e as { code?: number }).code === 404) return false;
      throw e;
    }
  }

  /** A list function for an informer of `kind` (all namespaces, or one). */
  lister(kind: KindInfo, namespace?: string, labelSelector?: string): () => Promise<k8s.KubernetesListObject<KubeObj>> {
    return async () => {
      const { apiVersion, kind: k } = kind;
      const list = await this.objects.list<KubeObj>(
        apiVersion,
        k,
        namespace,
        undefined,
        undefined,
        undefined,
        undefined,
        labelSelector,
      );
      // List items come without apiVersion/kind; the cache and the reconciler want them.
      for (const item of list.items) {
        item.apiVersion = kind.apiVersion;
        item.kind = kind.kind;
      }
      return list;
    };
  }
}
