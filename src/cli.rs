//! Command-line definitions. Flags are documented once, here; the man
//! pages in `man/` are generated from these definitions (`make man`).
//!
//! Flags that several commands share are defined once, in a group that
//! those commands flatten: [`TrustArgs`], [`OutputArgs`], [`SignerArgs`]
//! (and [`PackageSignerArgs`]), [`AgentConfigArgs`]. A command that needs a
//! group's flag to behave differently (optional, repeatable) adjusts it with
//! `mut_arg` where it flattens the group, rather than declaring it again.

use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Args, Parser, Subcommand};

/// Shown at the end of `--help`; the man pages carry a full EXIT STATUS
/// section. The codes come from `exit::status` (a unit test there checks
/// that this text and the per-command summaries agree).
pub const EXIT_STATUS: &str = "\
Exit status: 0 success, 1 verification failed (untrusted, unsigned, hash
mismatch), 2 usage error, 3 malformed input, 4 I/O or other runtime error,
5 package rejected by the installer (precondition, unsafe path, Reboot not last).";

#[derive(Debug, Parser)]
#[command(
    name = "cpekit",
    version,
    about = "TR-069 CPE toolchain: signed packages, vouchers, CWMP agent",
    long_about = "cpekit is a toolchain and device agent for the TR-069 Issue 1 CPE WAN Management \
                  Protocol. It builds, signs, inspects and verifies Annex E signed packages \
                  (\"2WIRE_SP\": header, TLV command list, detached PKCS#7 signatures, payload \
                  files) and installs them into a target tree transactionally; signs, verifies and \
                  inspects Annex C option vouchers (XML-Signature); and runs the CWMP CPE agent \
                  (sessions with the ACS, Connection Requests, periodic Informs, transfers), or many \
                  simulated agents for ACS load tests.",
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
    #[command(after_long_help = AGENT_HELP, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Agent(AgentArgs),
    /// Print a shell completion script (bash, zsh, fish) on stdout.
    #[command(after_long_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell to complete for.
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
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
    #[command(after_long_help = EXIT_STATUS, long_about = concat!(
        "Verify signatures against trust anchors and every payload hash.\n\n",
        "Each signer is checked over the header and command list and its certificate path to a --trust anchor; \
         the package is trusted when at least one signer validates (E.5). Every path is checked as the installer \
         takes it (relative to the root; no `..`, NUL or the root itself; at most 4095 bytes, Linux PATH_MAX; \
         no component over 255 bytes, Linux NAME_MAX; at most 256 levels; symlink targets inside the root): a \
         package with a path no CPE accepts is malformed input (exit 3), and the report names the command index \
         and the rule. For a 2Wire package every signer is \
         reported with why it is or is not trusted, with its key size, its certificate's signature algorithm and \
         expiry; each FILE and SCRIPT digest is checked over what the notes say it covers.\n\n",
        include_str!("dialect-help.txt")))]
    Verify(VerifyArgs),
    /// Show the header, commands and signers.
    #[command(after_long_help = EXIT_STATUS, long_about = concat!(
        "Show the header, commands and signers.\n\n",
        "For a 2Wire package: the header's command-list length word beside the length derived by walking the \
         records, every record with its offset, the notes' name and confidence, the signers, the payload items \
         (a FILE whose data is itself a package is listed as one; --recursive descends into it) and any trailing \
         PEM certificates.\n\n",
        include_str!("dialect-help.txt")))]
    Inspect(InspectArgs),
    /// Annotated offsets and hex of every field.
    #[command(after_long_help = EXIT_STATUS, long_about = concat!(
        "Annotated offsets and hex of every field.\n\n",
        "For a 2Wire package the offsets are those of the package after its bzip2 wrapper, if it has one; \
         fields of FILE and SCRIPT records are annotated, records of unknown layout shown as labelled hex.\n\n",
        include_str!("dialect-help.txt")))]
    Dump(DumpArgs),
    /// Write the payload files into a directory; nothing is executed.
    #[command(after_long_help = EXIT_STATUS, long_about = concat!(
        "Write the payload files into a directory; nothing is executed.\n\n",
        "An Annex E package is staged in a temporary directory beside DIR and nothing in DIR changes until every \
         payload digest matched and the payload ended exactly at its declared length (truncated or trailing bytes \
         are refused, exit 1); the temporary directory is removed on any failure and on SIGINT/SIGTERM. Paths are \
         created without following a symlink. For a 2Wire package every file is written only once its digest \
         matched: FILE bodies at their paths \
         (type 47 decoded and written as a sparse file, holes left unwritten; a type 3 FILE only if its path is \
         not already written), SCRIPT bodies into _scripts/NN-name (never executed), and manifest.json \
         describing every record and what became of it, so that two releases' trees can be diffed.\n\n",
        include_str!("dialect-help.txt")))]
    Extract(ExtractArgs),
}

