//! Message bodies on the wire: zlib as the agents send and expect it, with the reference
//! server's fallbacks (gzip, plain XML) for other clients.
//!
//! Decompression is capped: a few kilobytes of zlib can expand to gigabytes, and a server
//! that inflates without a limit is one request away from running out of memory.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::{GzDecoder, ZlibDecoder};
use flate2::write::ZlibEncoder;

use crate::Error;

/// How a request body was encoded; a reply uses the same encoding, as the reference
/// server does (`System.pm::_inflate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// RFC 1950 zlib (`78 9c …`): what every OCS agent sends and the only reply the Unix
    /// agent accepts.
    Zlib,
    /// RFC 1952 gzip.
    Gzip,
    /// Uncompressed XML.
    Plain,
}

/// Decodes a request body to XML bytes, refusing to produce more than `max_len` bytes.
pub fn decode(body: &[u8], max_len: usize) -> Result<(Vec<u8>, BodyEncoding), Error> {
    let encoding = match body {
        [0x1f, 0x8b, ..] => BodyEncoding::Gzip,
        // zlib: CMF says deflate (low nibble 8) and the header checksum holds.
        [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 => {
            BodyEncoding::Zlib
        }
        _ if starts_like_xml(body) => BodyEncoding::Plain,
        _ => return Err(Error::Body("not zlib, gzip or XML".into())),
    };
    let xml = match encoding {
        BodyEncoding::Zlib => read_capped(ZlibDecoder::new(body), max_len)?,
        BodyEncoding::Gzip => read_capped(GzDecoder::new(body), max_len)?,
        BodyEncoding::Plain if body.len() > max_len => {
            return Err(Error::TooLarge {
                what: "body bytes",
                limit: max_len,
            });
        }
        BodyEncoding::Plain => body.to_vec(),
    };
    Ok((xml, encoding))
}

/// Encodes a reply as zlib.
pub fn encode_zlib(xml: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(
        Vec::with_capacity(xml.len() / 2 + 16),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(xml);
    encoder.finish().unwrap_or_default()
}

/// Encodes a reply as gzip (for clients that sent gzip).
pub fn encode_gzip(xml: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(xml.len() / 2 + 32),
        Compression::default(),
    );
    let _ = encoder.write_all(xml);
    encoder.finish().unwrap_or_default()
}

fn starts_like_xml(body: &[u8]) -> bool {
    let trimmed = body.trim_ascii_start();
    let trimmed = trimmed.strip_prefix(b"\xef\xbb\xbf").unwrap_or(trimmed);
    trimmed.starts_with(b"<")
}

fn read_capped(reader: impl Read, max_len: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    // One byte more than allowed tells "exactly at the limit" from "over it".
    let read = reader
        .take(max_len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Body(format!("cannot decompress: {e}")))?;
    if read > max_len {
        return Err(Error::TooLarge {
            what: "decompressed body bytes",
            limit: max_len,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;

    #[test]
    fn zlib_round_trip_starts_like_the_agents_bodies() {
        let body = encode_zlib(b"<REQUEST/>");
        assert_eq!(&body[..2], &[0x78, 0x9c]);
        assert_eq!(
            decode(&body, 1024).unwrap(),
            (b"<REQUEST/>".to_vec(), BodyEncoding::Zlib)
        );
    }

    #[test]
    fn gzip_and_plain_are_accepted() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(b"<A/>").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode(&gz, 64).unwrap().1, BodyEncoding::Gzip);
        assert_eq!(
            decode(&encode_gzip(b"<B/>"), 64).unwrap(),
            (b"<B/>".to_vec(), BodyEncoding::Gzip)
        );
        assert_eq!(
            decode(b"  <?xml version='1.0'?><A/>", 64).unwrap().1,
            BodyEncoding::Plain
        );
    }

    #[test]
    fn bombs_stop_at_the_cap() {
        let bomb = encode_zlib(&vec![b' '; 10 * 1024 * 1024]);
        assert!(
            bomb.len() < 20_000,
            "a 10 MiB bomb compresses to {} bytes",
            bomb.len()
        );
        assert!(matches!(
            decode(&bomb, 1024 * 1024),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(decode(b"\x00\x01\x02", 64).is_err());
        let body = encode_zlib(&[b'x'; 4096]);
        assert!(decode(&body[..body.len() / 2], 1 << 20).is_err());
    }
}
