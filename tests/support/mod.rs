pub mod acs;
