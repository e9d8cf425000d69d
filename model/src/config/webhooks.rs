//! Webhook endpoints (`[[webhook]]`): where outputs are POSTed, which of them, how each
//! delivery is signed, timed out and retried (docs/webhooks.md).
//!
//! Secrets never come from this file: each endpoint names the environment variable
//! (`secret_env`) or the file (`secret_file`) that holds its `whsec_…` secret(s).

use super::{ConfigError, ConfigWarning};
use crate::output::{CaseEvent, DecisionKind};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The concrete event type of one output, as sent in the envelope's `type` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// `alert.raised`: an alert (alert.schema.json).
    AlertRaised,
    /// `decision.<kind>`, e.g. `decision.limit_decrease` (decision.schema.json).
    Decision(DecisionKind),
    /// `case.<event>`, e.g. `case.opened` (case.schema.json).
    Case(CaseEvent),
}

impl EventType {
    /// The type's name, e.g. `decision.freeze`.
    pub fn name(self) -> &'static str {
        match self {
            EventType::AlertRaised => "alert.raised",
            EventType::Decision(k) => match k {
                DecisionKind::LimitDecrease => "decision.limit_decrease",
                DecisionKind::LimitIncrease => "decision.limit_increase",
                DecisionKind::LimitRestore => "decision.limit_restore",
                DecisionKind::Freeze => "decision.freeze",
                DecisionKind::Unfreeze => "decision.unfreeze",
                DecisionKind::PriceIncrease => "decision.price_increase",
                DecisionKind::PriceRestore => "decision.price_restore",
            },
            EventType::Case(e) => match e {
                CaseEvent::Opened => "case.opened",
                CaseEvent::Updated => "case.updated",
                CaseEvent::Escalated => "case.escalated",
                CaseEvent::Closed => "case.closed",
            },
        }
    }

    /// Every event type: `alert.raised`, the seven decision kinds, the four case events.
    pub fn all() -> impl Iterator<Item = EventType> {
        std::iter::once(EventType::AlertRaised)
            .chain(DecisionKind::ALL.into_iter().map(EventType::Decision))
            .chain(
                [
                    CaseEvent::Opened,
                    CaseEvent::Updated,
                    CaseEvent::Escalated,
                    CaseEvent::Closed,
                ]
                .into_iter()
                .map(EventType::Case),
            )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of an endpoint's `events` list: an event type, or `decision.*` / `case.*`
/// for every type of that family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EventPattern {
    /// Exactly this type.
    Exact(EventType),
    /// `decision.*`: every decision kind.
    AnyDecision,
    /// `case.*`: every case event.
    AnyCase,
}

impl EventPattern {
    /// True when `t` is selected by this pattern.
    pub fn matches(self, t: EventType) -> bool {
        match self {
            EventPattern::Exact(e) => e == t,
            EventPattern::AnyDecision => matches!(t, EventType::Decision(_)),
            EventPattern::AnyCase => matches!(t, EventType::Case(_)),
        }
    }
}

impl TryFrom<String> for EventPattern {
    type Error = String;

    fn try_from(s: String) -> Result<EventPattern, String> {
        match s.as_str() {
            "decision.*" => return Ok(EventPattern::AnyDecision),
            "case.*" => return Ok(EventPattern::AnyCase),
            _ => {}
        }
        EventType::all()
            .find(|t| t.name() == s)
            .map(EventPattern::Exact)
            .ok_or_else(|| {
                format!(
                    "unknown event type \"{s}\" (alert.raised, decision.<kind>, decision.*, \
                     case.opened|updated|escalated|closed, case.*)"
                )
            })
    }
}

impl From<EventPattern> for String {
    fn from(p: EventPattern) -> String {
        match p {
            EventPattern::Exact(t) => t.name().to_string(),
            EventPattern::AnyDecision => "decision.*".to_string(),
            EventPattern::AnyCase => "case.*".to_string(),
        }
    }
}

/// Which strategies' shadow outputs (a challenger in shadow mode) an endpoint receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShadowFilter {
    /// Live outputs only: shadow outputs are never sent (a collection system must not act
    /// on them).
    #[default]
    Exclude,
    /// Live and shadow outputs.
    Include,
    /// Shadow outputs only (an analytics sink for a challenger).
    Only,
}

impl ShadowFilter {
    /// True when an output with this `shadow` flag passes the filter.
    pub fn admits(self, shadow: bool) -> bool {
        match self {
            ShadowFilter::Exclude => !shadow,
            ShadowFilter::Include => true,
            ShadowFilter::Only => shadow,
        }
    }
}

