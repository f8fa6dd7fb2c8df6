-- wrk script for `cargo bench --bench pool -- reads`: the dashboard query (the pool and one
-- subscriber with its last credits) as a POST to /graphql. The subscriber comes from the
-- SUBSCRIBER environment variable.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local who = os.getenv("SUBSCRIBER") or "sub00000@"
wrk.body = '{"query":"{ pool { chain tipHeight processedHeight subscriberCount stakingSupply feesEarned totalPaid pendingTotal payoutsPaused } subscriber(identity: \\"' .. who .. '\\") { status eligibleBalance pendingBalance paidTotal credits(first: 10) { edges { node { amount work } } } } }"}'
