//! What the server says about itself: name, network, version, MOTD and the
//! optional connection password. Fixed at start-up and shared read-only by
//! every session and state replica.

/// Server identity and settings the chat core needs.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Used as the source of numerics and server notices.
    pub name: String,
    /// Advertised as NETWORK in 005 and in the welcome line.
    pub network: String,
    pub version: String,
    /// Human-readable start time for 003; fixed so replicas agree.
    pub created: String,
    /// MOTD lines; `None` answers MOTD with 422.
    pub motd: Option<Vec<String>>,
    /// Required PASS, if any.
    pub password: Option<String>,
}

impl ServerInfo {
    pub fn new(name: impl Into<String>) -> Self {
        ServerInfo {
            name: name.into(),
            network: "chatter".into(),
            version: format!("chatter-{}", env!("CARGO_PKG_VERSION")),
            created: "at start-up".into(),
            motd: None,
            password: None,
        }
    }
}
