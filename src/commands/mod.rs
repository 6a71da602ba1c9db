//! One module per subcommand. Each exposes `Args` (clap) and
//! `run(Args) -> anyhow::Result<ExitCode>`.

pub mod docs;
pub mod explain;
pub mod fields;
pub mod fleet;
pub mod formats;
pub mod profile;
pub mod record;
pub mod replay;
pub mod run;
pub mod snoop;
pub mod test;
pub mod validate;
