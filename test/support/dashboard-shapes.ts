/**
 * The dashboard declares the admin API's shapes itself (it is compiled for the browser on its own). This file
 * makes `tsc` (part of `npm test`) fail when a server-side shape changes in a way the page would misread: each
 * server type must be assignable to the page's type of the same name.
 */
import type { DeadLetter, TargetState } from '../../src/hooks/delivery/delivery-control.ts';
import type { EventSummary } from '../../src/hooks/history/run-history.ts';
import type { RunRecord, RunStatus } from '../../src/hooks/history/run-log.ts';
import type * as Page from '../../src/server/admin/dashboard/shapes.ts';
import type { UploadSummary } from '../../src/server/admin/uploads.ts';

/** Compile-time only: a server value of each shape is accepted where the page expects its own. */
export function pageSees(server: {
  upload: UploadSummary;
  run: RunRecord;
  event: EventSummary;
  deadLetter: DeadLetter;
  target: TargetState;
  status: RunStatus;
}): [
  Page.UploadSummary,
  Page.RunRecord,
  Page.EventSummary,
  Page.DeadLetter,
  Page.TargetState,
  Page.RunStatus,
] {
  return [server.upload, server.run, server.event, server.deadLetter, server.target, server.status];
}
