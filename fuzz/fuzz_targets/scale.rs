//! SCALE from the chain: a commitment's `Data` fields as `decode_data` reads them back, one after
//! another; what decodes re-encodes to the same bytes.
#![no_main]
use arena_chain::calls;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((body, used)) = calls::decode_data(rest) {
        assert!(used >= 1 && used <= rest.len());
        if rest[0] != 0 {
            assert_eq!(calls::raw_data(&body).ok().as_deref(), Some(&rest[..used]));
        }
        rest = &rest[used..];
    }
});