pub const BUILD_HELP: &str = concat!(
    "MANIFEST FORMAT (TOML; paths in `source` are relative to the manifest):\n",
    include_str!("manifest-format.txt"),
    "\nExit status: 0 built; 2 usage error; 3 bad manifest, key or certificate; 4 I/O error."
);

const COMPLETIONS_HELP: &str = "\
Load them for the current shell:
  bash: source <(cpekit completions bash)
  zsh:  cpekit completions zsh > ~/.zfunc/_cpekit   (with ~/.zfunc on $fpath)
  fish: cpekit completions fish | source
`make install PREFIX=...` installs them where each shell looks.";

/// The manifest format, also rendered into the `build` man page.
pub const MANIFEST_FORMAT: &str = include_str!("manifest-format.txt");

// Shared argument groups.

/// Trust anchors (`package verify`, `install`, `voucher verify`). Required;
/// `install` relaxes it (`--recover` and `--allow-unsigned` need none).
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Trust anchor certificates (PEM; a file may hold several). Repeatable.
    #[arg(long, value_name = "CA.pem", required = true, num_args = 1..)]
    pub trust: Vec<PathBuf>,
}

/// How signer certificates are checked (`package verify`, `install`).
#[derive(Debug, Args)]
pub struct CertCheckArgs {
    /// Do not check certificate validity dates.
    #[arg(long)]
    pub ignore_time: bool,
    /// Accept a signer certificate whose extendedKeyUsage allows neither
    /// codeSigning nor anyExtendedKeyUsage (legacy trust stores, e.g. a
    /// signer with only serverAuth). Without it such a signer is not trusted
    /// (RFC 5280 4.2.1.12); a signer without extendedKeyUsage is accepted
    /// either way.
    #[arg(long)]
    pub allow_legacy_eku: bool,
}

impl CertCheckArgs {
    /// The signature verification options these flags select.
    pub fn verify_options(&self) -> pkgfmt::signature::VerifyOptions {
        pkgfmt::signature::VerifyOptions { ignore_time: self.ignore_time, now: None, allow_legacy_eku: self.allow_legacy_eku }
    }
}

/// Output format. A command that flattens this group reports its failures
/// on stdout too, as a JSON object, when `--json` is given ([`wants_json`]).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Machine-readable output: JSON on stdout; a failure too, as {"ok": false, "error", "exit_code"}.
    #[arg(long)]
    pub json: bool,
}

impl OutputArgs {
    /// The id of `--json` in the parsed matches.
    const JSON: &'static str = "json";
}

/// Whether the parsed command line asked for JSON output: the command run
/// (the innermost subcommand) flattens [`OutputArgs`] and `--json` is set.
pub fn wants_json(matches: &ArgMatches) -> bool {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    matches!(m.try_get_one::<bool>(OutputArgs::JSON), Ok(Some(true)))
}

