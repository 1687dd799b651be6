pub mod acs;
pub mod config;
pub mod files;
pub mod tls;
