//! roomcast's end-to-end and conformance tests live in `tests/`; this library holds what they share.
