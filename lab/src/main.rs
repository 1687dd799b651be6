//! `cpekit-lab-acs`: a lab tool, not an ACS product. It plays the scripted
//! part of an ACS on loopback so that the agent can be tried on one machine
//! (`scripts/demo`, `make demo`): it serves the files of one directory over
//! HTTP, runs the CWMP sessions of a script (see [`script`]), prints what
//! happened in plain lines, and exits once every scripted session has ended:
//! 0 if everything happened as scripted, 1 if not (or on time-out), 2 on
//! usage errors. No TLS, no authentication, one device at a time.

mod script;
mod session;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use script::Script;
use session::Lab;

/// A lab ACS for trying the cpekit agent on one machine (not an ACS product):
/// serves DIR at /files/, runs the CWMP sessions of a script at /acs.
#[derive(Parser)]
#[command(name = "cpekit-lab-acs", version, after_help = "Exit status: 0 every scripted session happened as scripted, 1 not (or time-out), 2 usage error.")]
struct Args {
    /// Directory whose files are served at http://ADDR/files/NAME
    #[arg(long, value_name = "DIR")]
    serve: PathBuf,
    /// Session script (TOML): one [[session]] per CWMP session
    #[arg(long, value_name = "FILE.toml")]
    script: PathBuf,
    /// Address to listen on (port 0: any free port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: String,
    /// Write the CWMP URL (http://ADDR/acs) to this file once listening
    #[arg(long, value_name = "FILE")]
    url_file: Option<PathBuf>,
    /// Write what happened (sessions, RPC results, TransferCompletes, failures) as JSON
    #[arg(long, value_name = "FILE.json")]
    record: Option<PathBuf>,
    /// Give up (exit 1) when the script has not finished after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let script = match Script::load(&args.script, &args.serve) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cpekit-lab-acs: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match tiny_http::Server::http(&args.listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cpekit-lab-acs: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    let Some(addr) = server.server_addr().to_ip() else {
        eprintln!("cpekit-lab-acs: not an IP listener");
        return ExitCode::from(2);
    };
    let url = format!("http://{addr}/acs");
    let mut lab = Lab::new(script, args.serve.clone(), format!("http://{addr}/files"));
    if let Some(f) = &args.url_file {
        // Whole or absent: written aside, then renamed into place.
        let tmp = f.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, format!("{url}\n")).and_then(|_| std::fs::rename(&tmp, f)) {
            eprintln!("cpekit-lab-acs: {}: {e}", f.display());
            return ExitCode::from(2);
        }
    }
    say(&[format!("   lab ACS listening on {url}, serving {} at /files/", args.serve.display())]);

    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    while !lab.done() {
        let left = deadline.saturating_duration_since(Instant::now());
        let req = match server.recv_timeout(left) {
            Ok(Some(r)) => r,
            Ok(None) => {
                let what = format!("timed out after {} s waiting for {}", args.timeout, lab.waiting_for());
                lab.record.failures.push(what.clone());
                lab.lines.push(format!("     !! {what}"));
                break;
            }
            Err(e) => {
                lab.record.failures.push(format!("listening: {e}"));
                break;
            }
        };
        handle(req, &mut lab, &args.serve);
        say(&std::mem::take(&mut lab.lines));
    }
    say(&std::mem::take(&mut lab.lines));
    if let Some(f) = &args.record {
        let json = serde_json::to_string_pretty(&lab.record).expect("plain data");
        if let Err(e) = std::fs::write(f, json + "\n") {
            eprintln!("cpekit-lab-acs: {}: {e}", f.display());
            return ExitCode::from(1);
        }
    }
    if lab.record.failures.is_empty() {
        say(&["   lab ACS: every scripted session happened as scripted".into()]);
        ExitCode::SUCCESS
    } else {
        let mut lines = vec![format!("   lab ACS: {} thing(s) did not happen as scripted:", lab.record.failures.len())];
        lines.extend(lab.record.failures.iter().map(|f| format!("     - {f}")));
        say(&lines);
        ExitCode::from(1)
    }
}

fn say(lines: &[String]) {
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = out.flush();
}

fn handle(mut req: tiny_http::Request, lab: &mut Lab, serve: &std::path::Path) {
    let path = req.url().to_string();
    match (req.method(), path.as_str()) {
        (tiny_http::Method::Post, "/acs") => {
            let mut body = String::new();
            if req.as_reader().take(4 << 20).read_to_string(&mut body).is_err() {
                let _ = req.respond(tiny_http::Response::from_string("not UTF-8").with_status_code(400));
                return;
            }
            let reply = lab.post(&body);
            let mut r = tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
            if reply.status == 200 {
                r.add_header(tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/xml; charset=\"utf-8\""[..]).expect("valid header"));
            }
            let _ = req.respond(r);
        }
        (tiny_http::Method::Get, p) if p.starts_with("/files/") => {
            let name = &p["/files/".len()..];
            match script::served_file(serve, name).and_then(|f| std::fs::File::open(f).ok()) {
                Some(f) => {
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    lab.served(name, 200, len);
                    let _ = req.respond(tiny_http::Response::from_file(f));
                }
                None => {
                    lab.served(name, 404, 0);
                    let _ = req.respond(tiny_http::Response::from_string("no such file").with_status_code(404));
                }
            }
        }
        _ => {
            let _ = req.respond(tiny_http::Response::from_string("the lab ACS serves POST /acs and GET /files/NAME").with_status_code(404));
        }
    }
}
