//! Jenkins' REST formats, as the contract (docs/jenkins.md) describes
//! them: job paths with folders, queue items and builds as JSON, the
//! node's JNLP file, the node definition halo registers, results as exit
//! codes. PURE: text in, values out.

use quick_xml::events::{BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("job name {0:?}: empty segment (folders are written a/b)")]
    BadJobName(String),
    #[error("the JNLP file of node {0} holds no secret")]
    NoSecret(String),
}

/// `a/b` -> the segments of `job/a/job/b/`, each one path segment (the
/// caller's URL type encodes them).
pub fn job_segments(name: &str) -> Result<Vec<String>, ApiError> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ApiError::BadJobName(name.to_string()));
    }
    Ok(parts
        .into_iter()
        .flat_map(|p| ["job".to_string(), p.to_string()])
        .collect())
}

/// The queue item id in a trigger's `Location` (`.../queue/item/25/`).
pub fn parse_queue_location(location: &str) -> Option<u64> {
    let path = location.trim_end_matches('/');
    let (rest, id) = path.rsplit_once('/')?;
    rest.ends_with("/queue/item").then_some(())?;
    id.parse().ok()
}

/// `queue/item/N/api/json`, the fields a client follows.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct QueueItem {
    #[serde(rename = "_class", default)]
    pub class: String,
    #[serde(default)]
    pub why: Option<String>,
    #[serde(default)]
    pub cancelled: Option<bool>,
    #[serde(default)]
    pub executable: Option<Executable>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Executable {
    pub number: u64,
    pub url: String,
}

/// `job/X/N/api/json`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct BuildInfo {
    pub number: u64,
    #[serde(default)]
    pub url: String,
    pub building: bool,
    /// `null` while it runs.
    pub result: Option<String>,
}

/// `computer/NAME/api/json`, what status shows.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ComputerInfo {
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub offline: bool,
    #[serde(default)]
    pub idle: bool,
    #[serde(default)]
    pub num_executors: u32,
    #[serde(default)]
    pub assigned_labels: Vec<Label>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Label {
    pub name: String,
}

/// A build result as `halo jenkins trigger --wait` exits: 0 SUCCESS,
/// 1 UNSTABLE or FAILURE (the job ran and found a problem), 2 anything
/// that means it did not really run (ABORTED, NOT_BUILT, unknown).
pub fn result_exit_code(result: &str) -> u8 {
    match result {
        "SUCCESS" => 0,
        "UNSTABLE" | "FAILURE" => 1,
        _ => 2,
    }
}

/// An entity or character reference (`&amp;`, `&#38;`) as text.
fn ref_text(r: &quick_xml::events::BytesRef<'_>) -> String {
    let raw = format!("&{};", &**r);
    quick_xml::escape::unescape(&raw).map_or(raw.clone(), |c| c.into_owned())
}

/// The secret in a node's `jenkins-agent.jnlp`: the first `<argument>` of
/// its `<application-desc>` (core's jenkins-agent.jnlp.jelly).
pub fn parse_jnlp_secret(node: &str, xml: &str) -> Result<String, ApiError> {
    let mut reader = Reader::from_str(xml);
    let mut in_app = false;
    let mut in_arg = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.name().as_ref() == "application-desc" => in_app = true,
            Ok(Event::Start(e)) if in_app && e.name().as_ref() == "argument" => in_arg = true,
            Ok(Event::Text(t)) if in_arg => {
                let secret = t.xml10_content().trim().to_string();
                if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ApiError::NoSecret(node.to_string()));
                }
                return Ok(secret);
            }
            Ok(Event::Eof) | Err(_) => return Err(ApiError::NoSecret(node.to_string())),
            _ => {}
        }
    }
}

/// The node halo registers: a permanent agent with an inbound launcher
/// over WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub description: String,
    pub labels: Vec<String>,
    pub executors: u32,
    pub remote_fs: String,
}

/// The `json` field of `POST /computer/doCreateItem`, as python-jenkins'
/// `create_node` sends it (contract §2.3, §3.6).
pub fn render_create_node_json(n: &NodeSpec) -> serde_json::Value {
    serde_json::json!({
        "name": n.name,
        "nodeDescription": n.description,
        "numExecutors": n.executors,
        "remoteFS": n.remote_fs,
        "labelString": n.labels.join(" "),
        "mode": "EXCLUSIVE",
        "type": "hudson.slaves.DumbSlave$DescriptorImpl",
        "retentionStrategy": {"stapler-class": "hudson.slaves.RetentionStrategy$Always"},
        "nodeProperties": {"stapler-class-bag": "true"},
        "launcher": {"stapler-class": "hudson.slaves.JNLPLauncher", "webSocket": true},
    })
}

