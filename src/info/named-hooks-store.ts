/**
 * The named hooks and bindings added through the admin API: one JSON document with a version, kept beside the
 * upload records (file, Redis, PostgreSQL) so that every instance sharing them sees the same set. The store
 * keeps the document as given; what it means is checked above (the admin API validates it like --config).
 */
export interface StoredNamedHooks {
  /** 0 until the first write; one more at each write. */
  readonly version: number;
  readonly document: unknown;
}

export interface NamedHooksStore {
  /** Shared with other processes: a request that starts must then ask it for the version. */
  readonly shared: boolean;
  /** The current version alone: the cheap check each request that may run hooks makes when it starts. */
  version(): Promise<number>;
  read(): Promise<StoredNamedHooks>;
  /**
   * Writes `document` as version `expected + 1` if the stored version is still `expected` (compare-and-set);
   * resolves false, writing nothing, when another writer came first.
   */
  write(document: unknown, expected: number): Promise<boolean>;
}
