//! Syntax of names: Prometheus label names, Kubernetes object names and label values.

/// Labels every generated series or alert carries; user labels must not collide with them.
pub const RESERVED_SERIES_LABELS: [&str; 5] =
    ["slo", "slo_namespace", "slo_service", "slo_uid", "le"];

/// Labels the burn-rate alerts add on top of the series labels.
pub const RESERVED_ALERT_LABELS: [&str; 4] = ["alertname", "long", "short", "burn_rate"];

/// A Prometheus label name that users may define: `[a-zA-Z_][a-zA-Z0-9_]*`, and not starting with
/// `__`, which Prometheus keeps for itself.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A Kubernetes label value: at most 63 characters, alphanumerics with `-`, `_` and `.` inside.
pub fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric())
}

/// A DNS-1123 subdomain, the syntax of most Kubernetes object names.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// A DNS-1123 label, the syntax of namespace names.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// `checkout-availability` -> `CheckoutAvailability`: the default alert name prefix. Characters
/// that cannot appear in an alert name split words; a leading digit gets an `Slo` prefix.
pub fn camel_case(name: &str) -> String {
    let camel: String = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    if camel.starts_with(|c: char| c.is_ascii_digit()) {
        format!("Slo{camel}")
    } else {
        camel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names() {
        for ok in ["route", "_x", "a1", "HTTP_code"] {
            assert!(is_label_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "__name__", "é", "a.b"] {
            assert!(!is_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn metric_names() {
        assert!(is_metric_name("http_requests_total"));
        assert!(is_metric_name("job:http_requests:rate5m"));
        assert!(!is_metric_name("1up"));
        assert!(!is_metric_name("a-b"));
    }

    #[test]
    fn label_values_and_dns_names() {
        assert!(is_label_value("checkout"));
        assert!(is_label_value("check.out_v2-a"));
        assert!(!is_label_value("-checkout"));
        assert!(!is_label_value("check out"));
        assert!(!is_label_value(&"a".repeat(64)));
        assert!(is_dns_subdomain("checkout.v2"));
        assert!(!is_dns_subdomain("Checkout"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(is_dns_label("shop"));
        assert!(!is_dns_label("shop.eu"));
    }

    #[test]
    fn camel_cases_object_names() {
        assert_eq!(camel_case("checkout-availability"), "CheckoutAvailability");
        assert_eq!(camel_case("api.v2-latency"), "ApiV2Latency");
        assert_eq!(camel_case("x"), "X");
        assert_eq!(camel_case("2fa-logins"), "Slo2faLogins");
    }
}