/// A signer: private key, certificate and chain (`package build`, `package
/// sign`, `voucher sign`). One --key/--cert pair, required; `package build`
/// takes any number of pairs, none included ([`any_number_of_signers`]).
#[derive(Debug, Args)]
pub struct SignerArgs {
    /// Signer private key (RSA): PEM or DER, PKCS#8 or PKCS#1, encrypted PKCS#8 or legacy encrypted PEM (with --pass);
    /// or a key in a PKCS#11 token, as an RFC 7512 URI: 'pkcs11:token=LABEL;object=LABEL[?module-path=M&pin-value=PIN]'
    /// (`package build` and `package sign`). Paired in order with --cert; `package build` takes one pair per signer.
    #[arg(long = "key", value_name = "KEY", required = true, action = ArgAction::Set)]
    pub keys: Vec<PathBuf>,
    /// Signer certificate (PEM or DER), paired in order with --key. A warning is printed when it is expired or not yet valid.
    #[arg(long = "cert", value_name = "CERT", required = true, action = ArgAction::Set)]
    pub certs: Vec<PathBuf>,
    /// Intermediate certificates (PEM, one or more; or one DER) to include with the signature.
    #[arg(long, value_name = "PEM")]
    pub chain: Option<PathBuf>,
    /// Passphrase of an encrypted key (or a token's PIN), in openssl's forms: pass:TEXT, env:VAR, file:PATH, fd:N (first
    /// line), stdin.
    #[arg(long, value_name = "SOURCE")]
    pub pass: Option<String>,
    /// PKCS#11 module for pkcs11: keys without module-path= (default: $CPEKIT_PKCS11_MODULE).
    #[arg(long, value_name = "MODULE.so")]
    pub pkcs11_module: Option<PathBuf>,
}

impl SignerArgs {
    /// The --key/--cert pairs, in order. Counts that differ are a usage error.
    pub fn pairs(&self) -> anyhow::Result<Vec<(&Path, &Path)>> {
        if self.keys.len() != self.certs.len() {
            return Err(crate::exit::usage(format!("--key given {} times but --cert {} times: they pair up in order", self.keys.len(), self.certs.len())));
        }
        Ok(self.keys.iter().map(PathBuf::as_path).zip(self.certs.iter().map(PathBuf::as_path)).collect())
    }
}

/// `mut_args` for a command that takes any number of signers, none
/// included: [`SignerArgs`]' --key and --cert become optional and repeatable.
fn any_number_of_signers(a: Arg) -> Arg {
    match a.get_id().as_str() {
        "keys" | "certs" => a.required(false).action(ArgAction::Append),
        _ => a,
    }
}

/// A package signer (`package build`, `package sign`): [`SignerArgs`] and
/// how the PKCS#7 signature is made.
#[derive(Debug, Args)]
pub struct PackageSignerArgs {
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Sign without PKCS#9 signed attributes (RSA signature directly over header+command list).
    #[arg(long)]
    pub no_signed_attributes: bool,
}

/// The format a read-only command reads a package as (`package inspect`,
/// `dump`, `verify`, `extract`). `install` and the agent always read Annex E.
#[derive(Debug, Args)]
pub struct DialectArgs {
    /// How to read the package: auto (Annex E when it conforms, else the 2Wire .pkgstream dialect when it
    /// matches; the output says which), annex-e (strictly), 2wire (the dialect's lenient reader).
    #[arg(long, value_enum, value_name = "DIALECT", default_value_t = DialectChoice::Auto)]
    pub dialect: DialectChoice,
}

/// `--dialect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DialectChoice {
    Auto,
    AnnexE,
    #[value(name = "2wire")]
    TwoWire,
}

/// The agent configuration file (`agent` and its subcommands).
#[derive(Debug, Args)]
pub struct AgentConfigArgs {
    /// Agent configuration file (see CONFIG FILE in cpekit-agent(1)).
    #[arg(long, value_name = "agent.toml", required = true)]
    pub config: PathBuf,
}

// Commands.

