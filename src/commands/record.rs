//! `vigil record --out FILE.jsonl [--duration S] [--rules PATH...]`: capture
//! live events as flat JSON (`Event::to_flat_json`), one a line: exactly
//! what `vigil replay` reads. With `--rules`, the kernel filter derived from
//! them limits what is captured (said at start); without, every event of
//! every type is recorded.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use vigil_engine::filter::KernelFilter;
use vigil_engine::ruleset::RuleSet;

use vigil::pipeline::Live;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output file (JSON lines); `-` for stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Record only what these rules' kernel filter passes (default: everything).
    #[command(flatten)]
    pub rules: crate::RulesArg,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let filter = if args.rules.rules.is_empty() {
        tracing::info!("recording every event of every type (no --rules)");
        KernelFilter::pass_all()
    } else {
        match RuleSet::load(&args.rules.rules) {
            Ok(r) => {
                tracing::info!(
                    rules = r.rules().filter(|r| r.enabled).count(),
                    "recording only what the rules' kernel filter passes (see `vigil explain`); \
                     run without --rules to record everything"
                );
                Arc::new(r).kernel_filter()
            }
            Err(e) => {
                eprintln!("{e}");
                anyhow::bail!("the rules did not load ({} error(s))", e.0.len());
            }
        }
    };
    let mut out: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout()))
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&args.out)
                .with_context(|| format!("creating {}", args.out.display()))?,
        ))
    };
    let rt = vigil::pipeline::runtime().context("starting the tokio runtime")?;
    let n = rt.block_on(async {
        let mut signals = vigil::daemon::Signals::install_shutdown()?;
        let mut live = Live::start_ready(&filter)?;
        let deadline = tokio::time::sleep(vigil::pipeline::run_time(args.duration));
        tokio::pin!(deadline);
        let mut n = 0u64;
        let mut write =
            |le: vigil::pipeline::LiveEvent, out: &mut dyn Write| -> anyhow::Result<()> {
                if le.eligible {
                    let line = serde_json::Value::Object(le.event.to_flat_json());
                    writeln!(out, "{line}")?;
                    n += 1;
                }
                Ok(())
            };
        loop {
            tokio::select! {
                _ = signals.shutdown() => break,
                _ = &mut deadline => break,
                ev = live.next() => {
                    let Some(le) = ev else { break };
                    write(le, &mut out)?;
                }
            }
        }
        live.stop().await;
        while let Some(le) = live.try_next() {
            write(le, &mut out)?;
        }
        out.flush()?;
        anyhow::Ok(n)
    })?;
    tracing::info!(events = n, out = %args.out.display(), "recorded");
    Ok(ExitCode::SUCCESS)
}
