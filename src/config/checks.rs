//! Each value checked as the program that finally reads it checks it, not only by its YAML
//! type: one checker per grammar (an object name as the API server validates it, an image
//! reference as the container runtime parses it, a label name and a duration as Prometheus
//! and Alertmanager read them), reused by every key that has that grammar. Each error quotes
//! the value, says the rule and gives a value that works; the caller names the key.

use std::{collections::BTreeSet, sync::LazyLock};

use regex::Regex;

use super::{Config, Invalid, Resources, invalid};
use crate::versions;

/// Why `s` is not a DNS-1123 label (lower-case letters, digits and `-`, alphanumeric at both
/// ends) of at most `max` characters, if it is not.
fn label_fault(s: &str, max: usize) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".into());
    }
    if let Some(c) = s.chars().find(|c| c.is_ascii_uppercase()) {
        return Some(format!("it has an upper-case letter ({c:?})"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!("{c:?} is not a lower-case letter, a digit or '-'"));
    }
    if s.len() > max {
        return Some(format!("it is {} characters long, at most {max}", s.len()));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("it starts or ends with '-'".into());
    }
    None
}

/// Why `s` is not a DNS-1123 subdomain (dot-separated labels) of at most `max` characters.
/// The API server bounds the whole name only, not each label (a 64-character Secret name is
/// one).
pub(super) fn subdomain_fault(s: &str, max: usize) -> Option<String> {
    if s.len() > max {
        return Some(format!("it is {} characters long, at most {max}", s.len()));
    }
    if !s.is_empty() && s.split('.').any(str::is_empty) {
        return Some("it starts or ends with '.', or has two in a row".into());
    }
    s.split('.').find_map(|part| label_fault(part, max))
}

/// The name of an object of `kind` as the API server validates most (a DNS-1123 subdomain:
/// a Secret's, a StorageClass', a PriorityClass'); `example` is one that works.
pub(super) fn object_name(kind: &str, s: &str, example: &str) -> Result<(), String> {
    match subdomain_fault(s, 253) {
        None => Ok(()),
        Some(why) => Err(format!(
            "{s:?} is not a {kind} name: {why}; a {kind} name is lower-case letters, digits, '-' \
             and '.', alphanumeric at both ends, at most 253 characters, e.g. {example}"
        )),
    }
}

/// A namespace name as the API server validates it (a DNS-1123 label).
pub(super) fn namespace_name(s: &str) -> Result<(), String> {
    match label_fault(s, 63) {
        None => Ok(()),
        Some(why) => Err(format!(
            "{s:?} is not a namespace name: {why}; a namespace name is lower-case letters, \
             digits and '-', alphanumeric at both ends, at most 63 characters, e.g. monitoring"
        )),
    }
}

/// What the operator puts after the stack's namespace to name the kubelet's Service in
/// kube-system (`--kubelet-service`); a Service name is a DNS-1035 label of at most 63.
const KUBELET_SERVICE_SUFFIX: &str = "-kubelet";

/// The stack's own namespace: a namespace name that also makes a Service name of
/// `<namespace>-kubelet` (a DNS-1035 label: it starts with a letter, at most 63 characters).
pub(super) fn stack_namespace(s: &str) -> Result<(), String> {
    namespace_name(s)?;
    let service = format!("{s}{KUBELET_SERVICE_SUFFIX}");
    let max = 63 - KUBELET_SERVICE_SUFFIX.len();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) || s.len() > max {
        return Err(format!(
            "{s:?} cannot hold the stack: the operator names the kubelet's Service {service:?} in \
             kube-system, and a Service name starts with a letter and has at most 63 characters; \
             use a namespace that starts with a letter, at most {max} characters, e.g. monitoring"
        ));
    }
    Ok(())
}

/// Why `s` is not a label key as the API server validates one (`[prefix/]name`: the prefix a
/// DNS subdomain, the name at most 63 letters, digits, `-`, `_` and `.`, alphanumeric at both
/// ends), if it is not.
pub(super) fn label_key_fault(s: &str) -> Option<String> {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(why) = prefix.and_then(|p| subdomain_fault(p, 253).map(|why| (p, why))) {
        let (p, why) = why;
        return Some(format!("its prefix {p:?} is not a DNS subdomain: {why}"));
    }
    let why = if name.is_empty() {
        "its name is empty".to_string()
    } else if name.len() > 63 {
        format!("its name is {} characters long, at most 63", name.len())
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        format!("{c:?} is not a letter, a digit, '-', '_' or '.'")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        "its name does not start and end with a letter or digit".to_string()
    } else {
        return None;
    };
    Some(why)
}

/// A label key as the API server validates one (a node selector's, a label to select by).
pub(super) fn label_key(s: &str) -> Result<(), String> {
    match label_key_fault(s) {
        None => Ok(()),
        Some(why) => Err(format!(
            "{s:?} is not a valid label key: {why}; a label key is a name of at most 63 letters, \
             digits, '-', '_' and '.', alphanumeric at both ends, after an optional DNS \
             subdomain and '/', e.g. team or example.com/team"
        )),
    }
}

/// A label name as Prometheus and Alertmanager read one in their configurations and PromQL:
/// an ASCII letter or `_`, then letters, digits and `_`.
pub(super) fn prometheus_label_name(s: &str) -> Result<(), String> {
    let why = if s.is_empty() {
        Some("it is empty".to_string())
    } else if s.starts_with(|c: char| c.is_ascii_digit()) {
        Some("it starts with a digit".to_string())
    } else {
        s.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map(|c| format!("{c:?} is not a letter, a digit or '_'"))
    };
    match why {
        None => Ok(()),
        Some(why) => Err(format!(
            "{s:?} is not a label name: {why}; a label name is ASCII letters, digits and '_', \
             not starting with a digit, e.g. cluster or team_name"
        )),
    }
}

