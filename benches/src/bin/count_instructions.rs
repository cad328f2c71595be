//! Runs one benchmark case `n` times, for counting instructions under
//! callgrind: `count_instructions <case> <n>`. See `benches/callgrind.sh`.

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: count_instructions <case> <calls>");
        eprintln!("cases:");
        for case in tripswitch_benches::CASES {
            eprintln!("  {case}");
        }
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("calls must be a number");
    let mut runner = tripswitch_benches::case(&name).unwrap_or_else(|| {
        eprintln!("unknown case {name}");
        std::process::exit(2)
    });
    runner(n);
}
