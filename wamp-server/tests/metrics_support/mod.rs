//! A strict check of OpenMetrics text (the exposition format 1.0 as prometheus-client writes
//! it) that parses the samples for exact assertions, and an HTTP GET with reqwest.

#![allow(dead_code)] // each test file uses a different part of this module

use std::collections::HashMap;

/// The parsed samples of one scrape: `name{labels}` (labels as written) → value, and each
/// family's type.
#[derive(Debug, Default)]
pub struct Scrape {
    pub samples: HashMap<String, f64>,
    pub types: HashMap<String, String>,
}

impl Scrape {
    /// The value of a sample; panics when it is missing.
    pub fn get(&self, sample: &str) -> f64 {
        match self.samples.get(sample) {
            Some(v) => *v,
            None => panic!(
                "no sample {sample} in the scrape: {:?}",
                self.samples.keys()
            ),
        }
    }

    /// Every sample of a family whose name starts with `prefix`.
    pub fn matching(&self, prefix: &str) -> Vec<(&str, f64)> {
        let mut v: Vec<_> = self
            .samples
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') => s.parse().ok(),
        _ => None,
    }
}

/// Parses `{k="v",...}`; returns the labels and the rest of the line.
/// Label names and values, in order.
type Labels = Vec<(String, String)>;

fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("labels must start with {")?;
    let mut labels = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        if !labels.is_empty() {
            rest = rest
                .strip_prefix(',')
                .ok_or("labels must be separated by ,")?;
        }
        let eq = rest.find('=').ok_or("a label needs =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label values are quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err("newline in a label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _): &(String, String)| n == name) {
            return Err(format!("label {name} twice"));
        }
        labels.push((name.to_string(), value));
        rest = &rest[end + 1..];
    }
}

/// The suffixes a sample of a family of this type may have.
fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "gauge" | "unknown" | "stateset" => &[""],
        "histogram" => &["_bucket", "_sum", "_count", "_created"],
        "info" => &["_info"],
        _ => &[],
    }
}

/// Parses a scrape strictly: every line a valid comment or sample of a declared family,
/// `# EOF` last, no duplicate samples, histogram buckets cumulative and ending at `+Inf`
/// with the count. Panics with the offending line otherwise.
pub fn parse(text: &str) -> Scrape {
    assert!(
        text.ends_with("# EOF\n"),
        "the scrape must end with # EOF: {text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let mut scrape = Scrape::default();
    let mut described: HashMap<String, (bool, bool, bool)> = HashMap::new();
    let mut current: Option<String> = None;
    for (n, line) in lines.iter().enumerate() {
        let fail = |why: &str| -> ! { panic!("line {}: {why}: {line:?}\n{text}", n + 1) };
        if *line == "# EOF" {
            if n != lines.len() - 1 {
                fail("# EOF is not the last line");
            }
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
            let (Some(kind), Some(name)) = (kind, name) else {
                fail("a bare comment")
            };
            if !is_name(name) {
                fail("bad metric name");
            }
            let seen = described.entry(name.to_string()).or_default();
            match kind {
                "TYPE" => {
                    let t = rest.unwrap_or_else(|| fail("TYPE without a type"));
                    if suffixes(t).is_empty() {
                        fail("unknown type");
                    }
                    if seen.0 {
                        fail("TYPE twice");
                    }
                    seen.0 = true;
                    scrape.types.insert(name.to_string(), t.to_string());
                }
                "HELP" => {
                    if seen.1 {
                        fail("HELP twice");
                    }
                    seen.1 = true;
                }
                "UNIT" => {
                    let unit = rest.unwrap_or_else(|| fail("UNIT without a unit"));
                    if !name.ends_with(&format!("_{unit}")) {
                        fail("the family name must end with its unit");
                    }
                    seen.2 = true;
                }
                _ => fail("unknown comment"),
            }
            current = Some(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            fail("not a sample or a known comment");
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| fail("no value"));
        let name = &line[..name_end];
        if !is_name(name) {
            fail("bad sample name");
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).unwrap_or_else(|e| fail(&e))
        } else {
            (Vec::new(), &line[name_end..])
        };
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| fail("no space before the value"));
        if value.contains(' ') {
            fail("unexpected timestamp or exemplar");
        }
        let value = parse_value(value).unwrap_or_else(|| fail("bad value"));
        let family = current
            .clone()
            .unwrap_or_else(|| fail("a sample before any TYPE"));
        let kind = scrape
            .types
            .get(&family)
            .cloned()
            .unwrap_or_else(|| fail("family has no TYPE"));
        let suffix = name
            .strip_prefix(family.as_str())
            .unwrap_or_else(|| fail("sample of another family"));
        if !suffixes(&kind).contains(&suffix) {
            fail("suffix not allowed for the family's type");
        }
        if kind == "counter" && suffix == "_total" && value < 0.0 {
            fail("negative counter");
        }
        let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let key = if shown.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{}}}", shown.join(","))
        };
        if scrape.samples.insert(key, value).is_some() {
            fail("duplicate sample");
        }
    }
    for (family, kind) in &scrape.types {
        if kind != "histogram" {
            continue;
        }
        let mut buckets: Vec<(f64, f64)> = scrape
            .samples
            .iter()
            .filter_map(|(k, v)| {
                let le = k.strip_prefix(&format!("{family}_bucket{{le=\""))?;
                Some((
                    parse_value(le.trim_end_matches("\"}"))
                        .unwrap_or_else(|| panic!("bad le in {k}")),
                    *v,
                ))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        assert!(!buckets.is_empty(), "{family}: no buckets");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{family}: not cumulative"
        );
        let last = buckets.last().unwrap();
        assert_eq!(
            last.0,
            f64::INFINITY,
            "{family}: the last bucket must be +Inf"
        );
        assert_eq!(
            Some(&last.1),
            scrape.samples.get(&format!("{family}_count")),
            "{family}: +Inf != count"
        );
    }
    scrape
}

/// GETs a URL; returns the status, the content type and the body.
pub async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[test]
fn the_checker_refuses_bad_text() {
    let good =
        "# TYPE a counter\n# HELP a x.\na_total 1\n# TYPE b gauge\nb{k=\"v\\\"\"} 2.5\n# EOF\n";
    let s = parse(good);
    assert_eq!(s.get("a_total"), 1.0);
    assert_eq!(s.get("b{k=\"v\"\"}"), 2.5);
    for bad in [
        "# TYPE a counter\na_total 1\n",             // no EOF
        "# TYPE a counter\na_total 1\n# EOF\nx 1\n", // EOF not last
        "# TYPE a counter\na 1\n# EOF\n",            // counter without _total
        "# TYPE a gauge\na{k=v} 1\n# EOF\n",         // unquoted label
        "# TYPE a gauge\na 1 2 3\n# EOF\n",          // junk after the value
        "a 1\n# EOF\n",                              // no TYPE
        "# TYPE a gauge\na one\n# EOF\n",            // not a number
        "# TYPE a gauge\na 1\na 2\n# EOF\n",         // duplicate
        "# TYPE a counter\na_total -1\n# EOF\n",     // negative counter
        "# TYPE 1a gauge\n1a 1\n# EOF\n",            // bad name
    ] {
        assert!(
            std::panic::catch_unwind(|| parse(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
}
