//! The layering of `sinks/src` (issue 16): no import cycle between its
//! top-level modules, and no sink module importing another sink. Reads the
//! sources as text through `vigil_testkit::layering`.

use std::path::Path;

use vigil_testkit::layering::{find_cycle, module_graph, Graph};

const SINKS: [&str; 6] = ["stdout", "file", "syslog", "webhook", "email", "nats"];

fn graph() -> Graph {
    module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_import_cycle_between_modules() {
    let g = graph();
    assert!(
        g.contains_key("delivery") && g.contains_key("router"),
        "{g:?}"
    );
    if let Some(c) = find_cycle(&g) {
        panic!("import cycle in sinks/src: {}", c.join(" -> "));
    }
}

#[test]
fn no_sink_imports_another_and_delivery_knows_no_sink() {
    let g = graph();
    for s in SINKS {
        let deps = &g[s];
        for other in SINKS {
            assert!(!deps.contains(other), "{s} imports {other}: {deps:?}");
        }
        assert!(
            !deps.contains("router") && !deps.contains("config"),
            "{s}: {deps:?}"
        );
    }
    for shared in ["delivery", "encode", "tls", "de", "error"] {
        let deps = &g[shared];
        for s in SINKS {
            assert!(!deps.contains(s), "{shared} imports the {s} sink: {deps:?}");
        }
    }
}
