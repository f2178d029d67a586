/**
 * Metric families as plain data (JSON over the cluster IPC channel): what a process collects at a scrape,
 * what the cluster primary sums over its workers, and what /metrics renders in the Prometheus text format 0.0.4.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** How the primary combines one family's samples over its workers. */
export type Merge = 'sum' | 'max' | 'min';

/** One sample: its full series name with its rendered labels (`name{a="b"}`), and its value. */
export type Sample = readonly [series: string, value: number];

export interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly merge: Merge;
  readonly samples: readonly Sample[];
}

/** A label value escaped as the exposition format asks (backslash, double quote, newline). */
export function labelValue(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

/** A histogram with fixed buckets: counts per bucket, summed and rendered cumulatively only at a scrape. */
export class Histogram {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.#counts = new Array<number>(buckets.length).fill(0);
  }

  observe(value: number): void {
    this.#sum += value;
    this.#count += 1;
    for (let index = 0; index < this.buckets.length; index++) {
      if (value <= (this.buckets[index] ?? 0)) {
        this.#counts[index] = (this.#counts[index] ?? 0) + 1;
        return;
      }
    }
  }

  /** The `_bucket` (cumulative), `_sum` and `_count` samples, with `labels` (rendered, may be empty) on each. */
  samples(name: string, labels: string): Sample[] {
    const samples: Sample[] = [];
    const separator = labels === '' ? '' : ',';
    let cumulative = 0;
    for (const [index, bound] of this.buckets.entries()) {
      cumulative += this.#counts[index] ?? 0;
      samples.push([`${name}_bucket{${labels}${separator}le="${bound}"}`, cumulative]);
    }
    samples.push([`${name}_bucket{${labels}${separator}le="+Inf"}`, this.#count]);
    const braces = labels === '' ? '' : `{${labels}}`;
    samples.push([`${name}_sum${braces}`, this.#sum], [`${name}_count${braces}`, this.#count]);
    return samples;
  }
}

/** The exposition text of some families. */
export function renderFamilies(families: readonly Family[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const [series, value] of family.samples) lines.push(`${series} ${value}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The families of several processes as one: samples of the same series are summed (or their max or min
 * taken, as the family says); a family or series only some processes have keeps what they have.
 */
export function mergeFamilies(perProcess: readonly (readonly Family[])[]): Family[] {
  const merged = new Map<string, { family: Family; values: Map<string, number> }>();
  for (const families of perProcess) {
    for (const family of families) {
      let entry = merged.get(family.name);
      if (entry === undefined) {
        entry = { family, values: new Map() };
        merged.set(family.name, entry);
      }
      for (const [series, value] of family.samples) {
        const before = entry.values.get(series);
        entry.values.set(series, before === undefined ? value : combine(family.merge, before, value));
      }
    }
  }
  return [...merged.values()].map(({ family, values }) => ({ ...family, samples: [...values] }));
}

function combine(merge: Merge, a: number, b: number): number {
  if (merge === 'max') return Math.max(a, b);
  if (merge === 'min') return Math.min(a, b);
  return a + b;
}
