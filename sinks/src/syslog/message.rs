//! Syslog messages: RFC 5424 (with structured data) and RFC 3164 lines,
//! TCP framing (RFC 6587) and cutting to `max_message_size`. Pure text, no
//! I/O.

use serde_json::Value as Json;
use vigil_engine::template::COUNT_FIELD;
use vigil_engine::Field;

use super::config::{Facility, SyslogPayload, TcpFraming};
use crate::encode::Encoded;

/// Private enterprise number in the SD-ID (RFC 5612's documentation number).
pub const SD_ID: &str = "vigil@32473";

/// Catalogue fields copied into the structured data when the alert has them.
const SD_FIELDS: [Field; 11] = [
    Field::ProcName,
    Field::ProcPid,
    Field::ProcExe,
    Field::ProcPname,
    Field::UserName,
    Field::ProcUid,
    Field::ContainerId,
    Field::ProcUnit,
    Field::FilePath,
    Field::NetDaddr,
    Field::NetDport,
];

/// The names of the structured data parameters besides rule, priority,
/// source and tags: [`SD_FIELDS`], then the count of a threshold alert or a
/// dedup summary.
fn sd_names() -> impl Iterator<Item = &'static str> {
    SD_FIELDS.iter().map(|f| f.def().name).chain([COUNT_FIELD])
}

/// What every message of one sink carries besides the alert.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub facility: Facility,
    /// HOSTNAME when the alert has none.
    pub hostname: &'a str,
    /// APP-NAME / TAG.
    pub app: &'a str,
    /// PROCID.
    pub pid: u32,
    pub payload: SyslogPayload,
}

impl Header<'_> {
    /// The alert's host name, else the sink's.
    fn host_of<'b>(&'b self, a: &'b Encoded) -> &'b str {
        if a.hostname.is_empty() {
            self.hostname
        } else {
            &a.hostname
        }
    }
}

/// The PRI value: facility * 8 + severity of the alert's priority.
pub fn pri(facility: Facility, a: &Encoded) -> u8 {
    facility.0 * 8 + a.priority.syslog_severity()
}

/// Printable US-ASCII without spaces, at most `max` bytes, or `-`.
fn header_token(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if t.is_empty() {
        "-".into()
    } else {
        t
    }
}

fn sd_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The MSG part: the rule output, or the alert's (shared) JSON line.
fn payload(a: &Encoded, p: SyslogPayload) -> &str {
    match p {
        SyslogPayload::Text => &a.output,
        SyslogPayload::Json => a.json(),
    }
}

/// One RFC 5424 message (no framing):
/// `<PRI>1 TIMESTAMP HOST APP PROCID alert [vigil@32473 ...] MSG`.
/// The timestamp keeps microseconds (RFC 5424's maximum precision).
pub fn format_rfc5424(a: &Encoded, h: &Header<'_>) -> String {
    let ts = a.time_rfc3339(); // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
    let ts = if ts.len() == 30 {
        format!("{}Z", &ts[..26])
    } else {
        ts
    };
    let host = h.host_of(a);
    let mut m = format!(
        "<{}>1 {} {} {} {} alert [{SD_ID} rule=\"",
        pri(h.facility, a),
        ts,
        header_token(host, 255),
        header_token(h.app, 48),
        h.pid
    );
    sd_escape(&a.rule, &mut m);
    m.push_str("\" priority=\"");
    m.push_str(a.priority.falco_name());
    m.push_str("\" source=\"");
    sd_escape(a.source, &mut m);
    m.push('"');
    if !a.tags.is_empty() {
        m.push_str(" tags=\"");
        sd_escape(&a.tags.join(","), &mut m);
        m.push('"');
    }
    for f in sd_names() {
        let v = match a.output_fields.get(f) {
            None | Some(Json::Null) => continue,
            Some(Json::String(s)) if s.is_empty() => continue,
            Some(Json::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        m.push(' ');
        m.push_str(f);
        m.push_str("=\"");
        sd_escape(&v, &mut m);
        m.push('"');
    }
    m.push_str("] ");
    m.push_str(payload(a, h.payload));
    m
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One RFC 3164 message: `<PRI>Mmm dd hh:mm:ss HOST TAG[pid]: MSG` (UTC).
pub fn format_rfc3164(a: &Encoded, h: &Header<'_>) -> String {
    let ts = a.time_rfc3339();
    let month: usize = ts.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let day: u32 = ts.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    let hms = ts.get(11..19).unwrap_or("00:00:00");
    let host = h.host_of(a);
    format!(
        "<{}>{} {:>2} {} {} {}[{}]: {}",
        pri(h.facility, a),
        MONTHS[month.clamp(1, 12) - 1],
        day,
        hms,
        header_token(host, 255),
        header_token(h.app, 32),
        h.pid,
        payload(a, h.payload)
    )
}

/// TCP/TLS framing (RFC 6587).
pub(super) fn frame(framing: TcpFraming, msg: &str) -> String {
    match framing {
        TcpFraming::OctetCounting => format!("{} {}", msg.len(), msg),
        TcpFraming::NonTransparent => format!("{}\n", msg.replace('\n', " ")),
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub(super) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;
    use std::sync::Arc;
    use vigil_engine::Alert;
    use vigil_engine::Priority;

    fn alert() -> Alert {
        let mut f = Map::new();
        f.insert("proc.name".into(), Json::from("ba\"sh]"));
        f.insert("proc.pid".into(), Json::from(42));
        Alert {
            time: 1_795_000_000_123_456_789,
            rule: Arc::from("Shell spawned"),
            priority: Priority::Critical,
            output: "shell ran".into(),
            output_fields: f,
            tags: Arc::from(vec!["a".to_string(), "b".to_string()]),
            source: "syscall",
            hostname: Arc::from("web 1"),
        }
    }

    #[test]
    fn rfc5424_layout() {
        let h = Header {
            facility: Facility(10),
            hostname: "fallback",
            app: "vigil",
            pid: 7,
            payload: SyslogPayload::Text,
        };
        let m = format_rfc5424(&Encoded::new(Arc::new(alert())), &h);
        assert_eq!(
            m,
            "<82>1 2026-11-18T11:06:40.123456Z web1 vigil 7 alert [vigil@32473 rule=\"Shell spawned\" \
             priority=\"Critical\" source=\"syscall\" tags=\"a,b\" proc.name=\"ba\\\"sh\\]\" proc.pid=\"42\"] shell ran"
        );
    }

    #[test]
    fn rfc3164_layout() {
        let mut a = alert();
        a.hostname = Arc::from("");
        let a = Encoded::new(Arc::new(a));
        let h = Header {
            facility: Facility(1),
            hostname: "h",
            app: "vigil",
            pid: 7,
            payload: SyslogPayload::Text,
        };
        let m = format_rfc3164(&a, &h);
        assert_eq!(m, "<10>Nov 18 11:06:40 h vigil[7]: shell ran");
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("aé".to_string(), 2), "a");
        assert_eq!(truncate("abc".to_string(), 5), "abc");
    }
}
