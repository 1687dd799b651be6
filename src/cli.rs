//! Command-line definitions. Flags are documented once, here; the man
//! pages in `man/` are generated from these definitions (`make man`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Shown at the end of `--help`; the man pages carry a full EXIT STATUS
/// section (see `man.rs`).
pub const EXIT_STATUS: &str = "\
Exit status: 0 success, 1 verification failed (untrusted, unsigned, hash
mismatch), 2 usage error, 3 malformed input, 4 I/O or other runtime error,
5 package rejected by the installer (precondition, unsafe path, Reboot not last).";

#[derive(Debug, Parser)]
#[command(
    name = "cpekit",
    version,
    about = "TR-069 CPE toolchain: Annex E signed packages",
    long_about = "cpekit builds, signs, inspects and verifies TR-069 Issue 1 Annex E signed \
                  packages (\"2WIRE_SP\": header, TLV command list, detached PKCS#7 signatures, \
                  payload files).",
    after_long_help = EXIT_STATUS,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: TopCommand,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum TopCommand {
    /// Build, sign, verify, inspect, dump and extract Annex E signed packages.
    #[command(subcommand, after_long_help = EXIT_STATUS)]
    Package(PackageCommand),
    /// Install a signed package into a target tree, transactionally; or recover an interrupted install.
    #[command(after_long_help = EXIT_STATUS)]
    Install(InstallArgs),
    /// Sign, verify and inspect Annex C option vouchers (XML-Signature).
    #[command(subcommand, after_long_help = EXIT_STATUS)]
    Voucher(VoucherCommand),
    /// Run the CWMP (TR-069) CPE agent: sessions with the ACS, Connection Requests, periodic Informs.
    #[command(after_long_help = AGENT_HELP, args_conflicts_with_subcommands = true)]
    Agent(AgentArgs),
    /// Write the man pages for every subcommand into DIR.
    #[command(hide = true, name = "generate-man")]
    GenerateMan { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Build a package from a manifest or a directory, optionally signing it.
    #[command(after_long_help = BUILD_HELP)]
    Build(BuildArgs),
    /// Add a signature; only the signature block changes, existing signatures stay valid.
    #[command(after_long_help = EXIT_STATUS)]
    Sign(SignArgs),
    /// Verify signatures against trust anchors and every payload hash.
    #[command(after_long_help = EXIT_STATUS)]
    Verify(VerifyArgs),
    /// Show the header, commands and signers.
    #[command(after_long_help = EXIT_STATUS)]
    Inspect(InspectArgs),
    /// Annotated offsets and hex of every field.
    #[command(after_long_help = EXIT_STATUS)]
    Dump(DumpArgs),
    /// Write the payload files into a directory; nothing is executed.
    #[command(after_long_help = EXIT_STATUS)]
    Extract(ExtractArgs),
}

const BUILD_HELP: &str = concat!(
    "MANIFEST FORMAT (TOML; paths in `source` are relative to the manifest):\n",
    include_str!("manifest-format.txt"),
    "\nExit status: 0 built; 2 usage error; 3 bad manifest, key or certificate; 4 I/O error."
);

/// The manifest format, also rendered into the `build` man page.
pub const MANIFEST_FORMAT: &str = include_str!("manifest-format.txt");

#[derive(Debug, Args)]
pub struct SignerArgs {
    /// Signer private key (PEM, PKCS#8 or PKCS#1). Repeat with --cert for several signers.
    #[arg(long = "key", value_name = "KEY.pem")]
    pub keys: Vec<PathBuf>,
    /// Signer certificate (PEM), paired in order with --key.
    #[arg(long = "cert", value_name = "CERT.pem")]
    pub certs: Vec<PathBuf>,
    /// Intermediate certificates (PEM, one or more) to include in the signature block.
    #[arg(long, value_name = "PEM")]
    pub chain: Option<PathBuf>,
    /// Sign without PKCS#9 signed attributes (RSA signature directly over header+command list).
    #[arg(long)]
    pub no_signed_attributes: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// TOML manifest describing every command (see MANIFEST FORMAT).
    #[arg(long, value_name = "FILE.toml", conflicts_with = "from_dir", required_unless_present = "from_dir")]
    pub manifest: Option<PathBuf>,
    /// Emit one Extract File per regular file under DIR.
    #[arg(long, value_name = "DIR")]
    pub from_dir: Option<PathBuf>,
    /// Install prefix for --from-dir paths.
    #[arg(long, default_value = "/", requires = "from_dir")]
    pub prefix: String,
    /// Output package file.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    #[command(flatten)]
    pub signers: SignerArgs,
    /// Version command text (E.4.6).
    #[arg(long = "version", value_name = "S")]
    pub pkg_version: Option<String>,
    /// Description command text (E.4.6).
    #[arg(long, value_name = "S")]
    pub description: Option<String>,
    /// Append a Reboot command (E.4.8).
    #[arg(long)]
    pub reboot: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Package to sign.
    pub package: PathBuf,
    /// Signer private key (PEM).
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,
    /// Signer certificate (PEM).
    #[arg(long, value_name = "CERT.pem")]
    pub cert: PathBuf,
    /// Intermediate certificates (PEM) to include.
    #[arg(long, value_name = "PEM")]
    pub chain: Option<PathBuf>,
    /// Sign without signed attributes.
    #[arg(long)]
    pub no_signed_attributes: bool,
    /// Output file (default: rewrite PKG in place, atomically).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Package to verify.
    pub package: PathBuf,
    /// Trust anchor certificates (PEM; a file may hold several). Repeatable.
    #[arg(long, value_name = "CA.pem", required = true, num_args = 1..)]
    pub trust: Vec<PathBuf>,
    /// Do not check certificate validity dates.
    #[arg(long)]
    pub ignore_time: bool,
    /// Machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Package to inspect (only header, commands and signatures are read).
    pub package: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Package to dump.
    pub package: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Package to extract.
    pub package: PathBuf,
    /// Destination directory (created if missing). Package paths are kept inside it.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Package to install (required unless --recover).
    #[arg(required_unless_present = "recover", conflicts_with = "recover")]
    pub package: Option<PathBuf>,
    /// Target tree; package paths are taken relative to it.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Trust anchor certificates (PEM). Repeatable.
    #[arg(long, value_name = "CA.pem", num_args = 1..)]
    pub trust: Vec<PathBuf>,
    /// The device's current software version, for Minimum/Maximum Version (E.4.10).
    #[arg(long, value_name = "VERSION")]
    pub current_version: Option<String>,
    /// Journal, staging and backups (same filesystem as --root, outside it).
    /// Default: ROOT/../.NAME.cpekit-state
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print the plan (each command and its effect on this tree); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
    /// Accept a package with no signers (a package whose signers fail is never accepted).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Do not check certificate validity dates.
    #[arg(long)]
    pub ignore_time: bool,
    /// Available non-volatile storage in bytes (default: free space of the root's filesystem).
    #[arg(long, value_name = "BYTES")]
    pub nonvolatile_storage: Option<u64>,
    /// Available volatile storage in bytes (default: MemAvailable).
    #[arg(long, value_name = "BYTES")]
    pub volatile_storage: Option<u64>,
    /// Device attribute for Required Attributes (E.4.13), as ENTITY:CLASS=VALUE
    /// (numbers, 0x for hex). Repeatable.
    #[arg(long = "attribute", value_name = "ENTITY:CLASS=VALUE")]
    pub attributes: Vec<String>,
    /// Bring an interrupted install to the complete old or new tree.
    #[arg(long)]
    pub recover: bool,
}

#[derive(Debug, Subcommand)]
pub enum VoucherCommand {
    /// Sign one or more Options (TOML) into a voucher.
    #[command(after_long_help = VOUCHER_OPTIONS_HELP)]
    Sign(VoucherSignArgs),
    /// Verify a voucher (XML or Base64) for this device.
    #[command(after_long_help = EXIT_STATUS)]
    Verify(VoucherVerifyArgs),
    /// Show a voucher's Options and signer without verifying it.
    #[command(after_long_help = EXIT_STATUS)]
    Inspect(VoucherInspectArgs),
}

const VOUCHER_OPTIONS_HELP: &str = "\
OPTIONS FILE (TOML), one [[option]] per Option (Table 62):

  [[option]]
  vserial_num = \"987654321\"       # unique per voucher
  option_ident = \"VoIP\"
  option_desc = \"Voice service\"
  start_date = \"2026-01-01T00:00:00Z\"   # optional; also 20260101T00:00:00
  duration = 12                    # required for EnableWithExpiration
  duration_units = \"Months\"        # Days or Months
  mode = \"EnableWithExpiration\"    # Disable, EnableWithExpiration, EnableWithoutExpiration
  transferable = false
  [option.device_id]               # Table 63
  manufacturer = \"Acme\"
  oui = \"00D09E\"
  product_class = \"Gateway\"
  serial_number = \"123456789\"

Exit status: 0 success, 1 verification failed, 2 usage error, 3 malformed input, 4 I/O error.";

#[derive(Debug, Args)]
pub struct VoucherSignArgs {
    /// Signer private key (PEM, RSA).
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,
    /// Signer certificate (PEM).
    #[arg(long, value_name = "CERT.pem")]
    pub cert: PathBuf,
    /// Intermediate certificates (PEM) to include in KeyInfo.
    #[arg(long, value_name = "PEM")]
    pub chain: Option<PathBuf>,
    /// The Options to grant (see OPTIONS FILE).
    #[arg(long, value_name = "FILE.toml")]
    pub options: PathBuf,
    /// Output file.
    #[arg(short, long, value_name = "OUT.xml")]
    pub output: PathBuf,
    /// Write the SetVouchers wire form (Base64 of the XML).
    #[arg(long)]
    pub base64: bool,
    /// Sign with RSA-SHA256 instead of the default RSA-SHA1.
    #[arg(long)]
    pub sha256: bool,
}

#[derive(Debug, Args)]
pub struct VoucherVerifyArgs {
    /// Voucher file (XML or Base64).
    pub file: PathBuf,
    /// Trust anchor certificates (PEM). Repeatable.
    #[arg(long, value_name = "CA.pem", required = true, num_args = 1..)]
    pub trust: Vec<PathBuf>,
    /// This device's OUI (Table 63).
    #[arg(long)]
    pub oui: String,
    /// This device's ProductClass.
    #[arg(long)]
    pub product_class: String,
    /// This device's SerialNumber.
    #[arg(long)]
    pub serial: String,
    /// Evaluate certificate validity and Option expiry at this time (RFC 3339; default now).
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VoucherInspectArgs {
    /// Voucher file (XML or Base64).
    pub file: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

const AGENT_HELP: &str = "\
CONFIG FILE (TOML; relative paths are relative to the file):

  [acs]
  url = \"https://acs.example.net:7547/\"   # initial ManagementServer.URL (3.1)
  username = \"00D09E-CPE0001\"             # HTTP Basic/Digest credentials (3.4.4)
  password = \"secret\"
  ca_file = \"acs-ca.pem\"                  # optional HTTPS trust anchors (default: webpki roots)

  [device]                                # DeviceIdStruct (Table 34), DeviceInfo.*
  manufacturer = \"cpekit\"
  oui = \"00D09E\"                          # six upper-case hex digits
  product_class = \"Gateway\"
  serial_number = \"CPE0001\"
  hardware_version = \"1.0\"
  software_version = \"3.0.21\"

  [agent]
  state_dir = \"/var/lib/cpekit\"           # parameters.json, agent.json, transfers.json,
                                          # options.json (atomic writes)
  install_root = \"/\"                      # where Download packages install
                                          # (installer state: state_dir/install)
  connection_request = \"0.0.0.0:7548\"     # Connection Request server (3.2.2); omit to disable
  connection_request_host = \"192.0.2.10\"  # host advertised in ConnectionRequestURL
  periodic_inform_interval = 86400        # initial PeriodicInformInterval; enables them
  max_envelopes = 1                       # MaxEnvelopes announced in the Inform
  retry_base_seconds = 5                  # A.5.3 back-off: 5, 10, 20, ... s
  retry_max_seconds = 2560
  response_timeout_seconds = 30           # 3.7.1.4 (not less than 30 s in the field)
  poll_interval_ms = 1000                 # how often externally changed values are looked for
  connection_request_limit = 10           # accepted Connection Requests per window
  connection_request_window_seconds = 60
  lan_address = \"192.168.1.1:8080\"        # LAN web server (Appendix D): KickURL /kick,
                                          # DownloadProgressURL /progress; omit to disable
  lan_host = \"gateway.lan\"                # host advertised in KickURL (default: the listen IP)
  kick_limit_per_hour = 10                # D.4: most Kicked calls per hour
  kick_timeout_seconds = 60               # how long a kicked browser waits for the ACS
  reboot_command = [\"/sbin/reboot\"]      # Reboot (A.3.2.9), packages needing one;
                                          # absent: logged only
  factory_reset_command = [\"/usr/lib/cpekit/factory-reset\"]
                                          # FactoryReset hook; then the state is wiped
  vendor_config_command = [\"/usr/lib/cpekit/apply-config\"]
                                          # Download FileType 3: the file is appended
  upload_config_file = \"/etc/device.conf\" # Upload FileType 1 (default: the tree as JSON)
  upload_log_file = \"/var/log/messages\"   # Upload FileType 2
  transfer_ca_file = \"files-ca.pem\"       # HTTPS file servers (default: [acs] ca_file)
  transfer_stall_timeout_seconds = 300    # give a download up after this long without data
  upload_method = \"PUT\"                   # Upload (A.4.1.5): \"PUT\" (default) or \"POST\"

  [trust]
  packages = [\"ca.pem\"]                  # Download FileType 1/2 packages must chain
                                          # to one of these (E.5)
  vouchers = [\"ca.pem\"]

The first start reports 0 BOOTSTRAP, later starts 1 BOOT. Logs go to stderr
(RUST_LOG=debug for more).

Exit status: 0 success (--once: nothing left pending), 2 usage error,
3 malformed config, 4 runtime error (--once: the ACS could not be reached
after the retries, state directory not writable, port in use).";

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    /// Agent configuration file (see CONFIG FILE).
    #[arg(long, value_name = "agent.toml")]
    pub config: Option<PathBuf>,
    /// Run sessions until nothing is pending, then exit.
    #[arg(long)]
    pub once: bool,
    /// With --once: give up after this many consecutive failed sessions.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_attempts: u32,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Change a parameter locally (an external cause: may trigger an active notification).
    Set(AgentSetArgs),
    /// Ask the ACS for a file download (RequestDownload, TR-069 A.4.2.2): spooled, sent in the next session, which it starts.
    RequestDownload(AgentRequestDownloadArgs),
    /// Run N simulated CPEs (serials <serial_number>-00001...) in one process against one ACS, for load tests.
    #[command(long_about = SIMULATE_HELP)]
    Simulate(AgentSimulateArgs),
}

#[derive(Debug, Args)]
pub struct AgentRequestDownloadArgs {
    /// Agent configuration file.
    #[arg(long, value_name = "agent.toml")]
    pub config: PathBuf,
    /// FileType (Table 27): "1 Firmware Upgrade Image", "2 Web Content", "3 Vendor Configuration File" or "X <OUI> <name>".
    #[arg(long, value_name = "TYPE")]
    pub file_type: String,
    /// A FileTypeArg (Table 57), e.g. --arg Version=2.1 for "2 Web Content"; repeatable, at most 16.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
}

const SIMULATE_HELP: &str = "\
Run N simulated CPEs in one process against one ACS, for ACS load tests.

Event-driven: one thread runs every simulated CPE (non-blocking sockets),
each one still running the agent's own session engine, SOAP codec, Inform,
parameter RPCs and HTTP Digest code. Serial numbers are
<serial_number>-NNNNN; \"{serial}\" in [acs] username/password is replaced
by each CPE's serial. All CPEs share one immutable parameter tree and keep
only what the ACS changed. State is in memory unless --state-dir is given
(<DIR>/sim/<serial>/, written in batches with one file-system sync per
second; a later run then informs 1 BOOT, not 0 BOOTSTRAP).

With [agent] connection_request, one Connection Request listener serves
all CPEs: each ConnectionRequestURL is http://<host>:<port>/cr/<serial>/
<random>, authenticated with Digest against the CPE's
ConnectionRequestUsername/Password.

Start-up is spread over --ramp (default: the periodic interval, or 10 s)
with random jitter. --shard I/N runs the I-th of N disjoint ranges of the
--count identities (one process per shard, on one host or several);
`agent simulate report *.json` merges the shards' --json summaries.
A summary line goes to stderr every --report-every seconds (sessions/s
achieved vs planned, informs, p50/p99 session latency, CPU, RSS); the final
summary goes to stderr, or to stdout as JSON with --json. Stops after
--duration, or on SIGINT/SIGTERM (sessions in flight are finished).
A CPE the ACS sends Download, Upload, Reboot, FactoryReset,
ScheduleInform, GetQueuedTransfers, SetVouchers or GetOptions gets the
agent's own transfer and voucher code, with its state under the config's
<state_dir>/sim/<serial>/. Not simulated: HTTPS, kicks.";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AgentSimulateArgs {
    #[command(subcommand)]
    pub command: Option<SimulateCommand>,
    /// Agent configuration file (the base identity).
    #[arg(long, value_name = "agent.toml", required = true)]
    pub config: Option<PathBuf>,
    /// Number of simulated CPEs (in all shards together).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), required = true)]
    pub count: Option<u32>,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Spread the start-up over this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub ramp: Option<f64>,
    /// Seconds between summary lines on stderr.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub report_every: f64,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Keep the CPEs' state under DIR/sim/<serial>/ (default: in memory only).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Run only the I-th of N disjoint ranges of the identities.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<agent::simulate::Shard>,
    /// Most sessions in flight at once (one socket each).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_sessions: usize,
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Merge the --json summaries of the shards of one load test and print the total.
    Report(SimulateReportArgs),
}

#[derive(Debug, Args)]
pub struct SimulateReportArgs {
    /// The shards' summaries (`agent simulate --shard I/N --json > FILE`).
    #[arg(value_name = "SUMMARY.json", required = true)]
    pub summaries: Vec<PathBuf>,
    /// Print the merged summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AgentSetArgs {
    /// Agent configuration file.
    #[arg(long, value_name = "agent.toml")]
    pub config: PathBuf,
    /// Full parameter name, e.g. InternetGatewayDevice.DeviceInfo.ProvisioningCode.
    pub name: String,
    /// New value.
    pub value: String,
}
