//! The mutation root. Writes go through the actor that owns the data; admin mutations need
//! the Bearer token and are written to the audit log with the change.

use async_graphql::{Context, InputObject, Object, Result};

use crate::actors::payout_manager::{PausePayouts, RunPayouts};
use crate::actors::subscriber_registry::{
    SetBanned, SetMinPayout, SetPoolFee, SetSubscriberFee, Subscribe, UpdateConditions,
    check_identity,
};
use crate::config::{MAX_PRIMARY_ADDRESSES, MAX_UNLOCK_DELAY};
use crate::domain::{Conditions, FeeRate};
use crate::graphql::args::{self, IdentityArg, find_subscriber};
use crate::graphql::auth::require_admin;
use crate::graphql::error::{Code, actor_error, api_error, store_error};
use crate::graphql::scalars::Amount;
use crate::graphql::types::{IdentityCheck, Payment, Pool, PoolConditions, Subscriber};
use crate::state::AppState;
use crate::store;

/// Changes to the pool's conditions; omitted fields keep their value.
#[derive(InputObject, Debug, Clone)]
pub struct PoolConditionsInput {
    /// Minimum delay lock in blocks; 0 = no lock required.
    pub min_unlock_delay: Option<i32>,
    /// Revocation and recovery authorities must differ from the identity and the pool.
    pub require_separate_revoke_recover: Option<bool>,
    /// At most this many primary addresses (at most 25).
    pub max_primary_addresses: Option<i32>,
    /// At most this many UTXOs of at least `utxoCountMin`; 0 = no limit.
    pub max_utxos: Option<i32>,
    /// Smaller UTXOs are not counted against `maxUtxos`.
    pub utxo_count_min: Option<Amount>,
}

fn non_negative(name: &str, v: i32) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| api_error(Code::InvalidInput, format!("{name} cannot be negative")))
}

impl PoolConditionsInput {
    fn apply(&self, mut c: Conditions) -> Result<Conditions> {
        if let Some(v) = self.min_unlock_delay {
            c.min_unlock_delay = non_negative("minUnlockDelay", v)?;
            if c.min_unlock_delay > MAX_UNLOCK_DELAY {
                return Err(api_error(
                    Code::InvalidInput,
                    format!("minUnlockDelay is at most {MAX_UNLOCK_DELAY} blocks"),
                ));
            }
        }
        if let Some(v) = self.require_separate_revoke_recover {
            c.require_separate_revoke_recover = v;
        }
        if let Some(v) = self.max_primary_addresses {
            c.max_primary_addresses = non_negative("maxPrimaryAddresses", v)?;
            if c.max_primary_addresses == 0 || c.max_primary_addresses > MAX_PRIMARY_ADDRESSES {
                return Err(api_error(
                    Code::InvalidInput,
                    format!("maxPrimaryAddresses must be from 1 to {MAX_PRIMARY_ADDRESSES}"),
                ));
            }
        }
        if let Some(v) = self.max_utxos {
            c.max_utxos = non_negative("maxUtxos", v)?;
        }
        if let Some(v) = self.utxo_count_min {
            c.utxo_count_min = v.0;
        }
        Ok(c)
    }
}

/// Mutations for subscribers and admins.
pub struct MutationRoot;

