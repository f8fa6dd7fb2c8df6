/**
 * A small client for the coinstaker staking pool's GraphQL API, for wallets on Node.js 20+.
 *
 * - {@link getSubscriber}: one subscriber's status and balances (a query over HTTP POST /graphql).
 * - {@link followEvents}: the pool's event log as a stream that survives disconnects. It keeps
 *   the cursor of the last event it handed you and, after every reconnect, subscribes again
 *   with `events(after: <that cursor>)`: the server replays what was missed, then goes on
 *   live, so there is no gap and no duplicate. Store `follower.cursor` to resume after a
 *   restart too.
 * - {@link watchIdentity}: `stakeFound` and `paymentSent` pushed live for one identity.
 * - {@link request}: any query or mutation, with an admin token for admin mutations.
 *
 * Built on graphql-ws (the `graphql-transport-ws` protocol) and ws (Node 20 has no global
 * WebSocket). The documents and their types are generated from ../../schema.graphql by
 * `npm run codegen` (see src/operations.graphql).
 */
import WebSocket from 'ws';
import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws/client';

import {
  EventsDocument,
  PaymentSentDocument,
  StakeFoundDocument,
  SubscriberDocument,
  type EventFieldsFragment,
  type EventKind,
  type SubscriberQuery,
  type TypedDocumentString,
} from './generated/graphql.js';

export type { EventKind, PaymentStatus, StakeStatus, SubscriberStatus } from './generated/graphql.js';

/** One event of the pool's log, as this client asks for it (see `EventFields`). */
export type PoolEvent = EventFieldsFragment;
/** A subscriber's status and balances. Amounts are strings with 8 decimals (`"12.50000000"`). */
export type Subscriber = NonNullable<SubscriberQuery['subscriber']>;

/** Errors the server answered with (`extensions.code` says which kind: INVALID_INPUT, …). */
export class GraphQLRequestError extends Error {
  constructor(
    readonly errors: ReadonlyArray<{ message: string; extensions?: Record<string, unknown> }>,
    readonly status?: number,
  ) {
    super(errors.map((e) => e.message).join('; ') || `HTTP ${status}`);
    this.name = 'GraphQLRequestError';
  }
}

