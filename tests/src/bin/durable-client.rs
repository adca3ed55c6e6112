//! `durable-client`: a client process with a durable store, for the SIGKILL tests; see
//! `steadyws_tests::durable_client` for its commands.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    steadyws_tests::durable_client::main(&args)
}
