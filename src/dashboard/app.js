"use strict";
// The coinstaker dashboard: a reference client of the public GraphQL API.
//
// Everything on the page comes from `POST /graphql` (queries, refreshed every few seconds and
// whenever an event arrives) and from the `events` subscription over WebSocket
// (`graphql-transport-ws`, written out by hand below so it can be read as an example). No
// library, no build step. API strings are only ever put into the page as text
// (`textContent`, `append(string)`), never parsed as HTML.

// ---------------------------------------------------------------------------------------------
// Settings

const REFRESH_MS = 5000; // periodic refresh of the queried data
const EVENT_REFRESH_DELAY_MS = 400; // an event triggers a refresh this soon (coalesced)
const FEED_LIMIT = 100; // events kept in the live feed
const STAKES_SHOWN = 15;
const PAYMENTS_SHOWN = 10;
const LOOKUP_CREDITS_SHOWN = 20;
const LOOKUP_PAYMENTS_SHOWN = 10;
// A stake's largest shares shown in the overview (a pool of thousands has thousands per stake).
const STAKE_CREDITS_SHOWN = 25;
const NAMES_RELOAD_MS = 60_000; // i-address → name map (subscribers list)
const HISTORY_RANGES = [200, 1000, 2000]; // blocks shown in the charts (poolHistory ≤ 2000 rows)
const HISTORY_DEFAULT_RANGE = 1000;
// The charts re-read only the newest rows on each refresh. The last few are read again because
// a reorganisation can rewrite them, and everything is read again now and then because a stake
// can turn stale (and so leave `poolStakes`) a while after its block.
const HISTORY_OVERLAP = 10;
const HISTORY_FULL_RELOAD_MS = 60_000;
// Fields of PoolStats for the luck chart that older servers do not have: the chart is left
// empty ("no network data yet") when the schema refuses them.
const LUCK_FIELDS = ["proofOfStake", "expectedStakes", "poolStakes"];
// The schema's cooldown and stake age (Subscriber.eligibleBalance, SubscriberStatus).
const COOLDOWN_BLOCKS = 150;
const WS_ACK_TIMEOUT_MS = 10_000;
// A query not answered in this long is abandoned: the refresh loop runs one refresh at a time,
// so a request lost on the way (a dropped connection, a suspended laptop) would otherwise stop
// every later refresh while the live feed goes on.
const QUERY_TIMEOUT_MS = 20_000;
const WS_MAX_BACKOFF_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// Queries. Only fields the page shows are asked for; the schema describes each of them.

const POOLS_QUERY = `query Pools { pools { chain } }`;

const OVERVIEW_QUERY = `query Overview($chain: String, $stakes: Int!, $credits: Int!, $payments: Int!) {
  pool(chain: $chain) {
    chain chainId primaryAddress poolIdentity feePercent minPayout maturity
    conditions { minUnlockDelay requireSeparateRevokeRecover maxPrimaryAddresses maxUtxos utxoCountMin }
    tipHeight processedHeight subscriberCount stakingSupply networkStakingSupply
    feesEarned totalPaid pendingTotal payoutsPaused pausedReason
  }
  stakes(chain: $chain, first: $stakes) {
    nodes {
      blockHash height foundBy reward status confirmations solo poolOwn
      roundStartHeight totalWork poolKeep note
      credits(first: $credits) { identityAddress work amount fee feePercent }
    }
  }
  payments(chain: $chain, first: $payments) {
    nodes { id status txid total createdAt sentHeight error outputs { identityAddress amount } }
  }
}`;

const NAMES_QUERY = `query Names($chain: String, $after: String) {
  subscribers(chain: $chain, first: 500, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { identityAddress name }
  }
}`;

const HISTORY_BASE_FIELDS = "height stakingSupply activeSubscribers networkStakingSupply";
const historyQuery = (withLuck) => `query History($chain: String, $from: Int, $to: Int) {
  poolHistory(chain: $chain, fromHeight: $from, toHeight: $to) {
    ${HISTORY_BASE_FIELDS}${withLuck ? " " + LUCK_FIELDS.join(" ") : ""}
  }
}`;

const EVENT_FIELDS = "cursor kind chain height at message alert identityAddress blockHash";

const EVENTS_QUERY = `query Events($chain: String, $after: String) {
  events(chain: $chain, after: $after, first: 500) {
    pageInfo { hasNextPage endCursor }
    nodes { ${EVENT_FIELDS} }
  }
}`;

const EVENTS_SUBSCRIPTION = `subscription Live($chain: String, $after: String) {
  events(chain: $chain, after: $after) { ${EVENT_FIELDS} }
}`;

const SUBSCRIBER_QUERY = `query Subscriber($identity: String!, $chain: String, $credits: Int!, $payments: Int!) {
  subscriber(identity: $identity, chain: $chain) {
    identityAddress name status joinedHeight leftHeight unmet
    eligibleBalance roundWork pendingBalance inFlight paidTotal minPayout feePercent
    credits(first: $credits) { nodes { blockHash height work amount fee feePercent } }
    payments(first: $payments) {
      nodes { id status txid total createdAt sentHeight outputs { identityAddress amount } }
    }
  }
}`;

// The name of an identity that is not a subscriber (a solo staker, say): checkIdentity is the
// only query that gives the name of any identity.
const NAME_QUERY = `query Name($identity: String!, $chain: String) {
  checkIdentity(identity: $identity, chain: $chain) { identityAddress name }
}`;

const CHECK_QUERY = `query Check($identity: String!, $chain: String) {
  checkIdentity(identity: $identity, chain: $chain) { identityAddress name eligible status unmet }
}`;

// ---------------------------------------------------------------------------------------------
// GraphQL over HTTP

/** A reply that carried GraphQL errors; `code` is the first error's `extensions.code`. */
class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code ?? null;
  }
}

/** Runs a query; resolves to its `data`, or rejects with a GraphQLError or a network error. */
async function gql(query, variables = {}) {
  let response;
  let body;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
    });
  } catch (error) {
    if (error.name === "TimeoutError") throw new Error(`no answer in ${QUERY_TIMEOUT_MS / 1000} s`);
    throw error;
  }
  try {
    body = await response.json();
  } catch (error) {
    if (error.name === "TimeoutError") throw new Error(`no answer in ${QUERY_TIMEOUT_MS / 1000} s`);
    throw new Error(`the server answered HTTP ${response.status} without a GraphQL reply`);
  }
  // Partial data is not used: every query here is small enough to be all or nothing.
  if (body.errors?.length) throw new GraphQLError(body.errors);
  return body.data;
}

// ---------------------------------------------------------------------------------------------
// GraphQL subscription over WebSocket (graphql-transport-ws)

/**
 * The `events` subscription, kept alive: reconnects with backoff when the socket closes and
 * resumes after the last cursor it saw, so no event is lost or shown twice.
 */
