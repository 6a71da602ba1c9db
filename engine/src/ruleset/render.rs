//! An alert's `output` text and `output_fields` map for one event: a Falco
//! rule through its Falco output, a vigil rule through its template (moved
//! out of `alert` so the alert type does not import the Falco dialect).

use serde_json::{Map, Value as Json};

use crate::alert::OutputFields;
use crate::event::Event;
use crate::falco::FalcoOutput;
use crate::template::{Template, COUNT_FIELD};

/// An alert's `output` and `output_fields` for one event: a Falco rule
/// renders as Falco does (`falco`), a vigil rule through its template; `shape`
/// chooses which fields; `count` is a threshold rule's `vigil.count`.
pub(super) fn render(
    template: &Template,
    falco: Option<&FalcoOutput>,
    ev: &Event,
    count: Option<u64>,
    shape: OutputFields,
) -> (String, Map<String, Json>) {
    let (output, mut fields) = match falco {
        Some(f) => (f.render(ev), f.output_fields(ev)),
        None => (template.render(ev, count), Map::new()),
    };
    match (shape, falco) {
        (OutputFields::Template, None) => {
            for f in template.fields() {
                let v = ev.get(f).map_or(Json::Null, |v| v.to_json());
                fields.insert(f.name().to_string(), v);
            }
        }
        (OutputFields::Template | OutputFields::Auto, Some(_)) => {}
        (OutputFields::All | OutputFields::Auto, _) => {
            for (k, v) in ev.to_flat_json() {
                fields.entry(k).or_insert(v);
            }
        }
    }
    if let Some(c) = count {
        fields.insert(COUNT_FIELD.to_string(), Json::from(c));
    }
    (output, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_fields_shapes() {
        use crate::event::{EventMask, EventType};
        let j = serde_json::json!({"evt.type": "exec", "proc.name": "sh", "proc.pid": 42,
            "proc.cmdline": "sh -c id", "proc.args": ["-c", "id"]});
        let ev = Event::from_flat_json(j.as_object().unwrap()).unwrap();
        let exec = EventMask::of(&[EventType::Exec]);
        let t = Template::parse("{proc.name} {proc.pid}", exec, false).unwrap();
        // vigil's rules: every event field by default, the template's on request.
        let (out, all) = render(&t, None, &ev, None, OutputFields::Auto);
        assert_eq!(out, "sh 42");
        assert_eq!(all, ev.to_flat_json());
        assert_eq!(render(&t, None, &ev, None, OutputFields::All).1, all);
        let (_, tf) = render(&t, None, &ev, Some(3), OutputFields::Template);
        let keys: Vec<&str> = tf.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert_eq!(
            (tf["proc.name"].clone(), tf["proc.pid"].clone()),
            ("sh".into(), 42.into())
        );
        assert_eq!(tf[COUNT_FIELD], 3);
        // Falco rules: the template's fields by Falco's names by default;
        // `all` adds the event's other fields without replacing Falco's.
        let f = FalcoOutput::parse("%proc.exe %proc.args");
        let (out, ff) = render(&t, Some(&f), &ev, None, OutputFields::Auto);
        assert_eq!(out, "sh -c id");
        assert_eq!(ff.len(), 3, "{ff:?}"); // evt.time, proc.exe, proc.args
        assert_eq!(ff["proc.args"], "-c id");
        assert_eq!(
            render(&t, Some(&f), &ev, None, OutputFields::Template).1,
            ff
        );
        let (_, fa) = render(&t, Some(&f), &ev, None, OutputFields::All);
        assert_eq!(fa["proc.args"], "-c id");
        assert_eq!(fa["proc.cmdline"], "sh -c id");
        assert!(fa.len() > ff.len());
    }
}
