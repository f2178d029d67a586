import { randomUUID } from 'node:crypto';
import type { JobLease, JobLeaseOptions, JobLeases } from './job-leases.ts';
import { heldLease } from './job-leases.ts';
import type { PostgresBackend } from './postgres.ts';

/**
 * Takes the tick when no later or equal tick was claimed and the last holder released it or stopped renewing.
 * ON CONFLICT DO UPDATE locks the job's row and checks the WHERE against its latest version, so two instances
 * claiming together cannot both win. Times are the database's clock.
 */
const claimSql = `
  INSERT INTO wharf_job_leases AS lease (job, tick, holder, held_until)
  VALUES ($1, $2, $3, clock_timestamp() + $4 * interval '1 millisecond')
  ON CONFLICT (job) DO UPDATE
    SET tick = excluded.tick, holder = excluded.holder, held_until = excluded.held_until
    WHERE lease.tick < excluded.tick AND (lease.holder IS NULL OR lease.held_until < clock_timestamp())
  RETURNING job`;
const renewSql = `
  UPDATE wharf_job_leases SET held_until = clock_timestamp() + $4 * interval '1 millisecond'
  WHERE job = $1 AND tick = $2 AND holder = $3`;
const releaseSql = 'UPDATE wharf_job_leases SET holder = NULL WHERE job = $1 AND tick = $2 AND holder = $3';

/** Job leases as one row per job in wharf_job_leases (job, tick, holder, held_until). */
export class PostgresJobLeases implements JobLeases {
  readonly #backend: PostgresBackend;
  readonly #options: JobLeaseOptions;
  /** This process, as a holder. */
  readonly #holder = randomUUID();

  constructor(backend: PostgresBackend, options: JobLeaseOptions) {
    this.#backend = backend;
    this.#options = options;
  }

  async claim(job: string, tick: number): Promise<JobLease | undefined> {
    const pool = await this.#backend.pool();
    const ttl = this.#options.ttlMs;
    const claimed = await pool.query(claimSql, [job, tick, this.#holder, ttl]);
    if (claimed.rowCount !== 1) return undefined;
    return heldLease(
      {
        renew: async () => (await pool.query(renewSql, [job, tick, this.#holder, ttl])).rowCount === 1,
        release: async () => {
          await pool.query(releaseSql, [job, tick, this.#holder]);
        },
      },
      job,
      this.#options,
    );
  }
}
