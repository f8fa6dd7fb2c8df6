//! `Subscriber`, `SubscriberStatus` and `IdentityCheck`.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};

use crate::actors::subscriber_registry::IdentityCheck as Check;
use crate::domain::{Sats, SubscriberStatus as Status};
use crate::graphql::error::store_error;
use crate::graphql::loaders::{self, EligibleAt, Loaders, Of, PageOf};
use crate::graphql::scalars::Amount;
use crate::state::AppState;
use crate::store::{self, subscribers::Subscriber as Row};

/// Where a subscriber stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "SubscriberStatus")]
pub enum SubscriberStatus {
    /// Meets every condition; its identity changed less than 150 blocks ago, so it earns no
    /// work yet.
    CoolingDown,
    /// Meets every condition and earns work.
    Active,
    /// Left: removed the pool's address, was revoked, or no longer meets the conditions.
    Left,
    /// Banned by an admin.
    Banned,
}

impl From<Status> for SubscriberStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::CoolingDown => SubscriberStatus::CoolingDown,
            Status::Active => SubscriberStatus::Active,
            Status::Left => SubscriberStatus::Left,
            Status::Banned => SubscriberStatus::Banned,
        }
    }
}

impl From<SubscriberStatus> for Status {
    fn from(s: SubscriberStatus) -> Self {
        match s {
            SubscriberStatus::CoolingDown => Status::CoolingDown,
            SubscriberStatus::Active => Status::Active,
            SubscriberStatus::Left => Status::Left,
            SubscriberStatus::Banned => Status::Banned,
        }
    }
}

/// A VerusID that joined the pool at least once.
#[derive(Clone)]
pub struct Subscriber(pub Row);

impl Subscriber {
    async fn processed(&self, ctx: &Context<'_>) -> Result<i64> {
        loaders::one(&Loaders::of(ctx)?.tips, self.0.chain.clone()).await
    }

    fn of(&self) -> Of {
        Of {
            chain: self.0.chain.clone(),
            identity: self.0.identity_address.clone(),
        }
    }

    async fn balance(&self, ctx: &Context<'_>) -> Result<store::ledger::Balance> {
        loaders::one(&Loaders::of(ctx)?.balances, self.of()).await
    }
}

/// A VerusID that joined the pool at least once.
#[Object]
impl Subscriber {
    /// The identity's i-address.
    async fn identity_address(&self) -> &str {
        &self.0.identity_address
    }

    /// Its fully qualified name (`alice.VRSC@`).
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Its status now.
    async fn status(&self) -> SubscriberStatus {
        self.0.status.into()
    }

    /// The height it last joined at.
    async fn joined_height(&self) -> Option<i32> {
        self.0.joined_height.and_then(|h| i32::try_from(h).ok())
    }

    /// The height it last left at.
    async fn left_height(&self) -> Option<i32> {
        self.0.left_height.and_then(|h| i32::try_from(h).ok())
    }

    /// The conditions it does not meet, in words (when it left for that reason).
    async fn unmet(&self) -> &[String] {
        &self.0.unmet
    }

    /// Its eligible staking balance at the processed height: outputs at least 150 blocks
    /// old, counted only while it is ACTIVE.
    async fn eligible_balance(&self, ctx: &Context<'_>) -> Result<Amount> {
        if self.0.status != Status::Active {
            return Ok(Amount(Sats::ZERO));
        }
        let key = EligibleAt {
            of: self.of(),
            height: self.processed(ctx).await?,
        };
        Ok(Amount(
            loaders::one(&Loaders::of(ctx)?.eligible, key).await?,
        ))
    }

    /// Work over the open round (after the last pool stake that is not stale, up to the
    /// processed height).
    // Reads the identity's whole output history: counted as 10.
    #[graphql(complexity = 10)]
    async fn round_work(&self, ctx: &Context<'_>) -> Result<crate::graphql::scalars::BigInt> {
        let key = EligibleAt {
            of: self.of(),
            height: self.processed(ctx).await?,
        };
        Ok(crate::graphql::scalars::BigInt(
            loaders::one(&Loaders::of(ctx)?.round_work, key).await?,
        ))
    }

    /// Its credits, newest first.
    #[graphql(complexity = "1 + first.max(1) as usize * child_complexity")]
    async fn credits(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, at most 500.", default = 50)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<super::CreditConnection> {
        let limit = crate::graphql::args::page_size(first)?;
        let before = crate::graphql::args::cursor(after.as_deref())?;
        let key = PageOf {
            of: self.of(),
            before,
            limit: limit + 1,
        };
        let rows = loaders::one(&Loaders::of(ctx)?.credits, key).await?;
        let credits: Vec<(String, super::Credit)> = rows
            .into_iter()
            .map(|(c, hash)| (c.id.to_string(), super::Credit::new(c, &hash)))
            .collect();
        Ok(super::page::paged(credits, limit, before.is_some(), |c| c).into())
    }

