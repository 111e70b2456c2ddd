//! The zone a dry-run signs when the operator gives none: small, but with
//! what matters to the timing — an RRset at the policy's largest TTL (the
//! one whose old signatures stay longest in caches), a secure and an
//! insecure delegation with glue, a wildcard and an empty non-terminal.

/// Master-file text for `origin` (absolute, with the final dot), whose
/// largest TTL is `max_ttl` seconds.
pub(crate) fn example_zone(origin: &str, max_ttl: i64) -> String {
    let short = 3600.min(max_ttl);
    format!(
        "$ORIGIN {origin}\n\
         $TTL {short}\n\
         @ SOA ns1 hostmaster 1 7200 3600 1209600 {short}\n\
         @ NS ns1\n\
         @ NS ns2.example.net.\n\
         @ MX 10 mail\n\
         @ TXT \"signed by a signet dry-run\"\n\
         ns1 A 192.0.2.1\n\
         ns1 AAAA 2001:db8::1\n\
         mail A 192.0.2.25\n\
         www {max_ttl} A 192.0.2.80\n\
         *.apps TXT \"wildcard\"\n\
         a.b.c TXT \"below an empty non-terminal\"\n\
         secure NS ns.secure\n\
         secure DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n\
         ns.secure A 192.0.2.53\n\
         insecure NS ns.insecure.example.net.\n"
    )
}
