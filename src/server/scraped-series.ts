import type { Counter, Histogram } from './prom-client.ts';

/*
 * Labelled series counted by Wharf and handed to prom-client when a scrape reads them (the metric's `collect`).
 * prom-client builds a key string from the label values at every `inc`/`observe`, and a child from `labels()`
 * does the same at each call: two metrics per hook run and one per request paid it on the event loop (about
 * 2 µs per post event). Here a count is a number bump on a series found through Maps of the label values; the
 * scrape, rare, writes every series into the metric with prom-client's own calls, in the order the series were
 * first seen, which is the order prom-client itself keeps: the exposition text is the same byte for byte.
 */

/** One label set of a counter and its count. */
export interface CountedSeries<Label extends string> {
  readonly labels: Readonly<Record<Label, string>>;
  value: number;
}

/** One label set of a histogram: counts per bucket (not cumulative, as prom-client keeps them), sum and count. */
export interface ObservedSeries<Label extends string> {
  readonly labels: Readonly<Record<Label, string>>;
  readonly buckets: number[];
  sum: number;
  count: number;
}

/** The series of one counter, in the order first seen. */
export class CounterSeries<Label extends string> {
  readonly #series: CountedSeries<Label>[] = [];

  /** A new series at 0 (the caller keeps it under its label values and bumps `value`). */
  add(labels: Readonly<Record<Label, string>>): CountedSeries<Label> {
    const series = { labels, value: 0 };
    this.#series.push(series);
    return series;
  }

  /** Sets the counter to the counts (from its `collect`, at a scrape). */
  writeTo(counter: Counter<Label>): void {
    counter.reset();
    for (const series of this.#series) counter.inc(series.labels, series.value);
  }
}

/** What a histogram keeps per label set: prom-client's `hashMap` values (lib/histogram.js, createBaseValues). */
interface HistogramEntry {
  readonly labels: object;
  readonly bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/** The series of one histogram with these bucket upper bounds, in the order first seen. */
export class HistogramSeries<Label extends string> {
  readonly #bounds: readonly number[];
  readonly #series: ObservedSeries<Label>[] = [];

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
  }

  add(labels: Readonly<Record<Label, string>>): ObservedSeries<Label> {
    const series = { labels, buckets: this.#bounds.map(() => 0), sum: 0, count: 0 };
    this.#series.push(series);
    return series;
  }

  /** prom-client's observe: the first bucket whose bound is at least the value (none past the last bound). */
  observe(series: ObservedSeries<Label>, value: number): void {
    // prom-client throws on these and counts nothing.
    if (!Number.isFinite(value)) return;
    series.sum += value;
    series.count += 1;
    const bounds = this.#bounds;
    for (let index = 0; index < bounds.length; index++) {
      if (value <= (bounds[index] as number)) {
        series.buckets[index] = (series.buckets[index] as number) + 1;
        return;
      }
    }
  }

  /**
   * Sets the histogram to the series (from its `collect`, at a scrape). prom-client has no call that sets a
   * histogram's buckets, so each label set is made by `zero()` and its entry (in the histogram's `hashMap`, in
   * the order made) given the counts; a prom-client that kept them otherwise throws here, and the metrics tests
   * fail, rather than showing wrong figures.
   */
  writeTo(histogram: Histogram<Label>): void {
    histogram.reset();
    for (const series of this.#series) histogram.zero(series.labels);
    const kept = (histogram as unknown as { hashMap?: Record<string, HistogramEntry> }).hashMap;
    const entries = kept === undefined ? [] : Object.values(kept);
    if (entries.length !== this.#series.length) throw new Error('prom-client histogram internals changed');
    for (const [index, series] of this.#series.entries()) {
      const entry = entries[index] as HistogramEntry;
      if (entry.labels !== series.labels || typeof entry.bucketValues !== 'object') {
        throw new Error('prom-client histogram internals changed');
      }
      entry.sum = series.sum;
      entry.count = series.count;
      for (const [at, bound] of this.#bounds.entries())
        entry.bucketValues[bound] = series.buckets[at] as number;
    }
  }
}
