//! The `spis` binary: everything is in the library, behind `spis::main`.

fn main() -> std::process::ExitCode {
    spis::main()
}
