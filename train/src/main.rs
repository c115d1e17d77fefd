//! `dsan`: see the library's documentation and `dsan --help`.

fn main() -> std::process::ExitCode {
    dsan_train::cli::run()
}