/// The units of a Prometheus duration, from the largest, and their milliseconds. Prometheus
/// (and Alertmanager, and the operator's `Duration` type) take each at most once, in this order.
const DURATION_UNITS: &[(&str, u64)] = &[
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A Prometheus duration (`30s`, `1h30m`, `15d`, or `0`) in milliseconds, as Prometheus and
/// Alertmanager parse one: whole numbers, units from the largest to the smallest, each once,
/// within what Prometheus can hold (2^63-1 ms).
pub(super) fn prometheus_duration_millis(s: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "{s:?} is not a duration: {why}; a duration is whole numbers each with a unit, from \
             the largest to the smallest, each once (y, w, d, h, m, s, ms), e.g. 30s, 5m, 1h30m, 15d"
        )
    };
    if s == "0" {
        return Ok(0);
    }
    if s.starts_with('-') {
        return Err(format!(
            "{s:?} is negative; durations are 0 or more, e.g. 30s, 5m"
        ));
    }
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    if s.contains(char::is_whitespace) {
        return Err(bad("it has spaces"));
    }
    let mut total: u64 = 0;
    let mut rest = s;
    let mut after = 0; // the index of the first unit still allowed
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(match rest.starts_with('.') {
                true => bad("only whole numbers: write 1h30m, not 1.5h"),
                false => bad("a unit without a number before it"),
            });
        }
        let number = &rest[..digits];
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(match rest.starts_with('.') {
                true => bad("only whole numbers: write 1h30m, not 1.5h"),
                false => bad(&format!("{number} has no unit")),
            });
        }
        let Some(index) = DURATION_UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(bad(&format!("{unit:?} is not a unit")));
        };
        if index < after {
            return Err(bad(&format!(
                "{unit:?} comes after a smaller or the same unit"
            )));
        }
        after = index + 1;
        let millis = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(DURATION_UNITS[index].1))
            .and_then(|ms| total.checked_add(ms))
            .filter(|ms| i64::try_from(*ms).is_ok());
        total = millis.ok_or_else(|| bad("it is longer than Prometheus can hold"))?;
    }
    Ok(total)
}

/// A Prometheus byte size (`retentionSize`) as the `Prometheus` CRD's `ByteSize` pattern and
/// Prometheus' own parser take it: `0`, or a number and one of `B`, `KB`…`EB`, `KiB`…`EiB`
/// (Prometheus reads KB and KiB alike as 1024 bytes), at most 2^63-1 bytes.
pub(super) fn prometheus_byte_size(s: &str) -> Result<(), String> {
    static BYTE_SIZE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:[0-9]*\.)?[0-9]+([KMGTPE]i?)?B$").expect("a valid pattern")
    });
    let bad = |why: &str| {
        format!(
            "{s:?} is not a size: {why}; a size is a number and a unit, B, KB, MB, GB, TB, PB, EB \
             (or KiB … EiB), e.g. 40GB, 512MB, 1.5TB"
        )
    };
    if s == "0" {
        return Ok(());
    }
    let Some(found) = BYTE_SIZE.captures(s) else {
        let why = match s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len() == s.len() {
            true => "it has no unit",
            false => "it is not a number followed by a unit",
        };
        return Err(bad(why));
    };
    let exponent = match found.get(1).map(|u| &u.as_str()[..1]) {
        None => 0,
        Some(unit) => 1 + "KMGTPE".find(unit).unwrap_or(0) as i32,
    };
    let number: f64 = s[..s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len())]
        .parse()
        .unwrap_or(f64::INFINITY);
    if number * 1024f64.powi(exponent) >= 2f64.powi(63) {
        return Err(bad("it is more bytes than Prometheus can count (2^63-1)"));
    }
    Ok(())
}

/// The value of a Kubernetes quantity (`500m`, `2Gi`, `1e3`, `-1`) as the API server parses
/// one: a signed decimal number and an optional suffix, binary (`Ki`…`Ei`), decimal (`n`, `u`,
/// `m`, `k`, `M`…`E`) or an exponent (`e3`, `E-2`). The number has a digit and nothing is
/// around it, as the operator's CRDs' pattern for quantities (Prometheus', Alertmanager's)
/// requires; the API server's own parser would also read `.`, `Gi` or `e3` as 0, and trims
/// spaces.
pub(super) fn quantity_value(s: &str) -> Result<f64, String> {
    static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([KMGTPE]i)|([numkMGTPE])|[eE]([+-]?[0-9]+))?$",
        )
        .expect("a valid pattern")
    });
    let bad = || {
        format!(
            "{s:?} is not a Kubernetes quantity: a number and an optional suffix (m, k, M, G, \
             Ki, Mi, Gi, …), e.g. 500m, 256Mi, 2Gi"
        )
    };
    let found = QUANTITY.captures(s).ok_or_else(bad)?;
    let number: f64 = found[1].parse().map_err(|_| bad())?;
    let scale = if let Some(binary) = found.get(2) {
        let power = 1 + "KMGTPE".find(&binary.as_str()[..1]).unwrap_or(0) as i32;
        1024f64.powi(power)
    } else if let Some(decimal) = found.get(3) {
        let power = match decimal.as_str() {
            "n" => -9,
            "u" => -6,
            "m" => -3,
            "k" => 3,
            other => 3 * (2 + "MGTPE".find(other).unwrap_or(0) as i32),
        };
        10f64.powi(power)
    } else if let Some(exponent) = found.get(4) {
        10f64.powi(exponent.as_str().parse().map_err(|_| bad())?)
    } else {
        1.0
    };
    Ok(number * scale)
}

/// A volume's size: a quantity above 0, as the API server requires of a claim's request.
pub(super) fn volume_size(s: &str) -> Result<(), String> {
    match quantity_value(s)? {
        v if v > 0.0 => Ok(()),
        _ => Err(format!(
            "{s:?} is no room at all; a PersistentVolumeClaim asks for more than 0, e.g. 50Gi"
        )),
    }
}