/// One webhook endpoint (`[[webhook]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The endpoint's name: 1–64 of `[A-Za-z0-9_-]`, unique. It keys the outbox and labels
    /// the delivery metrics (`endpoint`), so renaming an endpoint starts it afresh.
    pub name: String,
    /// Where events are POSTed: an `http://` or `https://` URL.
    pub url: String,
    /// The event types sent: `alert.raised`, `decision.<kind>` (`limit_decrease`,
    /// `limit_increase`, `limit_restore`, `freeze`, `unfreeze`, `price_increase`,
    /// `price_restore`), `decision.*`, `case.opened`, `case.updated`, `case.escalated`,
    /// `case.closed`, `case.*`. At least one.
    pub events: Vec<EventPattern>,
    /// Only outputs of these strategies (by name); every strategy when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategies: Option<Vec<String>>,
    /// Shadow outputs: `exclude` (the default: never sent), `include` or `only`.
    #[serde(default)]
    pub shadow: ShadowFilter,
    /// Name of the environment variable holding the signing secret(s). Exactly one of
    /// `secret_env` and `secret_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// A file holding the signing secret(s) (surrounding whitespace ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    /// How long one attempt may take, connecting included.
    #[serde(default = "default_timeout")]
    pub timeout: Millis,
    /// At most this many requests in flight to the endpoint at once (1–1024).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Attempts per event before it is dead-lettered (at least 1).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The first retry waits up to this long (full jitter), doubling per attempt.
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial: Millis,
    /// The backoff never grows beyond this (a `Retry-After` may ask for longer).
    #[serde(default = "default_backoff_max")]
    pub backoff_max: Millis,
    /// A PEM file of CA certificates that an `https` endpoint's certificate must chain to,
    /// instead of the public (Mozilla) roots: for a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

fn default_timeout() -> Millis {
    Millis(10_000)
}
fn default_concurrency() -> u32 {
    8
}
fn default_max_attempts() -> u32 {
    8
}
fn default_backoff_initial() -> Millis {
    Millis(500)
}
fn default_backoff_max() -> Millis {
    Millis(300_000)
}

impl WebhookConfig {
    /// An endpoint with the defaults: every field but the name, URL, events and secret.
    pub fn new(name: &str, url: &str, events: Vec<EventPattern>) -> WebhookConfig {
        WebhookConfig {
            name: name.to_string(),
            url: url.to_string(),
            events,
            strategies: None,
            shadow: ShadowFilter::default(),
            secret_env: None,
            secret_file: None,
            timeout: default_timeout(),
            concurrency: default_concurrency(),
            max_attempts: default_max_attempts(),
            backoff_initial: default_backoff_initial(),
            backoff_max: default_backoff_max(),
            ca_file: None,
        }
    }

    /// True when the endpoint takes an output of type `t` from `strategy` with this
    /// `shadow` flag.
    pub fn wants(&self, t: EventType, strategy: &str, shadow: bool) -> bool {
        self.shadow.admits(shadow)
            && self.events.iter().any(|p| p.matches(t))
            && self
                .strategies
                .as_ref()
                .is_none_or(|s| s.iter().any(|n| n == strategy))
    }

    /// What loads but probably is not meant, for endpoint `index` (`check-config` prints
    /// these).
    pub fn warnings(&self, index: usize) -> Vec<ConfigWarning> {
        let key = |k: &str| format!("webhook[{index}].{k}");
        let mut out = Vec::new();
        let cases = EventType::all()
            .filter(|t| matches!(t, EventType::Case(_)))
            .filter(|t| self.events.iter().any(|p| p.matches(*t)))
            .count();
        if (1..4).contains(&cases) {
            out.push(ConfigWarning::new(
                key("events"),
                "only some case event types: the endpoint sees gaps in each case's seq, which \
                 a receiver that orders by seq waits on; use \"case.*\"",
            ));
        }
        if cases > 0 && self.shadow != ShadowFilter::Exclude {
            out.push(ConfigWarning::new(
                key("shadow"),
                "shadow case events are sent: they are not live cases, and a collection system \
                 must not act on them",
            ));
        }
        let host = self
            .url
            .strip_prefix("http://")
            .map(|rest| rest.split(['/', ':', '?', '#']).next().unwrap_or(""));
        if host.is_some_and(|h| !matches!(h, "localhost" | "127.0.0.1" | "[::1]")) {
            out.push(ConfigWarning::new(
                key("url"),
                "plain http to another host: event bodies (customer data) travel unencrypted; \
                 use https",
            ));
        }
        out
    }