/// The node's `config.xml` (root `<slave>`), for updating it.
pub fn render_node_config(n: &NodeSpec) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let text = |w: &mut Writer<Vec<u8>>, tag: &str, value: &str| -> std::io::Result<()> {
        w.write_event(Event::Start(BytesStart::new(tag)))?;
        w.write_event(Event::Text(BytesText::new(value)))?;
        w.write_event(Event::End(BytesStart::new(tag).to_end()))
    };
    let write = |w: &mut Writer<Vec<u8>>| -> std::io::Result<()> {
        w.write_event(Event::Start(BytesStart::new("slave")))?;
        text(w, "name", &n.name)?;
        text(w, "description", &n.description)?;
        text(w, "remoteFS", &n.remote_fs)?;
        text(w, "numExecutors", &n.executors.to_string())?;
        text(w, "mode", "EXCLUSIVE")?;
        w.write_event(Event::Empty(
            BytesStart::new("retentionStrategy")
                .with_attributes([("class", "hudson.slaves.RetentionStrategy$Always")]),
        ))?;
        w.write_event(Event::Start(
            BytesStart::new("launcher").with_attributes([("class", "hudson.slaves.JNLPLauncher")]),
        ))?;
        text(w, "webSocket", "true")?;
        w.write_event(Event::End(BytesStart::new("launcher").to_end()))?;
        text(w, "label", &n.labels.join(" "))?;
        w.write_event(Event::Empty(BytesStart::new("nodeProperties")))?;
        w.write_event(Event::End(BytesStart::new("slave").to_end()))
    };
    // invariant: writing into a Vec cannot fail.
    let _ = write(&mut w);
    String::from_utf8_lossy(&w.into_inner()).into_owned()
}

/// What an existing node's `config.xml` says about what halo manages:
/// (labels, executors, remote FS).
pub fn parse_node_config(xml: &str) -> (Vec<String>, Option<u32>, Option<String>) {
    let mut reader = Reader::from_str(xml);
    let mut depth = 0usize;
    // The top-level element being read and its text so far.
    let mut current: Option<(String, String)> = None;
    let (mut labels, mut executors, mut remote) = (Vec::new(), None, None);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                current = (depth == 2).then(|| (e.name().as_ref().to_string(), String::new()));
            }
            Ok(Event::Text(t)) => {
                if let Some((_, text)) = &mut current {
                    text.push_str(&t.xml10_content());
                }
            }
            Ok(Event::GeneralRef(r)) => {
                if let Some((_, text)) = &mut current {
                    text.push_str(&ref_text(&r));
                }
            }
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                if let Some((tag, text)) = current.take() {
                    let value = text.trim();
                    match tag.as_str() {
                        "label" => labels = value.split_whitespace().map(str::to_string).collect(),
                        "numExecutors" => executors = value.parse().ok(),
                        "remoteFS" => remote = Some(value.to_string()),
                        _ => {}
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    labels.sort();
    (labels, executors, remote)
}

/// Whether the registered node already is what the configuration says.
pub fn node_matches(xml: &str, n: &NodeSpec) -> bool {
    let (labels, executors, remote) = parse_node_config(xml);
    let mut want = n.labels.clone();
    want.sort();
    labels == want
        && executors == Some(n.executors)
        && remote.as_deref() == Some(n.remote_fs.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_become_job_segments() {
        assert_eq!(
            job_segments("halo-acceptance").unwrap(),
            ["job", "halo-acceptance"]
        );
        assert_eq!(job_segments("a/b c").unwrap(), ["job", "a", "job", "b c"]);
        assert!(job_segments("a//b").is_err());
        assert!(job_segments("").is_err());
    }

    #[test]
    fn queue_locations() {
        assert_eq!(
            parse_queue_location("http://j:8080/queue/item/25/"),
            Some(25)
        );
        assert_eq!(parse_queue_location("http://j/ci/queue/item/7"), Some(7));
        assert_eq!(parse_queue_location("http://j/job/x/"), None);
    }

    #[test]
    fn results_map_to_exit_codes() {
        assert_eq!(result_exit_code("SUCCESS"), 0);
        assert_eq!(result_exit_code("UNSTABLE"), 1);
        assert_eq!(result_exit_code("FAILURE"), 1);
        assert_eq!(result_exit_code("ABORTED"), 2);
        assert_eq!(result_exit_code("NOT_BUILT"), 2);
    }

    #[test]
    fn the_secret_is_the_first_argument() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<jnlp codebase="http://j/computer/n/" spec="1.0+">
  <information><title>Agent for n</title></information>
  <application-desc main-class="hudson.remoting.jnlp.Main">
    <argument>0123abcdef</argument>
    <argument>n</argument>
    <argument>-webSocket</argument>
    <argument>-url</argument>
    <argument>http://j/</argument>
  </application-desc>
</jnlp>"#;
        assert_eq!(parse_jnlp_secret("n", xml).unwrap(), "0123abcdef");
        assert!(parse_jnlp_secret("n", "<jnlp/>").is_err());
        assert!(parse_jnlp_secret("n", &xml.replace("0123abcdef", "not hex!")).is_err());
    }

    #[test]
    fn node_config_round_trips() {
        let n = NodeSpec {
            name: "halo-01".into(),
            description: "rustedhalo <&>".into(),
            labels: vec!["halo-build".into(), "halo-acceptance".into()],
            executors: 2,
            remote_fs: "/var/lib/halo/jenkins".into(),
        };
        let xml = render_node_config(&n);
        assert!(
            xml.contains("<launcher class=\"hudson.slaves.JNLPLauncher\">"),
            "{xml}"
        );
        assert!(xml.contains("rustedhalo &lt;&amp;&gt;"), "{xml}");
        assert!(node_matches(&xml, &n));
        let (_, _, remote) = parse_node_config("<slave><remoteFS>/a&amp;b</remoteFS></slave>");
        assert_eq!(remote.as_deref(), Some("/a&b"));
        let mut more = n.clone();
        more.executors = 3;
        assert!(!node_matches(&xml, &more));
        let json = render_create_node_json(&n);
        assert_eq!(json["labelString"], "halo-build halo-acceptance");
        assert_eq!(json["launcher"]["webSocket"], true);
    }
}
