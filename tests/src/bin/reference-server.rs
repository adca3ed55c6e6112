//! The reference server binary, built inside this package so tests can run it as a process
//! (`CARGO_BIN_EXE_reference-server`) and kill it with SIGKILL.

fn main() -> std::process::ExitCode {
    steadyws_server::cli::main()
}
