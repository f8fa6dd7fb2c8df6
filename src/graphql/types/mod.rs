//! GraphQL object types. They are built from store values, never from entities.

pub mod event;
pub mod page;
pub mod payment;
pub mod pool;
pub mod stake;
pub mod statement;
pub mod subscriber;

pub use event::{Event, EventKind, IdentityAlertKind};
pub use page::{
    CreditConnection, EventConnection, Page, PaymentConnection, StakeConnection,
    SubscriberConnection,
};
pub use payment::{Payment, PaymentStatus};
pub use pool::{Pool, PoolConditions};
pub use stake::{Credit, PoolStats, Stake, StakeStatus};
pub use statement::Statement;
pub use subscriber::{IdentityCheck, Subscriber, SubscriberStatus};
