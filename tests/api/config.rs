//! The example configuration goes through the real loader.

use std::path::Path;

use coinstaker::config::Config;
use coinstaker::domain::Sats;

#[test]
fn config_example_loads_through_the_real_loader() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let config = Config::load(&path, Vec::new()).expect("config.example.toml is valid");
    let chain = config.chain("vrsc").expect("the example configures VRSC");
    assert_eq!(
        chain.pool_identity.as_str(),
        "iCmV3PCebXNrR7UyQRn2DH1bEYJ58R555e"
    );
    assert_eq!(
        chain.pool_primary_address.as_str(),
        "RMmdT6f56TeAgHnokQ3CVRb1FqFCmeCpMK"
    );
    assert_eq!(chain.min_output, Sats(10_000), "0.0001 coin");
    assert_eq!(chain.conditions.min_unlock_delay, 1440);
    assert!(chain.conditions.require_separate_revoke_recover);
    assert!(
        chain.custody_warnings().is_empty(),
        "the example follows the recommendation"
    );
    assert_eq!(config.database.url.backend(), "sqlite");
}
