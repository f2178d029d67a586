/**
 * The prom-client files Wharf requires one by one (server/prom-client.ts), under prom-client/lib/: its classes,
 * then its default metrics after the CPU counters (lib/defaultMetrics.js's list, in its order). The command's
 * bundle carries exactly these in vendor.cjs (scripts/bundle-cli.ts), so the two cannot drift apart.
 */
export const promClientClassFiles = ['registry', 'counter', 'gauge', 'histogram', 'cluster'] as const;

export const promClientDefaultMetricFiles = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  // Only where Node has process.getActiveResourcesInfo (server/prom-client.ts checks).
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
] as const;
