//! The layering of `engine/src` (issue 16): no import cycle between its
//! top-level modules (a file or folder below `src/`), read from the sources
//! as text through `vigil_testkit::layering`.

use std::path::Path;

use vigil_testkit::layering::{find_cycle, module_graph};

/// Edges of a cycle not yet broken, each with why. The test fails once an
/// edge is gone, so the list only shrinks. Empty: `rules -> falco` went when
/// the Falco reader was plugged into the loader through `rules::OtherDialect`
/// and the declared dialect moved to `dialect`.
const KNOWN: &[(&str, &str)] = &[];

#[test]
fn no_import_cycle_between_modules() {
    let mut g = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        g.contains_key("ruleset") && g.contains_key("event"),
        "{g:?}"
    );
    for (from, to) in KNOWN {
        assert!(
            g.get_mut(*from).is_some_and(|d| d.remove(*to)),
            "{from} no longer imports {to}: drop it from KNOWN"
        );
    }
    if let Some(c) = find_cycle(&g) {
        panic!(
            "import cycle in engine/src: {}\ngraph: {g:#?}",
            c.join(" -> ")
        );
    }
}
