//! The instruction-count driver of the end-to-end HTTP cases (issue 18
//! point 14): serves one case of `tripswitch_benches::http` and sends it
//! `requests` requests, client and server on one current-thread runtime,
//! so that callgrind counts the whole request, both ends. Run by
//! `benches/callgrind_http.sh`, which takes the difference of two runs.
//!
//! `http_instructions <case> <requests>`

use tripswitch_benches::http::{HTTP_CASES, client, router, send, serve};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(case), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: http_instructions <case> <requests>");
        eprintln!("cases:");
        for case in HTTP_CASES {
            eprintln!("  {case}");
        }
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("requests must be a number");
    let Some(router) = router(&case) else {
        eprintln!("unknown case {case}");
        std::process::exit(2)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let uri = serve(router).await;
        send(&client(), &uri, n).await;
    });
}
