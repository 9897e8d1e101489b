//! The `aiwarden` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    aiwarden::cli::main()
}
