// End-to-end test of the example client (the built dist/client.js) against a real
// `coinstaker serve` following a real `verusd-sim`. .ci/js-client.sh starts both and runs:
//
//   POOL_URL=http://127.0.0.1:8080 SIM_RPC_URL=http://127.0.0.1:18843/ \
//   SIM_RPC_USER=user SIM_RPC_PASSWORD=pass ADMIN_TOKEN=<token> node test/e2e.mjs
//
// The pool must be configured with maturity = 100, min_payout = "0.5", start_height = 1 and
// the simulator's pool identity and address, on a fresh chain (nothing mined yet).
//
// It proves:
//   1. a query answers: getSubscriber over HTTP POST /graphql, with its balances;
//   2. followEvents, from cursor "0", with the socket closed mid-stream twice (once while the
//      chain makes events, the reconnect held until they are stored; once from inside the
//      event handler, while events are arriving), receives exactly the events of the
//      `events` query, in order: no gap, no duplicate;
//   3. watchIdentity for one identity receives its stakeFound and paymentSent events, and
//      none of the other identities' stakes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { followEvents, getSubscriber, request, watchIdentity } from '../dist/client.js';

const POOL_URL = need('POOL_URL');
const SIM_RPC_URL = need('SIM_RPC_URL');
const SIM_AUTH = `${process.env.SIM_RPC_USER ?? 'user'}:${process.env.SIM_RPC_PASSWORD ?? 'pass'}`;
const ADMIN_TOKEN = need('ADMIN_TOKEN');
const TIMEOUT_SECS = Number(process.env.E2E_TIMEOUT_SECS ?? 300);

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`e2e: set ${name}`);
    process.exit(2);
  }
  return value;
}

const started = Date.now();
const say = (message) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The whole run is bounded: a hang fails the test.
const watchdog = setTimeout(() => {
  console.error(`e2e: timed out after ${TIMEOUT_SECS} s`);
  process.exit(1);
}, TIMEOUT_SECS * 1000);
watchdog.unref();

