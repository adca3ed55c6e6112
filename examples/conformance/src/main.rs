//! `steadyws-conformance URL [options]`: the kit as a command; see [`steadyws_conformance`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let options = match steadyws_conformance::options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("steadyws-conformance: {problem}\n");
            }
            eprintln!("{}", steadyws_conformance::options::USAGE);
            return ExitCode::from(if problem.is_empty() { 0 } else { 2 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("steadyws-conformance: cannot start: {err}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(steadyws_conformance::run(&options));
    if options.json {
        println!("{:#}", outcome.json(&options.url));
    } else {
        print!("{}", outcome.table(&options.url));
    }
    ExitCode::from(outcome.exit_code())
}
