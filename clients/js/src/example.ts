/**
 * What a wallet does with the pool's API, in one script:
 *
 *   POOL_URL=http://127.0.0.1:8080 IDENTITY=alice@ npm run example
 *
 * 1. prints the identity's status and balances (a query over HTTP);
 * 2. follows the pool's event log about that identity from the cursor saved in CURSOR_FILE
 *    (default ./.coinstaker-cursor), saving the cursor after each event, so that a restart, a
 *    dropped connection or a restarted server loses nothing and repeats nothing;
 * 3. prints the identity's stakes and payments as they are pushed (live only).
 *
 * Ctrl-C stops. Try it against `coinstaker demo` (its subscribers are alice@, bob@, carol@).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

import { followEvents, getSubscriber, watchIdentity } from './client.js';

const poolUrl = process.env.POOL_URL ?? 'http://127.0.0.1:8080';
const identity = process.env.IDENTITY ?? 'alice@';
const cursorFile = process.env.CURSOR_FILE ?? '.coinstaker-cursor';

// 1. Balances: pendingBalance (credited, not paid yet) + inFlight (in a payment on its way)
//    + paidTotal (paid and confirmed) = everything ever credited.
const subscriber = await getSubscriber(poolUrl, identity);
if (subscriber) {
  console.log(
    `${subscriber.name} is ${subscriber.status}: pending ${subscriber.pendingBalance},` +
      ` in flight ${subscriber.inFlight}, paid ${subscriber.paidTotal}`,
  );
} else {
  console.log(`${identity} has never joined the pool`);
}

// 2. The event log about this identity, resumable: start after the saved cursor ("0" = from
//    the first event) and save each event's cursor once it has been handled.
const after = existsSync(cursorFile) ? readFileSync(cursorFile, 'utf8').trim() : '0';
const follower = followEvents(poolUrl, {
  after,
  identity,
  onEvent(event) {
    console.log(`[${event.cursor}] ${event.kind} at ${event.height ?? '-'}: ${event.message}`);
    writeFileSync(cursorFile, event.cursor);
  },
  onDisconnect(reason, resumeAfter) {
    console.log(`disconnected (${String(reason)}); will resume after ${resumeAfter}`);
  },
});

// 3. Push notifications for this identity (live only: nothing is replayed after a reconnect).
const unwatch = watchIdentity(poolUrl, identity, {
  onStakeFound: (e) => console.log(`stake found at ${e.stake?.height}: reward ${e.stake?.reward}`),
  onPaymentSent: (e) => {
    const mine = e.payment?.outputs.find((o) => o.identityAddress === subscriber?.identityAddress);
    console.log(`payment ${e.payment?.txid} sent: ${mine?.amount ?? '?'} to ${identity}`);
  },
});

process.once('SIGINT', () => {
  void Promise.all([follower.stop(), unwatch()]).then(() => process.exit(0));
});
await follower.done;
