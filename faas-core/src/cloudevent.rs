//! [`CloudEvent`]: an event in the CloudEvents 1.0 format, read from and written
//! to HTTP in binary mode (`ce-*` headers) and structured mode
//! (`application/cloudevents+json`).

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::FunctionError;
use crate::extract::{FromInvocation, OptionalFromInvocation};
use crate::invocation::Invocation;
use crate::json::is_json_content_type;
use crate::output::{IntoOutput, Response};

/// The CloudEvents spec version this crate reads and writes.
pub const SPEC_VERSION: &str = "1.0";

/// The content type of a structured-mode event.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";

/// The attributes that are not extensions, in their JSON names.
const CONTEXT_ATTRIBUTES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
];

/// An event in the CloudEvents 1.0 format.
///
/// As an argument, a handler receives the event of the invocation in either mode;
/// as a return value, the event is written in binary mode.
///
/// ```
/// use faas_core::CloudEvent;
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Upload { key: String }
///
/// let event = CloudEvent::new("42", "/buckets/photos", "dev.faas.storage.created")
///     .with_subject("cat.jpg")
///     .with_json(&Upload { key: "cat.jpg".into() })
///     .unwrap();
///
/// let response = event.clone().encode_structured();
/// let back = CloudEvent::decode(response.headers(), response.body()).unwrap();
/// assert_eq!(back, event);
/// assert_eq!(back.data_json::<Upload>().unwrap().key, "cat.jpg");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloudEvent {
    /// Identifies the event; `source` + `id` is unique per event.
    pub id: String,
    /// The context in which the event happened (a URI-reference).
    pub source: String,
    /// The kind of event, e.g. `com.example.object.created` (the `type` attribute).
    pub ty: String,
    /// The CloudEvents version, `1.0`.
    pub specversion: String,
    /// The subject of the event within its source.
    pub subject: Option<String>,
    /// When the event happened, RFC 3339.
    pub time: Option<String>,
    /// The content type of `data`.
    pub datacontenttype: Option<String>,
    /// The schema `data` adheres to (a URI).
    pub dataschema: Option<String>,
    /// Extension attributes (lower-case names).
    pub extensions: BTreeMap<String, String>,
    /// The event payload.
    pub data: Option<Bytes>,
}

impl CloudEvent {
    /// An event with the required attributes and no data.
    pub fn new(id: impl Into<String>, source: impl Into<String>, ty: impl Into<String>) -> Self {
        CloudEvent {
            id: id.into(),
            source: source.into(),
            ty: ty.into(),
            specversion: SPEC_VERSION.to_owned(),
            subject: None,
            time: None,
            datacontenttype: None,
            dataschema: None,
            extensions: BTreeMap::new(),
            data: None,
        }
    }

    /// Sets the data and its content type.
    #[must_use]
    pub fn with_data(mut self, content_type: impl Into<String>, data: impl Into<Bytes>) -> Self {
        self.datacontenttype = Some(content_type.into());
        self.data = Some(data.into());
        self
    }

    /// Sets the data to `value` as JSON (`application/json`).
    ///
    /// # Errors
    ///
    /// When `value` cannot be written as JSON (e.g. a map with non-string keys).
    pub fn with_json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, FunctionError> {
        let data = serde_json::to_vec(value).map_err(|error| {
            FunctionError::internal(format!("could not write event data as JSON: {error}"))
                .with_source(error)
        })?;
        Ok(self.with_data("application/json", data))
    }

    /// Sets the subject.
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the time (RFC 3339 text).
    #[must_use]
    pub fn with_time(mut self, time: impl Into<String>) -> Self {
        self.time = Some(time.into());
        self
    }

    /// Sets the time to `at`.
    #[must_use]
    pub fn with_system_time(self, at: SystemTime) -> Self {
        self.with_time(humantime::format_rfc3339_millis(at).to_string())
    }

    /// Sets the data schema.
    #[must_use]
    pub fn with_dataschema(mut self, dataschema: impl Into<String>) -> Self {
        self.dataschema = Some(dataschema.into());
        self
    }

