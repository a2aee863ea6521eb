/**
 * A small ArenaDeployment for tests that drive the database path on purpose:
 * one sync request kind, 2 API workers with 30-connection pools, one
 * PgBouncer in transaction mode with default_pool_size 4 (+1 reserve), so a
 * test controls PgBouncer's load through the request kind alone.
 */
export function dbBoundSpec(name: string, requestKind: string): string {
  return `apiVersion: arena.dev/v1alpha1
kind: ArenaDeployment
metadata: {name: ${name}, namespace: arena}
spec:
  load:
    targetConcurrency: 10
    requestMix:
      - ${requestKind}
  api:
    image: ghcr.io/example/debate-arena:1.4.0
    workersPerPod: 2
    concurrencyPerWorker: 500
    llmSlotsPerWorker: 4
    rateLimitPerMinute: 100000
    db: {poolSize: 20, maxOverflow: 10, poolTimeoutSeconds: 10}
    redis: {maxConnections: 8}
  pgbouncer: {replicas: 1, poolMode: transaction, maxClientConn: 100, defaultPoolSize: 4, reservePoolSize: 1}
  postgres: {host: postgres.db.svc, port: 5432, database: arena, credentialsSecret: arena-db, maxConnections: 40, reservedConnections: 3}
  redis: {managed: true, maxClients: 1000}
`;
}
