//! The `switchboard` binary: parse the command line and hand over to the library.
#![forbid(unsafe_code)]

/// mimalloc returns freed memory to the system; glibc's allocator kept ~19 MiB per argon2 hash
/// resident after logins (measured by the load generator: 20 logins took RSS from 14 to 679 MiB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchboard_server::cli::main()
}
