//! `vigil fields [--json]`: the field catalogue (name, type, events, description).

use std::process::ExitCode;

use vigil_engine::FIELDS;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// One JSON object per field instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    for f in FIELDS {
        let events: Vec<&str> = f.events.iter().map(|t| t.as_str()).collect();
        if args.json {
            let j = serde_json::json!({
                "name": f.name, "type": f.ty.name(), "events": events, "desc": f.desc,
            });
            out.push_str(&j.to_string());
            out.push('\n');
        } else {
            let ev = if events.len() == 6 {
                "all".to_string()
            } else {
                events.join(",")
            };
            out.push_str(&format!(
                "{:<17} {:<7} {:<27} {}\n",
                f.name,
                f.ty.name(),
                ev,
                f.desc
            ));
        }
    }
    if !args.json {
        out.push_str(&format!(
            "{:<17} {:<7} {:<27} {}\n",
            "vigil.count",
            "int",
            "(threshold rules)",
            "matches in the window (output templates and alerts)"
        ));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