/// Mutations for subscribers and admins.
#[Object(name = "Mutation")]
impl MutationRoot {
    /// Looks at an identity now (as of the processed height) and, if it lists the pool's
    /// address, starts following it; returns whether it meets the conditions.
    async fn subscribe(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "An i-address or a name (`alice@`).")] identity: String,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<IdentityCheck> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let arg = IdentityArg::parse(&identity, &chain.name)?;
        let runtime = args::runtime(ctx, chain)?;
        let registry = args::registry(runtime)?;
        // Looked at outside the registry: only an identity that lists the pool's address and
        // is not followed yet goes to the registry (whose lock every block needs).
        args::without_turn(ctx, async {
            let (_slot, at, reply, stored) =
                args::identity_now(state, runtime, chain, &arg).await?;
            let address = &reply.identity.identityaddress;
            let lists_pool = |primary: &[String]| {
                primary
                    .iter()
                    .any(|a| a == chain.pool_primary_address.as_str())
            };
            let followed = stored
                .as_ref()
                .is_some_and(|v| lists_pool(&v.facts.primary_addresses));
            if address != chain.pool_identity.as_str()
                && lists_pool(&reply.facts().primary_addresses)
                && !followed
            {
                let check = args::ask(
                    &registry,
                    Subscribe {
                        identity: arg.for_daemon(),
                    },
                )
                .await?;
                return Ok(check.into());
            }
            let check =
                check_identity(&state.db, &runtime.rpc, chain, &reply, at, stored.is_some())
                    .await
                    .map_err(actor_error)?;
            Ok(check.into())
        })
        .await
    }

    /// Sets a subscriber's own minimum payout. `signature` is verusd
    /// `signmessage <identity> <message>` over
    /// `coinstaker:setMinPayout:<chain i-address>:<identity i-address>:<amount>:<height>`, the
    /// amount written with exactly 8 decimals and the height within 10 blocks of the tip;
    /// checked with `verifymessage`.
    async fn set_min_payout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "An i-address or a name (`alice@`).")] identity: String,
        #[graphql(desc = "The new minimum payout.")] amount: Amount,
        #[graphql(desc = "The height in the signed message (within 10 blocks of the tip).")] height: i32,
        #[graphql(desc = "The identity's signature over the message.")] signature: String,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<Subscriber> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let arg = IdentityArg::parse(&identity, &chain.name)?;
        let current = find_subscriber(state, &chain.name, &arg)
            .await?
            .ok_or_else(|| {
                api_error(
                    Code::NotFound,
                    format!("{identity} is not a subscriber of {}", chain.name),
                )
            })?;
        let runtime = args::runtime(ctx, chain)?;
        let row = args::ask(
            &args::registry(runtime)?,
            SetMinPayout {
                identity: current.identity_address,
                amount: amount.0,
                height: i64::from(height),
                signature,
            },
        )
        .await?;
        Ok(Subscriber(row))
    }

    /// Admin: changes the pool's conditions from the next block; everyone is evaluated again
    /// then. The history of conditions is kept by height.
    async fn update_pool_conditions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The conditions to change.")] input: PoolConditionsInput,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<PoolConditions> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let arguments = serde_json::json!({
            "minUnlockDelay": input.min_unlock_delay, "requireSeparateRevokeRecover": input.require_separate_revoke_recover,
            "maxPrimaryAddresses": input.max_primary_addresses, "maxUtxos": input.max_utxos,
            "utxoCountMin": input.utxo_count_min.map(|a| a.0.to_string()),
        });
        let audit = require_admin(ctx, "updatePoolConditions", &chain.name, arguments)?;
        let current = store::settings::latest(&state.db, &chain.name)
            .await
            .map_err(store_error)?
            .map_or_else(|| chain.conditions.clone(), |v| v.settings.conditions);
        let conditions = input.apply(current)?;
        let runtime = args::runtime(ctx, chain)?;
        let applied = args::ask(
            &args::registry(runtime)?,
            UpdateConditions { conditions, audit },
        )
        .await?;
        Ok(PoolConditions(applied))
    }

    /// Admin: changes the pool's fee from the next block; stakes are split with the fee in
    /// force at their height.
    async fn set_pool_fee(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Percent, at most 4 decimals, 0–100 (\"3.33\").")] fee_percent: String,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<Pool> {
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let fee = FeeRate::parse_percent(&fee_percent)
            .map_err(|e| api_error(Code::InvalidInput, e.to_string()))?;
        let audit = require_admin(
            ctx,
            "setPoolFee",
            &chain.name,
            serde_json::json!({"feePercent": fee_percent}),
        )?;
        let runtime = args::runtime(ctx, chain)?;
        args::ask(&args::registry(runtime)?, SetPoolFee { fee, audit }).await?;
        Ok(Pool::new(chain))
    }

    /// Admin: sets a subscriber's own fee from the next block (`null`: the pool's again).
    async fn set_subscriber_fee(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "An i-address or a name (`alice@`).")] identity: String,
        #[graphql(desc = "Percent, at most 4 decimals, 0–100; null = use the pool's.")] fee_percent: Option<String>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<Subscriber> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let arg = IdentityArg::parse(&identity, &chain.name)?;
        let fee = fee_percent
            .as_deref()
            .map(FeeRate::parse_percent)
            .transpose()
            .map_err(|e| api_error(Code::InvalidInput, e.to_string()))?;
        let audit = require_admin(
            ctx,
            "setSubscriberFee",
            &chain.name,
            serde_json::json!({"identity": identity, "feePercent": fee_percent}),
        )?;
        let current = find_subscriber(state, &chain.name, &arg)
            .await?
            .ok_or_else(|| {
                api_error(
                    Code::NotFound,
                    format!("{identity} is not a subscriber of {}", chain.name),
                )
            })?;
        let runtime = args::runtime(ctx, chain)?;
        let row = args::ask(
            &args::registry(runtime)?,
            SetSubscriberFee {
                identity: current.identity_address,
                fee,
                audit,
            },
        )
        .await?;
        Ok(Subscriber(row))
    }

    /// Admin: runs a payout cycle now; with `dryRun`, returns the payments it would plan
    /// (status PLANNED) and stores and sends nothing.
    async fn run_payouts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
        #[graphql(desc = "Only return the plan.", default = false)] dry_run: bool,
    ) -> Result<Vec<Payment>> {
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let audit = require_admin(
            ctx,
            "runPayouts",
            &chain.name,
            serde_json::json!({"dryRun": dry_run}),
        )?;
        let runtime = args::runtime(ctx, chain)?;
        let planned = args::ask(&args::payouts(runtime)?, RunPayouts { dry_run, audit }).await?;
        Ok(planned.into_iter().map(Payment).collect())
    }

    /// Admin: pauses or resumes payouts.
    async fn pause_payouts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "true to pause, false to resume.")] paused: bool,
        #[graphql(desc = "Why (shown in `pool.pausedReason`).")] reason: Option<String>,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<Pool> {
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let audit = require_admin(
            ctx,
            "pausePayouts",
            &chain.name,
            serde_json::json!({"paused": paused, "reason": reason}),
        )?;
        let runtime = args::runtime(ctx, chain)?;
        args::ask(
            &args::payouts(runtime)?,
            PausePayouts {
                paused,
                reason,
                audit,
            },
        )
        .await?;
        Ok(Pool::new(chain))
    }

    /// Admin: bans (earns nothing from the next block, paid out as a leaver) or unbans a
    /// subscriber.
    async fn ban_subscriber(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "An i-address or a name (`alice@`).")] identity: String,
        #[graphql(desc = "true to ban, false to unban.")] banned: bool,
        #[graphql(desc = "Currency name or i-address; omitted = the first configured chain.")]
        chain: Option<String>,
    ) -> Result<Subscriber> {
        let state = ctx.data::<AppState>()?;
        let chain = args::chain(ctx, chain.as_deref()).await?;
        let arg = IdentityArg::parse(&identity, &chain.name)?;
        let audit = require_admin(
            ctx,
            "banSubscriber",
            &chain.name,
            serde_json::json!({"identity": identity, "banned": banned}),
        )?;
        let current = find_subscriber(state, &chain.name, &arg)
            .await?
            .ok_or_else(|| {
                api_error(
                    Code::NotFound,
                    format!("{identity} is not a subscriber of {}", chain.name),
                )
            })?;
        let runtime = args::runtime(ctx, chain)?;
        let row = args::ask(
            &args::registry(runtime)?,
            SetBanned {
                identity: current.identity_address,
                banned,
                audit,
            },
        )
        .await?;
        Ok(Subscriber(row))
    }
}
