//! Fault injection for crash tests: `COINSTAKER_FAULT=<point>:<height>` (or `<point>:*` for
//! any height) makes the process abort (as a `kill -9` would) when it reaches that point.
//! Unset (always, in production) it costs one read of a cached value.

use std::sync::OnceLock;

static FAULT: OnceLock<Option<(String, Option<i64>)>> = OnceLock::new();

/// Aborts the process if `COINSTAKER_FAULT` names this point and height.
pub fn point(name: &str, height: i64) {
    let fault = FAULT.get_or_init(|| {
        let spec = std::env::var("COINSTAKER_FAULT").ok()?;
        let (point, at) = spec.rsplit_once(':')?;
        let at = if at == "*" {
            None
        } else {
            Some(at.parse().ok()?)
        };
        Some((point.to_owned(), at))
    });
    if let Some((point, at)) = fault
        && point == name
        && at.is_none_or(|at| at == height)
    {
        log::error!("COINSTAKER_FAULT: aborting at {name} for height {height}");
        std::process::abort();
    }
}