#[derive(Debug, Args)]
#[command(mut_args(any_number_of_signers))]
pub struct BuildArgs {
    /// TOML manifest describing every command (see MANIFEST FORMAT).
    #[arg(long, value_name = "FILE.toml", conflicts_with = "from_dir", required_unless_present = "from_dir")]
    pub manifest: Option<PathBuf>,
    /// Package the tree under DIR, sorted: an Extract File per regular file, a Filesystem Entry per
    /// directory and symlink, each with its mode, uid and gid. FIFOs and devices are refused.
    #[arg(long, value_name = "DIR")]
    pub from_dir: Option<PathBuf>,
    /// Install prefix for --from-dir paths.
    #[arg(long, default_value = "/", requires = "from_dir")]
    pub prefix: String,
    /// Record every --from-dir entry as owned by 0:0 (root), as image builders do, whoever owns the tree.
    #[arg(long, requires = "from_dir")]
    pub normalize_owners: bool,
    /// Output package file.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    #[command(flatten)]
    pub signers: PackageSignerArgs,
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
#[command(mut_args(signer_unless_remove))]
pub struct SignArgs {
    /// Package to sign.
    pub package: PathBuf,
    #[command(flatten)]
    pub signer: PackageSignerArgs,
    /// Output file. Default: rewrite PKG in place, keeping its mode, owner and hard links.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Add a signer even if one with the same certificate (issuer and serial) already signed.
    #[arg(long)]
    pub allow_duplicate: bool,
    /// Remove a signature instead of adding one: its index (0 is the first, as `inspect` lists them) or its
    /// signer's subject (or a unique part of it).
    #[arg(long, value_name = "SIGNER", conflicts_with_all = ["keys", "certs", "chain", "allow_duplicate", "no_signed_attributes"])]
    pub remove: Option<String>,
}

/// `mut_args` for `package sign`: --key and --cert are required unless --remove.
fn signer_unless_remove(a: Arg) -> Arg {
    match a.get_id().as_str() {
        "keys" | "certs" => a.required(false).required_unless_present("remove"),
        _ => a,
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Package to verify.
    pub package: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub checks: CertCheckArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub dialect: DialectArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Package to inspect (only header, commands and signatures are read; for a 2Wire package also the
    /// first octets of each payload item and what follows the payload).
    pub package: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub dialect: DialectArgs,
    /// 2Wire packages: also inspect every FILE whose data is itself a package (at most 4 levels deep).
    #[arg(long)]
    pub recursive: bool,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Package to dump.
    pub package: PathBuf,
    #[command(flatten)]
    pub dialect: DialectArgs,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Package to extract.
    pub package: PathBuf,
    #[command(flatten)]
    pub dialect: DialectArgs,
    /// Destination directory (created if missing). Package paths are kept inside it.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
#[command(mut_arg("trust", |a| a.required(false)))]
pub struct InstallArgs {
    /// Package to install (required unless --recover).
    #[arg(required_unless_present = "recover", conflicts_with = "recover")]
    pub package: Option<PathBuf>,
    /// Target tree; package paths are taken relative to it.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
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
    #[command(flatten)]
    pub output: OutputArgs,
    /// Accept a package with no signers (a package whose signers fail is never accepted).
    #[arg(long)]
    pub allow_unsigned: bool,
    #[command(flatten)]
    pub checks: CertCheckArgs,
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
    /// Bring an interrupted install to the complete old or new tree. A journal that does not parse, or names a
    /// path outside the root or a file outside the state directory's transaction, is refused (exit 3) and
    /// nothing is changed.
    #[arg(long)]
    pub recover: bool,
}

#[derive(Debug, Subcommand)]
pub enum VoucherCommand {
    /// Sign one or more Options (TOML) into a voucher (by the cpekit-xmldsig helper beside cpekit).
    #[command(after_long_help = VOUCHER_OPTIONS_HELP)]
    Sign(VoucherSignArgs),
    /// Verify a voucher (XML or Base64) for this device (by the cpekit-xmldsig helper beside cpekit).
    #[command(after_long_help = EXIT_STATUS)]
    Verify(VoucherVerifyArgs),
    /// Show a voucher's Options and signer without verifying it.
    #[command(after_long_help = EXIT_STATUS)]
    Inspect(VoucherInspectArgs),
}

pub const VOUCHER_OPTIONS_HELP: &str = "\
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
    #[command(flatten)]
    pub signer: SignerArgs,
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
    #[command(flatten)]
    pub trust: TrustArgs,
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
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct VoucherInspectArgs {
    /// Voucher file (XML or Base64).
    pub file: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub const AGENT_HELP: &str = concat!(
    "CONFIG FILE (TOML; relative paths are relative to the file). The shipped example,\n",
    "examples/agent.toml (/etc/cpekit/agent.toml after `make install`), sets every key:\n\n",
    include_str!("../examples/agent.toml"),
    "
VOUCHERS (SetVouchers, Appendix C): the XML signatures are checked by cpekit-xmldsig,
a helper process run once per SetVouchers ([trust] voucher_helper; default
$CPEKIT_XMLDSIG, else cpekit-xmldsig beside cpekit, where `make install` puts it),
with a deadline, bounded output and no new privileges, as [trust]
voucher_helper_user when set (an agent running as root). The agent itself never
maps libxmlsec1, libxml2 or ICU. A helper that cannot run: 9002 Internal error.

LINUX BACKEND ([device] backend = \"linux\"): values from the machine.

  DeviceInfo.UpTime                /proc/uptime
  DeviceInfo.DeviceLog             last 32 KiB of [device] device_log
  DeviceInfo.Hardware/SoftwareVersion  [device] keys; when empty the device-tree
                                   model, DMI product name or machine type, and
                                   /etc/os-release VERSION_ID (set at start)
  Time.CurrentLocalTime, LocalTimeZone, LocalTimeZoneName
                                   system clock and zone (TZ, /etc/timezone)
  LANDevice.1.LANEthernetInterfaceConfig.N   N-th of lan_interfaces: Enable (IFF_UP),
                                   Status, MACAddress, MaxBitRate, DuplexMode,
                                   Stats.* from /sys/class/net/IF/statistics
  LANDevice.1.LANHostConfigManagement.IPInterface.1   first LAN interface's
                                   IPv4 address and mask, Enable
  LANDevice.1.Hosts.Host.N         complete IPv4 neighbours (/proc/net/arp) on
                                   the LAN interfaces: IPAddress, MACAddress,
                                   Active, InterfaceType
  WANDevice.1.WANCommonInterfaceConfig   WANAccessType Ethernet, PhysicalLinkStatus,
                                   Layer1 rates, Total* counters of wan_interface
  WANDevice.1.WANEthernetInterfaceConfig  as a LAN interface
  WANDevice.1.WANConnectionDevice.1.WANIPConnection.1   Enable, ConnectionStatus,
                                   ExternalIPAddress, SubnetMask, DefaultGateway
                                   (/proc/net/route), DNSServers (/etc/resolv.conf),
                                   MACAddress, ConnectionType IP_Routed, Name

  Everything else keeps its stored value (default or last set): e.g. HostName,
  AddressSource, LeaseTimeRemaining, DHCP server settings, NTP servers, WLAN.
  Counters are reported modulo 2^32 (unsignedInt). Writing a value the machine
  supplies is refused (9001); other writable values are stored. The instances
  of LANDevice.1 and WANDevice.1 are the machine's: AddObject/DeleteObject 9001.

DIAGNOSTICS: IPPingDiagnostics runs after the session that requested it (ICMP
ping socket, else raw socket, else the ping command) and a new session reports
\"8 DIAGNOSTICS COMPLETE\". WANATMF5LoopbackDiagnostics needs a provider (no ATM
here): requesting it is refused with 9001.

SIGNALS: SIGTERM/SIGINT stop the agent after the current session, state saved
(a second one abandons the session; queued events stay). SIGHUP reloads the
config file: [acs], [[hooks]], [[providers]], the linux mapping and the
[agent] timings apply at once, keys marked (restart) at the next start.

LOGGING: to stderr; --log-level, -v/-q or RUST_LOG; colours only on a
terminal; --log-format json writes one JSON object per line.

The first start reports 0 BOOTSTRAP, later starts 1 BOOT.

Exit status: 0 success (--once: nothing left pending), 2 usage error,
3 malformed config, 4 runtime error (--once: the ACS could not be reached
after the retries, state directory not writable, port in use)."
);

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    // Required without a subcommand (which takes its own --config).
    #[command(flatten)]
    pub config: Option<AgentConfigArgs>,
    /// Run sessions until nothing is pending, then exit.
    #[arg(long)]
    pub once: bool,
    /// With --once: give up after this many consecutive failed sessions.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_attempts: u32,
    #[command(flatten)]
    pub log: LogArgs,
}

/// How the agent logs (to stderr).
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log level: error, warn, info (default), debug or trace; or filter directives such as "info,agent::runner=debug". Overrides -v/-q and RUST_LOG.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// More detail: -v debug, -vv trace.
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less: -q warnings and errors only, -qq errors only.
    #[arg(short, long, action = ArgAction::Count)]
    pub quiet: u8,
    /// Log line format: text (colours only on a terminal) or json (one object per line: timestamp, level, target, message, fields).
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Change a parameter locally (an external cause: may trigger an active notification).
    Set(AgentSetArgs),
    /// Ask the ACS for a file download (RequestDownload, TR-069 A.4.2.2): spooled, sent in the next session, which it starts.
    RequestDownload(AgentRequestDownloadArgs),
    /// Show what the agent's state directory says: identity, versions, last session and outcome, next periodic Inform, queued events, pending transfers, enabled options.
    Status(AgentStatusArgs),
    /// Run N simulated CPEs (serials <serial_number>-00001...) in one process against one ACS, for load tests.
    #[command(long_about = SIMULATE_HELP)]
    Simulate(AgentSimulateArgs),
}

#[derive(Debug, Args)]
pub struct AgentRequestDownloadArgs {
    #[command(flatten)]
    pub config: AgentConfigArgs,
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
    // The base identity; required without a subcommand.
    #[command(flatten)]
    pub config: Option<AgentConfigArgs>,
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
    // The final summary as JSON on stdout.
    #[command(flatten)]
    pub output: OutputArgs,
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
    // The merged summary as JSON on stdout.
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct AgentStatusArgs {
    #[command(flatten)]
    pub config: AgentConfigArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct AgentSetArgs {
    #[command(flatten)]
    pub config: AgentConfigArgs,
    /// Full parameter name, e.g. InternetGatewayDevice.DeviceInfo.ProvisioningCode.
    pub name: String,
    /// New value.
    pub value: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cpekit").chain(args.iter().copied()))
    }

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn shared_groups_keep_each_commands_rules() {
        // --trust: required for the verify commands, optional for install.
        assert!(parse(&["package", "verify", "p"]).is_err());
        assert!(parse(&["voucher", "verify", "v", "--oui", "X", "--product-class", "P", "--serial", "S"]).is_err());
        assert!(parse(&["install", "p", "--root", "r"]).is_ok());
        // --key/--cert: any number of pairs for build, exactly one for the others.
        assert!(parse(&["package", "build", "--manifest", "m", "-o", "o"]).is_ok());
        let Ok(Cli { command: TopCommand::Package(PackageCommand::Build(b)) }) =
            parse(&["package", "build", "--manifest", "m", "-o", "o", "--key", "a", "--cert", "b", "--key", "c", "--cert", "d"])
        else {
            panic!("two signers")
        };
        assert_eq!(b.signers.signer.pairs().unwrap(), [(Path::new("a"), Path::new("b")), (Path::new("c"), Path::new("d"))]);
        assert!(parse(&["package", "sign", "p"]).is_err());
        assert!(parse(&["package", "sign", "p", "--key", "a", "--cert", "b", "--key", "c", "--cert", "d"]).is_err());
        assert!(parse(&["voucher", "sign", "--key", "a", "--cert", "b", "--options", "o", "-o", "x"]).is_ok());
        // --config: required without a subcommand, and by each subcommand.
        assert!(parse(&["agent"]).is_err());
        assert!(parse(&["agent", "--config", "c"]).is_ok());
        assert!(parse(&["agent", "set", "N", "V"]).is_err());
        assert!(parse(&["agent", "set", "--config", "c", "N", "V"]).is_ok());
    }

    #[test]
    fn json_is_wanted_wherever_output_args_are_flattened() {
        let wants = |args: &[&str]| wants_json(&Cli::command().try_get_matches_from(std::iter::once("cpekit").chain(args.iter().copied())).unwrap());
        assert!(wants(&["package", "inspect", "p", "--json"]));
        assert!(wants(&["agent", "simulate", "--config", "c", "--count", "1", "--json"]));
        assert!(!wants(&["package", "inspect", "p"]));
        assert!(!wants(&["package", "dump", "p"]));
    }
}
