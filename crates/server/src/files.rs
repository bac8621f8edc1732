//! Serving stored files as OCS agents and Munki clients expect: exact `Content-Length`,
//! strong `ETag`, `Last-Modified`, conditional GET (`304`), and single byte ranges (`206`)
//! with the same validators, so that an interrupted download resumes instead of
//! restarting.
//!
//! The decision ([`decide`]) is pure, over the request headers and the file's metadata;
//! [`serve`] then streams the chosen byte range straight from the file.

use std::io::SeekFrom;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::Response;
use http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
};
use http::{HeaderMap, Method, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

/// What identifies one version of a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVersion {
    /// Length in bytes.
    pub len: u64,
    /// Modification time.
    pub modified: SystemTime,
}

impl FileVersion {
    /// A strong validator: length and modification time in nanoseconds. Files in the
    /// repository are replaced atomically (write + rename), so a change of content is a
    /// change of mtime.
    pub fn etag(&self) -> String {
        let nanos = self
            .modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("\"{:x}-{nanos:x}\"", self.len)
    }

    /// `Last-Modified` value.
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }
}

/// What to send for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `200` with the whole file.
    Full,
    /// `206` with bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// `304`: the client's copy is current.
    NotModified,
    /// `416`: the range lies outside the file.
    Unsatisfiable,
}

/// Decides the response for a GET/HEAD of a file, following RFC 9110 §13 (preconditions)
/// and §14 (ranges). Only single ranges are honoured; a multi-range request gets the whole
/// file, which the RFC allows.
pub fn decide(headers: &HeaderMap, version: &FileVersion) -> Decision {
    let etag = version.etag();
    if let Some(if_none_match) = header_str(headers, &IF_NONE_MATCH) {
        if if_none_match.trim() == "*"
            || if_none_match
                .split(',')
                .any(|tag| weak_eq(tag.trim(), &etag))
        {
            return Decision::NotModified;
        }
    } else if let Some(since) =
        header_str(headers, &IF_MODIFIED_SINCE).and_then(|v| httpdate::parse_http_date(v).ok())
    {
        // HTTP dates have one-second resolution.
        if truncate_to_seconds(version.modified) <= since {
            return Decision::NotModified;
        }
    }
    let Some(range) = header_str(headers, &RANGE) else {
        return Decision::Full;
    };
    if let Some(if_range) = header_str(headers, &IF_RANGE) {
        let current = if if_range.starts_with('"') {
            if_range == etag
        } else {
            httpdate::parse_http_date(if_range)
                .is_ok_and(|date| truncate_to_seconds(version.modified) == date)
        };
        if !current {
            return Decision::Full;
        }
    }
    parse_range(range, version.len)
}

fn parse_range(value: &str, len: u64) -> Decision {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Decision::Full;
    };
    if spec.contains(',') {
        return Decision::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Decision::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => return Decision::Unsatisfiable,
            Some(n) if len > 0 => (len.saturating_sub(n), len - 1),
            Some(_) => return Decision::Unsatisfiable,
            None => return Decision::Full,
        },
        (false, true) => match parse(first) {
            Some(start) => (start, len.saturating_sub(1)),
            None => return Decision::Full,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(start), Some(end)) if start <= end => (start, end.min(len.saturating_sub(1))),
            _ => return Decision::Full,
        },
        (true, true) => return Decision::Full,
    };
    if start >= len {
        return Decision::Unsatisfiable;
    }
    Decision::Partial { start, end }
}

fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

fn truncate_to_seconds(time: SystemTime) -> SystemTime {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A byte window of a stored file to serve as if it were a file of its own: an OCS
/// fragment is bytes `offset..offset+len` of the package archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First byte of the window in the file.
    pub offset: u64,
    /// Length of the window.
    pub len: u64,
}

/// Serves `window` of the file at `path` (the whole file when `None`) for `method`,
/// honouring `headers`. Missing files are `404`.
pub async fn serve(
    path: &Path,
    window: Option<Window>,
    method: &Method,
    headers: &HeaderMap,
    content_type: &'static str,
) -> std::io::Result<Response> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(status(StatusCode::NOT_FOUND));
        }
        Err(e) => return Err(e),
    };
    let metadata = file.metadata().await?;
    if !metadata.is_file() {
        return Ok(status(StatusCode::NOT_FOUND));
    }
    let window = window.unwrap_or(Window {
        offset: 0,
        len: metadata.len(),
    });
    if window.offset.saturating_add(window.len) > metadata.len() {
        // The stored archive is shorter than its plan says: never serve short content
        // under a length that promises more.
        return Ok(status(StatusCode::NOT_FOUND));
    }
    let version = FileVersion {
        len: window.len,
        modified: metadata.modified()?,
    };
    let decision = decide(headers, &version);
    let mut builder = Response::builder()
        .header(ETAG, version.etag())
        .header(LAST_MODIFIED, version.last_modified())
        .header(ACCEPT_RANGES, "bytes");
    let (start, len) = match decision {
        Decision::NotModified => {
            return Ok(builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .unwrap_or_default());
        }
        Decision::Unsatisfiable => {
            return Ok(builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(CONTENT_RANGE, format!("bytes */{}", version.len))
                .body(Body::empty())
                .unwrap_or_default());
        }
        Decision::Full => (0, version.len),
        Decision::Partial { start, end } => {
            builder = builder.status(StatusCode::PARTIAL_CONTENT).header(
                CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", version.len),
            );
            (start, end - start + 1)
        }
    };
    builder = builder
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, len);
    if method == Method::HEAD {
        return Ok(builder.body(Body::empty()).unwrap_or_default());
    }
    file.seek(SeekFrom::Start(window.offset + start)).await?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file.take(len),
        64 * 1024,
    ));
    Ok(builder.body(body).unwrap_or_default())
}

