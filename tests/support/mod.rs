pub mod acs;
pub mod files;
