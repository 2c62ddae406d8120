//! Answers of Prometheus' HTTP API: the envelope (status, error, warnings), and the vector and
//! matrix results decoded straight from the answer's text.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::client::Error;
use crate::small_map::SmallMap;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: SmallMap<String, String>,
    pub value: f64,
}

#[derive(Deserialize)]
struct Answer<'a> {
    status: String,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
    #[serde(default)]
    error: Option<String>,
    /// Thanos Query lists here every store that failed while partial responses are allowed
    /// (thanos-io/thanos pkg/api/api.go, `response.Warnings`); Prometheus, its storage's
    /// warnings.
    #[serde(default)]
    warnings: Vec<String>,
}

/// The `data` of an answer; `result` is decoded once its `resultType` is known, straight from
/// the answer's text (no intermediate JSON tree, no copy: a round's answer holds every SLO's
/// series).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    result_type: String,
    #[serde(borrow)]
    result: &'a serde_json::value::RawValue,
}

impl Data<'_> {
    fn expect(&self, expected: &str) -> Result<(), Error> {
        if self.result_type != expected {
            return Err(Error::Decode(format!(
                "expected a {expected}, got a {}",
                self.result_type
            )));
        }
        Ok(())
    }

    /// The result as `T` when it is of the `expected` type.
    fn decode<T: serde::de::DeserializeOwned>(&self, expected: &str) -> Result<T, Error> {
        self.expect(expected)?;
        serde_json::from_str(self.result.get())
            .map_err(|e| Error::Decode(format!("a {expected} that does not decode: {e}")))
    }

    /// Hands each sample of a vector result to `each` as it is decoded.
    fn each_sample(&self, each: impl FnMut(Sample)) -> Result<(), Error> {
        use serde::de::Deserializer as _;
        self.expect("vector")?;
        let mut decoder = serde_json::Deserializer::from_str(self.result.get());
        decoder
            .deserialize_seq(EachSample(each))
            .and_then(|()| decoder.end())
            .map_err(|e| Error::Decode(format!("a vector that does not decode: {e}")))
    }
}

/// Visits a vector's samples one by one.
struct EachSample<F>(F);

impl<'de, F: FnMut(Sample)> serde::de::Visitor<'de> for EachSample<F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of samples")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(s) = seq.next_element::<VectorSample>()? {
            (self.0)(Sample {
                labels: s.metric,
                value: parse_value(&s.value.1),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    metric: SmallMap<String, String>,
    value: (f64, String),
}

#[derive(Debug, Deserialize)]
struct MatrixSeries {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// One series of a range query: its labels and its samples as (Unix seconds, value).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<(f64, f64)>,
}

impl From<MatrixSeries> for Series {
    fn from(s: MatrixSeries) -> Series {
        Series {
            labels: s.metric,
            samples: s
                .values
                .into_iter()
                .map(|(t, v)| (t, parse_value(&v)))
                .collect(),
        }
    }
}

/// An instant query's answer as received, decoded by [`Fetched::each_sample`].
pub struct Fetched(pub(super) Body);

impl Fetched {
    /// Hands each sample of the answer's vector to `each` as it is decoded.
    pub fn each_sample(&self, each: impl FnMut(Sample)) -> Result<(), Error> {
        data(&self.0)?.each_sample(each)
    }
}

/// An answer of the HTTP API as received.
pub(super) struct Body {
    pub(super) status: u16,
    pub(super) text: String,
}

/// The data of a successful answer, borrowed from its text.
fn data(body: &Body) -> Result<Data<'_>, Error> {
    let (status, text) = (body.status, &body.text);
    let answer: Answer = serde_json::from_str(text).map_err(|_| {
        if status >= 400 {
            Error::Refused {
                status,
                message: text.chars().take(200).collect(),
            }
        } else {
            Error::Decode(text.chars().take(200).collect())
        }
    })?;
    if answer.status != "success" {
        return Err(Error::Refused {
            status,
            message: answer.error.unwrap_or_default(),
        });
    }
    if !answer.warnings.is_empty() {
        let mut warnings = answer.warnings.join("; ");
        if warnings.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|i| warnings.is_char_boundary(*i))
                .unwrap_or(0);
            warnings.truncate(cut);
            warnings.push_str("...");
        }
        return Err(Error::Partial { warnings });
    }
    answer
        .data
        .ok_or_else(|| Error::Decode("no data in a successful answer".into()))
}

/// The series of a matrix answer (a range query's, or an instant query of a range selector).
pub(super) fn matrix(body: &Body) -> Result<Vec<Series>, Error> {
    let result: Vec<MatrixSeries> = data(body)?.decode("matrix")?;
    Ok(result.into_iter().map(Series::from).collect())
}

/// One native-histogram sample of an instant vector: its labels and its populated buckets, as
/// (lower, upper) bounds. Prometheus lists only buckets with a count (web/api/v1 writes the
/// `buckets` of a histogram from its populated spans), each as `[boundary rule, lower, upper,
/// count]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    pub labels: BTreeMap<String, String>,
    pub buckets: Vec<(f64, f64)>,
}

#[derive(Deserialize)]
struct VectorHistogram {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    histogram: Option<(f64, HistogramValue)>,
}

#[derive(Deserialize)]
struct HistogramValue {
    #[serde(default)]
    buckets: Vec<(u8, String, String, String)>,
}

/// The native-histogram samples of a vector answer; float samples are skipped.
pub(super) fn histograms(body: &Body) -> Result<Vec<HistogramSample>, Error> {
    let result: Vec<VectorHistogram> = data(body)?.decode("vector")?;
    Ok(result
        .into_iter()
        .filter_map(|s| {
            let (_, h) = s.histogram?;
            Some(HistogramSample {
                labels: s.metric,
                buckets: h
                    .buckets
                    .iter()
                    .map(|(_, lower, upper, _)| (parse_value(lower), parse_value(upper)))
                    .collect(),
            })
        })
        .collect())
}

/// Prometheus writes values as strings, including `NaN`, `+Inf` and `-Inf`.
fn parse_value(text: &str) -> f64 {
    match text {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
