import type * as PromClient from 'prom-client';
import { requirePackage } from '../require-package.ts';
import { promClientDefaultMetricFiles } from './prom-client-files.ts';

/*
 * The parts of prom-client Wharf uses, required file by file for the start's CPU (docs/architecture.md, "Start
 * cost"): the package's index also loads its Pushgateway (node:https with tls, zlib) and Summary (tdigest), and
 * its default metrics' CPU counters load @opentelemetry/api (56 files, for exemplars Wharf does not enable):
 * 25-35 ms of CPU at every start together. prom-client has no `exports` map, so these files are part of what it
 * publishes; a version that moved one fails every metrics test at import, and a unit test checks that the
 * process metrics below are prom-client's default ones, name for name. The types are the index's.
 */
export const Registry = requirePackage('prom-client/lib/registry') as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
export const Counter = requirePackage('prom-client/lib/counter') as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = requirePackage('prom-client/lib/gauge') as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export const Histogram = requirePackage('prom-client/lib/histogram') as typeof PromClient.Histogram;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
export const AggregatorRegistry = requirePackage(
  'prom-client/lib/cluster',
) as typeof PromClient.AggregatorRegistry;
export type { MetricObjectWithValues, MetricValue } from 'prom-client';

/** prom-client's default metrics after its CPU counters, those this Node can run. */
const defaultMetricFiles = promClientDefaultMetricFiles.filter(
  (file) => file !== 'processResources' || typeof process.getActiveResourcesInfo === 'function',
);

type DefaultMetric = (register: Registry, config: { readonly eventLoopMonitoringPrecision: number }) => void;

/**
 * What `collectDefaultMetrics({ register })` registers, in its order and with its names, help and values: the
 * CPU counters are made here (the same three, counting from this call as prom-client's do), the rest by
 * prom-client's own files. Called at start: the GC histogram and the event-loop monitor count from here on.
 */
export function collectProcessMetrics(register: Registry): void {
  const registers = [register];
  let last = process.cpuUsage();
  new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers,
    // One reading of the CPU clock per scrape sets all three counters.
    collect() {
      const now = process.cpuUsage();
      const user = (now.user - last.user) / 1e6;
      const system = (now.system - last.system) / 1e6;
      last = now;
      this.inc(user);
      systemSeconds.inc(system);
      totalSeconds.inc(user + system);
    },
  });
  const systemSeconds = new Counter({
    name: 'process_cpu_system_seconds_total',
    help: 'Total system CPU time spent in seconds.',
    registers,
  });
  const totalSeconds = new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
  });
  for (const file of defaultMetricFiles) {
    (requirePackage(`prom-client/lib/metrics/${file}`) as DefaultMetric)(register, {
      eventLoopMonitoringPrecision: 10,
    });
  }
}
