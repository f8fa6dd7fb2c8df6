//! Outgoing HTTP: every reqwest client of the crate is built here, so that rustls has its
//! crypto provider (ring, which sqlx builds already) before the first client exists.

/// Makes ring the process's TLS crypto provider. Calling it again is harmless.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder with TLS ready (https webhooks and daemon URLs).
#[allow(clippy::disallowed_methods)] // the one place that may
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}
