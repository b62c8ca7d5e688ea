fn main() -> std::process::ExitCode {
    flagfleet::cli::main()
}
