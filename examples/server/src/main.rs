//! `steadyws-server`: the reference server as a process; see [`steadyws_server::cli`].

fn main() -> std::process::ExitCode {
    steadyws_server::cli::main()
}
