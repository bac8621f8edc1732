#![no_main]
//! Untrusted agent bodies, as `POST /ocsinventory` receives them: zlib, gzip or plain XML.

use libfuzzer_sys::fuzz_target;
use tessera_protocol::ocs::{Request, RequestLimits};
use tessera_protocol::xml::XmlLimits;

fuzz_target!(|data: &[u8]| {
    let _ = Request::from_body(data, RequestLimits::default());
    let _ = Request::from_xml(data, XmlLimits::default());
});