    /// Checks endpoint `index` of a config whose strategies are `strategy_names`; the error
    /// names the key (`webhook[0].url`).
    pub fn validate(
        &self,
        index: usize,
        strategy_names: &BTreeSet<&str>,
        names: &mut BTreeSet<String>,
    ) -> Result<(), ConfigError> {
        let key = |k: &str| format!("webhook[{index}].{k}");
        let n = &self.name;
        if n.is_empty()
            || n.len() > 64
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ConfigError::new(
                key("name"),
                format!("\"{n}\" must be 1–64 of [A-Za-z0-9_-]"),
            ));
        }
        if !names.insert(n.clone()) {
            return Err(ConfigError::new(
                key("name"),
                format!("\"{n}\" is used by two endpoints"),
            ));
        }
        check_url(&self.url).map_err(|reason| ConfigError::new(key("url"), reason))?;
        if self.events.is_empty() {
            return Err(ConfigError::new(
                key("events"),
                "must list at least one event type",
            ));
        }
        if let Some(strategies) = &self.strategies {
            if strategies.is_empty() {
                return Err(ConfigError::new(
                    key("strategies"),
                    "is empty: leave it out to take every strategy",
                ));
            }
            for (j, s) in strategies.iter().enumerate() {
                if !strategy_names.contains(s.as_str()) {
                    return Err(ConfigError::new(
                        key(&format!("strategies[{j}]")),
                        format!("\"{s}\" is not a configured strategy"),
                    ));
                }
            }
        }
        match (&self.secret_env, &self.secret_file) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(ConfigError::new(
                    key("secret_env"),
                    "exactly one of secret_env and secret_file must be set (the secret \
                     itself is never in the config)",
                ))
            }
            (Some(v), None) if v.is_empty() || v.contains('=') || v.contains('\0') => {
                return Err(ConfigError::new(
                    key("secret_env"),
                    format!("\"{v}\" is not an environment variable name"),
                ))
            }
            (None, Some(f)) if f.is_empty() => {
                return Err(ConfigError::new(key("secret_file"), "must not be empty"))
            }
            _ => {}
        }
        if self.timeout.ms() == 0 {
            return Err(ConfigError::new(key("timeout"), "must be positive"));
        }
        if !(1..=1024).contains(&self.concurrency) {
            return Err(ConfigError::new(
                key("concurrency"),
                format!("{} must be 1–1024", self.concurrency),
            ));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::new(key("max_attempts"), "must be at least 1"));
        }
        if self.backoff_initial.ms() == 0 {
            return Err(ConfigError::new(key("backoff_initial"), "must be positive"));
        }
        if self.backoff_max < self.backoff_initial {
            return Err(ConfigError::new(
                key("backoff_max"),
                format!(
                    "{} is less than backoff_initial ({})",
                    self.backoff_max, self.backoff_initial
                ),
            ));
        }
        if self.ca_file.as_ref().is_some_and(|f| f.is_empty()) {
            return Err(ConfigError::new(key("ca_file"), "must not be empty"));
        }
        if self.ca_file.is_some() && !self.url.starts_with("https://") {
            return Err(ConfigError::new(
                key("ca_file"),
                "applies to https:// URLs only",
            ));
        }
        Ok(())
    }
}

