//! Fuzz the control socket's request parser (the CLI's library target holds
//! only the config file, so the I/O-free protocol file is included as it
//! is): any line
//! must parse or give a bounded error message, never panic; a parsed request
//! re-serializes to a line that parses to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/tibet-iot-cli/src/control/protocol.rs"]
mod protocol;

fuzz_target!(|data: &[u8]| {
    match protocol::parse_request(data) {
        Ok(request) => {
            let line = serde_json::to_vec(&request).expect("requests serialize");
            assert!(!line.contains(&b'\n'), "one line");
            let again = protocol::parse_request(&line).expect("our own line parses");
            // Compare as JSON text, the form the client sees.
            assert_eq!(serde_json::to_vec(&again).unwrap(), line);
        }
        Err(message) => {
            assert!(message.len() <= 220, "bounded: {} bytes", message.len());
            let reply = serde_json::to_vec(&protocol::Response::error(message)).unwrap();
            assert!(!reply.contains(&b'\n'), "one line");
        }
    }
});