/// A container's requests and limits at `key` as the API server validates them: quantities,
/// none negative, no request above its limit.
pub(super) fn resources(key: &str, r: &Resources) -> Result<(), Invalid> {
    let (requests, limits) = (&r.requests, &r.limits);
    for (name, request, limit) in [
        ("cpu", &requests.cpu, &limits.cpu),
        ("memory", &requests.memory, &limits.memory),
    ] {
        let request = amount(&format!("{key}.requests.{name}"), request)?;
        let limit = amount(&format!("{key}.limits.{name}"), limit)?;
        if let (Some((asked, given)), Some((cap, capped))) = (request, limit)
            && asked > cap
        {
            return Err(invalid(
                &format!("{key}.requests.{name}"),
                format!(
                    "{given:?} is above the {name} limit ({capped}); the API server refuses a \
                     request above its limit: ask for {capped} or less, or raise \
                     {key}.limits.{name} too"
                ),
            ));
        }
    }
    Ok(())
}

/// `r`, automon's amounts with the user's over them, with each amount automon worked out moved
/// so that no request is above its limit, which the API server refuses (a Prometheus whose
/// StatefulSet the operator then cannot create): a worked-out limit rises to the user's
/// request, a worked-out request falls to the user's limit.
pub(super) fn keep_within_limits(r: &mut Resources, explicit: &Resources) {
    let value = |q: &Option<super::Quantity>| q.as_ref().and_then(|q| quantity_value(&q.0).ok());
    let (requests, limits) = (&mut r.requests, &mut r.limits);
    for (request, limit, given) in [
        (
            &mut requests.cpu,
            &mut limits.cpu,
            (&explicit.requests.cpu, &explicit.limits.cpu),
        ),
        (
            &mut requests.memory,
            &mut limits.memory,
            (&explicit.requests.memory, &explicit.limits.memory),
        ),
    ] {
        let above = matches!((value(request), value(limit)), (Some(a), Some(l)) if a > l);
        match given {
            (Some(_), None) if above => *limit = request.clone(),
            (None, Some(_)) if above => *request = limit.clone(),
            _ => {}
        }
    }
}

/// One amount at `at`: its value and its text, when given; a quantity of 0 or more.
fn amount<'a>(at: &str, q: &'a Option<super::Quantity>) -> Result<Option<(f64, &'a str)>, Invalid> {
    let Some(q) = q else { return Ok(None) };
    match quantity_value(&q.0).map_err(|p| invalid(at, p))? {
        v if v < 0.0 => Err(invalid(
            at,
            format!("{:?} is negative; give 0 or more, e.g. 100m or 128Mi", q.0),
        )),
        v => Ok(Some((v, q.0.as_str()))),
    }
}

/// A reference to an image as the container runtime parses one (the distribution reference
/// grammar): `[domain[:port]/]path[:tag][@digest]`, the path in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ImageReference<'a> {
    /// The registry, when the first part names one; Docker Hub otherwise.
    pub domain: Option<&'a str>,
    pub path: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    let component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    Regex::new(&format!(
        r"^(?:{component}(?:\.{component})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
    ))
    .expect("a valid pattern")
});
static PATH_COMPONENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").expect("a valid pattern")
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("a valid pattern"));
static DIGEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
        .expect("a valid pattern")
});

/// The most characters of an image's name (registry and path), as the runtime allows.
const IMAGE_NAME_MAX: usize = 255;

/// Whether the first part of a name is a registry to the runtime (it has a `.` or a port, or
/// is `localhost`); otherwise the whole name is a path on Docker Hub.
fn names_a_registry(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost"
}

/// `s` parsed as the container runtime parses an image reference, or why it cannot be.
pub(super) fn image_reference(s: &str) -> Result<ImageReference<'_>, String> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    if let Some(d) = digest.filter(|d| !DIGEST.is_match(d)) {
        return Err(format!(
            "the digest {d:?} is not an algorithm and hex digits, e.g. sha256: and 64 hex digits"
        ));
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag.filter(|t| !TAG.is_match(t)) {
        return Err(format!(
            "the tag {t:?} is not 1 to 128 letters, digits, '_', '.' and '-' (not starting with \
             '.' or '-')"
        ));
    }
    if name.len() > IMAGE_NAME_MAX {
        return Err(format!(
            "the name {name:?} is {} characters long, at most {IMAGE_NAME_MAX}",
            name.len()
        ));
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, path)) if names_a_registry(first) => (Some(first), path),
        _ => (None, name),
    };
    if let Some(d) = domain.filter(|d| !DOMAIN.is_match(d)) {
        return Err(format!(
            "the registry {d:?} is not a host name (letters, digits and '-' between dots) with \
             an optional :port"
        ));
    }
    if let Some(part) = path.split('/').find(|p| !PATH_COMPONENT.is_match(p)) {
        let why = match part.chars().any(|c| c.is_ascii_uppercase()) {
            true => "upper-case letters",
            false => "what is not lower-case letters and digits joined by '.', '_', '__' or '-'",
        };
        return Err(format!("the path component {part:?} of {name:?} has {why}"));
    }
    Ok(ImageReference {
        domain,
        path,
        tag,
        digest,
    })
}

