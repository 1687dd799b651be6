//! The CPE agent (TR-069 sections 2–3, Appendices A and B). In progress:
//! [`soap`] is the sans-IO CWMP 1.0 message codec; [`datamodel`] the
//! InternetGatewayDevice:1.0 schema generated from the BBF XML.

pub mod connreq;
pub mod datamodel;
pub mod digest;
pub mod rpc;
pub mod session;
pub mod soap;