fn status(code: StatusCode) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn version() -> FileVersion {
        FileVersion {
            len: 1000,
            modified: UNIX_EPOCH + Duration::from_millis(1_700_000_000_500),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn ranges() {
        let v = version();
        let d = |range: &str| decide(&headers(&[("range", range)]), &v);
        assert_eq!(d("bytes=0-99"), Decision::Partial { start: 0, end: 99 });
        assert_eq!(
            d("bytes=900-"),
            Decision::Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            d("bytes=-100"),
            Decision::Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(d("bytes=-5000"), Decision::Partial { start: 0, end: 999 });
        assert_eq!(
            d("bytes=990-5000"),
            Decision::Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(d("bytes=1000-"), Decision::Unsatisfiable);
        assert_eq!(d("bytes=-0"), Decision::Unsatisfiable);
        assert_eq!(d("bytes=0-1,5-6"), Decision::Full);
        assert_eq!(d("bytes=5-1"), Decision::Full);
        assert_eq!(d("items=0-1"), Decision::Full);
        assert_eq!(d("bytes=x-1"), Decision::Full);
        assert_eq!(decide(&HeaderMap::new(), &v), Decision::Full);
    }

    #[test]
    fn conditional_get() {
        let v = version();
        let etag = v.etag();
        assert!(etag.starts_with('"') && etag.ends_with('"'));
        assert_eq!(
            decide(&headers(&[("if-none-match", &etag)]), &v),
            Decision::NotModified
        );
        let list = format!("\"other\", W/{etag}");
        assert_eq!(
            decide(&headers(&[("if-none-match", &list)]), &v),
            Decision::NotModified
        );
        assert_eq!(
            decide(&headers(&[("if-none-match", "\"other\"")]), &v),
            Decision::Full
        );
        // Last-Modified drops the sub-second part; the same date is "not modified".
        let date = v.last_modified();
        assert_eq!(
            decide(&headers(&[("if-modified-since", &date)]), &v),
            Decision::NotModified
        );
        let earlier = httpdate::fmt_http_date(v.modified - Duration::from_secs(10));
        assert_eq!(
            decide(&headers(&[("if-modified-since", &earlier)]), &v),
            Decision::Full
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            decide(
                &headers(&[("if-none-match", "\"other\""), ("if-modified-since", &date)]),
                &v
            ),
            Decision::Full
        );
    }

    #[test]
    fn if_range_resumes_only_the_same_version() {
        let v = version();
        let etag = v.etag();
        let same = headers(&[("range", "bytes=10-"), ("if-range", &etag)]);
        assert_eq!(
            decide(&same, &v),
            Decision::Partial {
                start: 10,
                end: 999
            }
        );
        let changed = headers(&[("range", "bytes=10-"), ("if-range", "\"old\"")]);
        assert_eq!(decide(&changed, &v), Decision::Full);
        let date = v.last_modified();
        let by_date = headers(&[("range", "bytes=10-"), ("if-range", &date)]);
        assert_eq!(
            decide(&by_date, &v),
            Decision::Partial {
                start: 10,
                end: 999
            }
        );
    }

    #[test]
    fn empty_files_have_no_satisfiable_range() {
        let v = FileVersion {
            len: 0,
            modified: UNIX_EPOCH,
        };
        assert_eq!(
            decide(&headers(&[("range", "bytes=0-")]), &v),
            Decision::Unsatisfiable
        );
        assert_eq!(
            decide(&headers(&[("range", "bytes=-1")]), &v),
            Decision::Unsatisfiable
        );
    }

    #[tokio::test]
    async fn serving_a_window_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive");
        std::fs::write(&path, (0u8..=255).collect::<Vec<_>>()).unwrap();
        let window = Some(Window {
            offset: 100,
            len: 50,
        });
        let get = |headers: HeaderMap| {
            let path = path.clone();
            async move {
                serve(
                    &path,
                    window,
                    &Method::GET,
                    &headers,
                    "application/octet-stream",
                )
                .await
                .unwrap()
            }
        };
        let full = get(HeaderMap::new()).await;
        assert_eq!(full.status(), StatusCode::OK);
        assert_eq!(full.headers()[CONTENT_LENGTH], "50");
        let body = axum::body::to_bytes(full.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(body.as_ref(), &(100u8..150).collect::<Vec<_>>()[..]);

        let part = get(headers(&[("range", "bytes=10-19")])).await;
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.headers()[CONTENT_RANGE], "bytes 10-19/50");
        let body = axum::body::to_bytes(part.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(body.as_ref(), &(110u8..120).collect::<Vec<_>>()[..]);

        let too_long = Some(Window {
            offset: 200,
            len: 100,
        });
        let response = serve(&path, too_long, &Method::GET, &HeaderMap::new(), "x")
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let missing = serve(
            &dir.path().join("nope"),
            None,
            &Method::GET,
            &HeaderMap::new(),
            "x",
        )
        .await
        .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let head = serve(&path, None, &Method::HEAD, &HeaderMap::new(), "x")
            .await
            .unwrap();
        assert_eq!(head.headers()[CONTENT_LENGTH], "256");
        assert!(
            axum::body::to_bytes(head.into_body(), 16)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
