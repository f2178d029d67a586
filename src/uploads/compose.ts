import { createHash } from 'node:crypto';
import type { Config } from '../config/load.ts';
import type { Locker } from '../locks/locker.ts';
import { MemoryLocker } from '../locks/memory.ts';
import { AzureDataStore } from '../storage/azure.ts';
import { AzureContainer } from '../storage/azure-container.ts';
import type { DataStore } from '../storage/data-store.ts';
import { FileDataStore } from '../storage/file.ts';
import { GcsDataStore } from '../storage/gcs.ts';
import { GcsBucket } from '../storage/gcs-bucket.ts';
import { HybridS3DataStore } from '../storage/hybrid-s3.ts';
import { S3DataStore } from '../storage/s3.ts';
import type { UploadActivity } from './activity.ts';
import { silentObserver, type UploadObserver } from './events.ts';
import { UploadService, type UploadServiceOptions } from './service.ts';
import { composeUploadState, ownsFilesAlone, type UploadState } from './shared-state.ts';

/** Upload files file storage holds open between PATCHes (a small upload then opens its file once). */
const idleUploadFiles = 64;

export interface ComposeOptions {
  /** Builds the observer once the data store exists (hook payloads describe paths through it). */
  readonly observer?: UploadObserver | ((dataStore: DataStore) => UploadObserver);
  /** Overrides the locker that comes with the info storage (cluster workers on file-info-storage). */
  readonly locker?: Locker;
  readonly logger: UploadServiceOptions['logger'];
  /** The info store and backends already built for this endpoint (the hooks outbox shares the connection). */
  readonly state?: UploadState;
  /** Counters and live progress (metrics, the admin stream). */
  readonly activity?: UploadActivity;
}

/**
 * Record copies beside the bytes (see record-copies.ts), named after the record store they belong to: its
 * kind, address (without credentials) and key prefix or schema, as a digest. Records in files sit beside the
 * data already; a shared store may come back without its data. With --redis-info-expiration records are meant
 * to vanish: a copy would bring them back.
 */
function recordCopies(config: Config): { recordCopyOwner?: string } {
  if (config.infoStorage === 'file-info-storage') return {};
  if (config.infoStorage === 'redis-info-storage' && config.redisInfoExpirationSeconds > 0) return {};
  let address = config.infoDbDsn ?? '';
  if (URL.canParse(address)) {
    const url = new URL(address);
    url.username = '';
    url.password = '';
    address = url.toString();
  }
  const namespace =
    config.infoStorage === 'redis-info-storage' ? config.redisKeyPrefix : (config.postgresSchema ?? 'public');
  const owner = createHash('sha256').update(`${config.infoStorage}\n${address}\n${namespace}`).digest('hex');
  return { recordCopyOwner: owner.slice(0, 16) };
}

/** Builds the upload lifecycle and its stores from the configuration. */
export function composeUploadService(config: Config, options: ComposeOptions): UploadService {
  const dataStore = composeDataStore(config);
  const state = options.state ?? composeUploadState(config);
  return new UploadService({
    dataStore,
    infoStore: state.infoStore,
    locker: options.locker ?? state.locker ?? new MemoryLocker(),
    backends:
      dataStore instanceof S3DataStore ||
      dataStore instanceof HybridS3DataStore ||
      dataStore instanceof GcsDataStore ||
      dataStore instanceof AzureDataStore
        ? [dataStore.backend, ...state.backends]
        : state.backends,
    observer:
      typeof options.observer === 'function'
        ? options.observer(dataStore)
        : (options.observer ?? silentObserver),
    maxFileSize: config.maxFileSize,
    maxBodySize: config.maxBodySize,
    allowEmpty: config.allowEmpty,
    removeParts: config.removeParts,
    expirationMs: config.extensions.has('expiration') ? config.uploadExpirationMs : 0,
    lockTimeoutMs: config.lockTimeoutMs,
    progressIntervalMs: config.hooksProgressIntervalMs,
    allowUnfinishedConcatenation: config.extensions.has('concatenation-unfinished'),
    // Record files shared by --workers processes are kept apart only by the upload lock.
    atomicRecordWrites: config.infoStorage !== 'file-info-storage' || ownsFilesAlone(config),
    ...recordCopies(config),
    logger: options.logger,
    ...(options.activity !== undefined ? { activity: options.activity } : {}),
  });
}

function composeDataStore(config: Config): DataStore {
  const files = new FileDataStore({
    directory: config.dataDir,
    dirStructure: config.dirStructure,
    fsync: config.forceFsync,
    env: config.env,
    idleFiles: ownsFilesAlone(config) ? idleUploadFiles : 0,
  });
  if (config.storage === 'gcs' && config.gcs) {
    const gcs = config.gcs;
    return new GcsDataStore({
      bucket: new GcsBucket(gcs),
      prefix: gcs.prefix,
      pieceSize: gcs.partSize,
      pieceConcurrency: gcs.partConcurrency,
      bufferDir: gcs.bufferDir,
      dirStructure: config.dirStructure,
      env: config.env,
    });
  }
  if (config.storage === 'azure' && config.azure) {
    const azure = config.azure;
    return new AzureDataStore({
      container: new AzureContainer(azure),
      prefix: azure.prefix,
      blockSize: azure.blockSize,
      blockConcurrency: azure.blockConcurrency,
      bufferDir: azure.bufferDir,
      dirStructure: config.dirStructure,
      env: config.env,
    });
  }
  if (config.storage === 'file-storage' || !config.s3) return files;
  const s3 = config.s3;
  const tuning = {
    connection: s3,
    partSize: s3.partSize,
    partConcurrency: s3.partConcurrency,
    concatConcurrency: s3.concatConcurrency,
    bufferDir: s3.bufferDir,
  };
  if (config.storage === 'hybrid-s3') {
    return new HybridS3DataStore({ ...tuning, local: files, dirStructure: config.dirStructure });
  }
  return new S3DataStore({ ...tuning, dirStructure: config.dirStructure, env: config.env });
}
