pub mod acs;
pub mod files;
pub mod tls;