/** A JSON-RPC call to the simulator (its control methods and verusd's). */
async function sim(method, ...params) {
  const response = await fetch(SIM_RPC_URL, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(SIM_AUTH).toString('base64')}` },
    body: JSON.stringify({ method, params, id: 1 }),
  });
  const body = await response.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

/** Waits until `probe()` returns something truthy (polled every 200 ms), and returns it. */
async function until(what, probe, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** A base58check R-address (version 60) derived from `seed`: a subscriber's own key. */
function rAddress(seed) {
  const sha = (data) => createHash('sha256').update(data).digest();
  const payload = Buffer.concat([Buffer.from([60]), sha(seed).subarray(0, 20)]);
  const bytes = Buffer.concat([payload, sha(sha(payload)).subarray(0, 4)]);
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  let n = BigInt(`0x${bytes.toString('hex')}`);
  let text = '';
  while (n > 0n) {
    text = alphabet[Number(n % 58n)] + text;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    text = `1${text}`;
  }
  return text;
}

/** The pool's processed height has reached the simulator's tip. */
async function poolCaughtUp() {
  const tip = await sim('getblockcount');
  await until(`the pool to process height ${tip}`, async () => {
    const { pool } = await request(POOL_URL, '{ pool { processedHeight } }');
    return pool.processedHeight >= tip;
  });
  return tip;
}

/** Every stored event's cursor, oldest first, a page of 500 at a time. */
async function storedCursors() {
  const cursors = [];
  let after = null;
  for (;;) {
    const { events } = await request(
      POOL_URL,
      'query ($after: String) { events(first: 500, after: $after) { edges { cursor node { kind } } pageInfo { hasNextPage endCursor } } }',
      { after },
    );
    cursors.push(...events.edges.map((e) => e.cursor));
    if (!events.pageInfo.hasNextPage) return cursors;
    after = events.pageInfo.endCursor;
  }
}

let passed = 0;
const pass = (message) => {
  passed += 1;
  say(`ok ${passed} - ${message}`);
};

async function main() {
  // --- 1. A query answers -------------------------------------------------------------------
  const state = await sim('sim_state');
  const poolR = state.poolprimaryaddress;
  await until('the pool to answer', async () => {
    try {
      return await request(POOL_URL, '{ pool { chain processedHeight } }');
    } catch {
      return null;
    }
  });
  assert.equal(await getSubscriber(POOL_URL, 'nobody@'), null, 'an identity that never joined is null');

  // The cast: three subscribers, delay-locked, with separate revoke and recover identities.
  const ids = {};
  for (const name of ['alice', 'bob', 'carol']) {
    const revoke = (await sim('sim_registeridentity', { name: `${name}-revoke` })).identityaddress;
    const recover = (await sim('sim_registeridentity', { name: `${name}-recover` })).identityaddress;
    ids[name] = (
      await sim('sim_registeridentity', {
        name,
        primaryaddresses: [rAddress(`e2e-key:${name}`), poolR],
        minimumsignatures: 1,
        locked: true,
        timelock: 1440,
        revocationauthority: revoke,
        recoveryauthority: recover,
      })
    ).identityaddress;
    await sim('sim_fund', ids[name], '1000', 2);
  }
  await sim('sim_fund', state.poolidentity, '10');
  const alice = ids.alice;
  say(`registered alice ${alice}, bob ${ids.bob}, carol ${ids.carol}`);

  // --- 2. The event stream, with forced disconnects -------------------------------------------
  const received = [];
  let socket;
  let disconnects = 0;
  let gate = Promise.resolve(); // reconnects wait for it
  let openGate = () => {};
  let closeInHandler = null; // a kind: close the socket from inside the handler of the first such event
  const follower = followEvents(POOL_URL, {
    after: '0',
    onConnected: (s) => (socket = s),
    onEvent: (event) => {
      received.push(event);
      if (closeInHandler && event.kind === closeInHandler) {
        closeInHandler = null;
        say(`closing the socket mid-stream, in the handler of event ${event.cursor} (${event.kind})`);
        socket.terminate();
      }
    },
    onDisconnect: (reason, resumeAfter) => {
      disconnects += 1;
      say(`disconnected (${reason?.code ?? ''} ${reason?.reason ?? reason?.message ?? reason}); resuming after ${resumeAfter}`);
    },
    retryWait: async () => {
      await gate;
      await sleep(100);
    },
  });
  follower.done.catch((error) => {
    console.error('e2e: the follower failed:', error);
    process.exit(1);
  });

  // --- 3. One identity's pushes ----------------------------------------------------------------
  const aliceStakes = [];
  const alicePayments = [];
  const unwatch = watchIdentity(POOL_URL, alice, {
    onStakeFound: (e) => aliceStakes.push(e),
    onPaymentSent: (e) => alicePayments.push(e),
    onError: (error) => {
      console.error('e2e: watchIdentity failed:', error);
      process.exit(1);
    },
  });
  await sleep(500); // the subscriptions are live only: let them start before the stakes

  // Past the 150-block cooldown and stake age.
  await sim('sim_generate', 160);
  await poolCaughtUp();
  await until('three SUBSCRIBER_JOINED events', () => received.filter((e) => e.kind === 'SUBSCRIBER_JOINED').length === 3);
  say(`the follower has ${received.length} events; the last cursor is ${follower.cursor}`);

  // First disconnect: the socket dies, and events are made and stored before it comes back.
  gate = new Promise((resolve) => (openGate = resolve));
  const beforeGap = received.length;
  say('closing the socket; the reconnect waits while three stakes are found');
  socket.terminate();
  for (const name of ['alice', 'bob', 'carol']) await sim('sim_stake', ids[name]);
  await poolCaughtUp();
  const storedStakes = await until('three STAKE_FOUND events stored', async () => {
    const { events } = await request(POOL_URL, '{ events(kinds: [STAKE_FOUND], first: 10) { nodes { cursor } } }');
    return events.nodes.length === 3 && events.nodes;
  });
  assert.equal(received.length, beforeGap, 'nothing arrives while disconnected');
  openGate();
  await until('the stakes replayed after the reconnect', () => received.filter((e) => e.kind === 'STAKE_FOUND').length === 3);
  assert.deepEqual(
    received.filter((e) => e.kind === 'STAKE_FOUND').map((e) => e.cursor),
    storedStakes.map((e) => e.cursor),
    'the events made during the disconnect are replayed',
  );
  pass(`resumed after a disconnect: the ${storedStakes.length} events made meanwhile were replayed`);

  await until("alice's stakeFound", () => aliceStakes.length >= 1, 20);
  await sleep(1000); // give any wrong (bob's, carol's) stakeFound pushes time to arrive
  assert.equal(aliceStakes.length, 1, 'exactly one stakeFound for alice');
  assert.equal(aliceStakes[0].kind, 'STAKE_FOUND');
  assert.equal(aliceStakes[0].identityAddress, alice);
  assert.equal(aliceStakes[0].stake.foundBy, alice);
  pass(`stakeFound(identity: alice) pushed alice's stake at height ${aliceStakes[0].stake.height} and not bob's or carol's`);

  // Second disconnect: from inside the handler of the first STAKE_MATURED, while the others arrive.
  closeInHandler = 'STAKE_MATURED';
  await sim('sim_generate', 101);
  await poolCaughtUp();
  await until('three STAKE_MATURED events', () => received.filter((e) => e.kind === 'STAKE_MATURED').length === 3);
  assert.equal(closeInHandler, null, 'the socket was closed mid-stream');

  // The rewards are spendable (coinbase maturity 100): pay, and mine the payment.
  const payment = await until(
    "a payment to alice",
    async () => {
      try {
        await request(POOL_URL, 'mutation { runPayouts { id status } }', {}, { token: ADMIN_TOKEN });
      } catch (error) {
        say(`runPayouts: ${error.message}`);
      }
      await sleep(300);
      await sim('sim_generate', 1);
      return alicePayments[0];
    },
    90,
  );
  assert.equal(payment.kind, 'PAYMENT_SENT');
  const aliceOutput = payment.payment.outputs.find((o) => o.identityAddress === alice);
  assert.ok(aliceOutput, 'the payment has an output to alice');
  pass(`paymentSent(identity: alice) pushed payment ${payment.payment.txid} with ${aliceOutput.amount} to alice`);

  const subscriber = await getSubscriber(POOL_URL, alice);
  assert.equal(subscriber.identityAddress, alice);
  assert.equal(subscriber.status, 'ACTIVE');
  const sats = (amount) => BigInt(amount.replace('.', ''));
  const credited = sats(subscriber.pendingBalance) + sats(subscriber.inFlight) + sats(subscriber.paidTotal);
  assert.ok(sats(subscriber.inFlight) + sats(subscriber.paidTotal) >= sats(aliceOutput.amount), 'the payment shows in inFlight or paidTotal');
  assert.ok(credited > 0n);
  pass(
    `getSubscriber(alice): ${subscriber.status}, pending ${subscriber.pendingBalance}, in flight ${subscriber.inFlight}, paid ${subscriber.paidTotal}`,
  );

  // --- The stream against the log -----------------------------------------------------------------
  // Payouts go on by themselves (payout_interval_secs = 1) and each adds a PAYMENT_SENT: pause
  // them and wait until the log stops growing, so that it can be compared.
  await request(POOL_URL, 'mutation { pausePayouts(paused: true, reason: "e2e: comparing the log") { payoutsPaused } }', {}, { token: ADMIN_TOKEN });
  await poolCaughtUp();
  let stored = await storedCursors();
  for (;;) {
    await sleep(2000);
    const again = await storedCursors();
    if (again.length === stored.length) break;
    stored = again;
  }
  await until('the follower to catch up with the log', () => follower.cursor === stored.at(-1), 20);
  await follower.stop();
  await unwatch();
  const got = received.map((e) => e.cursor);
  assert.equal(new Set(got).size, got.length, `no duplicate cursor: ${got.join(' ')}`);
  assert.deepEqual(got, stored, 'the stream has exactly the stored events, in order');
  assert.ok(disconnects >= 2, `two forced disconnects (saw ${disconnects})`);
  const kinds = [...new Set(received.map((e) => e.kind))].join(', ');
  pass(`events(after:) across ${disconnects} disconnects: all ${got.length} stored events, in order, no gap, no duplicate (${kinds})`);

  // A wallet restarting from a saved cursor gets exactly the events after it; with `identity`
  // and `kinds`, exactly its own stakes and payments (the resumable form of watchIdentity).
  const middle = Math.floor(stored.length / 2);
  const resumed = [];
  const restart = followEvents(POOL_URL, { after: stored[middle - 1], onEvent: (e) => resumed.push(e.cursor) });
  const own = [];
  const mine = followEvents(POOL_URL, {
    identity: alice,
    kinds: ['STAKE_FOUND', 'PAYMENT_SENT'],
    onEvent: (e) => own.push(e),
  });
  // Alice's stake and every payment to her (a second payment comes when the pool pays before
  // every stake has matured), as watchIdentity received them.
  const expectedOwn = [aliceStakes[0], ...alicePayments]
    .map((e) => [e.kind, e.cursor])
    .sort((a, b) => Number(a[1]) - Number(b[1]));
  await until('the restarted followers to catch up', () => resumed.at(-1) === stored.at(-1) && own.length >= expectedOwn.length, 20);
  await sleep(300);
  await Promise.all([restart.stop(), mine.stop()]);
  assert.deepEqual(resumed, stored.slice(middle), 'a restart from a saved cursor');
  assert.deepEqual(
    own.map((e) => [e.kind, e.cursor]),
    expectedOwn,
    'followEvents(identity: alice, kinds: [STAKE_FOUND, PAYMENT_SENT]) from "0" = what watchIdentity pushed',
  );
  pass(`a restart after cursor ${stored[middle - 1]} got the ${resumed.length} later events; alice's own: ${own.map((e) => e.kind).join(', ')}`);
}

try {
  await main();
  say(`e2e: ${passed} passed, 0 failed`);
  process.exit(0);
} catch (error) {
  console.error(error);
  console.log(`e2e: ${passed} passed, 1 failed`);
  process.exit(1);
}
