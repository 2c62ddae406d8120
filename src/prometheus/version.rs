//! Which Prometheus answers: indicators over native histograms need Prometheus 3.
//!
//! Prometheus 2 has native histograms only behind `--enable-feature=native-histograms`, as an
//! experiment whose PromQL changed on the way to 3 (2.42, Debian's, has no custom-bucket
//! histograms at all); the generated rules are written for 3's. Storing them still takes a
//! switch in 3.x (the feature flag in early releases, the scrape setting
//! `scrape_native_histograms` later), which is the scrape configuration's business, not ours.
//! So an SLO with a native-histogram indicator is refused where the server says it is 2.x (or
//! 1.x). A version of another major, such as Thanos' 0.x, is not Prometheus' and is let through,
//! as is a server that names none.

use super::client::{Client, Error};

/// The first Prometheus release whose native-histogram PromQL the generated rules are written for.
pub const NATIVE_HISTOGRAMS_SINCE: &str = "3.0.0";

/// The server's version is below [`NATIVE_HISTOGRAMS_SINCE`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Prometheus at {url} is version {found}; indicator.nativeLatency needs Prometheus \
     {NATIVE_HISTOGRAMS_SINCE} or later (2.x has native histograms only behind \
     --enable-feature=native-histograms, as an experiment whose PromQL changed before 3): \
     upgrade Prometheus, or use indicator.latency with the classic histogram's _bucket series"
)]
pub struct TooOld {
    pub url: String,
    pub found: String,
}

/// True when `version` (such as `2.42.0` or `2.53.1-rc.0`) is a Prometheus release older than 3.
pub fn before_native_histograms(version: &str) -> bool {
    let major = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok());
    matches!(major, Some(1 | 2))
}

/// `Err` when the server at `client` says it is a Prometheus older than 3.
pub async fn check_native_histograms(client: &Client) -> Result<Result<(), TooOld>, Error> {
    Ok(match client.version().await? {
        Some(found) if before_native_histograms(&found) => Err(TooOld {
            url: client.url().to_string(),
            found,
        }),
        _ => Ok(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_is_too_old_three_and_others_are_not() {
        assert!(before_native_histograms("2.42.0"));
        assert!(before_native_histograms("2.55.1"));
        assert!(before_native_histograms("v2.53.0-rc.1"));
        assert!(!before_native_histograms("3.0.0"));
        assert!(!before_native_histograms("3.16.0"));
        // Thanos names its own version; not a Prometheus 2.
        assert!(!before_native_histograms("0.39.2"));
        assert!(!before_native_histograms(""));
    }

    #[test]
    fn the_message_names_found_and_needed() {
        let e = TooOld {
            url: "http://p:9090".into(),
            found: "2.42.0".into(),
        };
        let text = e.to_string();
        assert!(text.contains("version 2.42.0"), "{text}");
        assert!(text.contains("Prometheus 3.0.0 or later"), "{text}");
    }
}