/// `images.registry`: a registry host (and port, and a path under it) that every pinned image
/// moves under, checked by the reference each image then has, as the runtime reads it.
pub(super) fn image_registry(registry: &str) -> Result<(), String> {
    let example = "e.g. mirror.example.com, registry.local:5000 or mirror.example.com/quay";
    let first = registry.split('/').next().unwrap_or_default();
    if registry.is_empty() {
        return Err(format!(
            "it is empty; leave images.registry out to pull each image from its own registry, \
             or name a mirror, {example}"
        ));
    }
    if !names_a_registry(first) {
        return Err(format!(
            "{registry:?} does not start with a registry host: the container runtime reads a \
             first part without a '.' or a :port (and not localhost) as a path on Docker Hub, \
             so {:?} would be pulled from docker.io; {example}",
            versions::PROMETHEUS.image(Some(registry))
        ));
    }
    for c in versions::COMPONENTS {
        let image = c.image(Some(registry));
        let parsed = image_reference(&image).map_err(|why| {
            format!(
                "{registry:?} makes {}'s image {image:?}, which the container runtime refuses: \
                 {why}; {example}",
                c.name
            )
        })?;
        if parsed.domain != Some(first) {
            return Err(format!(
                "{registry:?} makes {}'s image {image:?}, whose registry the container runtime \
                 does not read as {first:?}; {example}",
                c.name
            ));
        }
    }
    Ok(())
}

/// The keys whose values only their YAML type checked before: the images, the external
/// labels, Alertmanager's grouping and intervals, the release a migration replaces.
pub(super) fn check(config: &Config) -> Result<(), Invalid> {
    if let Some(registry) = &config.images.registry {
        image_registry(registry).map_err(|p| invalid("images.registry", p))?;
    }
    for (i, name) in config.images.pull_secrets.iter().enumerate() {
        object_name("Secret", name, "registry-credentials")
            .map_err(|p| invalid(&format!("images.pullSecrets[{i}]"), p))?;
    }
    external_labels(config)?;
    group_by(&config.alertmanager.route.group_by)?;
    let route = &config.alertmanager.route;
    for (field, d) in [
        ("groupInterval", &route.group_interval),
        ("repeatInterval", &route.repeat_interval),
    ] {
        if d.millis() == Ok(0) {
            return Err(invalid(
                &format!("alertmanager.route.{field}"),
                format!("{d} is refused by Alertmanager, which needs it longer than 0, e.g. 5m"),
            ));
        }
    }
    // Either may be empty: each `--set` is checked as it comes, and `migration.release` and
    // `migration.namespace` are given one after the other (as `migrate` records them).
    if let Some(m) = &config.migration {
        if let Some(why) = Some(m.release.as_str())
            .filter(|r| !r.is_empty())
            .and_then(|r| subdomain_fault(r, 53))
        {
            return Err(invalid(
                "migration.release",
                format!(
                    "{:?} is not a Helm release name: {why}; a release name is lower-case \
                     letters, digits, '-' and '.', at most 53 characters, e.g. kps",
                    m.release
                ),
            ));
        }
        if !m.namespace.is_empty() {
            namespace_name(&m.namespace).map_err(|p| invalid("migration.namespace", p))?;
        }
    }
    Ok(())
}

/// The names the operator gives external labels of its own: it drops a user's label of the
/// same name without a word.
fn operator_external_labels(config: &Config) -> [&'static str; 2] {
    let replica = config
        .prometheus
        .preset_replica_label()
        .unwrap_or("prometheus_replica");
    ["prometheus", replica]
}

