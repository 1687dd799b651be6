//! Progress bars on stderr, only when it is a terminal and the input is
//! large (indicatif hides itself on a non-terminal anyway).

use indicatif::{ProgressBar, ProgressStyle};

/// Inputs below this size finish too fast for a bar to be useful.
const MIN_BYTES: u64 = 32 * 1024 * 1024;

pub fn bytes_bar(total: u64, what: &str) -> ProgressBar {
    if total < MIN_BYTES {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