class LiveEvents {
  constructor({ chain, onEvent, onState, onResumed }) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.url = `${scheme}://${location.host}/graphql`;
    this.chain = chain;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onResumed = onResumed;
    this.cursor = null; // the last event seen: where to resume
    this.socket = null;
    this.subscriptionId = null;
    this.nextId = 1;
    this.failures = 0; // consecutive failed connections, for the backoff
    this.connectedOnce = false;
    this.timer = null;
    this.minDelay = 0;
  }

  /** Starts after `cursor` (null: live events only). */
  start(cursor) {
    this.cursor = cursor;
    this.connect();
  }

  /**
   * Closes the socket; the usual reconnect path takes over, after at least `offlineMs` (used by
   * the end-to-end test, to miss a few events and see them replayed).
   */
  reconnect(offlineMs = 0) {
    this.minDelay = offlineMs;
    if (this.socket) this.socket.close(1000, "reconnect requested");
  }

  connect() {
    clearTimeout(this.timer);
    this.onState("connecting", "connecting…");
    const socket = new WebSocket(this.url, "graphql-transport-ws");
    this.socket = socket;
    // The server must acknowledge connection_init in time, or we try again.
    const ackTimer = setTimeout(() => socket.close(), WS_ACK_TIMEOUT_MS);
    socket.addEventListener("open", () => this.send({ type: "connection_init", payload: {} }));
    socket.addEventListener("message", (message) => {
      let parsed;
      try {
        parsed = JSON.parse(message.data);
      } catch {
        return; // not a protocol message; ignore it
      }
      if (parsed.type === "connection_ack") clearTimeout(ackTimer);
      this.handle(parsed);
    });
    // An "error" event is always followed by "close"; the reconnect happens there.
    socket.addEventListener("close", () => {
      clearTimeout(ackTimer);
      if (this.socket === socket) {
        this.socket = null;
        this.scheduleReconnect();
      }
    });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  subscribe() {
    this.subscriptionId = String(this.nextId++);
    this.send({
      id: this.subscriptionId,
      type: "subscribe",
      payload: { query: EVENTS_SUBSCRIPTION, variables: { chain: this.chain, after: this.cursor } },
    });
  }

  handle(message) {
    switch (message.type) {
      case "connection_ack":
        this.failures = 0;
        this.onState("live", "live");
        this.subscribe();
        // Events missed while away are replayed by the subscription; the queried data is
        // refreshed at once too.
        if (this.connectedOnce) this.onResumed();
        this.connectedOnce = true;
        break;
      case "ping":
        this.send({ type: "pong", payload: message.payload });
        break;
      case "next": {
        if (message.id !== this.subscriptionId) return;
        const { data, errors } = message.payload ?? {};
        if (errors?.length) {
          this.handleErrors(errors);
        } else if (data?.events) {
          this.cursor = data.events.cursor;
          this.onEvent(data.events);
        }
        break;
      }
      case "error": // the subscription itself was refused; payload: a list of GraphQL errors
        if (message.id === this.subscriptionId) this.handleErrors(message.payload ?? []);
        break;
      case "complete":
        // The server ended our subscription without saying why (shutting down, say):
        // start over on a new connection.
        if (message.id === this.subscriptionId) this.socket?.close(1000, "subscription ended");
        break;
      default:
        break;
    }
  }

  handleErrors(errors) {
    const lagged = errors.find((e) => e.extensions?.code === "LAGGED");
    if (lagged) {
      // We read too slowly and the server dropped us; it says where to resume. The old
      // subscription is over (we complete it too, in case the server has not), and its
      // messages are ignored from now on: subscribe again at once.
      this.cursor = lagged.extensions.resumeAfter ?? this.cursor;
      this.send({ id: this.subscriptionId, type: "complete" });
      this.subscribe();
      return;
    }
    const codes = errors.map((e) => e.extensions?.code);
    if (this.cursor !== null && codes.some((c) => c === "INVALID_INPUT" || c === "NOT_FOUND")) {
      // The cursor is no longer known (a new database?): go on with live events only.
      this.cursor = null;
    }
    this.socket?.close(1000, "subscription failed");
  }

  scheduleReconnect() {
    // Exponential backoff with jitter: 1 s, 2 s, 4 s, … up to 30 s.
    const base = Math.min(WS_MAX_BACKOFF_MS, 1000 * 2 ** this.failures);
    const delay = Math.max(this.minDelay, Math.round(base * (0.75 + Math.random() * 0.25)));
    this.minDelay = 0;
    this.failures += 1;
    this.onState("reconnecting", `reconnecting in ${Math.ceil(delay / 1000)} s…`);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

// ---------------------------------------------------------------------------------------------
// Small DOM and formatting helpers

const $ = (id) => document.getElementById(id);

/**
 * Creates an element. `props`: `class`, `text`, `dataset`, `title`… (other keys become
 * attributes); children are nodes or strings (strings become text nodes, never HTML).
 */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Creates an SVG element with presentation attributes. */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  node.append(...children);
  return node;
}

/** Thousands separators on a string of digits (heights, work): no float on the way. */
function groupDigits(value) {
  return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * An Amount exactly as the API wrote it ("12.50000000"); the trailing zeros are only dimmed,
 * so the text (and a copy of it) is the exact value.
 */
function amountNode(amount) {
  if (amount === null || amount === undefined) return h("span", { class: "muted", text: "unknown" });
  const match = /^(\d+\.\d*?)(0*)$/.exec(amount);
  if (!match) return h("span", { class: "amount", text: amount });
  return h("span", { class: "amount" }, match[1], match[2] ? h("span", { class: "zeros", text: match[2] }) : null);
}

/** An Amount in satoshis as a BigInt, for exact ratios. */
function amountToSats(amount) {
  const [whole, fraction = ""] = amount.split(".");
  return BigInt(whole) * 100_000_000n + BigInt((fraction + "00000000").slice(0, 8));
}

/** numerator / denominator in percent with `decimals` decimals, exactly (BigInt inputs). */
function percentOf(numerator, denominator, decimals = 2) {
  if (denominator <= 0n) return null;
  const scale = 10n ** BigInt(decimals);
  const scaled = (numerator * 100n * scale + denominator / 2n) / denominator; // rounded
  const whole = scaled / scale;
  const fraction = (scaled % scale).toString().padStart(decimals, "0");
  return decimals ? `${whole}.${fraction} %` : `${whole} %`;
}

/** A work value (BigInt string) with separators. */
const workText = (work) => groupDigits(work);

/** i-address → fully qualified name, from the subscribers list. */
const names = new Map();

/** An identity by name when known, else by address; the address is always in the tooltip. */
function identityNode(address) {
  if (!address) return h("span", { class: "muted", text: "—" });
  if (state.pool && address === state.pool.poolIdentity) {
    return h("span", { class: "identity", title: address, text: "the pool" });
  }
  const name = names.get(address);
  return name
    ? h("span", { class: "identity", title: address, text: name })
    : h("span", { class: "identity mono ellipsis", title: address, text: address });
}

const I_ADDRESS = /\bi[1-9A-HJ-NP-Za-km-z]{33}\b/g;
const HASH = /\b[0-9a-f]{64}\b/g;

/**
 * A server sentence made easier to read: identities by name when known (the sentences use
 * i-addresses), block hashes and txids shortened (the full text stays in the tooltip).
 */
function readable(text) {
  return text
    .replace(I_ADDRESS, (address) => names.get(address) ?? address)
    .replace(HASH, (hash) => `${hash.slice(0, 8)}…${hash.slice(-8)}`);
}

/** A hash shortened in the middle; the full value is in the tooltip. */
function hashNode(hash) {
  if (!hash) return h("span", { class: "muted", text: "—" });
  const short = hash.length > 20 ? `${hash.slice(0, 8)}…${hash.slice(-8)}` : hash;
  return h("span", { class: "mono", title: hash, text: short });
}

/** A DateTime; the API sends nanoseconds, which Date does not need. */
function parseTime(iso) {
  return new Date(iso.replace(/(\.\d{3})\d+/, "$1"));
}

function timeText(iso, { seconds = false } = {}) {
  const date = parseTime(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const today = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined });
  return today ? time : `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

/** A status badge; the colour comes from the CSS for `data-status`. */
function badge(status, text = status.replace(/_/g, " ")) {
  return h("span", { class: "badge", dataset: { status }, text });
}

/** Sets the text of an element if it changed (no needless repaint). */
function setText(id, text) {
  const node = $(id);
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Replaces an element's children, unless they would read the same: a refresh must not undo
 * a text selection (someone copying an amount) for nothing.
 */
function setContent(id, ...children) {
  const node = $(id);
  const text = children.map((c) => (typeof c === "string" ? c : c.textContent)).join("");
  if (node.textContent !== text || node.childNodes.length === 0) node.replaceChildren(...children);
}

/** The pool's conditions in words, for a newcomer. */
function conditionTexts(conditions) {
  const texts = [];
  if (conditions.minUnlockDelay > 0) {
    texts.push(
      `Delay-lock the identity with an unlock delay of at least ${groupDigits(conditions.minUnlockDelay)} blocks: ` +
        "while it is locked its coins cannot be spent, and staking goes on.",
    );
  } else {
    texts.push("No delay lock is required.");
  }
  if (conditions.requireSeparateRevokeRecover) {
    texts.push("Its revocation and recovery authorities must be other identities: not itself, and none the pool can sign for.");
  }
  texts.push(`At most ${conditions.maxPrimaryAddresses} primary addresses, the pool's included.`);
  if (conditions.maxUtxos > 0) {
    texts.push(`At most ${groupDigits(conditions.maxUtxos)} UTXOs of ${conditions.utxoCountMin} or more.`);
  }
  texts.push(`It earns once its identity is ${COOLDOWN_BLOCKS} blocks unchanged; coins count once ${COOLDOWN_BLOCKS} blocks old.`);
  return texts;
}

// ---------------------------------------------------------------------------------------------
// Expandable tables (stakes, payments)

/**
 * A table whose items each live in their own <tbody> (a summary row and a detail row), kept by
 * key across refreshes: rows are updated in place, so an expanded item stays expanded, the
 * scroll position and the keyboard focus stay where they were, and nothing flickers.
 */
class ExpandableTable {
  constructor(table, { key, cells, details }) {
    this.table = table;
    this.key = key; // item → stable key
    this.cells = cells; // item → array of cell contents (after the toggle cell)
    this.details = details; // item → node shown when expanded
    this.expanded = new Set();
    this.items = new Map();
  }

  update(items) {
    const existing = new Map([...this.table.tBodies].map((body) => [body.dataset.key, body]));
    let previous = this.table.tHead;
    for (const item of items) {
      const key = this.key(item);
      let body = existing.get(key);
      if (body) existing.delete(key);
      else body = this.build(key);
      this.items.set(key, item);
      this.fill(body, item);
      // Move only what is out of place: moving a node would drop its focus.
      if (previous.nextElementSibling !== body) previous.after(body);
      previous = body;
    }
    for (const [key, body] of existing) {
      body.remove();
      this.items.delete(key);
      this.expanded.delete(key);
    }
  }

  build(key) {
    const toggle = h("button", { type: "button", class: "toggle", "aria-expanded": "false", "aria-label": "Show details" });
    const summary = h("tr", { class: "summary" }, h("td", { class: "col-toggle" }, toggle));
    const detail = h("tr", { class: "detail", hidden: true }, h("td", { colspan: this.table.tHead.rows[0].cells.length }));
    const body = h("tbody", { dataset: { key } }, summary, detail);
    summary.addEventListener("click", () => {
      // A click that ends a text selection (copying a value) is not a toggle.
      if (String(window.getSelection()) !== "") return;
      if (this.expanded.has(key)) this.expanded.delete(key);
      else this.expanded.add(key);
      this.fill(body, this.items.get(key));
    });
    return body;
  }

  fill(body, item) {
    // Unchanged since the last refresh (same data, same names known): leave the rows alone,
    // so a selection in them survives.
    const open = this.expanded.has(this.key(item));
    const signature = `${open}|${names.size}|${JSON.stringify(item)}`;
    if (body.signature === signature) return;
    body.signature = signature;
    const [summary, detail] = body.rows;
    const contents = this.cells(item);
    while (summary.cells.length < contents.length + 1) summary.append(h("td"));
    contents.forEach((content, index) => {
      const cell = summary.cells[index + 1];
      const wrapped = isCell(content);
      cell.className = wrapped ? content.className : "";
      cell.replaceChildren(wrapped ? content.node : content);
    });
    body.classList.toggle("open", open);
    summary.cells[0].firstChild.setAttribute("aria-expanded", String(open));
    detail.hidden = !open;
    detail.cells[0].replaceChildren(...(open ? [this.details(item)] : []));
  }
}

/** A right-aligned cell. */
const num = (node) => ({ node, className: "num" });
/** Whether a cell content is `{node, className}` rather than a node or a string. */
const isCell = (content) => content !== null && typeof content === "object" && !(content instanceof Node);

/** Key/value pairs as a <dl>; values are nodes or strings. */
function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([term, value]) => h("div", {}, h("dt", { text: term }), h("dd", {}, value))));
}