/// `prometheus.externalLabels`: names Prometheus takes (any UTF-8 text since Prometheus 3),
/// none it or the operator reserves, and a value to each (an empty value is no label).
fn external_labels(config: &Config) -> Result<(), Invalid> {
    const KEY: &str = "prometheus.externalLabels";
    for (name, value) in &config.prometheus.external_labels {
        // Prometheus 3 takes any UTF-8 text as a label name (`topology.kubernetes.io/region`
        // too): it refuses only an empty one.
        if name.is_empty() {
            return Err(invalid(
                KEY,
                "a label with no name; name it, e.g. cluster: prod".into(),
            ));
        }
        if name.starts_with("__") {
            return Err(invalid(
                KEY,
                format!(
                    "{name:?} starts with \"__\", which Prometheus reserves for its own labels; \
                     name it without, e.g. cluster"
                ),
            ));
        }
        if operator_external_labels(config).contains(&name.as_str()) {
            return Err(invalid(
                KEY,
                format!(
                    "{name:?} is a label the operator sets itself on every series (the Prometheus \
                     or its replica), and it would drop yours without a word; choose another \
                     name, e.g. cluster"
                ),
            ));
        }
        if value.is_empty() {
            return Err(invalid(
                &format!("{KEY}.{name}"),
                "empty: a label with an empty value is no label in Prometheus; give a value, e.g. \
                 prod, or leave the label out"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `alertmanager.route.groupBy` as Alertmanager reads `group_by`: label names, each once, or
/// `...` alone (every label).
fn group_by(labels: &[String]) -> Result<(), Invalid> {
    const KEY: &str = "alertmanager.route.groupBy";
    const ALL: &str = "...";
    if labels.iter().any(|l| l == ALL) && labels.len() > 1 {
        return Err(invalid(
            KEY,
            "\"...\" groups by every label and cannot stand beside other labels; give \"...\" \
             alone or label names only, e.g. [alertname, node]"
                .into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for l in labels.iter().filter(|l| *l != ALL) {
        prometheus_label_name(l).map_err(|p| invalid(KEY, p))?;
        if !seen.insert(l) {
            return Err(invalid(
                KEY,
                format!("{l:?} is given twice, which Alertmanager refuses; give each label once"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` times `c`.
    fn times(c: char, n: usize) -> String {
        std::iter::repeat_n(c, n).collect()
    }

    /// A DNS subdomain of exactly 253 characters: three labels of 63 and one of 61.
    fn longest_subdomain() -> String {
        format!(
            "{}.{}.{}.{}",
            times('a', 63),
            times('b', 63),
            times('c', 63),
            times('d', 61)
        )
    }

    #[test]
    fn object_names_as_the_api_server_validates_them() {
        let longest = longest_subdomain();
        assert_eq!(longest.len(), 253);
        for ok in [
            "a",
            "9",
            "team-hooks",
            "a.b-c.d",
            "a--b",
            &times('a', 63),
            &times('a', 64),
            &times('a', 253),
            &longest,
        ] {
            assert_eq!(object_name("Secret", ok, "x"), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("Team", "upper-case"),
            ("-a", "starts or ends with '-'"),
            ("a-", "starts or ends with '-'"),
            ("a_b", "'_' is not"),
            ("a b", "' ' is not"),
            ("a..b", "two in a row"),
            (".a", "starts or ends with '.'"),
            ("a.", "starts or ends with '.'"),
            ("ünï", "'ü' is not"),
            (&format!("{longest}e"), "254 characters long, at most 253"),
            (&times('a', 254), "254 characters long, at most 253"),
        ] {
            let e = object_name("StorageClass", bad, "standard").unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(
                e.starts_with(&format!("{bad:?} is not a StorageClass name")),
                "{e}"
            );
            assert!(e.contains("e.g. standard"), "{e}");
        }
    }

    #[test]
    fn namespaces_are_dns_labels_and_the_stacks_makes_a_service_name() {
        for ok in ["a", "monitoring", "1team", "a-1", &times('a', 63)] {
            assert_eq!(namespace_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Monitoring",
            "-a",
            "a-",
            "a.b",
            "a_b",
            "é",
            &times('a', 64),
        ] {
            let e = namespace_name(bad).unwrap_err();
            assert!(e.contains("is not a namespace name"), "{bad:?}: {e}");
        }
        for ok in ["automon", "monitoring", "a", &times('a', 55)] {
            assert_eq!(stack_namespace(ok), Ok(()), "{ok}");
        }
        for bad in ["1team", "0", &times('a', 56)] {
            let e = stack_namespace(bad).unwrap_err();
            assert!(e.contains("-kubelet"), "{bad:?}: {e}");
        }
        assert!(
            stack_namespace("Automon")
                .unwrap_err()
                .contains("upper-case")
        );
    }

    #[test]
    fn label_keys_as_the_api_server_validates_them() {
        let name63 = times('n', 63);
        let prefixed = format!("{}/{name63}", longest_subdomain());
        for ok in [
            "a",
            "team",
            "automon.io/exclude",
            "a.b-c/d_e.f",
            "Team_A",
            &name63,
            &prefixed,
        ] {
            assert_eq!(label_key(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "its name is empty"),
            ("a/", "its name is empty"),
            ("/x", "its prefix \"\""),
            ("-a", "does not start and end"),
            ("a_", "does not start and end"),
            ("a b", "' ' is not"),
            ("ä", "'ä' is not"),
            ("Upper.Case/x", "upper-case"),
            ("a/b/c", "'/' is not"),
            (&format!("{name63}n"), "64 characters long, at most 63"),
            (
                &format!("{}e/x", longest_subdomain()),
                "254 characters long",
            ),
        ] {
            let e = label_key(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.contains("e.g. team"), "{e}");
        }
    }

    #[test]
    fn label_names_as_prometheus_and_alertmanager_read_them() {
        for ok in ["a", "_", "__name__", "cluster", "team_name", "A1", "_x9"] {
            assert_eq!(prometheus_label_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("1x", "starts with a digit"),
            ("a-b", "'-' is not"),
            ("a.b", "'.' is not"),
            ("a b", "' ' is not"),
            ("équipe", "'é' is not"),
        ] {
            let e = prometheus_label_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.contains("e.g. cluster"), "{e}");
        }
    }

    #[test]
    fn durations_as_prometheus_parses_them() {
        for (ok, ms) in [
            ("0", 0),
            ("0s", 0),
            ("0m", 0),
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("15d", 1_296_000_000),
            ("2w", 1_209_600_000),
            ("1y", 31_536_000_000),
            ("1y2w3d4h5m6s7ms", 33_019_506_007),
            ("9223372036854775807ms", 9_223_372_036_854_775_807),
        ] {
            assert_eq!(prometheus_duration_millis(ok), Ok(ms), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("5", "5 has no unit"),
            ("m5", "a unit without a number"),
            ("5x", "\"x\" is not a unit"),
            ("5M", "\"M\" is not a unit"),
            ("-1m", "negative"),
            ("1.5h", "not 1.5h"),
            ("1h.5m", "not 1.5h"),
            ("1m1h", "\"h\" comes after a smaller"),
            ("5m5m", "\"m\" comes after a smaller or the same"),
            ("1ms1s", "\"s\" comes after"),
            (" 5m", "spaces"),
            ("5m ", "spaces"),
            ("1 h", "spaces"),
            ("9223372036854775808ms", "longer than Prometheus can hold"),
            ("300000000y", "longer than Prometheus can hold"),
            ("99999999999999999999s", "longer than Prometheus can hold"),
        ] {
            let e = prometheus_duration_millis(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn byte_sizes_as_the_prometheus_crd_and_prometheus_take_them() {
        for ok in [
            "0", "0B", "100B", "40GB", "512MB", "1.5TB", ".5GB", "1KB", "1KiB", "512MiB", "2EiB",
            "7EB", "7.99EB",
        ] {
            assert_eq!(prometheus_byte_size(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "no unit"),
            ("40", "no unit"),
            ("40G", "not a number followed by a unit"),
            ("GB", "not a number"),
            ("-1GB", "not a number"),
            ("1.GB", "not a number"),
            ("40gb", "not a number"),
            ("1kB", "not a number"),
            ("40iB", "not a number"),
            ("40 GB", "not a number"),
            ("8EB", "more bytes than Prometheus can count"),
            ("9000PB", "more bytes than Prometheus can count"),
        ] {
            let e = prometheus_byte_size(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.contains("e.g. 40GB"), "{e}");
        }
    }

    #[test]
    fn quantities_as_the_api_server_parses_them() {
        for (ok, value) in [
            ("0", 0.0),
            ("1", 1.0),
            ("500m", 0.5),
            ("2Gi", 2.0 * 1024f64.powi(3)),
            ("1.5", 1.5),
            (".5", 0.5),
            ("1.", 1.0),
            ("+1", 1.0),
            ("-1", -1.0),
            ("1e3", 1000.0),
            ("1E-2", 0.01),
            ("100n", 100e-9),
            ("10u", 10e-6),
            ("1k", 1000.0),
            ("1M", 1e6),
            ("1G", 1e9),
            ("1E", 1e18),
            ("1Ei", 1024f64.powi(6)),
        ] {
            let got = quantity_value(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!((got - value).abs() <= value.abs() * 1e-12, "{ok}: {got}");
        }
        for bad in [
            "", "lots", "1K", "1ki", "1 Gi", "1Gi ", " 1", "1.2.3", "1e", "1e+", "1e1.5", "1Mi3",
            ".", "+", "Gi", "e3", "1GB", "١", "0x10", "+-1", "1..",
        ] {
            let e = quantity_value(bad).unwrap_err();
            assert!(e.contains("is not a Kubernetes quantity"), "{bad:?}: {e}");
        }
        assert_eq!(volume_size("50Gi"), Ok(()));
        for bad in ["0", "-1Gi", "0Gi"] {
            assert!(
                volume_size(bad).unwrap_err().contains("more than 0"),
                "{bad}"
            );
        }
    }

    #[test]
    fn requests_stay_within_limits_as_the_api_server_requires() {
        let r = |request: &str, limit: &str| Resources {
            requests: super::super::Amounts {
                cpu: None,
                memory: Some(super::super::Quantity(request.into())),
            },
            limits: super::super::Amounts {
                cpu: None,
                memory: Some(super::super::Quantity(limit.into())),
            },
        };
        for (request, limit) in [
            ("128Mi", "256Mi"),
            ("256Mi", "256Mi"),
            ("1Gi", "1073741824"),
        ] {
            assert_eq!(resources("x", &r(request, limit)), Ok(()), "{request}");
        }
        let (key, e) = resources("x", &r("512Mi", "256Mi")).unwrap_err();
        assert_eq!(key, "x.requests.memory");
        assert!(e.contains("above the memory limit (256Mi)"), "{e}");
        let (key, e) = resources("x", &r("-1", "256Mi")).unwrap_err();
        assert_eq!(key, "x.requests.memory");
        assert!(e.contains("negative"), "{e}");
    }

    /// What automon sizes yields to what the user wrote where the two would put a request
    /// above its limit; what the user wrote is never changed.
    #[test]
    fn sized_amounts_yield_so_that_no_request_is_above_its_limit() {
        let q = |s: &str| Some(super::super::Quantity(s.into()));
        let amounts = |cpu: Option<&str>, memory: Option<&str>| super::super::Amounts {
            cpu: cpu.and_then(q),
            memory: memory.and_then(q),
        };
        let sized = Resources {
            requests: amounts(Some("300m"), Some("1Gi")),
            limits: amounts(Some("1"), Some("2Gi")),
        };
        let cases = [
            // A request above the sized limit raises the limit to it.
            (
                (Some("2"), Some("64Gi")),
                (None, None),
                (("2", "64Gi"), ("2", "64Gi")),
            ),
            // A limit below the sized request lowers the request to it.
            (
                (None, None),
                (Some("100m"), Some("512Mi")),
                (("100m", "512Mi"), ("100m", "512Mi")),
            ),
            // Within the limits, nothing moves.
            (
                (Some("500m"), None),
                (None, Some("4Gi")),
                (("500m", "1Gi"), ("1", "4Gi")),
            ),
            // Both given: the user's own pair stands (and validation refuses it if wrong).
            (
                (None, Some("8Gi")),
                (None, Some("4Gi")),
                (("300m", "8Gi"), ("1", "4Gi")),
            ),
        ];
        for ((cpu, memory), (cpu_limit, memory_limit), (want_requests, want_limits)) in cases {
            let explicit = Resources {
                requests: amounts(cpu, memory),
                limits: amounts(cpu_limit, memory_limit),
            };
            let r = sized.overlaid(&explicit);
            let text = |a: &super::super::Amounts| {
                let t =
                    |q: &Option<super::super::Quantity>| q.clone().map(|q| q.0).unwrap_or_default();
                (t(&a.cpu), t(&a.memory))
            };
            let pair = |(c, m): (&str, &str)| (c.to_string(), m.to_string());
            assert_eq!(text(&r.requests), pair(want_requests), "{explicit:?}");
            assert_eq!(text(&r.limits), pair(want_limits), "{explicit:?}");
        }
    }

    #[test]
    fn image_references_as_the_container_runtime_parses_them() {
        let digest = format!("sha256:{}", times('a', 64));
        let tag128 = format!("a{}", times('b', 127));
        let long_name = format!("r.io/{}", times('a', 250));
        for (ok, domain, path) in [
            (
                "quay.io/prometheus/prometheus:v3.16.0",
                Some("quay.io"),
                "prometheus/prometheus",
            ),
            ("nginx", None, "nginx"),
            ("library/nginx:1.27", None, "library/nginx"),
            ("localhost/x", Some("localhost"), "x"),
            ("localhost:5000/a/b:t", Some("localhost:5000"), "a/b"),
            ("[::1]:5000/a:b", Some("[::1]:5000"), "a"),
            ("Reg.Example.com/a", Some("Reg.Example.com"), "a"),
            (
                "r.io/a__b/c-d/e---f.g_h:T_a.g-1",
                Some("r.io"),
                "a__b/c-d/e---f.g_h",
            ),
            (&format!("r.io/a@{digest}"), Some("r.io"), "a"),
            (&format!("r.io/a:{tag128}"), Some("r.io"), "a"),
            (&long_name, Some("r.io"), &long_name[5..]),
        ] {
            let got = image_reference(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!((got.domain, got.path), (domain, path), "{ok}");
        }
        for (bad, why) in [
            ("quay.io/Prometheus/prometheus", "upper-case"),
            ("quay.io/a/b:", "the tag \"\""),
            (&format!("r.io/a:{tag128}c"), "the tag"),
            ("r.io/a:.x", "the tag"),
            ("r.io/a:tàg", "the tag"),
            ("r.io/a@sha256:abc", "the digest"),
            ("r.io/a b", "path component"),
            ("reg_istry.io/a", "the registry"),
            ("-reg.io/a", "the registry"),
            ("r.io:port/a", "the registry"),
            ("r.io/a..b", "path component"),
            ("r.io/a_-b", "path component"),
            ("r.io//a", "path component \"\""),
            ("r.io/prométheus", "path component"),
            (&format!("{long_name}a"), "256 characters long, at most 255"),
        ] {
            let e = image_reference(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_registry_override_keeps_every_pinned_image_a_reference() {
        for ok in [
            "mirror.example.com",
            "registry.local:5000",
            "localhost",
            "localhost:5000",
            "mirror.example.com/quay",
            "mirror.example.com/",
            "[::1]:5000",
        ] {
            assert_eq!(image_registry(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("mirror", "Docker Hub"),
            ("myorg/mirror", "Docker Hub"),
            ("mirror.example.com/Quay", "upper-case"),
            ("mirror.example.com:port", "the registry"),
            ("https://mirror.example.com", "the registry"),
            ("mirror .example.com", "the registry"),
            ("mirror.example.com//x", "path component"),
            (
                "mirror.example.com:5000/proxy:1",
                "path component \"proxy:1\"",
            ),
            (
                &format!("mirror.example.com/{}", times('a', 200)),
                "at most 255",
            ),
        ] {
            let e = image_registry(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.contains("e.g. mirror.example.com"), "{e}");
        }
        // The pinned images themselves are references the runtime takes.
        for c in versions::COMPONENTS {
            let image = c.image(None);
            let parsed = image_reference(&image).unwrap_or_else(|e| panic!("{image}: {e}"));
            assert_eq!(parsed.domain, Some(c.registry), "{image}");
        }
    }

    /// Each key with a grammar, through `--set`: the values refused (the error names the key)
    /// and the values accepted. The grammars' own edge cases are in the tests above.
    #[test]
    fn each_key_refuses_what_its_consumer_would_and_takes_what_it_would() {
        let long = |n| times('a', n);
        let ns55 = format!("namespace={}", long(55));
        let ns56 = format!("namespace={}", long(56));
        let hook = "webhook: {url: 'https://hooks.example.com/t'}";
        let keys: &[(&str, &[&str], &[&str])] = &[
            (
                "namespace",
                &[
                    "namespace=Automon",
                    "namespace=1team",
                    &ns56,
                    "namespace=a.b",
                ],
                &["namespace=monitoring", &ns55],
            ),
            (
                "images.registry",
                &[
                    "images.registry=mirror",
                    "images.registry=mirror.example.com/Quay",
                    "images.registry=https://mirror.example.com",
                    "images.registry=''",
                ],
                &[
                    "images.registry=mirror.example.com",
                    "images.registry=registry.local:5000/quay",
                ],
            ),
            (
                "images.pullSecrets[1]",
                &[
                    "images.pullSecrets=[regcred, Regcred]",
                    "images.pullSecrets=[regcred, '']",
                    "images.pullSecrets=[regcred, a_b]",
                ],
                &["images.pullSecrets=[regcred, mirror.pull]"],
            ),
            (
                "prometheus.retention",
                &[
                    "prometheus.retention=1.5h",
                    "prometheus.retention=0",
                    "prometheus.retention=5d5d",
                ],
                &["prometheus.retention=1y", "prometheus.retention=36h30m"],
            ),
            (
                "prometheus.scrapeInterval",
                &[
                    "prometheus.scrapeInterval=30",
                    "prometheus.scrapeInterval=0s",
                ],
                &[
                    "prometheus.scrapeInterval=15s",
                    "prometheus.scrapeInterval=500ms",
                ],
            ),
            (
                "prometheus.evaluationInterval",
                &[
                    "prometheus.evaluationInterval=1m30",
                    "prometheus.evaluationInterval=' 1m'",
                ],
                &["prometheus.evaluationInterval=1m30s"],
            ),
            (
                "prometheus.retentionSize",
                &[
                    "prometheus.retentionSize=40G",
                    "prometheus.retentionSize=8EB",
                    "prometheus.retentionSize=40gb",
                ],
                &[
                    "prometheus.retentionSize=40GB",
                    "prometheus.retentionSize=1.5TiB",
                ],
            ),
            (
                "prometheus.storage.size",
                &[
                    "prometheus.storage.size=0",
                    "prometheus.storage.size=-5Gi",
                    "prometheus.storage.size=50GB",
                ],
                &[
                    "prometheus.storage.size=50Gi",
                    "prometheus.storage.size=1e11",
                ],
            ),
            (
                "alertmanager.storage.storageClass",
                &[
                    "alertmanager.storage.storageClass=Fast",
                    "alertmanager.storage.storageClass=fast_ssd",
                ],
                &["alertmanager.storage.storageClass=fast-ssd"],
            ),
            (
                "prometheus.resources.requests.cpu",
                &[
                    "prometheus.resources.requests.cpu=1 core",
                    "prometheus.resources.requests.cpu=-1",
                ],
                &[
                    "prometheus.resources.requests.cpu=1500m",
                    "prometheus.resources.requests.cpu=0.5",
                ],
            ),
            (
                "grafana.resources.requests.memory",
                &[
                    "grafana.resources.requests.memory=512Mi",
                    "grafana.resources.requests.memory=1G",
                ],
                &["grafana.resources.requests.memory=256Mi"],
            ),
            (
                "alertmanager.resources.requests.memory",
                &["alertmanager.resources.limits.memory=32Mi"],
                &["alertmanager.resources.limits.memory=64Mi"],
            ),
            (
                "nodeExporter.resources.limits.memory",
                &["nodeExporter.resources.limits.memory=64MB!"],
                &["nodeExporter.resources.limits.memory=64M"],
            ),
            (
                "prometheus.externalLabels",
                &[
                    "prometheus.externalLabels={__x: a}",
                    "prometheus.externalLabels={'': a}",
                    "prometheus.externalLabels={prometheus: x}",
                    "prometheus.externalLabels={prometheus_replica: x}",
                ],
                &[
                    "prometheus.externalLabels={cluster: prod, region: eu-1, team: équipe}",
                    "prometheus.externalLabels={topology.kubernetes.io/region: eu-1, 1x: a}",
                ],
            ),
            (
                "prometheus.externalLabels.cluster",
                &["prometheus.externalLabels={cluster: ''}"],
                &[],
            ),
            (
                "prometheus.select.namespaces",
                &["prometheus.select.namespaces=[team-a, Team-B]"],
                &["prometheus.select.namespaces=[team-a, '1b']"],
            ),
            (
                "alertmanager.route.groupBy",
                &[
                    "alertmanager.route.groupBy=['...', node]",
                    "alertmanager.route.groupBy=[node, node]",
                    "alertmanager.route.groupBy=[node-name]",
                    "alertmanager.route.groupBy=['']",
                ],
                &[
                    "alertmanager.route.groupBy=['...']",
                    "alertmanager.route.groupBy=[]",
                    "alertmanager.route.groupBy=[alertname, namespace]",
                ],
            ),
            (
                "alertmanager.route.groupInterval",
                &[
                    "alertmanager.route.groupInterval=0s",
                    "alertmanager.route.groupInterval=5",
                ],
                &["alertmanager.route.groupInterval=1m"],
            ),
            (
                "alertmanager.route.repeatInterval",
                &[
                    "alertmanager.route.repeatInterval=0",
                    "alertmanager.route.repeatInterval=4h1h",
                ],
                &["alertmanager.route.repeatInterval=12h"],
            ),
            (
                "alertmanager.route.groupWait",
                &["alertmanager.route.groupWait=30 s"],
                &["alertmanager.route.groupWait=0s"],
            ),
            (
                "alerts.highCpu.for",
                &["alerts.highCpu.for=1.5m", "alerts.highCpu.for=15min"],
                &["alerts.highCpu.for=1m30s", "alerts.highCpu.for=0"],
            ),
            (
                "alertmanager.route.overrides[0].match",
                &["alertmanager.route.overrides=[{match: {team.name: a}, receiver: ui-only}]"],
                &["alertmanager.route.overrides=[{match: {team_name: a}, receiver: ui-only}]"],
            ),
            (
                "grafana.priorityClassName",
                &["grafana.priorityClassName=High"],
                &["grafana.priorityClassName=system-cluster-critical"],
            ),
            (
                "nodeExporter.excludeLabel",
                &[
                    "nodeExporter.excludeLabel=Example.com/skip",
                    "nodeExporter.excludeLabel=skip/",
                    "nodeExporter.excludeLabel=-skip",
                ],
                &["nodeExporter.excludeLabel=example.com/skip"],
            ),
            (
                "migration.release",
                &["migration={release: KPS, namespace: monitoring}"],
                &[
                    "migration={release: kps, namespace: monitoring}",
                    // One key at a time, as two `--set`s give them.
                    "migration={release: kps}",
                    "migration={namespace: monitoring}",
                ],
            ),
            (
                "migration.namespace",
                &["migration={release: kps, namespace: Monitoring}"],
                &[],
            ),
        ];
        for (key, refused, accepted) in keys {
            for set in *refused {
                let e = Config::default()
                    .with_set(set)
                    .expect_err(&format!("{set} was accepted"));
                assert_eq!(&e.key, key, "{set}: {e}");
                assert!(e.to_string().contains(&format!(": {key}: ")), "{set}: {e}");
            }
            for set in *accepted {
                if let Err(e) = Config::default().with_set(set) {
                    panic!("{set} was refused: {e}");
                }
            }
        }
        let secret_key = |key: &str| {
            Config::default().with_set(&format!(
                "alertmanager.receivers=[{{name: r, {hook}, slack: {{apiUrlSecret: {{secret: s, key: '{key}'}}, channel: '#a'}}}}]"
            ))
        };
        for bad in [".", "..", "..x", "a/b"] {
            let e = secret_key(bad).unwrap_err();
            assert_eq!(
                e.key, "alertmanager.receivers[0].slack.apiUrlSecret.key",
                "{e}"
            );
        }
        for ok in ["url", "a..b", ".hidden", "slack.url"] {
            secret_key(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    /// The error through the loaders names the key path, quotes the value and says the rule,
    /// from `--set` as from a file (with its line).
    #[test]
    fn the_loaders_errors_name_the_key_path() {
        let e = Config::default()
            .with_set("prometheus.externalLabels.__x=a")
            .unwrap_err();
        assert_eq!(
            e.to_string().split(" reserves").next(),
            Some(
                "--set prometheus.externalLabels.__x=a: prometheus.externalLabels: \"__x\" starts with \"__\", which Prometheus"
            ),
            "{e}"
        );
        let e = Config::from_yaml(
            "images:\n  registry: mirror\nprometheus:\n  retention: 15d\n",
            "automon.yaml",
        )
        .unwrap_err();
        assert_eq!(e.origin, "automon.yaml line 2");
        assert_eq!(e.key, "images.registry");
        assert!(
            e.problem
                .starts_with("\"mirror\" does not start with a registry host"),
            "{e}"
        );
        assert!(e.problem.contains("docker.io"), "{e}");
    }
}
