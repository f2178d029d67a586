import type { ChannelModel, ConfirmChannel } from 'amqplib';

export interface AmqpPoolOptions {
  readonly url: string;
  /** `--hooks-amqp-connection-pool-size`: connections opened at most. */
  readonly connectionPoolSize: number;
  /** `--hooks-amqp-channel-pool-size`: channels opened at most on each connection. */
  readonly channelPoolSize: number;
  /** Close a connection none of whose channels was used for this long; undefined keeps it forever. */
  readonly idleConnectionTimeoutMs: number | undefined;
  /** Close a channel unused for this long; undefined keeps it forever. */
  readonly idleChannelTimeoutMs: number | undefined;
  /** Runs once on every new connection, on its first channel (exchange and queue declarations). */
  readonly prepare: (channel: ConfirmChannel) => Promise<void>;
  /** Gives up connecting after this long. */
  readonly connectTimeoutMs: number;
  /**
   * How long {@link AmqpChannelPool.close} waits for the broker to confirm the close of each connection before
   * it destroys the connection's socket (default: `connectTimeoutMs`).
   */
  readonly closeTimeoutMs?: number;
  /** How the connections are named in RabbitMQ's management tools (default `wharf hooks`). */
  readonly connectionName?: string;
}

interface PooledConnection {
  readonly model: ChannelModel;
  open: boolean;
  /** Channels open or opening on this connection. */
  channels: number;
  busy: number;
  lastUsedAt: number;
  prepared: Promise<void> | undefined;
  /** Its socket holds writes until the publishes of this turn of the event loop are all encoded. */
  corked: boolean;
}

/** The socket under an amqplib connection (not in its types: `ChannelModel.connection.stream`). */
function socketOf(model: ChannelModel): { cork(): void; uncork(): void; destroy(): void } | undefined {
  const stream = (
    model as unknown as {
      connection?: { stream?: { cork?: unknown; uncork?: unknown; destroy?: unknown } };
    }
  ).connection?.stream;
  return typeof stream?.cork === 'function' &&
    typeof stream.uncork === 'function' &&
    typeof stream.destroy === 'function'
    ? (stream as { cork(): void; uncork(): void; destroy(): void })
    : undefined;
}

/** Connections the broker did not confirm closing in time (their sockets were destroyed instead). */
export class AmqpCloseTimeout extends Error {
  constructor(
    readonly connections: number,
    readonly timeoutMs: number,
  ) {
    super(
      `the broker did not answer the close of ${connections} connection${connections === 1 ? '' : 's'} within ${timeoutMs} ms; destroyed`,
    );
    this.name = 'AmqpCloseTimeout';
  }
}

export interface PooledChannel {
  readonly channel: ConfirmChannel;
  readonly connection: PooledConnection;
  open: boolean;
  lastUsedAt: number;
}

/**
 * Confirm channels to one broker, opened lazily and bounded: at most `connectionPoolSize` connections with at
 * most `channelPoolSize` channels each. A caller beyond that waits for a channel to come back. A channel or
 * connection the broker closes is dropped and replaced on the next acquire, so a restarted broker is picked up
 * without any reconnect loop of our own: the caller (the outbox) retries.
 */
export class AmqpChannelPool {
  readonly #options: AmqpPoolOptions;
  readonly #connections: PooledConnection[] = [];
  readonly #idle: PooledChannel[] = [];
  readonly #waiters: ((channel: PooledChannel | undefined) => void)[] = [];
  #sweeper: NodeJS.Timeout | undefined;
  /** The connection being opened, while one is. */
  #connecting: Promise<PooledConnection> | undefined;
  #closed = false;
  /** False once the hook was replaced: a connection closes as soon as none of its channels is in use. */
  #keep = true;

  constructor(options: AmqpPoolOptions) {
    this.#options = options;
  }

  /**
   * Starts the idle sweep with the first connection: a pool that never connects (the transport of a hook set
   * built only to be checked, or never delivered through) holds no timer.
   */
  #startSweeper(): void {
    if (this.#sweeper !== undefined || this.#closed) return;
    const options = this.#options;
    const timeouts = [options.idleConnectionTimeoutMs, options.idleChannelTimeoutMs].filter(
      (value): value is number => value !== undefined,
    );
    if (timeouts.length === 0) return;
    const every = Math.max(100, Math.min(1000, ...timeouts.map((value) => value / 2)));
    this.#sweeper = setInterval(() => this.#sweep(), every);
    this.#sweeper.unref();
  }