/** The GraphQL endpoints of a pool at `baseUrl` (`http://host:port`, `https://…`). */
export function endpoints(baseUrl: string): { http: string; ws: string } {
  const url = new URL('graphql', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  const http = url.toString();
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return { http, ws: url.toString() };
}

/** Options of {@link request}. */
export interface RequestOptions {
  /** An admin token, sent as `Authorization: Bearer <token>` (admin mutations only). */
  token?: string;
  /** Aborts the request. */
  signal?: AbortSignal;
}

/**
 * Sends one query or mutation over HTTP POST and returns its `data`; throws
 * {@link GraphQLRequestError} when the server answers with errors.
 */
export async function request<TResult = unknown, TVariables = Record<string, unknown>>(
  baseUrl: string,
  document: TypedDocumentString<TResult, TVariables> | string,
  variables?: TVariables,
  options: RequestOptions = {},
): Promise<TResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(endpoints(baseUrl).http, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await response.text();
  let body: FormattedExecutionResult<TResult>;
  try {
    body = JSON.parse(text) as FormattedExecutionResult<TResult>;
  } catch {
    throw new GraphQLRequestError([{ message: `HTTP ${response.status}: ${text.slice(0, 200)}` }], response.status);
  }
  if (body.errors?.length) throw new GraphQLRequestError(body.errors, response.status);
  if (!response.ok || body.data == null) {
    throw new GraphQLRequestError([{ message: `HTTP ${response.status} without data` }], response.status);
  }
  return body.data;
}

/**
 * A subscriber by i-address or name (`alice@`); `null` if the identity never joined.
 * `pendingBalance + inFlight + paidTotal` is everything it was ever credited.
 */
export async function getSubscriber(baseUrl: string, identity: string, chain?: string): Promise<Subscriber | null> {
  const data = await request(baseUrl, SubscriberDocument, { identity, chain: chain ?? null });
  return data.subscriber;
}

/** Options of {@link followEvents}. */
export interface FollowEventsOptions {
  /**
   * Resume after this cursor: the `cursor` of the last event you handled (stored from an
   * earlier run), or `"0"` (the default) for every stored event from the first.
   */
  after?: string;
  /** Only these kinds (default: every kind). */
  kinds?: EventKind[];
  /** Only events about this identity (an i-address or a name); a payment is about every identity it pays. */
  identity?: string;
  /** The chain (default: the pool's first). */
  chain?: string;
  /**
   * Called for each event, in order, one at a time (a returned promise is awaited before the
   * next event). The event's cursor becomes the resume point only once this returns, so an
   * event is never skipped; if it throws, the follower stops and `done` rejects.
   */
  onEvent: (event: PoolEvent) => void | Promise<void>;
  /** Called when the connection is lost, before waiting to reconnect. */
  onDisconnect?: (reason: unknown, resumeAfter: string) => void;
  /** Called with the open WebSocket after each (re)connection. */
  onConnected?: (socket: WebSocket) => void;
  /** Waits before reconnect attempt number `attempt` (1, 2, …); default: 0.5 s doubling up to 30 s, with jitter. */
  retryWait?: (attempt: number) => Promise<void>;
}

/** A running {@link followEvents}. */
export interface EventFollower {
  /** The cursor of the last event handled (the `after` it started from, before any). */
  readonly cursor: string;
  /** Stops following; resolves when the connection is closed. */
  stop(): Promise<void>;
  /** Resolves after {@link EventFollower.stop}; rejects on an error that retrying cannot fix (a bad argument, `onEvent` throwing). */
  readonly done: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** 0.5 s, 1 s, 2 s, … up to 30 s, each plus up to 25 % jitter. */
export function backoff(attempt: number): Promise<void> {
  const ms = Math.min(30_000, 500 * 2 ** Math.max(0, attempt - 1));
  return sleep(ms + Math.random() * ms * 0.25);
}

/** A WebSocket client for one connection, which never reconnects by itself. */
function connectOnce(
  baseUrl: string,
  onConnected: (socket: WebSocket) => void,
  onClosed: (event: unknown) => void,
): Client {
  const client: Client = createClient({
    url: endpoints(baseUrl).ws,
    webSocketImpl: WebSocket,
    lazy: true,
    // followEvents reconnects itself, with the cursor it has reached by then.
    retryAttempts: 0,
    on: {
      connected: (socket) => onConnected(socket as WebSocket),
      closed: (event) => {
        onClosed(event);
        // graphql-ws would quietly resubscribe with the first cursor after a normal close
        // (code 1000) from the server: dispose of this client instead, so that the loop in
        // followEvents resubscribes with the latest cursor.
        void client.dispose();
      },
    },
  });
  return client;
}

/** An error followEvents cannot fix by reconnecting. */
class Fatal extends Error {
  constructor(readonly reason: unknown) {
    super(reason instanceof Error ? reason.message : JSON.stringify(reason));
  }
}

/**
 * Follows the pool's event log from `options.after`: the stored events after it first, then
 * live ones, across any number of disconnects, with no gap and no duplicate.
 */
export function followEvents(baseUrl: string, options: FollowEventsOptions): EventFollower {
  let cursor = options.after ?? '0';
  let stopped = false;
  let current: Client | undefined;
  let wakeUp = () => {};
  const retryWait = options.retryWait ?? backoff;

  /** One subscription on one connection, until it ends: why it ended, and whether it had connected. */
  async function once(): Promise<{ reason: unknown; connected: boolean }> {
    let connected = false;
    let closeEvent: unknown = 'the connection closed';
    const client = connectOnce(
      baseUrl,
      (socket) => {
        connected = true;
        options.onConnected?.(socket);
      },
      (event) => (closeEvent = event),
    );
    current = client;
    try {
      const results = client.iterate<{ events: PoolEvent }>({
        query: EventsDocument.toString(),
        variables: {
          after: cursor,
          kinds: options.kinds ?? null,
          identity: options.identity ?? null,
          chain: options.chain ?? null,
        },
      });
      for await (const result of results) {
        if (result.errors?.length) {
          // Fell more than the server's buffer behind: the subscription ended; resume.
          if (result.errors.some((e) => e.extensions?.code === 'LAGGED')) return { reason: 'LAGGED', connected };
          throw new Fatal(new GraphQLRequestError(result.errors));
        }
        const event = result.data?.events;
        if (!event) continue;
        try {
          await options.onEvent(event);
        } catch (error) {
          throw new Fatal(error);
        }
        cursor = event.cursor;
      }
      return { reason: closeEvent, connected };
    } catch (error) {
      if (error instanceof Fatal) throw error;
      // The server refused the subscription itself (an `error` message: bad arguments).
      if (Array.isArray(error)) throw new Fatal(new GraphQLRequestError(error));
      // The connection was lost or could not be made: retry.
      return { reason: error, connected };
    } finally {
      current = undefined;
      await client.dispose();
    }
  }

  const done = (async () => {
    let attempt = 0;
    while (!stopped) {
      let outcome: { reason: unknown; connected: boolean };
      try {
        outcome = await once();
      } catch (error) {
        stopped = true;
        throw error instanceof Fatal ? error.reason : error;
      }
      if (stopped) break;
      if (outcome.reason === 'LAGGED') continue; // resubscribe at once from the cursor reached
      attempt = outcome.connected ? 1 : attempt + 1;
      options.onDisconnect?.(outcome.reason, cursor);
      await Promise.race([retryWait(attempt), new Promise<void>((resolve) => (wakeUp = resolve))]);
    }
  })();

  return {
    get cursor() {
      return cursor;
    },
    async stop() {
      stopped = true;
      wakeUp();
      await current?.dispose();
      await done.catch(() => undefined);
    },
    done,
  };
}

/** Handlers of {@link watchIdentity}. */
export interface WatchIdentityOptions {
  /** The chain (default: the pool's first). */
  chain?: string;
  /** A stake found by the identity (`kind: STAKE_FOUND`, `stake` set). */
  onStakeFound?: (event: PoolEvent) => void;
  /** A payment with an output to the identity (`kind: PAYMENT_SENT`, `payment.outputs`). */
  onPaymentSent?: (event: PoolEvent) => void;
  /** A subscription failed for good (e.g. an unknown chain); default: logged. */
  onError?: (error: unknown) => void;
}

/**
 * Pushes `stakeFound` and `paymentSent` for one identity (an i-address or a name), live, over
 * one WebSocket that reconnects by itself. These subscriptions are live only: events that
 * happen while the connection is down are not replayed. A wallet that must not miss any uses
 * {@link followEvents} with `identity` and `kinds: ['STAKE_FOUND', 'PAYMENT_SENT']` instead.
 * Returns a function that stops both subscriptions and closes the connection.
 */
export function watchIdentity(baseUrl: string, identity: string, options: WatchIdentityOptions): () => Promise<void> {
  const client = createClient({
    url: endpoints(baseUrl).ws,
    webSocketImpl: WebSocket,
    retryAttempts: Infinity,
    retryWait: backoff,
    // Retry whatever the reason (a restarting server answers nothing for a while).
    shouldRetry: () => true,
  });
  const onError =
    options.onError ?? ((error: unknown) => console.error('coinstaker subscription failed:', error));
  const variables = { identity, chain: options.chain ?? null };
  const sink = <K extends string>(field: K, handler?: (event: PoolEvent) => void) => ({
    next(result: FormattedExecutionResult<Record<K, PoolEvent>>) {
      if (result.errors?.length) onError(new GraphQLRequestError(result.errors));
      const event = result.data?.[field];
      if (event) handler?.(event);
    },
    error: (error: unknown) => onError(Array.isArray(error) ? new GraphQLRequestError(error) : error),
    complete: () => undefined,
  });
  const stops = [
    client.subscribe(
      { query: StakeFoundDocument.toString(), variables },
      sink('stakeFound', options.onStakeFound),
    ),
    client.subscribe(
      { query: PaymentSentDocument.toString(), variables },
      sink('paymentSent', options.onPaymentSent),
    ),
  ];
  return async () => {
    stops.forEach((stop) => stop());
    await client.dispose();
  };
}
