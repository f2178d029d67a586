// Generated from the option table by `npm run docs` (scripts/gen-docs.ts); do not edit.

/**
 * Options of `createTusHandler()` and `createFetchHandler()`: every flag of the `wharf` command by its camelCase
 * name, checked at run time as the CLI checks flags (sizes also as text such as `512k`, lists also as one
 * comma-separated string).
 */
export interface WharfOptions {
  /** `--host`: Address to listen on. Default: `0.0.0.0`. */
  readonly host?: string;
  /** `--port`: Port to listen on (0 picks a free port and logs it). Default: `1081`. */
  readonly port?: number;
  /** `--url`: Base path of the tus endpoint; uploads live at <url>/<id>. Default: `/files`. */
  readonly url?: string;
  /** `--workers`: Number of processes sharing the port (Node cluster). Upload locks are coordinated between them. With `--port 0` every worker, a replacement too, listens on the one port picked at start. A first worker that cannot start (the port in use, a backend unreachable) stops Wharf with its error and exit code; a replacement that cannot start is started again after 1 s, doubling up to 30 s. Default: `1`. */
  readonly workers?: number;
  /** `--cors`: Allowed CORS origins, comma separated, with * and ? wildcards. Empty allows any origin. Default: ``. */
  readonly cors?: readonly string[] | string;
  /** `--behind-proxy`: Trust Forwarded / X-Forwarded-* headers for the client address and for absolute upload URLs. Default: `false`. */
  readonly behindProxy?: boolean;
  /** `--tus-extensions`: Enabled tus extensions. creation-with-upload and creation-defer-length imply creation; concatenation-unfinished implies concatenation. Default: `creation,creation-with-upload,creation-defer-length,termination,concatenation,concatenation-unfinished,checksum,expiration,getting`. */
  readonly tusExtensions?: readonly ('creation' | 'creation-with-upload' | 'creation-defer-length' | 'termination' | 'concatenation' | 'concatenation-unfinished' | 'checksum' | 'expiration' | 'getting')[] | string;
  /** `--ietf-draft`: Serve the IETF draft "Resumable Uploads for HTTP" (interop versions 3 to 8) next to tus 1.0 on the same endpoint, for requests that carry Upload-Draft-Interop-Version. --ietf-draft=false answers them as tus 1.0 requests. Default: `true`. */
  readonly ietfDraft?: boolean;
  /** `--storage`: Data storage for upload bytes: files under --data-dir; s3 (multipart uploads straight to the bucket); hybrid-s3 (chunks under --data-dir, the finished file sent to the bucket); gcs (Google Cloud Storage: pieces composed at the end); azure (Azure Blob Storage: a block blob). Default: `file-storage`. */
  readonly storage?: 'file-storage' | 's3' | 'hybrid-s3' | 'gcs' | 'azure';
  /** `--data-dir`: Folder where file-storage keeps upload bytes. Default: `./data`. */
  readonly dataDir?: string;
  /** `--dir-structure`: Sub-folder template under the data dir, from the upload creation time (UTC): {year} {month} {day} {hour} {minute}, and {env[NAME]} for an environment variable. Example: {year}/{month}/{day}. Default: ``. */
  readonly dirStructure?: string;
  /** `--force-fsync`: fsync upload bytes after every write, and info records before they replace the old ones, before answering. Default: `false`. */
  readonly forceFsync?: boolean;
  /** `--info-storage`: Where upload records (offset, length, metadata) are kept: files under --info-dir, or Redis or PostgreSQL at --info-db-dsn, shared by several instances (the upload lock is then shared too). Default: `file-info-storage`. */
  readonly infoStorage?: 'file-info-storage' | 'redis-info-storage' | 'db-info-storage';
  /** `--info-dir`: Folder where file-info-storage keeps <id>.info records (JSON lines, one appended per version, the last complete one being the record; fsynced with --force-fsync). Default: `./data`. */
  readonly infoDir?: string;
  /** `--info-db-dsn`: Connection URL of the shared info storage: redis://[:password@]host:port/db (redis-info-storage) or postgres://user:password@host:port/database (db-info-storage). The password is never logged. */
  readonly infoDbDsn?: string;
  /** `--redis-info-expiration`: Seconds a redis-info-storage record lives after its last write (the TTL slides on every write, as in rustus); 0 = forever. Default: `0`. */
  readonly redisInfoExpiration?: number;
  /** `--lock-ttl`: Seconds a Redis upload lock lives unless its holder renews it (every third of this): how long the uploads of an instance that died stay locked. PostgreSQL locks end with the instance at once. Also how long the lease of a running expiration sweep or module schedule outlives a dead instance (Redis and PostgreSQL), before another instance takes the job. Default: `10`. */
  readonly lockTtl?: number;
  /** `--backend-timeout`: Seconds one Redis command or PostgreSQL query (or connecting to either) may take before it fails. A request that meets a stopped or hung shared backend answers 503 with Retry-After (423 to HEAD, so tus clients wait and resume instead of starting over) and logs a warning naming the backend. Default: `5`. */
  readonly backendTimeout?: number;
  /** `--redis-key-prefix`: Prefix of every Redis key Wharf writes (records, locks, hook outbox, run history), so several deployments can share one Redis database. Default: `wharf:`. */
  readonly redisKeyPrefix?: string;
  /** `--postgres-schema`: PostgreSQL schema that holds every Wharf table (created if missing), so several deployments can share one database: lower-case letters, digits and _, at most 50. Unset: the connection's default search path (normally public). */
  readonly postgresSchema?: string;
  /** `--remove-parts`: Delete partial uploads once a final (concatenated) upload has been built from them. Default: `false`. */
  readonly removeParts?: boolean;
  /** `--upload-expiration`: Seconds an unfinished upload may stay idle before it expires (410) and is removed; each write extends it. 0 disables expiration. Default: `0`. */
  readonly uploadExpiration?: number;
  /** `--expiration-sweep-interval`: Seconds between sweeps that remove expired uploads. Default: `60`. */
  readonly expirationSweepInterval?: number;
  /** `--max-body-size`: Largest request body (one PATCH or creation-with-upload POST) in bytes; 0 = unlimited. Bodies are streamed, never held in memory, so no limit is needed for memory safety. Default: `0`. */
  readonly maxBodySize?: number | string;
  /** `--max-file-size`: Largest upload in bytes (advertised as Tus-Max-Size; enforced for declared, deferred and concatenated uploads); 0 = unlimited. Default: `0`. */
  readonly maxFileSize?: number | string;
  /** `--allow-empty`: Accept Upload-Length: 0 (complete at creation). On by default because tus allows it; --allow-empty=false refuses it with 400 as rustus does by default. Default: `true`. */
  readonly allowEmpty?: boolean;
  /** `--max-header-size`: Largest total size of request headers; larger requests get 431. Default: `16k`. */
  readonly maxHeaderSize?: number | string;
  /** `--network-timeout`: Seconds a request body may stall before the request is ended (the bytes already received are kept). Default: `60`. */
  readonly networkTimeout?: number;
  /** `--min-body-rate`: Slowest request body accepted, in bytes per second, measured over each --network-timeout window after the first: a body that brings less in a window is ended like a stalled one (the bytes already received are kept, the client resumes). Time the server itself holds the body back (a busy disk or object store) is not counted against it. 0 = no minimum (only a full stall ends a body). Default: `500`. */
  readonly minBodyRate?: number | string;
  /** `--lock-timeout`: Seconds a request waits for the upload lock held by another request before answering 503. Default: `20`. */
  readonly lockTimeout?: number;
  /** `--shutdown-timeout`: Seconds in-flight requests get to finish after SIGTERM/SIGINT before the process exits. Default: `10`. */
  readonly shutdownTimeout?: number;
  /** `--log-level`: Log level (case-insensitive). Logs are JSON lines on stdout. Default: `INFO`. */
  readonly logLevel?: 'OFF' | 'ERROR' | 'WARN' | 'INFO' | 'DEBUG' | 'TRACE' | 'off' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** `--no-access`: Turn off the access log. Default: `false`. */
  readonly noAccess?: boolean;
  /** `--disable-health-access-log`: Leave /health requests out of the access log. Default: `false`. */
  readonly disableHealthAccessLog?: boolean;
  /** `--hooks`: Events that fire hooks; an event not listed reaches no hook target. Default: `pre-create,post-create,post-receive,pre-terminate,post-terminate,post-finish`. */
  readonly hooks?: readonly ('pre-create' | 'post-create' | 'post-receive' | 'pre-terminate' | 'post-terminate' | 'post-finish' | 'pre-finish')[] | string;
  /** `--hooks-format`: Payload format of every hook (see docs/hooks.md); cloudevents is CloudEvents 1.0 (see --hooks-cloudevents-mode). Default: `default`. */
  readonly hooksFormat?: 'default' | 'v2' | 'tusd' | 'cloudevents' | 'tusd-v2';
  /** `--hooks-file`: One executable run for every event with argv[1] = hook name and argv[2] = JSON payload (also on stdin). */
  readonly hooksFile?: string;
  /** `--hooks-dir`: Folder with one executable per hook name (pre-create, post-finish, ...), run with argv[1] = JSON payload. */
  readonly hooksDir?: string;
  /** `--hooks-http-urls`: URLs that receive every event as a JSON POST (Hook-Name and Idempotency-Key headers). Default: ``. */
  readonly hooksHttpUrls?: readonly string[] | string;
  /** `--hooks-http-proxy-headers`: Client request headers copied onto HTTP hook requests (e.g. Authorization); also allowed by CORS. Default: ``. */
  readonly hooksHttpProxyHeaders?: readonly string[] | string;
  /** `--http-hook-timeout`: Seconds an HTTP hook may take; a blocking hook that times out cancels the operation (504). Default: `2`. */
  readonly httpHookTimeout?: number;
  /** `--hooks-executable-timeout`: Seconds a file or dir hook may run before it is killed (a blocking one then cancels with 504). Default: `30`. */
  readonly hooksExecutableTimeout?: number;
  /** `--hooks-post-concurrency`: Non-blocking (post-*) hook deliveries running at once. Default: `16`. */
  readonly hooksPostConcurrency?: number;
  /** `--hooks-post-queue-limit`: Non-blocking deliveries waiting to run; beyond it they are dropped, logged and recorded as skipped. Default: `1000`. */
  readonly hooksPostQueueLimit?: number;
  /** `--hooks-stop-code`: Exit code of a file or dir post-receive hook that stops the upload and terminates it, as a StopUpload answer does (tusd 1's -hooks-stop-code). 0: no exit code stops an upload. Default: `0`. */
  readonly hooksStopCode?: number;
  /** `--hooks-progress-interval`: Milliseconds between post-receive events while a PATCH body arrives (tusd's -progress-hooks-interval; a post-receive hook answering StopUpload then stops the PATCH in flight). 0: one post-receive per PATCH, once its bytes are stored. Default: `0`. */
  readonly hooksProgressInterval?: number;
  /** `--hooks-amqp-url`: RabbitMQ connection string (amqp://user:password@host:5672/vhost). Setting it turns AMQP hooks on: every event is published (never blocking), with publisher confirms. */
  readonly hooksAmqpUrl?: string;
  /** `--hooks-amqp-exchange`: Exchange the events are published to. Default: `rustus`. */
  readonly hooksAmqpExchange?: string;
  /** `--hooks-amqp-exchange-kind`: Exchange type used when declaring it (topic, direct, fanout, headers, ...). Default: `topic`. */
  readonly hooksAmqpExchangeKind?: string;
  /** `--hooks-amqp-routing-key`: One routing key (and queue) for every event. Unset: each event uses {prefix}.{event}, e.g. rustus.pre-create. */
  readonly hooksAmqpRoutingKey?: string;
  /** `--hooks-amqp-queues-prefix`: Prefix of the per-event queues and routing keys ({prefix}.{event}) and of Celery task names. Default: `rustus`. */
  readonly hooksAmqpQueuesPrefix?: string;
  /** `--hooks-amqp-declare-exchange`: Declare the exchange on every new connection. Default: `false`. */
  readonly hooksAmqpDeclareExchange?: boolean;
  /** `--hooks-amqp-declare-queues`: Declare the queue of every event ({prefix}.{event}, or the routing key) and bind it to the exchange with its routing key. Default: `false`. */
  readonly hooksAmqpDeclareQueues?: boolean;
  /** `--hooks-amqp-durable-exchange`: Declare the exchange durable. Default: `false`. */
  readonly hooksAmqpDurableExchange?: boolean;
  /** `--hooks-amqp-durable-queues`: Declare the queues durable and publish messages persistent (delivery mode 2). Default: `false`. */
  readonly hooksAmqpDurableQueues?: boolean;
  /** `--hooks-amqp-auto-delete`: Declare the exchange and queues auto-delete. Default: `false`. */
  readonly hooksAmqpAutoDelete?: boolean;
  /** `--hooks-amqp-celery`: Publish Celery (protocol v2) task messages: task {prefix}.{event} (rustus.post-finish, ...) with the payload as its one argument. Default: `false`. */
  readonly hooksAmqpCelery?: boolean;
  /** `--hooks-amqp-connection-pool-size`: Connections to RabbitMQ opened at most (opened lazily). Default: `10`. */
  readonly hooksAmqpConnectionPoolSize?: number;
  /** `--hooks-amqp-channel-pool-size`: Channels opened at most on each connection. Default: `10`. */
  readonly hooksAmqpChannelPoolSize?: number;
  /** `--hooks-amqp-idle-connection-timeout`: Seconds after which an unused connection is closed. Unset: kept open. */
  readonly hooksAmqpIdleConnectionTimeout?: number;
  /** `--hooks-amqp-idle-channels-timeout`: Seconds after which an unused channel is closed. Unset: kept open. */
  readonly hooksAmqpIdleChannelsTimeout?: number;
  /** `--hooks-amqp-publish-timeout`: Seconds a publish (or a connection attempt) may wait for RabbitMQ before it counts as failed; also how long shutdown waits for RabbitMQ to confirm the close of each connection before it drops the connection (logged as a warning). Default: `10`. */
  readonly hooksAmqpPublishTimeout?: number;
  /** `--hooks-kafka-urls`: Kafka bootstrap brokers, host:port, comma separated (bootstrap.servers). Setting it turns Kafka hooks on: every event is sent (never blocking), keyed by upload id, acknowledged before it counts. Default: ``. */
  readonly hooksKafkaUrls?: readonly string[] | string;
  /** `--hooks-kafka-client-id`: Producer client.id (default wharf). */
  readonly hooksKafkaClientId?: string;
  /** `--hooks-kafka-topic`: One topic for every event. Without it (and without a prefix) each event goes to a topic named after it. */
  readonly hooksKafkaTopic?: string;
  /** `--hooks-kafka-prefix`: Topic {prefix}-{event} (e.g. uploads-post-finish); with --hooks-kafka-topic too, {prefix}-{topic}. */
  readonly hooksKafkaPrefix?: string;
  /** `--hooks-kafka-required-acks`: Replicas that must acknowledge a message (request.required.acks): all (-1), 1, or 0 (no acknowledgement: delivery is then not guaranteed). Default: `all`. */
  readonly hooksKafkaRequiredAcks?: string;
  /** `--hooks-kafka-compression`: Compression codec (compression.codec): none, gzip, snappy, lz4 or zstd. Default: `none`. */
  readonly hooksKafkaCompression?: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
  /** `--hooks-kafka-idle-timeout`: Seconds without a message after which the connection is closed (reopened on the next event). Unset: kept open. */
  readonly hooksKafkaIdleTimeout?: number;
  /** `--hooks-kafka-send-timeout`: Seconds a message may wait for its acknowledgement before the attempt counts as failed (and is retried). Default: `10`. */
  readonly hooksKafkaSendTimeout?: number;
  /** `--hooks-kafka-extra-options`: More client settings, key=value;key=value, with librdkafka names: bootstrap.servers, client.id, allow.auto.create.topics, security.protocol, enable.ssl.certificate.verification, sasl.mechanism, sasl.username, sasl.password, request.timeout.ms, socket.connection.setup.timeout.ms, message.timeout.ms, acks, compression.codec, enable.idempotence, metadata.max.age.ms, message.send.max.retries, retry.backoff.ms, max.in.flight.requests.per.connection, linger.ms (queue.buffering.max.ms), batch.num.messages, batch.size. Any other is refused at startup, named. */
  readonly hooksKafkaExtraOptions?: string;
  /** `--s3-url`: S3 endpoint, e.g. http://127.0.0.1:9000 for MinIO; unset uses AWS's endpoint for the region. */
  readonly s3Url?: string;
  /** `--s3-bucket`: Bucket that holds the uploads (must exist). Required with --storage s3 or hybrid-s3. */
  readonly s3Bucket?: string;
  /** `--s3-region`: Region of the bucket (used for request signing). Default: `us-east-1`. */
  readonly s3Region?: string;
  /** `--s3-access-key`: Access key id. Without it (or --s3-access-key-path) the AWS SDK's default credential chain is used. */
  readonly s3AccessKey?: string;
  /** `--s3-access-key-path`: File holding the access key id (one trailing newline is ignored). */
  readonly s3AccessKeyPath?: string;
  /** `--s3-secret-key`: Secret access key. Never logged. */
  readonly s3SecretKey?: string;
  /** `--s3-secret-key-path`: File holding the secret access key (one trailing newline is ignored). */
  readonly s3SecretKeyPath?: string;
  /** `--s3-security-token`: Temporary-credentials token (same as --s3-session-token; rustus accepts both names). */
  readonly s3SecurityToken?: string;
  /** `--s3-session-token`: Session token sent with temporary credentials. */
  readonly s3SessionToken?: string;
  /** `--s3-profile`: Profile from ~/.aws/credentials and ~/.aws/config, used when no access key is given. */
  readonly s3Profile?: string;
  /** `--s3-force-path-style`: Address the bucket as <url>/<bucket>/<key> instead of <bucket>.<host> (MinIO and most self-hosted stores need it). Default: `false`. */
  readonly s3ForcePathStyle?: boolean;
  /** `--s3-headers`: JSON object of extra headers sent with every S3 request, e.g. {"x-amz-acl":"public-read"}. */
  readonly s3Headers?: string;
  /** `--s3-part-size`: Size of the first multipart-upload parts (at least 5 MiB). Parts double in size every 900 parts (up to 5 GiB), so an upload reaches the 5 TiB S3 allows within its 10 000 parts. Default: `8MiB`. */
  readonly s3PartSize?: number | string;
  /** `--s3-part-concurrency`: Parts of one upload sent to S3 at the same time. Each waits in its own temporary file, so an upload holds at most (this + 1) parts on disk. Default: `2`. */
  readonly s3PartConcurrency?: number;
  /** `--s3-buffer-dir`: Folder for the temporary files parts are gathered in before they are sent; unset uses the system's temporary folder. */
  readonly s3BufferDir?: string;
  /** `--s3-concat-concurrent-downloads`: Server-side part copies running at once while concatenating uploads. Default: `10`. */
  readonly s3ConcatConcurrentDownloads?: number;
  /** `--gcs-bucket`: Bucket that holds the uploads (must exist). Required with --storage gcs. */
  readonly gcsBucket?: string;
  /** `--gcs-prefix`: Prepended to every object name, e.g. uploads/ (then --dir-structure, then the upload id). Default: ``. */
  readonly gcsPrefix?: string;
  /** `--gcs-key-file`: Service-account key file (JSON). Unset: Google's client finds credentials itself (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, the metadata server). */
  readonly gcsKeyFile?: string;
  /** `--gcs-project`: Project id, when the credentials do not name one. */
  readonly gcsProject?: string;
  /** `--gcs-url`: API endpoint, e.g. http://127.0.0.1:4443 for fake-gcs-server; unset uses Google's. No credentials are sent to a custom endpoint. */
  readonly gcsUrl?: string;
  /** `--gcs-part-size`: Largest piece object a PATCH body is stored as before the upload finishes (each is gathered in a temporary file first). Default: `8MiB`. */
  readonly gcsPartSize?: number | string;
  /** `--gcs-part-concurrency`: Pieces of one upload sent at the same time; an upload holds at most (this + 1) pieces on disk. Default: `2`. */
  readonly gcsPartConcurrency?: number;
  /** `--gcs-buffer-dir`: Folder for the temporary files pieces are gathered in; unset uses the system's temporary folder. */
  readonly gcsBufferDir?: string;
  /** `--azure-account`: Storage account name. Required with --storage azure unless --azure-connection-string is given. */
  readonly azureAccount?: string;
  /** `--azure-container`: Container that holds the uploads (must exist). Required with --storage azure. */
  readonly azureContainer?: string;
  /** `--azure-prefix`: Prepended to every blob name, e.g. uploads/ (then --dir-structure, then the upload id). Default: ``. */
  readonly azurePrefix?: string;
  /** `--azure-key`: Account key (shared key). Never logged. One of --azure-key, --azure-sas or --azure-connection-string is required. */
  readonly azureKey?: string;
  /** `--azure-key-path`: File holding the account key (one trailing newline is ignored). */
  readonly azureKeyPath?: string;
  /** `--azure-sas`: Shared access signature token (the query string, with or without its ?), with read, write, delete and list rights on the container. Never logged. */
  readonly azureSas?: string;
  /** `--azure-connection-string`: Connection string as the Azure portal shows it (account, key or SAS, endpoint). Never logged. */
  readonly azureConnectionString?: string;
  /** `--azure-url`: Blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite; unset uses https://<account>.blob.core.windows.net. */
  readonly azureUrl?: string;
  /** `--azure-block-size`: Size of the blocks an upload starts with; the size doubles as the upload grows (up to 4000 MiB) so an upload of about 150 TiB fits the 50 000 blocks Azure allows. Default: `8MiB`. */
  readonly azureBlockSize?: number | string;
  /** `--azure-block-concurrency`: Blocks of one upload staged at the same time; an upload holds at most (this + 1) blocks on disk. Default: `2`. */
  readonly azureBlockConcurrency?: number;
  /** `--azure-buffer-dir`: Folder for the temporary files blocks are gathered in; unset uses the system's temporary folder. */
  readonly azureBufferDir?: string;
  /** `--hooks-modules-dir`: Folder of hook modules: each subfolder’s index.js, index.mjs or index.ts registers filters, actions, init handlers and schedules. A missing folder means no modules. Default: `./extensions/hooks`. */
  readonly hooksModulesDir?: string;
  /** `--config`: YAML or JSON file declaring named hooks (critical, runOn, args), endpoints and their hook bindings with `when` conditions (see docs/hooks.md). */
  readonly config?: string;
  /** `--hooks-outbox-dir`: Folder of the outbox journal: broker events are kept there until the broker confirmed them (written within 5 ms, unless confirmed sooner), so an outage or a restart loses none; a crash can lose the last few milliseconds. Default: <data-dir>/.wharf-outbox. Unused with redis-info-storage or db-info-storage: the outbox then lives in that shared store. */
  readonly hooksOutboxDir?: string;
  /** `--hooks-outbox-limit`: Undelivered broker events kept at most (per process; with a shared info store, also in total over all instances). When full, the oldest are kept and new ones are dropped, counted and logged. Default: `100000`. */
  readonly hooksOutboxLimit?: number;
  /** `--hooks-outbox-max-backoff`: Longest wait, in seconds, between two attempts while a broker is down (retries start at 0.2 s and double, with jitter). Also bounds how long after a broker comes back the events start flowing again. Default: `30`. */
  readonly hooksOutboxMaxBackoff?: number;
  /** `--hooks-http-outbox`: Deliver non-blocking (post-*) HTTP hooks through the outbox: journaled, retried per --hooks-retry-schedule until the endpoint answers 2xx (a 4xx other than 408/425/429 dead-letters the event at once; 410 Gone disables the target), in order per upload, resumed after a restart. false: one attempt, as in rustus. Default: `true`. */
  readonly hooksHttpOutbox?: boolean;
  /** `--hooks-http-secret`: Standard Webhooks secrets ("whsec_" + base64 of 24 to 64 random bytes), comma-separated, newest first. Every --hooks-http-urls request then carries webhook-id, webhook-timestamp and webhook-signature, signed with each secret (two during a rotation). Never logged. */
  readonly hooksHttpSecret?: readonly string[] | string;
  /** `--hooks-cloudevents-mode`: With --hooks-format cloudevents: "structured" sends the whole event as the body (application/cloudevents+json); "binary" sends data as the body and the attributes as ce-* HTTP headers, cloudEvents_* AMQP headers and ce_* Kafka headers. Default: `structured`. */
  readonly hooksCloudeventsMode?: 'structured' | 'binary';
  /** `--hooks-cloudevents-source`: The CloudEvents "source" of every event (an absolute URI such as https://files.example.com/files/, or an absolute path). Default: the endpoint URL as the client reached it. */
  readonly hooksCloudeventsSource?: string;
  /** `--hooks-retry-schedule`: Delays before the 2nd, 3rd, … attempt of a post hook at an HTTP target (units ms, s, m, h, d; each with ±20 % jitter; a Retry-After answer can only make a delay longer). An event still failing after the last one is dead-lettered: kept in the outbox store and listed until it is resent. Empty: dead after one failed attempt. Default: `5s,30s,2m,10m,1h`. */
  readonly hooksRetrySchedule?: string;
  /** `--hooks-disable-after`: A target failing every attempt for this long (units ms, s, m, h, d) is disabled with a warning: its events wait, unsent, until it is enabled again. A target answering 410 Gone or `webhook-delivery: disable` is disabled at once. Default: `5d`. */
  readonly hooksDisableAfter?: string;
  /** `--hooks-dead-letter-limit`: Dead letters kept at most in the outbox store (the journal, Redis or PostgreSQL; with a shared store, in total over all instances). Beyond it the oldest are dropped, logged at warn and counted (wharf_hook_dead_letters_dropped_total). Default: `10000`. */
  readonly hooksDeadLetterLimit?: number;
  /** `--admin`: Serve the admin API under /admin/api (uploads, hook runs, resend, dead letters, targets, a live stream) and the dashboard at /admin. Needs --admin-token unless --host is a loopback address. Default: `false`. */
  readonly admin?: boolean;
  /** `--admin-token`: Bearer token the admin API asks for (Authorization: Bearer <token>). Prefer the environment variable: a flag shows in the process list. Never logged. */
  readonly adminToken?: string;
  /** `--admin-history-limit`: Hook events whose runs are kept in the run history (in the info storage: files under <info-dir>/.wharf-history, Redis or PostgreSQL); older ones are removed. Default: `10000`. */
  readonly adminHistoryLimit?: number;
  /** `--admin-history-max-age`: How long hook events stay in the run history: a number of seconds or a duration such as 90s, 30m, 12h, 7d. Default: `7d`. */
  readonly adminHistoryMaxAge?: string;
  /** `--metrics`: Serve Prometheus metrics at /metrics (outside the base URL, as rustus does): uploads, requests, bytes, hook runs and the outbox. Default: `true`. */
  readonly metrics?: boolean;
  /** `--metrics-token`: Bearer token /metrics asks for (Authorization: Bearer <token>; 401 without it). Unset: /metrics is open, and shows no secret (targets by scheme, host and port). Prefer the environment variable. Never logged. */
  readonly metricsToken?: string;
  /** `--hooks-allowed-urls`: Where HTTP hooks may send events, comma separated: URL prefixes (https://hooks.example.com/wharf/) or host patterns (example.com, *.example.com, hooks.example.net:8080). Configured hook URLs outside the list stop Wharf at start; targets added through the admin API are refused (403). Empty: no limit. Default: ``. */
  readonly hooksAllowedUrls?: readonly string[] | string;
  /** `--hooks-allow-private-targets`: Let targets added through the admin API resolve to private, loopback or link-local addresses (refused by default, against server-side request forgery). Default: `false`. */
  readonly hooksAllowPrivateTargets?: boolean;
}