/// Checks that `url` is `http://` or `https://` with a host and no whitespace or userinfo.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("\"{url}\" must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.starts_with(':') {
        return Err(format!("\"{url}\" has no host"));
    }
    if authority.contains('@') {
        return Err("must not carry credentials (user:password@)".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("\"{url}\" contains whitespace"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const ENDPOINT: &str = r#"
[[webhook]]
name = "collections"
url = "https://collect.example/hooks"
events = ["case.*", "decision.freeze", "alert.raised"]
secret_env = "COLLECT_SECRET"
"#;

    #[test]
    fn an_endpoint_loads_with_its_defaults() {
        let c = Config::from_toml(ENDPOINT).unwrap();
        let w = &c.webhooks[0];
        assert_eq!(w.timeout, Millis(10_000));
        assert_eq!(w.concurrency, 8);
        assert_eq!(w.max_attempts, 8);
        assert_eq!(w.backoff_initial, Millis(500));
        assert_eq!(w.backoff_max, Millis(300_000));
        assert_eq!(w.shadow, ShadowFilter::Exclude);
        assert!(w.wants(EventType::Case(CaseEvent::Closed), "baseline", false));
        assert!(!w.wants(EventType::Case(CaseEvent::Closed), "baseline", true));
        assert!(w.wants(EventType::Decision(DecisionKind::Freeze), "baseline", false));
        assert!(!w.wants(
            EventType::Decision(DecisionKind::Unfreeze),
            "baseline",
            false
        ));
        assert!(Config::default().webhooks.is_empty());
    }

    #[test]
    fn every_event_type_name_round_trips() {
        for t in EventType::all() {
            let p = EventPattern::try_from(t.name().to_string()).unwrap();
            assert_eq!(p, EventPattern::Exact(t));
            assert_eq!(String::from(p), t.name());
        }
        assert_eq!(EventType::all().count(), 12);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                "events = [\"case.*\", \"case.reopened\"]",
                "webhook[0].events[1]",
            ),
            ("url = \"ftp://x\"", "webhook[0].url"),
            ("url = \"https://u:p@x\"", "webhook[0].url"),
            ("name = \"has space\"", "webhook[0].name"),
            ("secret_file = \"/run/s\"", "webhook[0].secret_env"),
            ("concurrency = 0", "webhook[0].concurrency"),
            ("max_attempts = 0", "webhook[0].max_attempts"),
            ("backoff_max = \"100ms\"", "webhook[0].backoff_max"),
            ("timeout = \"0s\"", "webhook[0].timeout"),
            ("strategies = [\"nope\"]", "webhook[0].strategies[0]"),
            ("secret = \"whsec_x\"", "webhook[0]"),
        ];
        for (line, want) in cases {
            let text = ENDPOINT
                .lines()
                .filter(|l| {
                    let k = line.split(" = ").next().unwrap();
                    !l.starts_with(&format!("{k} = "))
                })
                .collect::<Vec<_>>()
                .join("\n");
            let text = format!("{text}\n{line}\n");
            let err = Config::from_toml(&text).unwrap_err();
            assert!(err.key.starts_with(want), "{line}: {err}");
        }
        let two = format!("{ENDPOINT}{ENDPOINT}");
        let err = Config::from_toml(&two).unwrap_err();
        assert_eq!(err.key, "webhook[1].name");
    }

    /// The shipped config's commented `[[webhook]]` example loads, and every default it
    /// lists is the built-in one.
    #[test]
    fn the_shipped_example_endpoint_loads_with_the_defaults_it_states() {
        let start = crate::config::DEFAULT_CONFIG
            .find("# [[webhook]]")
            .expect("the shipped config documents [[webhook]]");
        let example: String = crate::config::DEFAULT_CONFIG[start..]
            .lines()
            .map_while(|l| l.strip_prefix("# "))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = Config::from_toml(&example).unwrap();
        let w = &c.webhooks[0];
        let defaults = WebhookConfig::new(&w.name, &w.url, w.events.clone());
        assert_eq!(
            (
                w.timeout,
                w.concurrency,
                w.max_attempts,
                w.backoff_initial,
                w.backoff_max
            ),
            (
                defaults.timeout,
                defaults.concurrency,
                defaults.max_attempts,
                defaults.backoff_initial,
                defaults.backoff_max
            )
        );
        assert_eq!(w.shadow, defaults.shadow);
    }

    #[test]
    fn partial_case_subscriptions_shadow_cases_and_plain_http_warn() {
        let mut w =
            WebhookConfig::new("x", "https://collect.example/", vec![EventPattern::AnyCase]);
        assert!(w.warnings(0).is_empty());
        w.events = vec![EventPattern::Exact(EventType::Case(CaseEvent::Opened))];
        w.shadow = ShadowFilter::Include;
        w.url = "http://collect.example/".into();
        let keys: Vec<String> = w.warnings(2).into_iter().map(|w| w.key).collect();
        assert_eq!(
            keys,
            ["webhook[2].events", "webhook[2].shadow", "webhook[2].url"]
        );
        w.url = "http://127.0.0.1:8088/".into();
        assert_eq!(w.warnings(0).len(), 2);
    }

    #[test]
    fn shadow_filters_admit_what_they_say() {
        assert!(ShadowFilter::Exclude.admits(false) && !ShadowFilter::Exclude.admits(true));
        assert!(ShadowFilter::Include.admits(false) && ShadowFilter::Include.admits(true));
        assert!(!ShadowFilter::Only.admits(false) && ShadowFilter::Only.admits(true));
    }
}
