//! `scripts/bench-download` helper: one background process serving, on
//! loopback,
//!
//! * the files of a directory over plain HTTP/1.1 (GET and HEAD, one thread
//!   per connection, `Connection: close`; the body goes out with
//!   `std::io::copy` from the file to the socket, i.e. sendfile(2), so the
//!   server costs as little CPU as possible and is the same for `curl` and
//!   for the agent);
//! * a minimal ACS (cpekit's own SOAP codec): on `/acs/download` it sends
//!   one Download (FileType "1 Firmware Upgrade Image") in every session
//!   whose Inform does not report "7 TRANSFER COMPLETE", and accepts the
//!   TransferComplete; on `/acs/plain` it sends nothing (baseline runs).
//!
//! Every TransferComplete is appended to LOG as
//! `tc <FaultCode> <seconds from Download sent to TransferComplete received> <FaultString>`;
//! anything unexpected as `error ...`.
//!
//!   bench_download DIR PKG_NAME ADDR_FILE LOG
//!
//! ADDR_FILE receives two lines once both servers listen: the package URL
//! and the ACS base URL (`http://127.0.0.1:PORT/acs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use agent::soap::{self, Body, DownloadArgs};

fn serve_file(mut s: TcpStream, dir: &Path) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    // Skip the headers.
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let name = target.trim_start_matches('/');
    let path = dir.join(name);
    let file = (!name.is_empty() && !name.contains('/') && !name.starts_with('.')).then(|| std::fs::File::open(&path).ok()).flatten();
    match (method, file) {
        ("GET" | "HEAD", Some(mut f)) => {
            let len = f.metadata()?.len();
            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")?;
            if method == "GET" {
                // File -> TcpStream: std uses sendfile(2) on Linux.
                std::io::copy(&mut f, &mut s)?;
            }
        }
        _ => write!(s, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?,
    }
    s.flush()
}

#[derive(Default)]
struct Acs {
    /// The current session wants a Download and has not had it yet.
    send_download: bool,
    download_sent: Option<Instant>,
    next_id: u64,
}

fn log(file: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file).expect("log file");
    writeln!(f, "{line}").expect("write log");
}

fn respond(req: tiny_http::Request, status: u16, body: String) {
    let mut r = tiny_http::Response::from_string(body).with_status_code(status);
    r.add_header(tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/xml; charset=\"utf-8\""[..]).unwrap());
    let _ = req.respond(r);
}

fn acs_request(mut req: tiny_http::Request, st: &Mutex<Acs>, pkg_url: &str, pkg_size: u32, logf: &Path) {
    let download_mode = req.url().starts_with("/acs/download");
    let mut body = String::new();
    let _ = req.as_reader().take(8 << 20).read_to_string(&mut body);
    let envs = match soap::parse(&body) {
        Ok(e) => e,
        Err(e) => {
            log(logf, &format!("error bad SOAP from the agent: {e}"));
            return respond(req, 400, String::new());
        }
    };
    let mut s = st.lock().unwrap();
    let mut reply = String::new();
    for env in envs {
        let id = env.id.clone();
        match env.body {
            Ok(Body::Inform { events, .. }) => {
                let tc = events.iter().any(|e| e.code == "7 TRANSFER COMPLETE");
                s.send_download = download_mode && !tc;
                reply.push_str(&soap::to_xml(id.as_deref(), false, &Body::InformResponse { max_envelopes: 1 }));
            }
            Ok(Body::DownloadResponse { status, .. }) => {
                if status != 1 {
                    log(logf, &format!("error DownloadResponse Status {status} (expected 1: TransferComplete follows)"));
                }
            }
            Ok(Body::TransferComplete { fault, .. }) => {
                let dt = s.download_sent.take().map_or(-1.0, |t| t.elapsed().as_secs_f64());
                log(logf, &format!("tc {} {dt:.3} {}", fault.code, fault.string.replace('\n', " ")));
                reply.push_str(&soap::to_xml(id.as_deref(), false, &Body::TransferCompleteResponse));
            }
            Ok(Body::Fault(f)) => log(logf, &format!("error the agent answered with a Fault: {f:?}")),
            Ok(other) => {
                log(logf, &format!("error unexpected {} from the agent", other.method()));
                reply.push_str(&soap::to_xml(id.as_deref(), false, &Body::Fault(soap::Fault::new(8000, "not supported by the bench ACS"))));
            }
            Err(e) => log(logf, &format!("error undecodable envelope: {e:?}")),
        }
    }
    if reply.is_empty() && s.send_download {
        s.send_download = false;
        s.next_id += 1;
        let d = DownloadArgs {
            command_key: "bench".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: pkg_url.into(),
            file_size: pkg_size,
            ..Default::default()
        };
        reply = soap::to_xml(Some(&format!("bench-{}", s.next_id)), false, &Body::Download(d));
        s.download_sent = Some(Instant::now());
    }
    drop(s);
    if reply.is_empty() {
        respond(req, 204, String::new());
    } else {
        respond(req, 200, reply);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: bench_download DIR PKG_NAME ADDR_FILE LOG");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[1]);
    let pkg_size = std::fs::metadata(dir.join(&args[2])).expect("package").len();
    let pkg_size = u32::try_from(pkg_size).expect("FileSize is an unsignedInt: the package must be < 4 GiB");
    let logf = PathBuf::from(&args[4]);

    let files = TcpListener::bind("127.0.0.1:0").expect("bind file server");
    let pkg_url = format!("http://{}/{}", files.local_addr().unwrap(), args[2]);
    let acs = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind ACS"));
    let acs_url = format!("http://{}/acs", acs.server_addr().to_ip().unwrap());

    {
        let (pkg_url, logf) = (pkg_url.clone(), logf.clone());
        std::thread::spawn(move || {
            let st = Mutex::new(Acs::default());
            for req in acs.incoming_requests() {
                acs_request(req, &st, &pkg_url, pkg_size, &logf);
            }
        });
    }
    let tmp = format!("{}.tmp", args[3]);
    std::fs::write(&tmp, format!("{pkg_url}\n{acs_url}\n")).unwrap();
    std::fs::rename(&tmp, &args[3]).unwrap();
    for conn in files.incoming() {
        let Ok(conn) = conn else { continue };
        let dir = dir.clone();
        std::thread::spawn(move || {
            let _ = serve_file(conn, &dir);
        });
    }
}
