//! Cold chain on the hub: logger imports, the authoritative alarm record,
//! and the technician screens.

pub use rxedge_shared::berlinger;
pub mod history;
pub mod import;
pub mod service;
pub mod web;
