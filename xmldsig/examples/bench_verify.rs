//! In-process verification rate: `bench_verify CA.pem SECONDS VOUCHER...`
//! prints "<vouchers verified> <seconds> <per second>" for one thread.

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: bench_verify CA.pem SECONDS VOUCHER...");
        std::process::exit(2);
    }
    let ca = std::fs::read(&args[1]).expect("CA");
    let secs: f64 = args[2].parse().expect("seconds");
    let vouchers: Vec<Vec<u8>> = args[3..].iter().map(|p| std::fs::read(p).expect("voucher")).collect();
    let verifier = xmldsig::Verifier::new(&[ca]).expect("trust anchor");
    // Warm up, and make sure every voucher verifies.
    for v in &vouchers {
        verifier.verify(v, None).expect("voucher verifies");
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        for v in &vouchers {
            verifier.verify(v, None).expect("voucher verifies");
            n += 1;
        }
    }
    let t = start.elapsed().as_secs_f64();
    println!("{n} {t:.3} {:.0}", n as f64 / t);
}
