//! The CPE agent (TR-069 sections 2–3, Appendices A and B). In progress:
//! [`soap`] is the sans-IO CWMP 1.0 message codec.

pub mod soap;
