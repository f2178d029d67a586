import { performance } from 'node:perf_hooks';
import type { Family } from './metrics-families.ts';

/**
 * The process's own figures, read when /metrics is scraped and never in between: no timer, no GC observer, no
 * event-loop monitor runs while uploads stream (prom-client's default metrics ran all three, and loaded enough
 * code to change how often V8 collects while a body streams: see docs/architecture.md, "Metrics").
 */

const startSeconds = Math.round((Date.now() - performance.now()) / 1000);

/** How long a callback queued now waits for the event loop: the loop's delay at this scrape. */
function eventLoopLag(): Promise<number> {
  const queued = process.hrtime.bigint();
  return new Promise((resolve) => {
    setImmediate(() => resolve(Number(process.hrtime.bigint() - queued) / 1e9));
  });
}

export async function processFamilies(): Promise<Family[]> {
  const lag = await eventLoopLag();
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  const user = cpu.user / 1e6;
  const system = cpu.system / 1e6;
  const one = (
    name: string,
    type: Family['type'],
    help: string,
    value: number,
    merge: Family['merge'] = 'sum',
  ): Family => ({ name, type, help, merge, samples: [[name, value]] });
  return [
    one('process_cpu_user_seconds_total', 'counter', 'User CPU time spent, in seconds.', user),
    one('process_cpu_system_seconds_total', 'counter', 'System CPU time spent, in seconds.', system),
    one('process_cpu_seconds_total', 'counter', 'User and system CPU time spent, in seconds.', user + system),
    one('process_resident_memory_bytes', 'gauge', 'Resident memory size, in bytes.', memory.rss),
    one(
      'process_start_time_seconds',
      'gauge',
      'Start time of the process since the Unix epoch, in seconds (the earliest worker).',
      startSeconds,
      'min',
    ),
    one('nodejs_heap_size_total_bytes', 'gauge', 'V8 heap size, in bytes.', memory.heapTotal),
    one('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap used, in bytes.', memory.heapUsed),
    one(
      'nodejs_external_memory_bytes',
      'gauge',
      'Memory held outside the V8 heap (buffers), in bytes.',
      memory.external,
    ),
    one(
      'nodejs_eventloop_lag_seconds',
      'gauge',
      'Event-loop delay measured at this scrape, in seconds (the largest over workers).',
      lag,
      'max',
    ),
    {
      name: 'nodejs_version_info',
      type: 'gauge',
      help: 'Node.js version.',
      merge: 'max',
      samples: [[`nodejs_version_info{version="${process.version}"}`, 1]],
    },
  ];
}