    /// Sets an extension attribute; the name is lower-cased.
    #[must_use]
    pub fn with_extension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions
            .insert(name.into().to_ascii_lowercase(), value.into());
        self
    }

    /// The data read as JSON.
    ///
    /// # Errors
    ///
    /// [`BadInput`](crate::ErrorKind::BadInput) when there is no data or it is not `T`.
    pub fn data_json<T: DeserializeOwned>(&self) -> Result<T, FunctionError> {
        let data = self
            .data
            .as_ref()
            .ok_or_else(|| FunctionError::bad_input("the event has no data"))?;
        serde_json::from_slice(data).map_err(|error| {
            FunctionError::bad_input(format!(
                "the event data is not valid JSON for this function: {error}"
            ))
            .with_source(error)
        })
    }

    /// Reads an event from an HTTP message in either mode.
    ///
    /// Structured mode when the content type is `application/cloudevents+json`,
    /// binary mode when a `ce-specversion` header is present.
    ///
    /// # Errors
    ///
    /// [`BadInput`](crate::ErrorKind::BadInput) when the message is neither, a
    /// required attribute is missing, the spec version is not 1.0, or the JSON is malformed.
    pub fn decode(headers: &HeaderMap, body: &Bytes) -> Result<CloudEvent, FunctionError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(essence);
        match content_type.as_deref() {
            Some(STRUCTURED_CONTENT_TYPE) => CloudEvent::from_structured(body),
            Some("application/cloudevents-batch+json") => Err(FunctionError::bad_input(
                "batched CloudEvents are not supported; send one event per request",
            )),
            _ if headers.contains_key("ce-specversion") => CloudEvent::from_binary(headers, body),
            _ => Err(FunctionError::bad_input(
                "not a CloudEvent: expected `ce-*` headers (binary mode) or content-type application/cloudevents+json (structured mode)",
            )),
        }
    }

    /// Reads a binary-mode event: attributes from `ce-*` headers (percent-decoded),
    /// `datacontenttype` from `content-type`, the body as data.
    ///
    /// # Errors
    ///
    /// [`BadInput`](crate::ErrorKind::BadInput) on a missing or invalid attribute.
    pub fn from_binary(headers: &HeaderMap, body: &Bytes) -> Result<CloudEvent, FunctionError> {
        let mut attributes = BTreeMap::new();
        for (name, value) in headers {
            if let Some(attribute) = name.as_str().strip_prefix("ce-") {
                let text = value.to_str().map_err(|_| {
                    FunctionError::bad_input(format!("header `{name}` is not ASCII text"))
                })?;
                attributes.insert(attribute.to_owned(), percent_decode(name.as_str(), text)?);
            }
        }
        let mut take = |key: &str| attributes.remove(key);
        let specversion = take("specversion");
        let id = take("id");
        let source = take("source");
        let ty = take("type");
        let subject = take("subject");
        let time = take("time");
        let dataschema = take("dataschema");
        let mut event = CloudEvent {
            specversion: required("specversion", specversion)?,
            id: required("id", id)?,
            source: required("source", source)?,
            ty: required("type", ty)?,
            subject,
            time,
            dataschema,
            datacontenttype: headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            extensions: attributes,
            data: None,
        };
        if !body.is_empty() {
            event.data = Some(body.clone());
        }
        event.validate()?;
        Ok(event)
    }

    /// Reads a structured-mode event from its JSON.
    ///
    /// # Errors
    ///
    /// [`BadInput`](crate::ErrorKind::BadInput) on malformed JSON, a missing or
    /// invalid attribute, or invalid `data_base64`.
    pub fn from_structured(body: &[u8]) -> Result<CloudEvent, FunctionError> {
        let object: Map<String, Value> = serde_json::from_slice(body).map_err(|error| {
            FunctionError::bad_input(format!(
                "the structured CloudEvent is not a JSON object: {error}"
            ))
            .with_source(error)
        })?;
        let text = |key: &str| -> Result<Option<String>, FunctionError> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(FunctionError::bad_input(format!(
                    "CloudEvent attribute `{key}` must be a string"
                ))),
            }
        };
        let mut event = CloudEvent {
            specversion: required("specversion", text("specversion")?)?,
            id: required("id", text("id")?)?,
            source: required("source", text("source")?)?,
            ty: required("type", text("type")?)?,
            subject: text("subject")?,
            time: text("time")?,
            datacontenttype: text("datacontenttype")?,
            dataschema: text("dataschema")?,
            extensions: BTreeMap::new(),
            data: None,
        };
        for (key, value) in &object {
            if CONTEXT_ATTRIBUTES.contains(&key.as_str()) {
                continue;
            }
            let value = match value {
                Value::String(text) => text.clone(),
                Value::Bool(flag) => flag.to_string(),
                Value::Number(number) => number.to_string(),
                Value::Null => continue,
                Value::Array(_) | Value::Object(_) => {
                    return Err(FunctionError::bad_input(format!(
                        "CloudEvent extension `{key}` must be a string, number or boolean"
                    )));
                }
            };
            event.extensions.insert(key.clone(), value);
        }
        match (object.get("data"), object.get("data_base64")) {
            (Some(data), Some(_)) if !data.is_null() => {
                return Err(FunctionError::bad_input(
                    "a CloudEvent holds `data` or `data_base64`, not both",
                ));
            }
            (_, Some(Value::String(encoded))) => {
                let data = BASE64.decode(encoded).map_err(|error| {
                    FunctionError::bad_input(format!("`data_base64` is not valid base64: {error}"))
                        .with_source(error)
                })?;
                event.data = Some(Bytes::from(data));
            }
            (_, Some(_)) => {
                return Err(FunctionError::bad_input("`data_base64` must be a string"));
            }
            (Some(Value::Null), None) | (None, None) => {}
            (Some(data), None) => {
                let json_data = event
                    .datacontenttype
                    .as_deref()
                    .is_none_or(is_json_content_type);
                event.data = Some(match data {
                    Value::String(text) if !json_data => Bytes::from(text.clone()),
                    other => Bytes::from(serde_json::to_vec(other).map_err(FunctionError::from)?),
                });
            }
        }
        event.validate()?;
        Ok(event)
    }

    /// The binary-mode headers and body of this event.
    pub fn into_binary_parts(self) -> (HeaderMap, Bytes) {
        let mut headers = HeaderMap::new();
        let mut put = |name: &str, value: &str| {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(format!("ce-{name}")),
                HeaderValue::try_from(percent_encode(value)),
            ) {
                headers.insert(name, value);
            }
        };
        put("specversion", &self.specversion);
        put("id", &self.id);
        put("source", &self.source);
        put("type", &self.ty);
        for (name, value) in [
            ("subject", &self.subject),
            ("time", &self.time),
            ("dataschema", &self.dataschema),
        ] {
            if let Some(value) = value {
                put(name, value);
            }
        }
        for (name, value) in &self.extensions {
            put(name, value);
        }
        if let Some(content_type) = self
            .datacontenttype
            .as_deref()
            .and_then(|value| HeaderValue::from_str(value).ok())
        {
            headers.insert(header::CONTENT_TYPE, content_type);
        }
        (headers, self.data.unwrap_or_default())
    }

    /// This event as a binary-mode response (200).
    pub fn encode_binary(self) -> Response {
        let (headers, body) = self.into_binary_parts();
        let mut response = http::Response::new(body);
        *response.headers_mut() = headers;
        response
    }

    /// This event as the JSON object of structured mode.
    ///
    /// JSON data (content type JSON or absent) goes in `data` as a JSON value;
    /// other UTF-8 data goes in `data` as a string; anything else in `data_base64`.
    pub fn to_structured_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("specversion".into(), self.specversion.clone().into());
        object.insert("id".into(), self.id.clone().into());
        object.insert("source".into(), self.source.clone().into());
        object.insert("type".into(), self.ty.clone().into());
        for (name, value) in [
            ("subject", &self.subject),
            ("time", &self.time),
            ("datacontenttype", &self.datacontenttype),
            ("dataschema", &self.dataschema),
        ] {
            if let Some(value) = value {
                object.insert(name.into(), value.clone().into());
            }
        }
        for (name, value) in &self.extensions {
            object.insert(name.clone(), value.clone().into());
        }
        if let Some(data) = &self.data {
            let json_data = self
                .datacontenttype
                .as_deref()
                .is_none_or(is_json_content_type);
            if json_data {
                match serde_json::from_slice::<Value>(data) {
                    Ok(value) => {
                        object.insert("data".into(), value);
                    }
                    Err(_) => {
                        object.insert("data_base64".into(), BASE64.encode(data).into());
                    }
                }
            } else {
                match std::str::from_utf8(data) {
                    Ok(text) => {
                        object.insert("data".into(), text.into());
                    }
                    Err(_) => {
                        object.insert("data_base64".into(), BASE64.encode(data).into());
                    }
                }
            }
        }
        Value::Object(object)
    }

    /// This event as a structured-mode response (200, `application/cloudevents+json`).
    pub fn encode_structured(self) -> Response {
        let body =
            serde_json::to_vec(&self.to_structured_json()).expect("a JSON value always serializes");
        let mut response = http::Response::new(Bytes::from(body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(STRUCTURED_CONTENT_TYPE),
        );
        response
    }

    fn validate(&self) -> Result<(), FunctionError> {
        if self.specversion != SPEC_VERSION {
            return Err(FunctionError::bad_input(format!(
                "unsupported CloudEvents specversion `{}`; this host reads 1.0",
                self.specversion
            )));
        }
        for (name, value) in [
            ("id", &self.id),
            ("source", &self.source),
            ("type", &self.ty),
        ] {
            if value.is_empty() {
                return Err(FunctionError::bad_input(format!(
                    "CloudEvent attribute `{name}` must not be empty"
                )));
            }
        }
        Ok(())
    }
}

