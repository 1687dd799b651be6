//! The CPE agent (TR-069 sections 2–3, Appendices A and B):
//!
//! * [`soap`] — the sans-IO CWMP 1.0 message codec (3.5, Appendix A);
//! * [`datamodel`] — the InternetGatewayDevice:1.0 schema generated from the
//!   BBF XML, the parameter tree and its value hooks;
//! * [`rpc`] — the CPE side of the parameter RPCs;
//! * [`session`] — one transaction session as a sans-IO state machine (3.7);
//! * [`http`] / [`digest`] / [`auth`] — the HTTP client side of a session,
//!   HTTP authentication (3.4) and the authenticated request both the
//!   session and the transfer clients make;
//! * [`connreq`] — the Connection Request server (3.2.2);
//! * [`http_head`] — the bounded HTTP request-head parser both servers use;
//! * [`tcp_server`] — the accept loop, connection cap and clean close shared
//!   by the Connection Request and LAN servers;
//! * [`lan`] — the LAN web server: KickURL and DownloadProgressURL (Appendix D);
//! * [`cpe_requests`] — the CPE's Kicked and RequestDownload calls (A.4.2);
//! * [`transfer`] — Download/Upload, TransferComplete, GetQueuedTransfers
//!   (A.3.2.8, A.4.1.5, A.3.3.2, A.4.1.1) and their persisted queue;
//! * [`device_actions`] — Reboot, FactoryReset and ScheduleInform (A.3.2.9,
//!   A.4.1.6, A.4.1.2), carried out after the session;
//! * [`device_command`] — the configured vendor handler, reboot and factory
//!   reset commands, run with a deadline;
//! * [`options`] — SetVouchers / GetOptions and EnabledOptions (A.4.1.3–A.4.1.4, Appendix C);
//! * [`runner`] — the main loop: when sessions happen, back-off, persistence;
//! * [`simulate`] — many CPE identities in one process (ACS load tests);
//! * [`config`], [`state`] — the config file and the persisted agent state.

pub mod auth;
pub mod config;
pub mod connreq;
pub mod cpe_requests;
pub mod datamodel;
pub mod device_actions;
pub mod device_command;
pub mod digest;
pub mod http;
pub mod http_head;
pub mod lan;
pub mod options;
pub mod progress;
pub mod rpc;
pub mod runner;
pub mod session;
pub mod simulate;
pub mod soap;
pub mod state;
pub mod tcp_server;
pub mod transfer;

#[cfg(test)]
pub(crate) mod test_log;
