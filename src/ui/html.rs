//! HTML building blocks: escaping, the page frame and its style sheet. Everything user-written
//! (names, descriptions, label values, YAML) reaches a page through [`escape`] only.

use std::fmt::Write;

/// Text made safe for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text made safe for one query-string value or path segment (RFC 3986 unreserved kept).
pub fn url_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A whole page: the frame, a title, and the body's HTML.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · Plimsoll</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\n\
         <header><a class=\"brand\" href=\"/ui\">Plimsoll</a> <span>error budgets</span></header>\n\
         <main id=\"main\" tabindex=\"-1\">\n{body}\n</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// The state's badge; the text says the state, the color only repeats it.
pub fn state_badge(state: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        escape(&state.to_lowercase()),
        escape(state)
    )
}

/// A horizontal bar for the budget left: full at 100%, empty at 0% or below.
pub fn budget_bar(remaining: Option<f64>) -> String {
    let Some(value) = remaining else {
        return "<span class=\"muted\">no data</span>".to_string();
    };
    let width = value.clamp(0.0, 100.0);
    let class = if value <= 0.0 {
        "out"
    } else if value < 25.0 {
        "low"
    } else {
        "ok"
    };
    format!(
        "<span class=\"bar\" role=\"img\" aria-label=\"{value:.1}% of the budget left\">\
         <span class=\"fill {class}\" style=\"width:{width:.1}%\"></span></span> \
         <span class=\"num\">{value:.1}%</span>"
    )
}

// Colors are picked for a contrast of at least 4.5:1 against their backgrounds (WCAG AA).
const STYLE: &str = "
:root{--fg:#1b1f24;--muted:#4f5863;--bg:#ffffff;--line:#c9d1d9;--accent:#0b5cad;--head:#f3f5f7}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:10px 20px;background:#14324f;color:#ffffff}
header .brand{color:#ffffff;font-weight:700;text-decoration:none;margin-right:8px}
header span{color:#dce6f0}
main{padding:16px 20px;max-width:1400px}
main:focus{outline:none}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid #d9480f;outline-offset:2px}
.skip{position:absolute;left:-9999px;top:0;background:#ffffff;color:var(--accent);padding:6px 10px}
.skip:focus{left:8px;top:8px;z-index:10}
h1{font-size:22px;margin:6px 0 10px}
h2{font-size:17px;margin:22px 0 8px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:middle}
th{background:var(--head);font-weight:600}
td.num,th.num,.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:var(--muted)}
.bar{display:inline-block;width:90px;height:10px;background:#e3e8ee;border:1px solid #8a96a3;vertical-align:middle}
.fill{display:block;height:100%}
.fill.ok{background:#1f7a3a}.fill.low{background:#b35900}.fill.out{background:#b3261e}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:13px;font-weight:600;border:1px solid}
.badge.healthy{color:#14632d;background:#e6f4ea;border-color:#14632d}
.badge.burning{color:#8a4500;background:#fff4e5;border-color:#8a4500}
.badge.exhausted{color:#9b1c15;background:#fdecea;border-color:#9b1c15}
.badge.recovering{color:#0b4f8a;background:#e8f1fb;border-color:#0b4f8a}
.badge.unknown{color:#4f5863;background:#f3f5f7;border-color:#4f5863}
form.filter{display:flex;flex-wrap:wrap;gap:10px;align-items:end;margin:8px 0 14px}
form.filter label{display:flex;flex-direction:column;font-size:13px;color:var(--muted)}
input,select,button{font:inherit;color:var(--fg);padding:4px 8px;border:1px solid #6b7580;border-radius:4px;background:#ffffff}
button{background:#14324f;color:#ffffff;border-color:#14324f;cursor:pointer}
.pages{margin:12px 0;display:flex;gap:14px;align-items:center}
.headline{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.headline div{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:150px}
.headline b{display:block;font-size:20px}
.headline span{font-size:13px;color:var(--muted)}
pre{background:#f6f8fa;border:1px solid var(--line);padding:10px;overflow:auto;max-height:480px;font-size:13px}
svg text{font:12px system-ui,sans-serif;fill:#1b1f24}
.chart{max-width:900px}
.legend{font-size:13px;color:var(--muted)}
.problem{color:#9b1c15}
#burn-rates,#targets{width:auto;min-width:320px}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_open_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(url_part("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
    }

    #[test]
    fn the_bar_is_clamped_and_says_its_value() {
        assert!(budget_bar(Some(-40.0)).contains("width:0.0%"));
        assert!(budget_bar(Some(-40.0)).contains("-40.0% of the budget left"));
        assert!(budget_bar(Some(150.0)).contains("width:100.0%"));
        assert!(budget_bar(None).contains("no data"));
    }
}