function simpleTable(headers, rows, { className = "" } = {}) {
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { class: `table compact ${className}` },
      h("thead", {}, h("tr", {}, headers.map((header) => (typeof header === "string" ? h("th", { text: header }) : h("th", { class: header.className, text: header.text }))))),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell) => (isCell(cell) ? h("td", { class: cell.className }, cell.node) : h("td", {}, cell)))))),
    ),
  );
}

/** Confirmations against maturity, as a bar. */
function maturityNode(stake) {
  const maturity = state.pool?.maturity ?? 0;
  if (stake.status === "STALE" || stake.status === "STAKEGUARD" || stake.confirmations < 0) {
    return h("span", { class: "muted", text: "—" });
  }
  const done = Math.min(stake.confirmations, maturity);
  const bar = h("span", { class: "progress-bar" });
  bar.style.width = `${maturity > 0 ? (100 * done) / maturity : 100}%`;
  return h(
    "span",
    { class: "maturity", title: `${stake.confirmations} confirmations; ${maturity} needed` },
    h("span", { class: "progress", dataset: { done: String(stake.status === "MATURED") } }, bar),
    h("span", { class: "progress-text", text: `${groupDigits(done)} / ${groupDigits(maturity)}` }),
  );
}

function stakeKind(stake) {
  if (stake.poolOwn) return h("span", { class: "tag", text: "pool's own" });
  if (stake.solo) return h("span", { class: "tag", text: "solo" });
  return null;
}