    /// Payments with an output to it, newest first.
    #[graphql(complexity = "1 + first.max(1) as usize * child_complexity")]
    async fn payments(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, at most 500.", default = 50)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<super::PaymentConnection> {
        let limit = crate::graphql::args::page_size(first)?;
        let before = crate::graphql::args::cursor(after.as_deref())?;
        let key = PageOf {
            of: self.of(),
            before,
            limit: limit + 1,
        };
        let rows = loaders::one(&Loaders::of(ctx)?.payments, key).await?;
        Ok(super::page::paged(rows, limit, before.is_some(), |p| {
            (p.id.to_string(), super::Payment(p))
        })
        .into())
    }

    /// Credited and not yet paid.
    async fn pending_balance(&self, ctx: &Context<'_>) -> Result<Amount> {
        Ok(Amount(self.balance(ctx).await?.pending))
    }

    /// In payments planned, submitted or sent but not confirmed yet: `pendingBalance +
    /// inFlight + paidTotal` is everything ever credited, so a balance never vanishes while
    /// its payment is on its way.
    async fn in_flight(&self, ctx: &Context<'_>) -> Result<Amount> {
        Ok(Amount(self.balance(ctx).await?.in_flight))
    }

    /// Its statement for heights `fromHeight..=toHeight` (both optional): the pending balance
    /// before and after, and every credit and payment in between (the same as CSV at
    /// `GET /statements/<identity>.csv?from=&to=`).
    // Its lines (up to 10,000) are read in one query each: counted as 100 per field.
    #[graphql(complexity = "10 + 100 * child_complexity")]
    async fn statement(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "First height; omitted: from the beginning.")] from_height: Option<i64>,
        #[graphql(desc = "Last height; omitted: up to now.")] to_height: Option<i64>,
    ) -> Result<super::Statement> {
        let state = ctx.data::<AppState>()?;
        match store::statements::of(
            &state.db,
            &self.0.chain,
            &self.0.identity_address,
            from_height,
            to_height,
        )
        .await
        .map_err(store_error)?
        {
            Ok(s) => Ok(super::Statement(s)),
            Err(why) => Err(crate::graphql::error::api_error(
                crate::graphql::error::Code::InvalidInput,
                why,
            )),
        }
    }

    /// Paid and confirmed, in total.
    async fn paid_total(&self, ctx: &Context<'_>) -> Result<Amount> {
        Ok(Amount(self.balance(ctx).await?.paid))
    }

    /// Its minimum payout: its own if it set one, else the pool's.
    async fn min_payout(&self, ctx: &Context<'_>) -> Result<Amount> {
        if let Some(own) = self.0.min_payout {
            return Ok(Amount(own));
        }
        let state = ctx.data::<AppState>()?;
        let pool = loaders::one(&Loaders::of(ctx)?.settings, self.0.chain.clone()).await?;
        let fallback = state
            .config
            .chain(&self.0.chain)
            .map(|c| c.min_payout)
            .unwrap_or_default();
        Ok(Amount(pool.map_or(fallback, |v| v.settings.min_payout)))
    }

    /// Its fee in percent: its own if an admin set one, else the pool's.
    async fn fee_percent(&self, ctx: &Context<'_>) -> Result<String> {
        let state = ctx.data::<AppState>()?;
        let loaders = Loaders::of(ctx)?;
        let at = self.processed(ctx).await? + 1;
        let own = loaders::one(&loaders.subscriber_fees, (self.0.chain.clone(), at)).await?;
        if let Some(own) = own.get(&self.0.identity_address) {
            return Ok(own.to_string());
        }
        let pool = loaders::one(&loaders.settings, self.0.chain.clone()).await?;
        let fallback = state
            .config
            .chain(&self.0.chain)
            .map(|c| c.fee_percent)
            .unwrap_or_default();
        Ok(pool.map_or(fallback, |v| v.settings.fee).to_string())
    }
}

/// Whether an identity meets the pool's conditions, and which it does not meet.
#[derive(SimpleObject, Debug, Clone)]
pub struct IdentityCheck {
    /// The identity's i-address (null when the daemon does not know it).
    pub identity_address: Option<String>,
    /// Its fully qualified name.
    pub name: Option<String>,
    /// Meets every condition now (true during the cooldown, with status COOLING_DOWN).
    pub eligible: bool,
    /// Its status in the pool, if it has one.
    pub status: Option<SubscriberStatus>,
    /// The conditions it does not meet, in words it can act on.
    pub unmet: Vec<String>,
}

impl From<Check> for IdentityCheck {
    fn from(c: Check) -> Self {
        IdentityCheck {
            identity_address: Some(c.identity_address),
            name: Some(c.name),
            eligible: c.eligible,
            status: c.status.map(Into::into),
            unmet: c.unmet,
        }
    }
}
