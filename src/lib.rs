//! shaddock: a push gateway that speaks NetEase Pomelo's hybrid protocol.
//!
//! The crate is laid out as DESIGN §3 describes: [`protocol`] holds sans-IO codecs, [`config`] the
//! daemon's configuration.

pub mod config;
pub mod protocol;
