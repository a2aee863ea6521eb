/**
 * Security contexts that satisfy the Kubernetes "restricted" Pod Security Standard:
 * non-root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp,
 * read-only root filesystem (writable paths are emptyDir volumes).
 */
import type { IPodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';

/** Pod-level context; `uid` pins the user for images whose default user is root or named. */
export function podSecurityContext(uid?: number): IPodSecurityContext {
  return {
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
    ...(uid !== undefined ? { runAsUser: uid, runAsGroup: uid, fsGroup: uid } : {}),
  };
}

/** Container-level context. */
export function containerSecurityContext(): ISecurityContext {
  return { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
}

/** The uid the PgBouncer and Redis containers run as (any uid works: they write only to emptyDir volumes). */
export const SIDE_SERVICE_UID = 65532;
