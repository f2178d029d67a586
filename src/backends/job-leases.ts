/**
 * Cluster-wide turns for periodic jobs (the expiration sweep, each hook module schedule) among the instances
 * that share one Redis or PostgreSQL: each run of a job (its `tick`, e.g. the second a schedule is due or the
 * sweep period) is claimed once, by one instance, which then holds the job until it releases it.
 */
export interface JobLeases {
  /**
   * Claims run `tick` of `job`. Resolves with the lease when this process won it: no process claimed this tick
   * or a later one, and no holder of an earlier run is still alive (its lease renewed within the TTL).
   * Resolves undefined when another process has it or is still running an earlier run.
   */
  claim(job: string, tick: number): Promise<JobLease | undefined>;
}

/** A held job lease: renewed in the background until released, so a long run keeps it. */
export interface JobLease {
  /** Ends the run: another process may claim the next tick at once. Never rejects. */
  release(): Promise<void>;
}

/** How one store keeps a lease; the renewal timer is common to both. */
export interface LeaseRecord {
  renew(): Promise<boolean>;
  release(): Promise<void>;
}

export interface JobLeaseOptions {
  /** How long a lease lives without renewal: a dead holder's job is taken over after this. */
  readonly ttlMs: number;
  /** A renewal or release that failed (the backend is down); the job is not stopped. */
  readonly onError: (error: unknown, job: string) => void;
}

/** Keeps `record` alive every third of the TTL until released; a renewal that finds the lease gone stops. */
export function heldLease(record: LeaseRecord, job: string, options: JobLeaseOptions): JobLease {
  let released = false;
  const renewal = setInterval(
    () => {
      record
        .renew()
        .then((kept) => {
          if (!kept) clearInterval(renewal);
        })
        .catch((error: unknown) => options.onError(error, job));
    },
    Math.max(100, Math.floor(options.ttlMs / 3)),
  );
  renewal.unref();
  return {
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(renewal);
      await record.release().catch((error: unknown) => options.onError(error, job));
    },
  };
}
