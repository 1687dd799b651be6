//! `cpekit package inspect`: header, commands and signers. Only the
//! prefix is read; payload hashes are `verify`'s job.

use anyhow::Result;
use serde_json::json;

use super::{command_detail, command_json, open_package, signer_json, Opened};
use crate::cli::InspectArgs;

pub fn run(a: InspectArgs) -> Result<u8> {
    let (prefix, size) = match open_package(&a.package, a.dialect.dialect)? {
        Opened::AnnexE { prefix, size, .. } => (prefix, size),
        Opened::TwoWire(d) => return super::dialect::inspect(&a, d),
    };
    let h = &prefix.header;
    let signers = prefix.signatures.signers();
    if a.output.json {
        let out = json!({
            "dialect": "annex-e",
            "header": {
                "major": h.major,
                "minor": h.minor,
                "command_list_length": h.command_list_length,
                "payload_length": h.payload_length,
            },
            "signature_block_length": prefix.signatures.to_der().len(),
            "payload_offset": prefix.payload_offset(),
            "file_size": size,
            "commands": prefix.commands.commands.iter().enumerate().map(|(i, c)| command_json(i, c)).collect::<Vec<_>>(),
            "trailer_length": prefix.commands.trailer.len(),
            "signatures": signers.iter().map(signer_json).collect::<Vec<_>>(),
            "warnings": prefix.commands.warnings(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(crate::exit::SUCCESS);
    }
    println!("package:        {}", a.package.display());
    println!("dialect:        annex-e{}", if a.dialect.dialect == crate::cli::DialectChoice::Auto { " (conforms)" } else { "" });
    println!("format version: {}.{}", h.major, h.minor);
    println!("command list:   {} bytes, {} commands", h.command_list_length, prefix.commands.commands.len());
    println!("signatures:     {} bytes, {} signer(s)", prefix.signatures.to_der().len(), signers.len());
    println!("payload:        {} bytes at offset {}", h.payload_length, prefix.payload_offset());
    let expected = prefix.payload_offset() + h.payload_length as u64;
    if size != expected {
        println!("WARNING:        file is {size} bytes, header says {expected}");
    }
    println!();
    println!("{:>4}  {:>5}  {:<28}  DETAILS", "#", "TYPE", "COMMAND");
    for (i, c) in prefix.commands.commands.iter().enumerate() {
        println!("{:>4}  {:>5}  {:<28}  {}", i, c.type_code(), c.name(), command_detail(c));
    }
    if !prefix.commands.trailer.is_empty() {
        println!("      ({} bytes after End, not interpreted)", prefix.commands.trailer.len());
    }
    for w in prefix.commands.warnings() {
        println!("WARNING: {w}");
    }
    println!();
    if signers.is_empty() {
        println!("signers: none (unsigned package)");
    }
    for (i, s) in signers.iter().enumerate() {
        println!("signer #{i}: {}", s.subject);
        println!("    issuer {}  serial {}", s.issuer, s.serial);
        println!("    {} / {}, {}", s.digest_algorithm, s.signature_algorithm, if s.signed_attributes { "signed attributes" } else { "no signed attributes" });
    }
    Ok(crate::exit::SUCCESS)
}