impl FromInvocation for CloudEvent {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        CloudEvent::decode(invocation.headers(), invocation.body())
    }
}

/// `None` when the call carries no event: no `ce-specversion` header and
/// not in structured mode; an event that is there must be valid.
impl OptionalFromInvocation for CloudEvent {
    fn from_invocation_optional(invocation: &Invocation) -> Result<Option<Self>, FunctionError> {
        let structured = invocation
            .content_type()
            .map(essence)
            .is_some_and(|essence| essence.starts_with("application/cloudevents"));
        if structured || invocation.headers().contains_key("ce-specversion") {
            CloudEvent::from_invocation(invocation).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl IntoOutput for CloudEvent {
    fn into_output(self) -> Result<Response, FunctionError> {
        Ok(self.encode_binary())
    }
}

fn required(name: &str, value: Option<String>) -> Result<String, FunctionError> {
    value.ok_or_else(|| {
        FunctionError::bad_input(format!("CloudEvent attribute `{name}` is missing"))
    })
}

fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// What the HTTP binding percent-encodes in a `ce-*` header: space, `"`,
/// `%`, controls, and (always, with `percent-encoding`) every byte outside
/// ASCII.
const HEADER_ENCODED: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// Percent-encodes an attribute for its `ce-*` header.
fn percent_encode(value: &str) -> String {
    utf8_percent_encode(value, HEADER_ENCODED).to_string()
}

/// Percent-decodes a `ce-*` header into an attribute.
///
/// `percent-encoding` leaves a malformed escape as it is; the binding calls
/// that an invalid header, so escapes are checked first.
fn percent_decode(name: &str, value: &str) -> Result<String, FunctionError> {
    let bytes = value.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(at, &byte)| {
        byte == b'%'
            && !bytes
                .get(at + 1..at + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(FunctionError::bad_input(format!(
            "header `{name}` has an invalid percent-escape"
        )));
    }
    percent_decode_str(value)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| {
            FunctionError::bad_input(format!("header `{name}` is not UTF-8 once percent-decoded"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn sample() -> CloudEvent {
        CloudEvent::new("a-1", "/orders", "dev.faas.order.created")
            .with_subject("order 7")
            .with_time("2024-05-01T12:00:00Z")
            .with_dataschema("https://example.com/order.json")
            .with_extension("TraceId", "abc")
            .with_json(&serde_json::json!({"id": 7, "items": ["x"]}))
            .unwrap()
    }

    #[test]
    fn binary_round_trip() {
        let event = sample();
        let response = event.clone().encode_binary();
        assert_eq!(response.headers()["ce-id"], "a-1");
        assert_eq!(response.headers()["ce-specversion"], "1.0");
        assert_eq!(response.headers()["ce-subject"], "order%207");
        assert_eq!(response.headers()["ce-traceid"], "abc");
        assert_eq!(response.headers()["content-type"], "application/json");
        let back = CloudEvent::decode(response.headers(), response.body()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn structured_round_trip() {
        let event = sample();
        let response = event.clone().encode_structured();
        assert_eq!(response.headers()["content-type"], STRUCTURED_CONTENT_TYPE);
        let json: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(json["data"]["id"], 7);
        assert_eq!(json["traceid"], "abc");
        assert_eq!(json["type"], "dev.faas.order.created");
        let back = CloudEvent::decode(response.headers(), response.body()).unwrap();
        assert_eq!(
            back.data_json::<Value>().unwrap(),
            serde_json::json!({"id": 7, "items": ["x"]})
        );
        assert_eq!(back.extensions, event.extensions);
        assert_eq!(back.subject, event.subject);
        assert_eq!(back.datacontenttype, event.datacontenttype);
    }

    #[test]
    fn structured_text_and_binary_data() {
        let text = CloudEvent::new("1", "s", "t").with_data("text/plain", "héllo \"world\"");
        let back = CloudEvent::decode(
            text.clone().encode_structured().headers(),
            text.clone().encode_structured().body(),
        )
        .unwrap();
        assert_eq!(back, text);

        let raw = CloudEvent::new("2", "s", "t")
            .with_data("application/octet-stream", vec![0u8, 0xff, 0x10]);
        let response = raw.clone().encode_structured();
        let json: Value = serde_json::from_slice(response.body()).unwrap();
        assert!(json.get("data_base64").is_some());
        assert_eq!(
            CloudEvent::decode(response.headers(), response.body()).unwrap(),
            raw
        );
    }

    #[test]
    fn binary_round_trip_of_non_ascii_attributes() {
        let event =
            CloudEvent::new("1", "/ünïcode source", "t").with_extension("note", "100% \"sure\"");
        let response = event.clone().encode_binary();
        let back = CloudEvent::decode(response.headers(), response.body()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn missing_attributes_are_bad_input() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-specversion", HeaderValue::from_static("1.0"));
        headers.insert("ce-id", HeaderValue::from_static("1"));
        headers.insert("ce-source", HeaderValue::from_static("/s"));
        let err = CloudEvent::decode(&headers, &Bytes::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert!(err.message().contains("`type`"), "{}", err.message());
    }

    #[test]
    fn wrong_spec_version_is_bad_input() {
        let body = br#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#;
        let err = CloudEvent::from_structured(body).unwrap_err();
        assert!(err.message().contains("0.3"));
    }

    #[test]
    fn not_an_event() {
        let err = CloudEvent::decode(&HeaderMap::new(), &Bytes::from_static(b"{}")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(STRUCTURED_CONTENT_TYPE),
        );
        let err = CloudEvent::decode(&headers, &Bytes::from_static(b"{not json")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
    }

    #[test]
    fn extractor_reads_both_modes() {
        let event = sample();
        let binary = Invocation::from_event(event.clone());
        assert_eq!(CloudEvent::from_invocation(&binary).unwrap(), event);
        let structured = Invocation::new(event.clone().encode_structured().into_body())
            .with_header("content-type", STRUCTURED_CONTENT_TYPE);
        assert_eq!(CloudEvent::from_invocation(&structured).unwrap().id, "a-1");
    }

    #[test]
    fn percent_coding() {
        assert_eq!(percent_encode("a b%\"é"), "a%20b%25%22%C3%A9");
        assert_eq!(percent_decode("h", "a%20b%25%22%C3%A9").unwrap(), "a b%\"é");
        assert!(percent_decode("h", "%zz").is_err());
        assert!(percent_decode("h", "%ff").is_err());
        assert!(percent_decode("h", "50%").is_err());
        assert_eq!(percent_decode("h", "plain").unwrap(), "plain");
    }
}
