//! The agent's log on stderr: level from `--log-level`, `-v`/`-q` or
//! `RUST_LOG` (in that order), text with colours only on a terminal, or
//! one JSON object per line (`--log-format json`) for log collectors.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogArgs;
use crate::exit::usage;

/// The filter the flags select; `default` without flags and `RUST_LOG`.
///
/// The syntax is `LEVEL` or `TARGET=LEVEL` items separated by commas
/// (`info,agent::runner=debug`): tracing-subscriber's `Targets`, which needs
/// no regular-expression engine in the binary. `RUST_LOG` span and field
/// filters (`[span{field=value}]`) are not supported; an invalid `RUST_LOG`
/// falls back to `default`.
pub fn filter(args: &LogArgs, default: &str) -> anyhow::Result<Targets> {
    if let Some(l) = &args.log_level {
        return l.parse::<Targets>().map_err(|e| usage(format!("--log-level {l:?}: {e}")));
    }
    let level = match (args.verbose, args.quiet) {
        (0, 0) => None,
        (1, _) => Some("debug"),
        (v, _) if v > 1 => Some("trace"),
        (_, 1) => Some("warn"),
        _ => Some("error"),
    };
    let parse = |s: &str| s.parse::<Targets>().ok();
    Ok(match level {
        Some(l) => parse(l),
        None => std::env::var("RUST_LOG").ok().and_then(|v| parse(&v)).or_else(|| parse(default)),
    }
    .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO)))
}

/// Install the subscriber (once per process; later calls do nothing).
pub fn init(args: &LogArgs, default: &str) -> anyhow::Result<()> {
    let filter = filter(args, default)?;
    // The builder filters at INFO by default, below the `Targets` layer:
    // open it fully and let `filter` decide.
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(tracing::Level::TRACE);
    let _ = match args.log_format.as_str() {
        "json" => builder.event_format(JsonLines).finish().with(filter).try_init(),
        // No escape sequences in files, pipes and the journal.
        _ => builder.with_ansi(std::io::stderr().is_terminal()).finish().with(filter).try_init(),
    };
    Ok(())
}

/// `{"timestamp", "level", "target", "message", "fields": {...}, "spans": [...]}`.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = Map::new();
        event.record(&mut Fields(&mut fields));
        let meta = event.metadata();
        let mut o = Map::new();
        let now = time::OffsetDateTime::now_utc();
        o.insert("timestamp".into(), now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default().into());
        o.insert("level".into(), meta.level().as_str().into());
        o.insert("target".into(), meta.target().into());
        if let Some(m) = fields.remove("message") {
            o.insert("message".into(), m);
        }
        if !fields.is_empty() {
            o.insert("fields".into(), Value::Object(fields));
        }
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope.from_root().map(|s| Value::from(s.name())).collect();
            o.insert("spans".into(), Value::Array(spans));
        }
        writeln!(w, "{}", Value::Object(o))
    }
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(level: Option<&str>, v: u8, q: u8) -> LogArgs {
        LogArgs { log_level: level.map(str::to_string), verbose: v, quiet: q, log_format: "text".into() }
    }

    #[test]
    fn flags_pick_the_level() {
        assert_eq!(filter(&args(None, 1, 0), "info").unwrap().to_string(), "debug");
        assert_eq!(filter(&args(None, 2, 0), "info").unwrap().to_string(), "trace");
        assert_eq!(filter(&args(None, 0, 1), "info").unwrap().to_string(), "warn");
        assert_eq!(filter(&args(None, 0, 3), "info").unwrap().to_string(), "error");
        assert_eq!(filter(&args(Some("info,agent::runner=debug"), 2, 0), "info").unwrap().to_string(), "agent::runner=debug,info", "--log-level wins over -v");
        assert!(filter(&args(Some("info,=[x"), 0, 0), "info").is_err());
    }
}
