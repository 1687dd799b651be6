pub mod acs;
pub mod config;
pub mod files;
pub mod load_acs;
pub mod tls;
pub mod xmldsig;

/// Run `agent` (not `--once`) on a thread; stop it with `Trigger::Stop` on
/// the sender, then join to get it back.
#[allow(dead_code)] // not every test binary uses it
pub fn run_in_background(mut agent: agent::runner::Agent) -> (std::sync::mpsc::Sender<agent::runner::Trigger>, std::thread::JoinHandle<agent::runner::Agent>) {
    let tx = agent.trigger_sender();
    let h = std::thread::spawn(move || {
        agent.run(false, 1).unwrap();
        agent
    });
    (tx, h)
}
