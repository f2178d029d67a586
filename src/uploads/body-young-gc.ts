import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Keeps the dead chunk buffers of request bodies from driving V8 into full mark-compacts.
 *
 * Every body chunk is a new Buffer (Node's HTTP parser copies each piece), and its bytes are V8 "external
 * memory". V8 adds the external bytes allocated since its last mark-compact to the old generation when it decides
 * whether to start marking, and once the old generation is over 8 MB (prom-client's default metrics take Node 20
 * there; Node 22 and 24 start above it) the 12-28 MB of slack V8 leaves after a mark-compact is used up by the
 * next 12-28 MB of body: a 512 MiB PATCH ran 6-21 mark-compacts on Node 20, 22 and 24. A scavenge frees those
 * buffers too, for far less, but a body allocates too few JS objects to cause one (Node 24 ran none during such a
 * PATCH), and the check V8 makes right after a scavenge still counts the buffers the concurrent ArrayBuffer
 * sweeper has not yet released (Node 20 and 22). So this runs a minor collection each time the external memory
 * grew by `externalGrowthBytes` while bodies stream, and has V8 sweep array buffers within that scavenge.
 * docs/architecture.md ("Body buffers and the garbage collector") has the measurements.
 */
export const BODY_YOUNG_GC = {
  /** Body bytes between two looks at the external memory (a look costs 1-10 µs; at 1 MiB, 5 ms per GiB). */
  checkEveryBytes: 1024 * 1024,
  /**
   * Growth of the external memory since the last collection that asks for a minor collection, per body streaming
   * at the moment. A scavenge copies the buffers still alive (bodies waiting for the disk) and promotes those that
   * survive two; with N bodies streaming about N times as many are alive, so the interval grows with N to keep that
   * share as small as with one body. (A fixed 4 MiB ran 8-22% more CPU with 200 concurrent uploads, where V8's own
   * scavenges come first anyway.)
   */
  externalGrowthBytes: 4 * 1024 * 1024,
} as const;

/** Counts body bytes and asks for a minor collection when the external memory has grown enough. */
export class BodyYoungCollector {
  #sinceCheck = 0;
  /** External memory after the last collection (ours or V8's): the floor growth is measured from. */
  #baseline: number;
  /** Bodies streaming now. */
  #bodies = 0;

  constructor(
    /** Runs a minor (young generation) collection. */
    private readonly collectYoung: () => void,
    /** V8's external memory in bytes (array buffer backing stores among it). */
    private readonly externalMemory: () => number,
    private readonly limits: { checkEveryBytes: number; externalGrowthBytes: number } = BODY_YOUNG_GC,
  ) {
    this.#baseline = externalMemory();
  }

  /** A body starts streaming. */
  bodyStarted(): void {
    this.#bodies += 1;
  }

  /** A body that started has ended (once per started body). */
  bodyEnded(): void {
    this.#bodies -= 1;
  }

  /** Notes `bytes` more body bytes received. */
  received(bytes: number): void {
    this.#sinceCheck += bytes;
    if (this.#sinceCheck < this.limits.checkEveryBytes) return;
    this.#sinceCheck = 0;
    const external = this.externalMemory();
    // A collection V8 ran by itself freed them: measure growth from there.
    if (external < this.#baseline) {
      this.#baseline = external;
      return;
    }
    // Per body streaming now (see BODY_YOUNG_GC.externalGrowthBytes).
    if (external - this.#baseline < this.limits.externalGrowthBytes * Math.max(1, this.#bodies)) return;
    this.collectYoung();
    // Whatever is still alive (bodies waiting for the disk) is the new floor.
    this.#baseline = this.externalMemory();
  }
}

/**
 * The collector every body of this process shares, made on the first body; undefined when this Node cannot run a
 * minor collection on request (then V8 is left to itself, as before).
 */
let shared: BodyYoungCollector | null | undefined;

export function bodyYoungCollector(): BodyYoungCollector | undefined {
  if (shared === undefined) shared = makeCollector() ?? null;
  return shared ?? undefined;
}

type GcFunction = (options: { type: 'minor' | 'major' }) => void;

function makeCollector(): BodyYoungCollector | undefined {
  try {
    const gc = minorGcFunction();
    if (gc === undefined) return undefined;
    // Only this scavenge sweeps array buffers at once, so that the dead buffers' bytes are released before V8 looks
    // at its limits (see BODY_YOUNG_GC); V8's own scavenges keep sweeping them in the background (sweeping all of
    // them at once cost 200 concurrent uploads CPU). Left alone when the process was started with the flag.
    const startFlag = process.execArgv.some((argument) =>
      argument.includes('concurrent-array-buffer-sweeping'),
    );
    return new BodyYoungCollector(
      startFlag
        ? () => gc({ type: 'minor' })
        : () => {
            setFlagsFromString('--no-concurrent-array-buffer-sweeping');
            try {
              gc({ type: 'minor' });
            } finally {
              setFlagsFromString('--concurrent-array-buffer-sweeping');
            }
          },
      () => getHeapStatistics().external_memory,
    );
  } catch {
    return undefined;
  }
}

/**
 * V8's `gc` function. --expose-gc set at run time gives it to contexts made afterwards only, so it is taken from
 * a fresh context and the flag is turned off again: the process's own global stays as it was.
 */
function minorGcFunction(): GcFunction | undefined {
  const existing: unknown = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as GcFunction;
  setFlagsFromString('--expose-gc');
  try {
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as GcFunction) : undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
