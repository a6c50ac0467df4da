//! `tibet-iot`: UDP transport, LAN discovery, peer tracking and mesh relay.

#![forbid(unsafe_code)]
