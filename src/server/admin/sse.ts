import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DeliveryControl, DeliveryNotice } from '../../hooks/delivery/delivery-control.ts';
import type { RunLog, RunRecord } from '../../hooks/history/run-log.ts';
import type { UploadRecord } from '../../info/upload-record.ts';
import type { UploadActivity } from '../../uploads/activity.ts';
import { type AdminEndpoint, type UploadSummary, uploadSummary } from './uploads.ts';

export interface AdminStreamOptions {
  readonly runs: RunLog;
  readonly delivery: DeliveryControl | undefined;
  readonly endpoints: () => readonly AdminEndpoint[];
  /** How the run records are shown (secrets in target URLs masked). */
  readonly showRun: (run: RunRecord) => RunRecord;
  readonly showNotice: (notice: DeliveryNotice) => DeliveryNotice;
  /** A client whose unsent data passes this is disconnected (default 1 MiB). */
  readonly maxBufferedBytes?: number;
  /** Comment lines that keep proxies from closing an idle stream (default 15 s). */
  readonly pingIntervalMs?: number;
  /** Upload progress is sent at most this often per upload (default 1 s). */
  readonly progressIntervalMs?: number;
}

/**
 * `GET /admin/api/stream`: Server-Sent Events of hook run transitions (`run`), delivery notices (`notice`) and
 * upload progress (`upload`, at most once per second per upload). The sources are listened to only while a
 * client is connected. A client that reads too slowly is dropped instead of buffered without bound.
 */
export class AdminStream {
  readonly #options: AdminStreamOptions;
  readonly #clients = new Set<ServerResponse>();
  readonly #maxBuffered: number;
  #unsubscribe: (() => void)[] = [];
  #ping: NodeJS.Timeout | undefined;
  #tick: NodeJS.Timeout | undefined;
  /** Uploads that changed since the last progress tick, by id. */
  readonly #changed = new Map<string, UploadSummary>();
  /** The offset last sent per upload being written, so an idle upload is not repeated. */
  #sentOffsets = new Map<string, number>();

  constructor(options: AdminStreamOptions) {
    this.#options = options;
    this.#maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** The lifecycle listener of one endpoint: notes changed uploads while someone watches. */
  activityFor(endpoint: string): UploadActivity {
    const note = (upload: UploadRecord): void => {
      if (this.#clients.size === 0) return;
      this.#changed.set(upload.id, uploadSummary(upload, endpoint));
    };
    return { created: note, received: note, finished: note, terminated: note, expired: note };
  }

  attach(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write(': connected\n\n');
    this.#clients.add(res);
    if (this.#clients.size === 1) this.#start();
    const detach = (): void => {
      if (!this.#clients.delete(res)) return;
      if (this.#clients.size === 0) this.#stop();
    };
    req.once('close', detach);
    res.once('close', detach);
  }

  /** Ends every stream (shutdown). */
  close(): void {
    for (const res of [...this.#clients]) res.end();
    this.#clients.clear();
    this.#stop();
  }

  #start(): void {
    const { runs, delivery } = this.#options;
    this.#unsubscribe = [
      runs.watch((run) => this.#send('run', this.#options.showRun(run))),
      ...(delivery === undefined
        ? []
        : [delivery.onNotice((notice) => this.#send('notice', this.#options.showNotice(notice)))]),
    ];
    this.#ping = setInterval(() => this.#broadcast(': ping\n\n'), this.#options.pingIntervalMs ?? 15_000);
    this.#ping.unref();
    this.#tick = setInterval(() => this.#progress(), this.#options.progressIntervalMs ?? 1000);
    this.#tick.unref();
  }

  #stop(): void {
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#unsubscribe = [];
    clearInterval(this.#ping);
    clearInterval(this.#tick);
    this.#ping = undefined;
    this.#tick = undefined;
    this.#changed.clear();
    this.#sentOffsets.clear();
  }

  /** Sends the uploads that changed or moved since the last tick, once each. */
  #progress(): void {
    const updates = new Map(this.#changed);
    this.#changed.clear();
    const sent = new Map<string, number>();
    for (const endpoint of this.#options.endpoints()) {
      for (const write of endpoint.service.writesInProgress()) {
        sent.set(write.upload.id, write.offset);
        if (this.#sentOffsets.get(write.upload.id) === write.offset) continue;
        updates.set(write.upload.id, uploadSummary(write.upload, endpoint.basePath, write.offset));
      }
    }
    this.#sentOffsets = sent;
    for (const summary of updates.values()) this.#send('upload', summary);
  }

  #send(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    this.#broadcast(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #broadcast(text: string): void {
    for (const res of this.#clients) {
      if (res.writableLength > this.#maxBuffered) {
        // Too slow: its unsent events would grow without bound. It reconnects and reads the API for the gap.
        // A reset, not a plain destroy: a socket whose peer stopped reading never finishes closing otherwise.
        if (res.socket !== null) res.socket.resetAndDestroy();
        else res.destroy();
        continue;
      }
      res.write(text);
    }
  }
}
