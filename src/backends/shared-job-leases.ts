import type { Backend } from './backend.ts';
import type { JobLeaseOptions, JobLeases } from './job-leases.ts';
import { PostgresBackend } from './postgres.ts';
import { PostgresJobLeases } from './postgres-job-leases.ts';
import { RedisBackend } from './redis.ts';
import { RedisJobLeases } from './redis-job-leases.ts';

/**
 * The job leases on the shared backend of the info storage, or undefined when there is none (file records:
 * one instance, whose roles the worker slot decides).
 */
export function jobLeasesOn(
  backend: Backend | undefined,
  options: JobLeaseOptions & { readonly keyPrefix?: string },
): JobLeases | undefined {
  if (backend instanceof RedisBackend) return new RedisJobLeases(backend, options);
  if (backend instanceof PostgresBackend) return new PostgresJobLeases(backend, options);
  return undefined;
}
