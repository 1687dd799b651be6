//! Command-line definitions. Flags are documented once, here; the man
//! pages in `man/` are generated from these definitions (`make man`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit status table shared by every man page.
pub const EXIT_STATUS: &str = "\
EXIT STATUS:
  0  success (for `verify`: trusted signer found and every payload hash matches)
  1  verification failed: no trusted signer, a payload hash mismatch, or a
     truncated/overlong payload
  2  usage error (bad flags or arguments)
  3  malformed input: the package, manifest, key or certificate could not be parsed
  4  I/O or other runtime error (file not found, permission denied, ...)";

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
pub enum TopCommand {
    /// Build, sign, verify, inspect, dump and extract Annex E signed packages.
    #[command(subcommand, after_long_help = EXIT_STATUS)]
    Package(PackageCommand),
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

const BUILD_HELP: &str = "\
MANIFEST FORMAT (TOML; paths in `source` are relative to the manifest):

  minor = 0                      # header minor version (default 0)
  version = \"3.0.22\"             # Version command (E.4.6)
  description = \"Spring update\"  # Description command (E.4.6)
  role = \"software-upgrade\"      # or software-recovery, web-content,
                                 # vendor-configuration, a number, or
                                 # { oui = \"000D2B\", args = \"0102\" } (hex)
  min_version = \"3.0.0\"          # Minimum Version (E.4.10)
  max_version = \"3.0.21\"         # Maximum Version (E.4.10)
  min_nonvolatile_storage = 1048576   # bytes (E.4.12)
  min_volatile_storage = 65536
  format = false                 # Format File System (E.4.9)
  reboot = true                  # Reboot, written last (E.4.8)
  end = false                    # append an End command (E.4.2)
  [timeouts]                     # seconds, 0 = infinite (E.4.7)
  initial = 60
  initial_activity = 30
  recoverable = 600
  unrecoverable = 900
  [[required_attributes]]        # E.4.13
  defining_entity = 0xFF000D2B
  class = 1
  attributes = [1, 2]

  [[command]]                    # in order, after the top-level commands
  type = \"extract\"               # extract, extract-versioned, add, add-versioned
  path = \"/bin/app\"
  source = \"files/app\"
  unsafe = true                  # Unsafe flag (bit 0 of Flags)
  [[command]]
  type = \"remove\"                # remove, remove-versioned, remove-subtree
  path = \"/var/old\"
  [[command]]
  type = \"move\"                  # move, move-versioned
  src = \"/a/app.001\"
  dst = \"/b/app\"
  [[command]]
  type = \"vendor\"                # any numeric type, Value given in hex
  code = 4242
  value = \"00ff\"

Any Table 68 command may also appear in [[command]] (version, description,
recoverable-timeout, unrecoverable-timeout, initial-timeout,
initial-activity-timeout, reboot, format, min-version, max-version, role,
min-nonvolatile-storage, min-volatile-storage, required-attributes, end) with
`value` (text or number), `version` or the role/attribute fields above.

Top-level commands are written in this order: timeouts, version, description,
role, min/max version, storage minimums, required attributes, format, then
[[command]] entries, then reboot and end. --version, --description and
--reboot override the manifest.

--from-dir DIR walks DIR (sorted, deterministic) and emits one Extract File per
regular file at PREFIX/relative/path; symlinks and special files are skipped
with a warning.

EXIT STATUS: 0 built; 2 usage error; 3 bad manifest, key or certificate;
4 I/O error.";

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