function stakeDetails(stake) {
  const pool = state.pool;
  const parts = [
    facts([
      ["Block", h("span", { class: "mono break", text: stake.blockHash })],
      ["Round", `heights ${groupDigits(stake.roundStartHeight)}–${groupDigits(stake.height)}`],
      ["Total work", workText(stake.totalWork) + (stake.status === "MATURED" ? "" : " (provisional)")],
      stake.poolKeep !== null && ["Pool kept", amountNode(stake.poolKeep)],
      stake.note && ["Note", stake.note],
    ]),
  ];
  if (stake.credits.length) {
    const total = BigInt(stake.totalWork);
    parts.push(
      simpleTable(
        ["Identity", { text: "Work", className: "num" }, { text: "Share of work", className: "num" }, { text: "Credited", className: "num" }, { text: "Fee", className: "num" }],
        stake.credits.map((credit) => [
          identityNode(credit.identityAddress),
          num(workText(credit.work)),
          num(total > 0n ? percentOf(BigInt(credit.work), total) : "—"),
          num(amountNode(credit.amount)),
          num(h("span", {}, amountNode(credit.fee), h("span", { class: "muted", text: ` (${credit.feePercent} %)` }))),
        ]),
      ),
    );
    if (stake.credits.length >= STAKE_CREDITS_SHOWN) {
      parts.push(h("p", { class: "muted", text: `The ${STAKE_CREDITS_SHOWN} largest shares; look a subscriber up for its own.` }));
    }
  } else if (stake.status === "MATURING") {
    const left = Math.max(0, (pool?.maturity ?? 0) - stake.confirmations);
    parts.push(h("p", { class: "muted", text: `The reward is split by work when the stake matures, in ${groupDigits(left)} blocks.` }));
  } else {
    parts.push(h("p", { class: "muted", text: "No credits." }));
  }
  return h("div", { class: "details" }, parts);
}

