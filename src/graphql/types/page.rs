//! Pages of lists: `*Connection { pageInfo edges { cursor node } nodes }` with `*Edge`, the
//! shape of async-graphql's `Connection`, with descriptions on every type.

use async_graphql::SimpleObject;
use async_graphql::connection::PageInfo;

use super::{Credit, Event, Payment, Stake, Subscriber};

/// A page being built: items with their cursors, and whether more exist either side.
pub struct Page<T> {
    items: Vec<(String, T)>,
    has_previous: bool,
    has_next: bool,
}

/// The page of `limit` items from `rows`, which were read with `limit + 1` so that one more
/// row tells whether a next page exists; `item` gives each row's cursor and node;
/// `has_previous` when the page was asked for with `after`.
pub fn paged<R, T>(
    mut rows: Vec<R>,
    limit: u64,
    has_previous: bool,
    item: impl FnMut(R) -> (String, T),
) -> Page<T> {
    let has_next = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Page {
        items: rows.into_iter().map(item).collect(),
        has_previous,
        has_next,
    }
}

impl<T> Page<T> {
    fn page_info(&self) -> PageInfo {
        PageInfo {
            has_previous_page: self.has_previous,
            has_next_page: self.has_next,
            start_cursor: self.items.first().map(|(c, _)| c.clone()),
            end_cursor: self.items.last().map(|(c, _)| c.clone()),
        }
    }
}

macro_rules! page_types {
    ($($node:ident => $connection:ident, $edge:ident, $what:literal;)+) => {$(
        #[doc = concat!("One ", $what, " of a page, with its cursor.")]
        #[derive(SimpleObject)]
        pub struct $edge {
            #[doc = concat!("The ", $what, ".")]
            pub node: $node,
            /// Its cursor: pass it as `after` to continue after this item.
            pub cursor: String,
        }

        #[doc = concat!(
            "A page of ", $what, "s in the list's order: `edges` (each with its cursor), the ",
            "same items as `nodes`, and `pageInfo.endCursor` to pass as `after` for the next page."
        )]
        #[derive(SimpleObject)]
        pub struct $connection {
            /// Whether there are items before and after this page, and the cursors of its ends.
            pub page_info: PageInfo,
            /// The items with their cursors.
            pub edges: Vec<$edge>,
            /// The items.
            pub nodes: Vec<$node>,
        }

        impl From<Page<$node>> for $connection {
            fn from(page: Page<$node>) -> Self {
                let page_info = page.page_info();
                let nodes = page.items.iter().map(|(_, n)| n.clone()).collect();
                let edges = page
                    .items
                    .into_iter()
                    .map(|(cursor, node)| $edge { node, cursor })
                    .collect();
                $connection { page_info, edges, nodes }
            }
        }
    )+};
}

page_types! {
    Subscriber => SubscriberConnection, SubscriberEdge, "subscriber";
    Stake => StakeConnection, StakeEdge, "stake";
    Payment => PaymentConnection, PaymentEdge, "payment";
    Credit => CreditConnection, CreditEdge, "credit";
    Event => EventConnection, EventEdge, "event";
}
