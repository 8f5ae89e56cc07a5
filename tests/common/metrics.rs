//! `GET /metrics` as the tests read it: one scrape parsed into `name{labels}` → value.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::http;

/// One scrape: `name{labels}` → value, labels as the server wrote them.
#[derive(Debug)]
pub struct Scrape {
    samples: HashMap<String, f64>,
    pub text: String,
}

impl Scrape {
    pub fn take(control: SocketAddr) -> Scrape {
        let response = http::get(control, "/metrics", None);
        assert_eq!(response.status, 200, "{}", response.text());
        let ct = response.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("application/openmetrics-text"), "content type {ct:?}");
        let text = response.text();
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample {l:?}"));
                (series.to_owned(), value.parse().unwrap_or_else(|_| panic!("value in {l:?}")))
            })
            .collect();
        Scrape { samples, text }
    }

    /// The sum of every sample of `name` whose labels include all of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut found = false;
        let mut total = 0.0;
        for (series, value) in &self.samples {
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series.as_str(), ""),
            };
            let matches = labels
                .iter()
                .all(|(k, v)| series_labels.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
            if series_name == name && matches {
                found = true;
                total += value;
            }
        }
        assert!(found, "no sample {name}{labels:?} in\n{}", self.text);
        total
    }
}