function paymentDetails(payment) {
  return h(
    "div",
    { class: "details" },
    facts([
      ["Transaction", payment.txid ? h("span", { class: "mono break", text: payment.txid }) : h("span", { class: "muted", text: "not known yet" })],
      payment.error && ["Error", payment.error],
    ]),
    simpleTable(
      ["Identity", { text: "Amount", className: "num" }],
      payment.outputs.map((output) => [identityNode(output.identityAddress), num(amountNode(output.amount))]),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Charts: hand-written SVG, redrawn on resize, with a hover read-out.

const compactNumber = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

/** Round tick values covering [min, max]. */
function ticks(min, max, count = 4) {
  if (max <= min) max = min + 1;
  const rough = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? rough;
  const values = [];
  for (let value = Math.floor(min / step) * step; value <= max + step * 1e-9; value += step) values.push(value);
  if (values[values.length - 1] < max) values.push(values[values.length - 1] + step);
  return values;
}

/**
 * A line chart over block heights. `set({series, empty})`: each series has `points` (sorted by
 * height: `{x, y, label}`), a `name` and a CSS `kind`; `step: true` draws a staircase (counts).
 * With no points, `empty` is shown instead.
 */
class Chart {
  constructor(container, { height = 170, yFormat = (v) => compactNumber.format(v), integer = false } = {}) {
    this.container = container;
    this.height = height;
    this.yFormat = yFormat;
    this.integer = integer;
    this.data = null;
    this.width = 0;
    // Only a change of width redraws, so drawing can never feed back into the observer.
    new ResizeObserver(() => {
      if (this.container.clientWidth !== this.width) this.draw();
    }).observe(container);
    this.pointer = null; // the last pointer position over the chart, to redraw the read-out
    container.addEventListener("pointermove", (event) => {
      this.pointer = { clientX: event.clientX };
      this.hover(this.pointer);
    });
    container.addEventListener("pointerleave", () => {
      this.pointer = null;
      this.hover(null);
    });
  }

  set(data) {
    this.data = data;
    this.draw();
  }

  draw() {
    this.width = this.container.clientWidth;
    const data = this.data;
    const points = data?.series.flatMap((s) => s.points) ?? [];
    if (!data || points.length === 0) {
      this.geometry = null;
      const text = data?.empty ?? "loading…";
      if (this.container.textContent !== text) this.container.replaceChildren(h("p", { class: "chart-empty", text }));
      return;
    }
    const width = Math.max(this.width, 200);
    const height = this.height;
    const pad = { left: 48, right: 10, top: 10, bottom: 22 };
    const xs = points.map((p) => p.x);
    const ys = points.map((p) => p.y);
    // The charts share their heights axis (xDomain) even where one has no points.
    const xMin = data.xDomain?.[0] ?? Math.min(...xs);
    const xMax = Math.max(xMin + 1, data.xDomain?.[1] ?? Math.max(...xs));
    const yTicks = ticks(0, Math.max(...ys, this.integer ? 1 : 0) || 1, 4).filter((v) => !this.integer || Number.isInteger(v));
    const yMax = yTicks[yTicks.length - 1];
    const x = (value) => pad.left + ((value - xMin) / (xMax - xMin)) * (width - pad.left - pad.right);
    const y = (value) => pad.top + (1 - value / yMax) * (height - pad.top - pad.bottom);

    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", role: "img", "aria-label": data.label ?? "" });
    for (const value of yTicks) {
      root.append(
        svg("line", { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), class: "gridline" }),
        svg("text", { x: pad.left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis" }, this.yFormat(value)),
      );
    }
    const xLabels = [xMin, Math.round((xMin + xMax) / 2), xMax];
    xLabels.forEach((value, index) => {
      const anchor = ["start", "middle", "end"][index];
      root.append(svg("text", { x: x(value), y: height - 6, "text-anchor": anchor, class: "axis" }, groupDigits(value)));
    });
    for (const series of data.series) {
      if (!series.points.length) continue;
      let d = "";
      series.points.forEach((p, index) => {
        if (index === 0) d += `M${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`;
        else if (series.step) d += `H${x(p.x).toFixed(1)}V${y(p.y).toFixed(1)}`;
        else d += `L${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`;
      });
      if (series.area) {
        // The line, down to zero and back along the axis.
        const first = series.points[0];
        root.append(svg("path", { d: `${d}V${y(0).toFixed(1)}H${x(first.x).toFixed(1)}Z`, class: `area ${series.kind}` }));
      }
      root.append(svg("path", { d, class: `line ${series.kind}` }));
    }
    const cursorLine = svg("line", { y1: pad.top, y2: height - pad.bottom, class: "cursor", visibility: "hidden" });
    const dots = data.series.map((s) => svg("circle", { r: 3.5, class: `dot ${s.kind}`, visibility: "hidden" }));
    root.append(cursorLine, ...dots);
    const readout = h("div", { class: "readout", hidden: true });
    this.container.replaceChildren(root, readout);
    this.geometry = { x, y, xMin, xMax, pad, width, cursorLine, dots, readout };
    if (this.pointer) this.hover(this.pointer);
  }

  /** Shows the values at the height under the pointer. */
  hover(event) {
    const g = this.geometry;
    if (!g) return;
    const hide = () => {
      g.cursorLine.setAttribute("visibility", "hidden");
      g.dots.forEach((dot) => dot.setAttribute("visibility", "hidden"));
      g.readout.hidden = true;
    };
    if (!event) return hide();
    const box = this.container.getBoundingClientRect();
    const scale = g.width / box.width; // the SVG is scaled to the box
    const px = (event.clientX - box.left) * scale;
    const height = Math.round(g.xMin + ((px - g.pad.left) / (g.width - g.pad.left - g.pad.right)) * (g.xMax - g.xMin));
    if (height < g.xMin || height > g.xMax) return hide();
    const lines = [`height ${groupDigits(height)}`];
    this.data.series.forEach((series, index) => {
      const point = nearestAtOrBefore(series.points, height);
      const dot = g.dots[index];
      if (!point) {
        dot.setAttribute("visibility", "hidden");
        return;
      }
      dot.setAttribute("cx", g.x(point.x));
      dot.setAttribute("cy", g.y(point.y));
      dot.setAttribute("visibility", "visible");
      lines.push(`${series.name}: ${point.label ?? point.y}`);
    });
    const cx = g.x(Math.max(g.xMin, Math.min(g.xMax, height)));
    g.cursorLine.setAttribute("x1", cx);
    g.cursorLine.setAttribute("x2", cx);
    g.cursorLine.setAttribute("visibility", "visible");
    g.readout.textContent = lines.join("\n");
    g.readout.hidden = false;
    // Keep the read-out inside the chart: left of the cursor on the right half.
    const left = cx / scale;
    g.readout.classList.toggle("flip", left > box.width / 2);
    g.readout.style.left = `${left}px`;
  }
}

/** The last point at or before height `x` (points sorted by x), by binary search. */
function nearestAtOrBefore(points, x) {
  let low = 0;
  let high = points.length - 1;
  let found = null;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (points[middle].x <= x) {
      found = points[middle];
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// State

const params = new URLSearchParams(location.search);

const state = {
  chain: null,
  pool: null,
  stakes: [],
  payments: [],
  range: HISTORY_RANGES.includes(Number(params.get("blocks"))) ? Number(params.get("blocks")) : HISTORY_DEFAULT_RANGE,
  history: new Map(), // height → PoolStats row
  historyRange: null, // the range the cached rows were read for
  historyLoadedAt: 0, // when they were last all read
  luckFields: true, // false once the server refused LUCK_FIELDS
  namesLoadedAt: 0,
  lookup: null, // the identity looked up, kept across refreshes
  lookupSeq: 0, // to drop replies to a lookup that is no longer current
};

const charts = {};
let stakesTable;
let paymentsTable;
let live;

// ---------------------------------------------------------------------------------------------
// Loading and rendering

async function loadNames() {
  let after = null;
  const found = new Map();
  // Subscribers are few pages at most; names make tables readable.
  for (let page = 0; page < 20; page += 1) {
    const { subscribers } = await gql(NAMES_QUERY, { chain: state.chain, after });
    for (const s of subscribers.nodes) found.set(s.identityAddress, s.name);
    if (!subscribers.pageInfo.hasNextPage) break;
    after = subscribers.pageInfo.endCursor;
  }
  // An i-address is derived from its name, so a name once known never changes.
  for (const [address, name] of found) names.set(address, name);
  state.namesLoadedAt = Date.now();
}

const nameLookups = new Set(); // addresses already asked about with NAME_QUERY
const unnamed = new Set(); // addresses seen in events, to name at the next refresh

/** Learns the names of identities that are not subscribers (a few per refresh). */
async function resolveNames() {
  const addresses = [
    ...state.stakes.flatMap((stake) => [stake.foundBy, ...stake.credits.map((c) => c.identityAddress)]),
    ...state.payments.flatMap((payment) => payment.outputs.map((o) => o.identityAddress)),
    ...unnamed,
  ];
  unnamed.clear();
  const unknown = [...new Set(addresses)]
    .filter((a) => a && a !== state.pool.poolIdentity && !names.has(a) && !nameLookups.has(a))
    .slice(0, 10);
  if (!unknown.length) return;
  unknown.forEach((a) => nameLookups.add(a));
  const replies = await Promise.allSettled(unknown.map((identity) => gql(NAME_QUERY, { identity, chain: state.chain })));
  let learned = false;
  replies.forEach((reply, index) => {
    if (reply.status === "fulfilled" && reply.value.checkIdentity.name) {
      names.set(unknown[index], reply.value.checkIdentity.name);
      learned = true;
    } else if (reply.status === "rejected" && reply.reason?.code !== "NOT_FOUND") {
      nameLookups.delete(unknown[index]); // a passing failure: ask again later
    }
  });
  if (learned) {
    renderTables();
    for (const item of $("event-feed").children) {
      item.lastElementChild.textContent = readable(item.lastElementChild.title);
    }
  }
}

async function loadOverview() {
  const data = await gql(OVERVIEW_QUERY, { chain: state.chain, stakes: STAKES_SHOWN, credits: STAKE_CREDITS_SHOWN, payments: PAYMENTS_SHOWN });
  if (!data.pool) throw new Error(`no pool for chain ${state.chain}`);
  state.pool = data.pool;
  state.stakes = data.stakes.nodes;
  state.payments = data.payments.nodes;
  renderPool(data.pool);
  renderTables();
}

function renderTables() {
  stakesTable.update(state.stakes);
  $("stakes-empty").hidden = state.stakes.length > 0;
  paymentsTable.update(state.payments);
  $("payments-empty").hidden = state.payments.length > 0;
}

function renderPool(pool) {
  setText("chain-name", pool.chain);
  $("chain-name").title = pool.chainId;
  setText("tip-height", groupDigits(pool.tipHeight));
  setText("processed-height", groupDigits(pool.processedHeight));
  // The tip is read from the daemon now and then, so it can trail the processed height.
  const lag = Math.max(0, pool.tipHeight - pool.processedHeight);
  setText("lag", lag <= 1 ? "in sync" : `${groupDigits(lag)} blocks`);
  $("lag").dataset.behind = String(lag > 1);

  setText("pool-r-address", pool.primaryAddress);
  setText("pool-identity", pool.poolIdentity);
  setText("pool-maturity", groupDigits(pool.maturity));
  const conditions = conditionTexts(pool.conditions);
  const list = $("pool-conditions");
  if ([...list.children].map((li) => li.textContent).join("\n") !== conditions.join("\n")) {
    list.replaceChildren(...conditions.map((text) => h("li", { text })));
  }

  setText("pool-fee", `${pool.feePercent} %`);
  setContent("pool-min-payout", amountNode(pool.minPayout), h("span", { class: "unit", text: ` ${pool.chain}` }));
  setText("pool-subscribers", groupDigits(pool.subscriberCount));
  setContent("pool-supply", amountNode(pool.stakingSupply));
  setContent("network-supply", pool.networkStakingSupply ? amountNode(pool.networkStakingSupply) : h("span", { class: "muted", text: "not reported" }));
  const share = pool.networkStakingSupply ? percentOf(amountToSats(pool.stakingSupply), amountToSats(pool.networkStakingSupply)) : null;
  setText("pool-share", share ?? "not reported");
  setContent("pool-fees-earned", amountNode(pool.feesEarned));
  setContent("pool-total-paid", amountNode(pool.totalPaid));
  setContent("pool-pending", amountNode(pool.pendingTotal));
  setContent("pool-payouts", pool.payoutsPaused ? badge("PAUSED", "paused") : badge("RUNNING", "running"));
  const banner = $("paused-banner");
  banner.hidden = !pool.payoutsPaused;
  if (pool.payoutsPaused) {
    const text = `Payouts are paused${pool.pausedReason ? `: ${pool.pausedReason}` : "."} Credits keep accruing and are paid when payouts resume.`;
    if (banner.textContent !== text) banner.textContent = text;
  }
}

/** Reads poolHistory, with the luck fields while the server knows them. */
async function fetchHistory(from, to) {
  const variables = { chain: state.chain, from, to };
  if (state.luckFields) {
    try {
      return (await gql(historyQuery(true), variables)).poolHistory;
    } catch (error) {
      // An older server refuses the query in validation ("Unknown field …"): ask without them.
      const refused = error instanceof GraphQLError && error.errors.some((e) => LUCK_FIELDS.some((f) => e.message.includes(`"${f}"`)));
      if (!refused) throw error;
      state.luckFields = false;
    }
  }
  return (await gql(historyQuery(false), variables)).poolHistory;
}

async function loadHistory() {
  const to = state.pool.processedHeight;
  const from = Math.max(0, to - state.range + 1);
  const full = state.historyRange !== state.range || state.history.size === 0 || Date.now() - state.historyLoadedAt > HISTORY_FULL_RELOAD_MS;
  const newest = full ? null : Math.max(...state.history.keys());
  const rows = await fetchHistory(full ? from : Math.max(from, newest - HISTORY_OVERLAP), to);
  if (full) {
    state.history.clear();
    state.historyRange = state.range;
    state.historyLoadedAt = Date.now();
  }
  for (const row of rows) state.history.set(row.height, row);
  for (const height of state.history.keys()) {
    if (height < from || height > to) state.history.delete(height);
  }
  renderCharts();
}

function renderCharts() {
  const rows = [...state.history.values()].sort((a, b) => a.height - b.height);
  const empty = "no data yet";
  const xDomain = rows.length ? [rows[0].height, rows[rows.length - 1].height] : null;
  charts.supply.set({
    label: "Eligible staking supply by height",
    empty,
    xDomain,
    series: [
      {
        name: "pool",
        kind: "primary",
        area: true,
        points: rows.map((r) => ({ x: r.height, y: Number(r.stakingSupply), label: r.stakingSupply })),
      },
    ],
  });
  charts.subscribers.set({
    label: "Active subscribers by height",
    empty,
    xDomain,
    series: [
      {
        name: "active",
        kind: "secondary",
        step: true,
        area: true,
        points: rows.map((r) => ({ x: r.height, y: r.activeSubscribers })),
      },
    ],
  });
  const last = rows[rows.length - 1];
  setContent("supply-now", last ? amountNode(last.stakingSupply) : "");
  setText("subscribers-now", last ? groupDigits(last.activeSubscribers) : "");
  renderLuck(rows, xDomain);
}

/**
 * Luck: cumulative expected pool stakes (pool supply / network supply on each staked block)
 * against the stakes the pool actually found, over the blocks where the network supply is known.
 */
function renderLuck(rows, xDomain) {
  const known = state.luckFields ? rows.filter((r) => r.expectedStakes !== null && r.expectedStakes !== undefined) : [];
  let expected = 0;
  let actual = 0;
  const expectedPoints = [];
  const actualPoints = [];
  for (const row of known) {
    expected += row.expectedStakes;
    actual += row.poolStakes;
    expectedPoints.push({ x: row.height, y: expected, label: expected.toFixed(2) });
    actualPoints.push({ x: row.height, y: actual, label: String(actual) });
  }
  charts.luck.set({
    label: "Cumulative pool stakes, actual and expected",
    empty: "no network data yet",
    xDomain,
    series: [
      { name: "expected", kind: "expected", points: expectedPoints },
      { name: "actual", kind: "primary", step: true, points: actualPoints },
    ],
  });
  const luck = $("luck-value");
  if (known.length && expected > 0) {
    luck.textContent = `${Math.round((100 * actual) / expected)} %`;
    luck.title = `${actual} stakes found, ${expected.toFixed(2)} expected over ${known.length} blocks`;
  } else {
    luck.textContent = "";
    luck.title = "";
  }
  const legend = $("luck-legend");
  legend.hidden = !known.length;
  if (known.length) {
    setText("luck-actual", String(actual));
    setText("luck-expected", expected.toFixed(2));
    const missing = rows.length - known.length;
    setText("luck-note", missing > 0 ? `network supply unknown for ${groupDigits(missing)} of ${groupDigits(rows.length)} blocks` : "");
  }
}

// ---------------------------------------------------------------------------------------------
// Live event feed

const feedCursors = new Set();
const KIND_LABELS = {
  SUBSCRIBER_JOINED: "joined",
  SUBSCRIBER_LEFT: "left",
  STAKE_FOUND: "stake found",
  STAKE_MATURED: "stake matured",
  STAKE_STALE: "stake stale",
  PAYMENT_SENT: "payment sent",
  IDENTITY_ALERT: "identity alert",
};

/** Adds an event at the top of the feed (events come oldest first); false if already shown. */
function addEvent(event) {
  if (feedCursors.has(event.cursor)) return false;
  feedCursors.add(event.cursor);
  const feed = $("event-feed");
  const meta = h(
    "div",
    { class: "event-meta" },
    h("span", { class: "event-kind", text: KIND_LABELS[event.kind] ?? event.kind }),
    event.alert ? h("span", { class: "tag", text: event.alert.replace(/_/g, " ").toLowerCase() }) : null,
    event.height !== null ? h("span", { class: "event-height", text: `#${groupDigits(event.height)}` }) : null,
    h("time", { datetime: event.at, text: timeText(event.at, { seconds: true }) }),
  );
  const message = h("p", { class: "event-message", title: event.message, text: readable(event.message) });
  feed.prepend(h("li", { class: "event", dataset: { kind: event.kind, cursor: event.cursor } }, meta, message));
  for (const address of event.message.match(I_ADDRESS) ?? []) {
    if (!names.has(address)) unnamed.add(address);
  }
  while (feed.children.length > FEED_LIMIT) {
    feedCursors.delete(feed.lastElementChild.dataset.cursor);
    feed.lastElementChild.remove();
  }
  $("feed-empty").hidden = true;
  return true;
}

/**
 * The stored events, oldest first, keeping the newest FEED_LIMIT; returns the last cursor (where
 * the subscription takes over). The query has no "newest N", so this pages through the log.
 */
async function loadEventBacklog() {
  // "0" is before the first event: with an empty log the subscription still replays
  // whatever lands between this read and its start.
  let after = "0";
  let kept = [];
  for (;;) {
    const { events } = await gql(EVENTS_QUERY, { chain: state.chain, after });
    kept = kept.concat(events.nodes).slice(-FEED_LIMIT);
    if (events.pageInfo.endCursor) after = events.pageInfo.endCursor;
    if (!events.pageInfo.hasNextPage) break;
  }
  kept.forEach(addEvent);
  return after;
}

function onLiveEvent(event) {
  addEvent(event);
  if (event.kind === "SUBSCRIBER_JOINED") state.namesLoadedAt = 0; // a new name to learn
  requestRefresh();
}

function setLiveState(status, text) {
  $("live-status").dataset.state = status;
  setText("live-status-text", text);
}

// ---------------------------------------------------------------------------------------------
// Subscriber lookup

async function lookup(identity, { quiet = false } = {}) {
  const seq = ++state.lookupSeq;
  state.lookup = identity;
  const result = $("lookup-result");
  if (!quiet && result.dataset.identity !== identity) {
    result.replaceChildren(h("p", { class: "muted", text: `Looking up ${identity}…` }));
  }
  const variables = { identity, chain: state.chain };
  const [subscriberReply, checkReply] = await Promise.allSettled([
    gql(SUBSCRIBER_QUERY, { ...variables, credits: LOOKUP_CREDITS_SHOWN, payments: LOOKUP_PAYMENTS_SHOWN }),
    gql(CHECK_QUERY, variables),
  ]);
  if (seq !== state.lookupSeq) return; // a newer lookup started meanwhile
  const subscriber = subscriberReply.status === "fulfilled" ? subscriberReply.value.subscriber : null;
  const check = checkReply.status === "fulfilled" ? checkReply.value.checkIdentity : null;
  // Unchanged since the last refresh: keep the DOM (and any selection in it).
  const signature = JSON.stringify([identity, subscriber, check, names.size]);
  if (quiet && result.signature === signature) return;
  result.signature = signature;
  if (!subscriber && !check) {
    // On a refresh, a passing failure keeps the result already shown.
    if (quiet && result.dataset.identity === identity) return;
    const error = checkReply.reason ?? subscriberReply.reason;
    result.dataset.identity = identity;
    result.replaceChildren(h("p", { class: "lookup-error", id: "lookup-error", text: lookupErrorText(identity, error) }));
    return;
  }
  result.dataset.identity = identity;
  result.replaceChildren(...lookupNodes(identity, subscriber, check));
}

function lookupErrorText(identity, error) {
  switch (error?.code) {
    case "NOT_FOUND":
      return `The daemon knows no identity ${identity} on ${state.chain}.`;
    case "INVALID_INPUT":
      return error.message; // says what an identity looks like
    case "UNAVAILABLE":
      return "The pool cannot ask its daemon right now; try again in a moment.";
    default:
      return `The lookup failed: ${error?.message ?? "no answer"}`;
  }
}

const STATUS_TEXTS = {
  ACTIVE: "A subscriber: meets every condition and earns work.",
  COOLING_DOWN: `A subscriber: meets every condition and earns work once its identity is ${COOLDOWN_BLOCKS} blocks unchanged.`,
  LEFT: "Left the pool: it removed the pool's address, was revoked, or stopped meeting a condition.",
  BANNED: "Banned by the pool's operator.",
};

function lookupNodes(identity, subscriber, check) {
  const address = subscriber?.identityAddress ?? check?.identityAddress;
  const name = subscriber?.name ?? check?.name ?? identity;
  const status = subscriber?.status ?? check?.status ?? (check?.eligible ? "NOT_SUBSCRIBED" : "REFUSED");
  let statusText = STATUS_TEXTS[status];
  if (status === "NOT_SUBSCRIBED") statusText = "Meets every condition, but is not a subscriber (yet).";
  if (status === "REFUSED") statusText = "Not a subscriber: it does not meet the pool's conditions.";

  // What it does not meet now (checkIdentity); if that failed, why it left (subscriber.unmet).
  const unmet = check ? check.unmet : subscriber.unmet;
  const conditions = h("div", { id: "lookup-conditions", class: "lookup-conditions" });
  if (unmet.length) {
    conditions.append(
      h("p", { class: "conditions-title", text: "Conditions not met:" }),
      h("ul", { class: "unmet" }, unmet.map((text) => h("li", { text }))),
    );
  } else if (check?.eligible) {
    conditions.append(h("p", { class: "ok", text: "Meets every condition of the pool." }));
  }

  const nodes = [
    h(
      "div",
      { class: "lookup-head" },
      h("div", {}, h("h3", { id: "lookup-identity", text: name }), address ? h("div", { class: "mono muted break", text: address }) : null),
      h("span", { id: "lookup-status", class: "badge badge-large", dataset: { status }, text: status.replace(/_/g, " ") }),
    ),
    h("p", { class: "lookup-summary", text: statusText }),
    conditions,
  ];
  if (!subscriber) return nodes;

  nodes.push(
    h(
      "dl",
      { class: "stats stats-4" },
      [
        ["Eligible balance", amountNode(subscriber.eligibleBalance)],
        ["Round work", workText(subscriber.roundWork)],
        ["Pending", amountNode(subscriber.pendingBalance)],
        ["In flight", amountNode(subscriber.inFlight)],
        ["Paid in total", amountNode(subscriber.paidTotal)],
        ["Minimum payout", amountNode(subscriber.minPayout)],
        ["Fee", `${subscriber.feePercent} %`],
        ["Joined at", subscriber.joinedHeight === null ? "—" : groupDigits(subscriber.joinedHeight)],
        ["Left at", subscriber.leftHeight === null ? "—" : groupDigits(subscriber.leftHeight)],
      ].map(([term, value]) => h("div", {}, h("dt", { text: term }), h("dd", {}, value))),
    ),
    // Every credit and payment with the balance before and after, for an accountant.
    h("p", {}, h("a", {
      id: "lookup-statement",
      href: `statements/${encodeURIComponent(subscriber.identityAddress)}.csv`,
      download: `${subscriber.identityAddress}-statement.csv`,
      text: "Download the statement (CSV)",
    })),
  );
  const credits = subscriber.credits.nodes;
  const payments = subscriber.payments.nodes;
  nodes.push(
    h(
      "div",
      { class: "lookup-lists" },
      h(
        "div",
        {},
        h("h4", { text: "Recent credits" }),
        credits.length
          ? simpleTable(
              ["Height", "Block", { text: "Work", className: "num" }, { text: "Credited", className: "num" }, { text: "Fee", className: "num" }],
              credits.map((c) => [groupDigits(c.height), hashNode(c.blockHash), num(workText(c.work)), num(amountNode(c.amount)), num(amountNode(c.fee))]),
              { className: "lookup-credits" },
            )
          : h("p", { class: "muted", text: "No credits yet: they come when a stake matures." }),
      ),
      h(
        "div",
        {},
        h("h4", { text: "Recent payments" }),
        payments.length
          ? simpleTable(
              ["Created", "Status", { text: "To it", className: "num" }, "Transaction"],
              payments.map((p) => {
                const own = p.outputs.filter((o) => o.identityAddress === subscriber.identityAddress).map((o) => o.amount);
                return [timeText(p.createdAt), badge(p.status), num(own.length === 1 ? amountNode(own[0]) : own.join(" + ")), hashNode(p.txid)];
              }),
              { className: "lookup-payments" },
            )
          : h("p", { class: "muted", text: "No payments yet." }),
      ),
    ),
  );
  return nodes;
}

// ---------------------------------------------------------------------------------------------
// Refresh loop: one refresh at a time; events ask for one soon, the timer every few seconds.

let refreshTimer = null;
let refreshDue = Infinity;
let refreshing = false;
let refreshAgain = false;

function scheduleRefresh(delay) {
  const due = Date.now() + delay;
  if (due >= refreshDue) return; // one is already due sooner
  clearTimeout(refreshTimer);
  refreshDue = due;
  refreshTimer = setTimeout(refresh, delay);
}

function requestRefresh() {
  if (refreshing) refreshAgain = true;
  else scheduleRefresh(EVENT_REFRESH_DELAY_MS);
}

async function refresh() {
  clearTimeout(refreshTimer);
  refreshDue = Infinity;
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    if (Date.now() - state.namesLoadedAt > NAMES_RELOAD_MS) await loadNames();
    await loadOverview();
    await Promise.all([loadHistory(), state.lookup ? lookup(state.lookup, { quiet: true }) : null, resolveNames()]);
    showLoadError(null);
  } catch (error) {
    showLoadError(error);
  } finally {
    refreshing = false;
    scheduleRefresh(refreshAgain ? EVENT_REFRESH_DELAY_MS : REFRESH_MS);
    refreshAgain = false;
  }
}

function showLoadError(error) {
  const banner = $("load-error");
  banner.hidden = !error;
  if (error) banner.textContent = `Cannot read the pool's data (${error.message}); retrying.`;
}

// ---------------------------------------------------------------------------------------------
// Start

function setUpControls() {
  stakesTable = new ExpandableTable($("stakes"), {
    key: (stake) => stake.blockHash,
    cells: (stake) => [
      groupDigits(stake.height),
      h("span", { class: "status-cell" }, badge(stake.status), stakeKind(stake)),
      maturityNode(stake),
      identityNode(stake.foundBy),
      num(amountNode(stake.reward)),
      hashNode(stake.blockHash),
    ],
    details: stakeDetails,
  });
  paymentsTable = new ExpandableTable($("payments"), {
    key: (payment) => payment.id,
    cells: (payment) => [
      timeText(payment.createdAt),
      badge(payment.status),
      num(amountNode(payment.total)),
      num(String(payment.outputs.length)),
      payment.sentHeight === null ? h("span", { class: "muted", text: "—" }) : groupDigits(payment.sentHeight),
      hashNode(payment.txid),
    ],
    details: paymentDetails,
  });

  charts.supply = new Chart($("chart-supply"));
  charts.subscribers = new Chart($("chart-subscribers"), { integer: true, yFormat: (v) => String(v) });
  charts.luck = new Chart($("chart-luck"), { yFormat: (v) => String(Math.round(v * 10) / 10) });

  const rangeButtons = $("range-buttons");
  for (const range of HISTORY_RANGES) {
    const button = h("button", { type: "button", class: "segment", "aria-pressed": String(range === state.range), text: `${groupDigits(range)} blocks` });
    button.addEventListener("click", () => {
      state.range = range;
      for (const other of rangeButtons.children) other.setAttribute("aria-pressed", String(other === button));
      // Through the refresh loop, so two reads of the history never overlap.
      if (state.pool) requestRefresh();
    });
    rangeButtons.append(button);
  }

  $("lookup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const identity = $("lookup-input").value.trim();
    if (!identity) return;
    const url = new URL(location.href);
    url.searchParams.set("identity", identity);
    history.replaceState(null, "", url);
    lookup(identity);
  });

  $("copy-address").addEventListener("click", async () => {
    const button = $("copy-address");
    try {
      await navigator.clipboard.writeText($("pool-r-address").textContent);
      button.textContent = "Copied";
    } catch {
      // No clipboard (a page served over plain HTTP elsewhere than localhost): select it.
      window.getSelection().selectAllChildren($("pool-r-address"));
      button.textContent = "Selected";
    }
    setTimeout(() => (button.textContent = "Copy"), 1500);
  });
}

async function start() {
  setUpControls();
  // Which pool: ?chain=… or the first configured one; a menu when there are several.
  let pools;
  for (;;) {
    try {
      ({ pools } = await gql(POOLS_QUERY));
      showLoadError(null);
      break;
    } catch (error) {
      showLoadError(error);
      await new Promise((resolve) => setTimeout(resolve, REFRESH_MS));
    }
  }
  const wanted = params.get("chain");
  state.chain = pools.find((p) => p.chain.toLowerCase() === wanted?.toLowerCase())?.chain ?? pools[0]?.chain ?? null;
  if (pools.length > 1) {
    const select = $("chain-select");
    select.replaceChildren(...pools.map((p) => h("option", { value: p.chain, text: p.chain, selected: p.chain === state.chain })));
    select.hidden = false;
    $("chain-name").hidden = true;
    select.addEventListener("change", () => {
      const url = new URL(location.href);
      url.searchParams.set("chain", select.value);
      url.searchParams.delete("identity");
      location.assign(url); // a fresh page: every list and the subscription are per chain
    });
  }

  const identity = params.get("identity");
  if (identity) {
    $("lookup-input").value = identity;
    state.lookup = identity;
  }
  await refresh();

  live = new LiveEvents({
    chain: state.chain,
    onEvent: onLiveEvent,
    onState: setLiveState,
    onResumed: () => requestRefresh(),
  });
  let cursor = null;
  try {
    cursor = await loadEventBacklog();
  } catch (error) {
    showLoadError(error);
  }
  // Without a backlog (it failed to load) there is no cursor: live events only.
  live.start(cursor);
}

// A hook for the end-to-end test (tests/clients/dashboard_e2e.py): drop the WebSocket so the
// page has to reconnect and resume after its last cursor.
window.coinstakerDashboard = {
  reconnect: (offlineMs = 0) => live?.reconnect(offlineMs),
};

start();
