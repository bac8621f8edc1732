#![no_main]
//! Untrusted server replies, as the agent reads them after a PROLOG (the agent may talk to
//! a server it does not control in `--ocs-compat` mode).

use libfuzzer_sys::fuzz_target;
use tessera_protocol::ocs::PrologReply;

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = PrologReply::from_xml(data) {
        // What the agent reads must survive the server's writer and read back the same.
        let again = PrologReply::from_xml(reply.to_xml().as_bytes());
        assert!(again.is_ok(), "re-encoded reply does not parse");
    }
});
