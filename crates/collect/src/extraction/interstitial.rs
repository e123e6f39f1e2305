//! Ban and captcha pages served with `200`, told apart from product pages by their
//! structure, and [`PageClassifier`], the client's classifier that applies it.
//!
//! A page is a ban page when (see [`ban_reason`]):
//!
//! - its `<title>` is one that bot walls use: "Just a moment...", "Attention Required!",
//!   "Access Denied", "Are you a robot?", "Robot Check", "Pardon Our Interruption",
//!   "Verify you are human", "Security Check", … (the title starts with the phrase);
//! - or it holds the elements of a challenge page: Cloudflare's `#challenge-form`,
//!   `#challenge-running`, `#cf-challenge-running`, `#cf-error-details`; PerimeterX's
//!   `#px-captcha`; a DataDome frame from `captcha-delivery.com`; an Imperva frame
//!   (`_Incapsula_Resource`);
//! - or it holds a captcha widget (reCAPTCHA `.g-recaptcha` or its frame, hCaptcha
//!   `.h-captcha` or its frame, Cloudflare Turnstile `.cf-turnstile`) and carries no
//!   product: a review form's captcha on a product page is not a ban;
//! - or one of its host's `ban` / `ban_titles` markers of the rule file shows.
//!
//! A page that merely says the word "captcha" in its text is none of these.

use std::sync::{Arc, LazyLock};

use harvester_proxypool::client::{Classifier, DefaultClassifier, FailureKind, Verdict};
use http::{HeaderMap, StatusCode};
use scraper::{Html, Selector};

use super::rules::Rules;
use super::{css, structured, visible};

/// Titles of bot walls, lower-case: a title that starts with one (followed by nothing, or
/// by a non-letter) is a ban page's.
const BAN_TITLES: [&str; 14] = [
    "just a moment",
    "attention required",
    "access denied",
    "access to this page has been denied",
    "are you a robot",
    "robot check",
    "pardon our interruption",
    "please verify you are a human",
    "verify you are human",
    "human verification",
    "security check",
    "one more step",
    "ddos-guard",
    "you have been blocked",
];

/// Elements only challenge and block pages have.
static CHALLENGE: LazyLock<Selector> = LazyLock::new(|| {
    css("#challenge-form, #challenge-running, #challenge-stage, #cf-challenge-running, #cf-error-details, \
         #px-captcha, iframe[src*='captcha-delivery.com'], script[src*='captcha-delivery.com'], \
         iframe[src*='_Incapsula_Resource']")
});

/// Captcha widgets, which legitimate forms also use.
static WIDGET: LazyLock<Selector> = LazyLock::new(|| {
    css(".g-recaptcha, iframe[src*='/recaptcha/'], .h-captcha, iframe[src*='hcaptcha.com'], .cf-turnstile")
});

/// Why `html`, a `2xx` page of `host`, is a ban or captcha page, if it is one.
pub fn ban_reason(rules: &Rules, host: &str, html: &str) -> Option<String> {
    ban_reason_of(rules, host, &Html::parse_document(html))
}

fn ban_reason_of(rules: &Rules, host: &str, document: &Html) -> Option<String> {
    let title = visible::title(document);
    if let Some(reason) = rules.for_host(host).and_then(|rule| rule.shows_ban(document, title.as_deref())) {
        return Some(reason);
    }
    if let Some(title) = &title {
        let lower = title.to_lowercase();
        let walls = |phrase: &&str| {
            lower.strip_prefix(*phrase).is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric()))
        };
        if BAN_TITLES.iter().any(walls) {
            return Some(format!("the title {title:?} is a bot wall's"));
        }
    }
    if document.select(&CHALLENGE).next().is_some() {
        return Some("the page holds a bot challenge".to_owned());
    }
    if document.select(&WIDGET).next().is_some() && !structured::read(document).has_product() {
        return Some("the page holds a captcha and no product".to_owned());
    }
    None
}

/// The job's classifier: the statuses of a [`DefaultClassifier`] (given, without markers),
/// then, for a success, the page's structure ([`ban_reason`]) with the rules of the
/// request's host. The one place a ban is decided: its [`Verdict`] travels with the page.
#[derive(Debug, Clone)]
pub struct PageClassifier {
    statuses: DefaultClassifier,
    rules: Arc<Rules>,
}

impl PageClassifier {
    /// Judges statuses as `statuses` does, and pages by their structure and `rules`.
    pub fn new(statuses: DefaultClassifier, rules: Arc<Rules>) -> Self {
        PageClassifier { statuses, rules }
    }

    fn judge(&self, host: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        let verdict = self.statuses.classify_response(status, headers, body);
        if verdict != Verdict::Success || !status.is_success() || body.is_empty() {
            return verdict;
        }
        match ban_reason(&self.rules, host, &String::from_utf8_lossy(body)) {
            Some(reason) => {
                tracing::debug!(host, reason, "a ban page");
                Verdict::Ban { retry_after: None }
            }
            None => verdict,
        }
    }
}

impl Classifier for PageClassifier {
    fn classify_response(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        self.judge("", status, headers, body)
    }

    fn classify_response_for_host(&self, host: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        self.judge(host, status, headers, body)
    }

    fn classify_failure(&self, kind: FailureKind) -> Verdict {
        self.statuses.classify_failure(kind)
    }
}

#[cfg(test)]
pub(super) fn constant_selectors() -> Vec<&'static Selector> {
    vec![&CHALLENGE, &WIDGET]
}