  /** Connections currently open (for tests and metrics). */
  get openConnections(): number {
    return this.#connections.length;
  }

  /**
   * An idle channel at once, or undefined when none is idle (then {@link acquire}): the common case of a busy
   * server, without the promises an `async` acquire costs every publish.
   */
  takeIdle(): PooledChannel | undefined {
    if (this.#closed) return undefined;
    const idle = this.#idle.pop();
    return idle === undefined ? undefined : this.#lend(idle);
  }

  /** A channel for one publish; give it back with {@link release}. Rejects when the broker cannot be reached. */
  async acquire(): Promise<PooledChannel> {
    if (this.#closed) throw new Error('the AMQP pool is closed');
    const idle = this.#idle.pop();
    if (idle !== undefined) return this.#lend(idle);

    const connection = await this.#connectionWithRoom();
    if (connection === undefined) {
      // Every connection is at its channel limit: wait for a channel to come back (or to be dropped).
      const handed = await new Promise<PooledChannel | undefined>((resolve) => this.#waiters.push(resolve));
      return handed === undefined ? this.acquire() : this.#lend(handed);
    }
    connection.channels += 1;
    try {
      const channel = await connection.model.createConfirmChannel();
      const pooled: PooledChannel = { channel, connection, open: true, lastUsedAt: Date.now() };
      const drop = (): void => this.#dropChannel(pooled);
      channel.on('close', drop);
      channel.on('error', drop);
      connection.prepared ??= this.#options.prepare(channel);
      try {
        await connection.prepared;
      } catch (error) {
        // A failed declaration (e.g. 406 PRECONDITION_FAILED) closes the channel; try again next time.
        connection.prepared = undefined;
        throw error;
      }
      return this.#lend(pooled);
    } catch (error) {
      connection.channels -= 1;
      this.#wakeOne(undefined);
      throw error;
    }
  }

  /** Returns a channel after use; a broken one is simply forgotten. */
  release(pooled: PooledChannel): void {
    pooled.connection.busy -= 1;
    pooled.lastUsedAt = Date.now();
    pooled.connection.lastUsedAt = pooled.lastUsedAt;
    if (!pooled.open || !pooled.connection.open || this.#closed) {
      this.#wakeOne(undefined);
      return;
    }
    if (!this.#keep && this.#waiters.length === 0) {
      this.#idle.push(pooled);
      if (pooled.connection.busy === 0) this.#closeIdle(pooled.connection);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(pooled);
    else this.#idle.push(pooled);
  }

  /**
   * Holds the connection's socket writes until the next turn of the event loop, so that every message published
   * on it in this turn (amqplib writes each one to the socket on its own, a turn after the publish) leaves in one
   * system call and reaches the broker as one TCP segment, not one each. Nothing waits on it: the writes go out
   * a turn later whatever happens to the connection.
   */
  batchWrites(pooled: PooledChannel): void {
    const connection = pooled.connection;
    if (connection.corked) return;
    const socket = socketOf(connection.model);
    if (socket === undefined) return;
    connection.corked = true;
    socket.cork();
    // amqplib moves each channel's frames to the socket in a setImmediate queued after this one: the socket
    // is uncorked by the next turn's immediate, after those writes.
    setImmediate(() =>
      setImmediate(() => {
        connection.corked = false;
        socket.uncork();
      }),
    );
  }

  /**
   * false for a hook that was replaced (engine.ts): its connections close as soon as none of their channels is
   * in use (idle ones now), and a later publish (an event stored for the old declaration, retried) opens one that
   * closes after it in turn. true: connections are kept again (the declaration came back). Unlike close, the pool
   * still works.
   */
  keepConnections(keep: boolean): void {
    this.#keep = keep;
    if (keep) return;
    for (const connection of [...this.#connections]) {
      if (connection.busy === 0) this.#closeIdle(connection);
    }
  }

  /** Forgets an unused connection and closes it (bounded, as at shutdown). */
  #closeIdle(connection: PooledConnection): void {
    this.#dropConnection(connection);
    void closeWithin(connection.model, this.#options.closeTimeoutMs ?? this.#options.connectTimeoutMs);
  }

  /** Closes a channel that misbehaved (e.g. a publish that was never confirmed). */
  discard(pooled: PooledChannel): void {
    this.#dropChannel(pooled);
    pooled.channel.close().catch(() => {});
  }

  /**
   * Closes every connection. amqplib's close waits for the broker's Close-Ok, which a hung broker (or a network
   * that drops everything) never sends: each connection gets `closeTimeoutMs`, then its socket is destroyed and
   * close rejects with an {@link AmqpCloseTimeout} saying how many were, so that shutdown is bounded and said.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    this.#idle.length = 0;
    const timeoutMs = this.#options.closeTimeoutMs ?? this.#options.connectTimeoutMs;
    const destroyed = await Promise.all(
      this.#connections.splice(0).map((connection) => {
        connection.open = false;
        return closeWithin(connection.model, timeoutMs);
      }),
    );
    const count = destroyed.filter(Boolean).length;
    if (count > 0) throw new AmqpCloseTimeout(count, timeoutMs);
  }

  #lend(pooled: PooledChannel): PooledChannel {
    pooled.connection.busy += 1;
    pooled.connection.lastUsedAt = Date.now();
    return pooled;
  }

  /**
   * A connection with room for a channel, opened when none has room and the pool may open one more; undefined
   * when every connection is full. One connection opens at a time: callers that arrive while it opens wait for
   * it (and share its failure) rather than each open one, which could pass `connectionPoolSize`.
   */
  async #connectionWithRoom(): Promise<PooledConnection | undefined> {
    for (;;) {
      const withRoom = this.#connections.find((c) => c.open && c.channels < this.#options.channelPoolSize);
      if (withRoom !== undefined) return withRoom;
      if (this.#connecting !== undefined) {
        await this.#connecting;
        continue;
      }
      if (this.#connections.length >= this.#options.connectionPoolSize) return undefined;
      const connecting = this.#connect();
      this.#connecting = connecting;
      try {
        return await connecting;
      } finally {
        if (this.#connecting === connecting) this.#connecting = undefined;
      }
    }
  }

  async #connect(): Promise<PooledConnection> {
    // Loaded on first use: an unused client library's code would still enlarge the heap every upload runs in.
    const { connect } = await import('amqplib');
    const model = await connect(this.#options.url, {
      timeout: this.#options.connectTimeoutMs,
      clientProperties: { connection_name: this.#options.connectionName ?? 'wharf hooks' },
    });
    const connection: PooledConnection = {
      model,
      open: true,
      channels: 0,
      busy: 0,
      lastUsedAt: Date.now(),
      prepared: undefined,
      corked: false,
    };
    const drop = (): void => this.#dropConnection(connection);
    model.on('close', drop);
    model.on('error', drop);
    if (this.#closed) {
      await model.close().catch(() => {});
      throw new Error('the AMQP pool is closed');
    }
    this.#connections.push(connection);
    this.#startSweeper();
    return connection;
  }

  #dropChannel(pooled: PooledChannel): void {
    if (!pooled.open) return;
    pooled.open = false;
    pooled.connection.channels -= 1;
    const at = this.#idle.indexOf(pooled);
    if (at !== -1) this.#idle.splice(at, 1);
    this.#wakeOne(undefined);
  }

  #dropConnection(connection: PooledConnection): void {
    if (!connection.open) return;
    connection.open = false;
    const at = this.#connections.indexOf(connection);
    if (at !== -1) this.#connections.splice(at, 1);
    for (const pooled of this.#idle.filter((candidate) => candidate.connection === connection)) {
      this.#dropChannel(pooled);
    }
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }

  #wakeOne(channel: PooledChannel | undefined): void {
    this.#waiters.shift()?.(channel);
  }

  #sweep(): void {
    const now = Date.now();
    const channelTimeout = this.#options.idleChannelTimeoutMs;
    if (channelTimeout !== undefined) {
      for (const pooled of this.#idle.filter((candidate) => now - candidate.lastUsedAt >= channelTimeout)) {
        this.discard(pooled);
      }
    }
    const connectionTimeout = this.#options.idleConnectionTimeoutMs;
    if (connectionTimeout !== undefined) {
      for (const connection of [...this.#connections]) {
        if (connection.busy > 0 || now - connection.lastUsedAt < connectionTimeout) continue;
        // Bounded like a shutdown's close: a broker that never confirms does not keep the socket forever.
        this.#closeIdle(connection);
      }
    }
  }
}

/** Closes `model`, or destroys its socket when the broker has not confirmed within `timeoutMs`: true then. */
function closeWithin(model: ChannelModel, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      socketOf(model)?.destroy();
      resolve(true);
    }, timeoutMs);
    // A close that fails (the connection was already gone) is closed all the same.
    model.close().then(
      () => {
        clearTimeout(timer);
        resolve(false);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}
